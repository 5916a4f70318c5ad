# RSPrompter-anchor shrunk to train from scratch on a CPU: the tiny SAM-shaped
# network (96-dim, 4 blocks, random weights, nothing to download) at
# 320x320, batch 4, AdamW 1e-3 for 500 iterations on NWPU VHR-10 (the recipe
# of the CPU Mask R-CNN victim), validated at the end. A random encoder has
# nothing worth freezing, so it trains too. Train from the repository root:
#   PYTHONPATH=. python tools/train.py THIS_CONFIG
_base_ = [
    './rsprompter-anchor_sam-vit-b_1xb2-300e_nwpu-1024.py',
    '../../../configs/_base_/datasets/nwpu_vhr10_320_pipelines.py'
]

sam_arch = 'tiny'
img_size = 320
vit_channels = 96
num_block_outputs = 2  # blocks 1 and 3 of 4
channels = 64  # the tiny SAM's prompt width

model = dict(
    data_preprocessor=dict(pad_size_divisor=img_size),
    backbone=dict(
        arch=sam_arch, img_size=img_size, frozen=False, checkpoint=None),
    neck=[
        dict(
            type='FeatureAggregator',
            in_channels=vit_channels,
            num_inputs=num_block_outputs,
            hidden_channels=32,
            out_channels=channels),
        dict(
            type='SimpleFeaturePyramid',
            in_channels=channels,
            out_channels=channels,
            num_outs=5),
    ],
    rpn_head=dict(
        in_channels=channels,
        feat_channels=channels,
        # Objects are 10-60 px at this size: anchors from 16 px.
        anchor_generator=dict(scales=[4])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=channels),
        bbox_head=dict(in_channels=channels, fc_out_channels=256),
        mask_roi_extractor=dict(out_channels=channels),
        mask_head=dict(
            arch=sam_arch,
            img_size=img_size,
            in_channels=channels,
            fc_channels=256,
            num_prompts=4,
            checkpoint=None)),
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
    _delete_=True,
    type='IterBasedTrainLoop',
    max_iters=max_iters,
    val_interval=max_iters)
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
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05))
default_hooks = dict(
    logger=dict(interval=50, log_metric_by_epoch=False),
    checkpoint=dict(
        by_epoch=False, interval=max_iters, max_keep_ckpts=1, save_best=None))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
