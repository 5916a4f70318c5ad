# Fine-tune the code book recipe (the demo's, 4-pixel gratings) on the
# target's own training images (a capability the paper lacks): CamVid's
# classes get their own codes (1 + class id, as tools/protect.py --prompt
# per-class gives them), refined against the UNet surrogate (loaded too),
# which now sees CamVid's class maps.
#   python tools/train.py THIS_CONFIG --cfg-options load_from=\
#       work_dirs/demo/unseg-codebook_gratings-p4_unet-c16_coco128-objects/iter_3000.pth
_base_ = [
    '../_base_/models/unseg_codebook_unet.py',
    '../_base_/datasets/camvid_objects.py',
    '../_base_/schedules/unseg_3000it.py'
]
generator_size = 512
model = dict(generator=dict(grating_periods=(4, )))
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
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = val_dataloader
train_cfg = dict(
    max_iters=1000, val_interval=500, surrogate_iters=50, generator_iters=25)
param_scheduler = dict(
    generator=[
        dict(type='MultiStepLR', by_epoch=False, milestones=[800], gamma=0.1)
    ],
    surrogate=[
        dict(type='MultiStepLR', by_epoch=False, milestones=[800], gamma=0.1)
    ])
