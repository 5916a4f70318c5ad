# NWPU VHR-10 remote-sensing instance segmentation (10 classes, COCO JSON),
# the split RSPrompter uses, at ../shared/data/nwpu_vhr10 (MMUNSEG_DATA
# overrides the data folder). Pipelines are built in the dataset's (mmdet)
# scope, so transforms need no prefix.
dataset_type = 'mmdet.CocoDataset'
data_root = '{{$MMUNSEG_DATA:{{ fileDirname }}/../../../../shared/data}}' \
    '/nwpu_vhr10/'
metainfo = dict(
    classes=('airplane', 'ship', 'storage_tank', 'baseball_diamond',
             'tennis_court', 'basketball_court', 'ground_track_field',
             'harbor', 'bridge', 'vehicle'),
    palette=[(220, 20, 60), (119, 11, 32), (0, 0, 142), (0, 0, 230),
             (106, 0, 228), (0, 60, 100), (0, 80, 100), (0, 0, 70),
             (0, 0, 192), (250, 170, 30)])
image_size = (512, 512)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor')),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='mmdet.AspectRatioBatchSampler'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/NWPU_instances_train.json',
        data_prefix=dict(img='imgs/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/NWPU_instances_val.json',
        data_prefix=dict(img='imgs/'),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='mmdet.CocoMetric',
    ann_file=data_root + 'annotations/NWPU_instances_val.json',
    metric=['bbox', 'segm'])
test_evaluator = val_evaluator
