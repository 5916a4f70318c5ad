# Fine-tune the code generator on the target's own training images (a
# capability the paper lacks): CamVid's classes get their own codes
# (1 + class id, as tools/protect.py --prompt per-class gives them), learnt
# against the UNet surrogate (loaded too), which now sees the class maps.
#   python tools/train.py THIS_CONFIG \
#       --cfg-options load_from=work_dirs/<universal run>/iter_3000.pth
_base_ = [
    '../_base_/models/unseg_sam_tiny-codes_unet.py',
    '../_base_/datasets/camvid_objects.py',
    '../_base_/schedules/unseg_3000it.py'
]
train_cfg = dict(max_iters=1000, val_interval=500)
param_scheduler = dict(
    generator=[
        dict(type='MultiStepLR', by_epoch=False, milestones=[800], gamma=0.1)
    ],
    surrogate=[
        dict(type='MultiStepLR', by_epoch=False, milestones=[800], gamma=0.1)
    ])
