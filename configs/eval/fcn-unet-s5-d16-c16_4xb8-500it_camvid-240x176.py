# A victim that trains from scratch on a CPU: MMSeg's UNet (s5-d16) with 16
# base channels on CamVid at half resolution, AdamW 1e-3, 500 iterations
# (about 10 minutes on 2 cores; about 33 mIoU on clean images, see
# ../shared/docs/efficacy_notes.md). Train it on a protected copy with
#   tools/train.py THIS_CONFIG --cfg-options \
#       train_dataloader.dataset.data_root=PROTECTED_DIR \
#       train_dataloader.dataset.img_suffix=.png
_base_ = [
    'mmseg::_base_/models/fcn_unet_s5-d16.py',
    '../_base_/datasets/camvid.py',
    'mmseg::_base_/default_runtime.py',
]
norm_cfg = dict(type='BN', requires_grad=True)
crop_size = (176, 240)
model = dict(
    # UNet needs sides divisible by 16: pad validation images too.
    data_preprocessor=dict(size=crop_size, test_cfg=dict(size_divisor=16)),
    backbone=dict(base_channels=16, norm_cfg=norm_cfg),
    decode_head=dict(
        in_channels=16, channels=16, num_classes=11, norm_cfg=norm_cfg),
    auxiliary_head=dict(
        in_channels=32, channels=16, num_classes=11, norm_cfg=norm_cfg),
    test_cfg=dict(mode='whole'))
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.01))
param_scheduler = [
    dict(
        type='PolyLR',
        eta_min=1e-5,
        power=0.9,
        begin=0,
        end=500,
        by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=500, val_interval=500)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=500),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
randomness = dict(seed=0)
