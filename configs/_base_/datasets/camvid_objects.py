# CamVid's classes as generator training samples: each (image, class
# present) pair is one object whose class id chooses its code, the code
# tools/protect.py --prompt per-class gives that class. For fine-tuning a
# generator on the target's own training images (validated on 64 val
# objects). MMUNSEG_DATA overrides the data folder.
data_root = '{{$MMUNSEG_DATA:{{ fileDirname }}/../../../../shared/data}}' \
    '/camvid'
camvid = dict(
    type='mmseg.BaseSegDataset',
    data_root=data_root,
    img_suffix='.jpg',
    seg_map_suffix='.png')
generator_size = 256
train_pipeline = [
    dict(type='LoadImageAndClassMask'),
    dict(type='RandomHorizontalFlip', prob=0.5),
    dict(
        type='LargeScaleJitter',
        output_size=generator_size,
        scale_range=(0.5, 1.5)),
    dict(type='PackUnSegInputs'),
]
val_pipeline = [
    dict(type='LoadImageAndClassMask'),
    dict(type='ResizePad', output_size=generator_size),
    dict(type='PackUnSegInputs'),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    drop_last=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='SemanticObjectsDataset',
        dataset=dict(
            camvid,
            data_prefix=dict(
                img_path='img_dir/train', seg_map_path='ann_dir/train')),
        min_mask_ratio=0.001,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='SemanticObjectsDataset',
        dataset=dict(
            camvid,
            data_prefix=dict(
                img_path='img_dir/val', seg_map_path='ann_dir/val')),
        min_mask_ratio=0.01,
        indices=64,
        test_mode=True,
        pipeline=val_pipeline))
val_evaluator = dict(type='SurrogateIoUMetric')
test_dataloader = val_dataloader
test_evaluator = val_evaluator
