# The CPU victims' recipe that learns: AdamW 1e-3 with poly decay for 1200
# iterations, validated at the end (about 25 minutes on 2 cores for the
# UNet victims).
_base_ = ['./victim_adamw_500it.py']
param_scheduler = [
    dict(
        type='PolyLR',
        eta_min=1e-5,
        power=0.9,
        begin=0,
        end=1200,
        by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=1200, val_interval=1200)
default_hooks = dict(checkpoint=dict(interval=1200))
