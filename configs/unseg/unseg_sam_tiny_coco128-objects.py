# A tiny SAM-shaped UnSeg trained from random initialisation on the COCO
# photos of ../shared/data/coco128_objects: the CPU recipe (about 10 minutes
# on 2 cores). The paper's schedule shape (1 surrogate epoch, then 3
# generator epochs), 18 cycles, the LR drop at 3/4 as in the paper.
_base_ = [
    '../_base_/models/unseg_sam_tiny.py',
    '../_base_/datasets/coco128_objects.py',
    '../_base_/schedules/unseg_27e.py', '../_base_/default_runtime.py'
]
# A from-scratch surrogate this small collapses to "background" on small
# objects: keep objects covering at least 3% of the image (245 of 524).
train_dataloader = dict(dataset=dict(min_mask_ratio=0.03))
val_dataloader = dict(dataset=dict(min_mask_ratio=0.03))
test_dataloader = val_dataloader
# At this budget the surrogate learns to follow mask prompts long before box
# prompts, so validation prompts with masks.
model = dict(val_prompt=dict(prompt_types=('mask', )))
optim_wrapper = dict(
    generator=dict(optimizer=dict(lr=1e-3)),
    surrogate=dict(optimizer=dict(lr=1e-3)))
param_scheduler = dict(
    generator=[
        dict(type='MultiStepLR', by_epoch=True, milestones=[56], gamma=0.1)
    ],
    surrogate=[
        dict(type='MultiStepLR', by_epoch=True, milestones=[56], gamma=0.1)
    ])
train_cfg = dict(max_epochs=72, val_interval=8)
default_hooks = dict(
    logger=dict(interval=20), checkpoint=dict(interval=8, max_keep_ckpts=2))
