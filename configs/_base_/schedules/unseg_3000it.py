# The CPU recipes' schedule: 3000 iterations in short alternations (20
# surrogate, then 20 generator iterations), Adam 1e-3 for each player, x0.1
# at 2400, validated (with the noise diagnostics) every 500 iterations.
_base_ = ['./unseg_27e.py', '../default_runtime.py']
optim_wrapper = dict(
    generator=dict(optimizer=dict(lr=1e-3)),
    surrogate=dict(optimizer=dict(lr=1e-3)))
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
