# Fine-tune the universal code generator on the target's own training
# images (a capability the paper lacks): CamVid's classes get their own
# codes (1 + class id, as tools/protect.py --prompt per-class gives them),
# learnt against a fresh UNet surrogate that sees the true class maps.
#   python tools/train.py THIS_CONFIG \
#       --cfg-options load_from=work_dirs/<universal run>/iter_3000.pth
# load_from fills both players; the surrogate then learns CamVid's codes.
_base_ = ['./unseg-codes_sam-tiny_unet-c16_coco128-objects.py']
data_root = '{{$MMUNSEG_DATA:{{ fileDirname }}/../../../shared/data}}' \
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
    dataset=dict(
        _delete_=True,
        type='SemanticObjectsDataset',
        dataset=dict(
            camvid,
            data_prefix=dict(
                img_path='img_dir/train', seg_map_path='ann_dir/train')),
        min_mask_ratio=0.001,
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='SemanticObjectsDataset',
        dataset=dict(
            camvid,
            data_prefix=dict(
                img_path='img_dir/val', seg_map_path='ann_dir/val')),
        min_mask_ratio=0.01,
        indices=64,
        test_mode=True,
        pipeline=val_pipeline))
test_dataloader = val_dataloader
train_cfg = dict(max_iters=1000, val_interval=500)
param_scheduler = dict(
    generator=[
        dict(type='MultiStepLR', by_epoch=False, milestones=[800], gamma=0.1)
    ],
    surrogate=[
        dict(type='MultiStepLR', by_epoch=False, milestones=[800], gamma=0.1)
    ])
