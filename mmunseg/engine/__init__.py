from .hooks import SafeResumeHook, ValMetricHistoryHook
from .loops import (BilevelEpochBasedTrainLoop, BilevelIterBasedTrainLoop,
                    BilevelSchedule)
from .noise_diagnostics import (NoiseCastError, NoiseDiagnosticsHook,
                                noise_statistics)
from .optimizers import MultiOptimWrapperConstructor

__all__ = [
    'BilevelEpochBasedTrainLoop', 'BilevelIterBasedTrainLoop',
    'BilevelSchedule', 'MultiOptimWrapperConstructor', 'NoiseCastError',
    'NoiseDiagnosticsHook', 'SafeResumeHook', 'ValMetricHistoryHook',
    'noise_statistics'
]
