# The paper's schedule: 27 epochs, 1 surrogate epoch then 3 generator epochs
# (surrogate epochs 0, 4, ..., 24), Adam 1e-4 for each player, x0.1 at 20.
# Each player has its own optimizer, stepped only in its own phase.
optim_wrapper = dict(
    constructor='MultiOptimWrapperConstructor',
    generator=dict(
        type='OptimWrapper',
        optimizer=dict(
            type='Adam', lr=1e-4, betas=(0.9, 0.999), eps=1e-8,
            weight_decay=0)),
    surrogate=dict(
        type='OptimWrapper',
        optimizer=dict(
            type='Adam', lr=1e-4, betas=(0.9, 0.999), eps=1e-8,
            weight_decay=0)))
param_scheduler = dict(
    generator=[
        dict(type='MultiStepLR', by_epoch=True, milestones=[20], gamma=0.1)
    ],
    surrogate=[
        dict(type='MultiStepLR', by_epoch=True, milestones=[20], gamma=0.1)
    ])
train_cfg = dict(
    type='BilevelEpochBasedTrainLoop',
    max_epochs=27,
    surrogate_epochs=1,
    generator_epochs=3,
    val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
# 8 GPUs x 4 images, as in the paper.
auto_scale_lr = dict(enable=False, base_batch_size=32)
