# A tiny SAM-shaped UnSeg trained from random initialisation on the 126
# COCO photos of ../shared/data/coco128_objects: the CPU recipe (about 10
# minutes on 2 cores). Same schedule shape as the paper (1 surrogate epoch,
# then 3 generator epochs), two cycles.
_base_ = [
    '../_base_/models/unseg_sam_tiny.py',
    '../_base_/datasets/coco128_objects.py',
    '../_base_/schedules/unseg_27e.py', '../_base_/default_runtime.py'
]
param_scheduler = dict(
    generator=[
        dict(type='MultiStepLR', by_epoch=True, milestones=[6], gamma=0.1)
    ],
    surrogate=[
        dict(type='MultiStepLR', by_epoch=True, milestones=[6], gamma=0.1)
    ])
train_cfg = dict(max_epochs=8, val_interval=4)
default_hooks = dict(
    logger=dict(interval=20), checkpoint=dict(interval=4, max_keep_ckpts=2))
