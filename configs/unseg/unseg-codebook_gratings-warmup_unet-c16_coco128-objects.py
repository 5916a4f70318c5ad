# The game's surrogate lever: at the budget, with the crafting augmentation,
# the surrogate never reads the codes (benchmarks/results/README.md,
# surrogate_learnability), so the game leaves the code book at its
# initialisation. Without the augmentation and at 8x the budget it reads
# them within 150 steps. Here both players start at 8x the budget, shrinking
# geometrically to the budget by iteration 1000, without the augmentation.
_base_ = ['./unseg-codebook_gratings_unet-c16_coco128-objects.py']
model = dict(augmentation=None)
custom_hooks = [
    dict(type='SafeResumeHook'),
    dict(type='NoiseDiagnosticsHook', cast_check='warn'),
    dict(type='BudgetWarmupHook', start_scale=8., warmup_iters=1000)
]
