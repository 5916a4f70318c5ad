from .hooks import SafeResumeHook, ValMetricHistoryHook
from .loops import (BilevelEpochBasedTrainLoop, BilevelIterBasedTrainLoop,
                    BilevelSchedule)
from .optimizers import MultiOptimWrapperConstructor

__all__ = [
    'BilevelEpochBasedTrainLoop', 'BilevelIterBasedTrainLoop',
    'BilevelSchedule', 'MultiOptimWrapperConstructor', 'SafeResumeHook',
    'ValMetricHistoryHook'
]
