from .budget_warmup import BudgetWarmupHook, warmup_scale
from .hooks import SafeResumeHook, ValMetricHistoryHook
from .loops import (BilevelEpochBasedTrainLoop, BilevelIterBasedTrainLoop,
                    BilevelSchedule)
from .noise_diagnostics import (NoiseCastError, NoiseDiagnosticsHook,
                                noise_statistics)
from .optimizers import MultiOptimWrapperConstructor

__all__ = [
    'BilevelEpochBasedTrainLoop', 'BilevelIterBasedTrainLoop',
    'BilevelSchedule', 'BudgetWarmupHook', 'MultiOptimWrapperConstructor',
    'NoiseCastError', 'NoiseDiagnosticsHook', 'SafeResumeHook',
    'ValMetricHistoryHook', 'noise_statistics', 'warmup_scale'
]
