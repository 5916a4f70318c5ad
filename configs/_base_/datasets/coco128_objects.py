# 126 COCO photos with 524 object masks in HQSeg-44K's im/ + gt/ layout
# (../shared/data/coco128_objects; MMUNSEG_DATA overrides the data folder).
data_root = '{{$MMUNSEG_DATA:{{ fileDirname }}/../../../../shared/data}}' \
    '/coco128_objects'
generator_size = 256
train_pipeline = [
    dict(type='LoadImageAndMask'),
    dict(type='RandomHorizontalFlip', prob=0.5),
    dict(
        type='LargeScaleJitter',
        output_size=generator_size,
        scale_range=(0.5, 1.5)),
    dict(type='PackUnSegInputs'),
]
val_pipeline = [
    dict(type='LoadImageAndMask'),
    dict(type='ResizePad', output_size=generator_size),
    dict(type='PackUnSegInputs'),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=1,
    persistent_workers=True,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='FolderMaskDataset',
        data_root=data_root,
        split='train',
        min_mask_area=256,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='FolderMaskDataset',
        data_root=data_root,
        split='val',
        min_mask_area=256,
        test_mode=True,
        pipeline=val_pipeline))
val_evaluator = dict(type='SurrogateIoUMetric')
test_dataloader = val_dataloader
test_evaluator = val_evaluator
