# A Mask R-CNN victim that trains from scratch on a CPU: ResNet-18 (no
# pretrained weights) with a 128-channel FPN on NWPU VHR-10 at 320x320,
# batch 4, AdamW 1e-3 for 500 iterations, validated (COCO box and mask AP) at
# the end. Compare clean and protected training data with
#   tools/eval_protection.py THIS_CONFIG --protected-root PROTECTED_DIR
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    '../_base_/datasets/nwpu_vhr10_instance.py',
    '../_base_/datasets/nwpu_vhr10_320_pipelines.py',
    'mmdet::_base_/default_runtime.py',
]
num_classes = 10
channels = 128
model = dict(
    backbone=dict(
        depth=18,
        frozen_stages=-1,
        # From scratch: BN statistics must be learnt, not frozen.
        norm_eval=False,
        init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=channels),
    rpn_head=dict(
        in_channels=channels,
        feat_channels=channels,
        # Objects are 10-60 px at this size: anchors from 16 px.
        anchor_generator=dict(scales=[4])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=channels),
        bbox_head=dict(
            in_channels=channels, fc_out_channels=512,
            num_classes=num_classes),
        mask_roi_extractor=dict(out_channels=channels),
        mask_head=dict(
            in_channels=channels,
            conv_out_channels=channels,
            num_classes=num_classes)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=1000, max_per_img=500),
        rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=300)))

image_size = {{_base_.nwpu_320_image_size}}
train_pipeline = {{_base_.nwpu_320_train_pipeline}}
test_pipeline = {{_base_.nwpu_320_test_pipeline}}
train_dataloader = dict(
    batch_size=4, num_workers=1, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(num_workers=1, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

max_iters = 500
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=50),
    dict(
        type='PolyLR',
        eta_min=1e-5,
        power=0.9,
        begin=0,
        end=max_iters,
        by_epoch=False),
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05))
default_hooks = dict(
    logger=dict(interval=50, log_metric_by_epoch=False),
    checkpoint=dict(by_epoch=False, interval=max_iters, max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
# Checkpoints that the safe loader reads (and --resume restores).
custom_hooks = [dict(type='mmunseg.SafeResumeHook')]
