"""Baseline noise methods for ``tools/protect.py``, on the interface of
:class:`~mmunseg.protect.NoiseMethod` (see
``../shared/docs/baselines_and_defenses.md`` §2)."""
from mmunseg.registry import NOISE_METHODS
from .autoregressive import AutoregressiveNoise
from .class_wise import ClassWiseNoise
from .convolution import ConvolutionNoise
from .error_minimizing import ErrorMinimizingNoise
from .synthetic import SyntheticNoise

# Declared here because error_minimizing.py is being rewritten on the
# em-batched branch; at that merge these two lines move into the class
# (its decorator takes name=['ErrorMinimizingNoise', 'em']).
NOISE_METHODS.register_module(name='em', module=ErrorMinimizingNoise)
ErrorMinimizingNoise.run_values = ('seed', 'device', 'eps_object',
                                   'eps_background', 'num_classes')

__all__ = [
    'ErrorMinimizingNoise', 'SyntheticNoise', 'AutoregressiveNoise',
    'ConvolutionNoise', 'ClassWiseNoise'
]
