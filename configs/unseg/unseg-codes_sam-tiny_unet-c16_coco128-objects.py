# The CPU recipe that protects (the demo's default): a tiny SAM-shaped
# generator painting object codes, trained from random initialisation on
# coco128_objects against a small UNet surrogate, at the protection budget,
# with victim-like augmentation and DC-free noise. About 25 minutes on
# 2 cores; applied zero-shot with class codes (tools/protect.py
# --prompt per-class) to semantic datasets, mask-only to binary ones.
_base_ = [
    '../_base_/models/unseg_sam_tiny-codes_unet.py',
    '../_base_/datasets/coco128_objects.py',
    '../_base_/schedules/unseg_27e.py', '../_base_/default_runtime.py'
]
# Codes are learnt per object, small ones included; a few pixels of an
# object still carry its code.
train_dataloader = dict(
    batch_size=8,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(min_mask_ratio=0.01))
val_dataloader = dict(dataset=dict(min_mask_ratio=0.01))
test_dataloader = val_dataloader
optim_wrapper = dict(
    generator=dict(optimizer=dict(lr=1e-3)),
    surrogate=dict(optimizer=dict(lr=1e-3)))
# Short alternations: 20 surrogate, then 20 generator iterations.
train_cfg = dict(
    _delete_=True,
    type='BilevelIterBasedTrainLoop',
    max_iters=3000,
    surrogate_iters=20,
    generator_iters=20,
    val_interval=500)
param_scheduler = dict(
    generator=[
        dict(type='MultiStepLR', by_epoch=False, milestones=[2400], gamma=0.1)
    ],
    surrogate=[
        dict(type='MultiStepLR', by_epoch=False, milestones=[2400], gamma=0.1)
    ])
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(by_epoch=False, interval=500, max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
custom_hooks = [
    dict(type='SafeResumeHook'),
    dict(type='NoiseDiagnosticsHook', cast_check='warn')
]
