"""Baseline noise methods for ``tools/protect.py``, on the interface of
:class:`~mmunseg.protect.NoiseMethod` (see
``../shared/docs/baselines_and_defenses.md`` §2)."""
from .autoregressive import AutoregressiveNoise
from .class_wise import ClassWiseNoise
from .convolution import ConvolutionNoise
from .error_minimizing import ErrorMinimizingNoise
from .synthetic import SyntheticNoise

__all__ = [
    'ErrorMinimizingNoise', 'SyntheticNoise', 'AutoregressiveNoise',
    'ConvolutionNoise', 'ClassWiseNoise'
]
