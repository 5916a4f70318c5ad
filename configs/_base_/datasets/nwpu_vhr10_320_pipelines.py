# The NWPU VHR-10 pipelines of the CPU victims at 320x320 (Mask R-CNN R-18
# and RSPrompter with the tiny SAM), in one place. Inherit this file beside
# the dataset and take them as
#   train_pipeline = {{_base_.nwpu_320_train_pipeline}}
# (the names are prefixed: MMEngine refuses keys that two bases share).
nwpu_320_image_size = (320, 320)
nwpu_320_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=nwpu_320_image_size, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
nwpu_320_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=nwpu_320_image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor')),
]
