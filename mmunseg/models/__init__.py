from .budget import add_noise, budget_map, scale_noise
from .data_preprocessor import UnSegDataPreprocessor
from .generators import SAMNoiseGenerator, UnSegNoiseHead
from .losses import PointSampledMaskLoss
from .prompts import PromptSampler
from .surrogates import SAMSurrogate
from .unseg import UnSeg

__all__ = [
    'add_noise', 'budget_map', 'scale_noise', 'UnSegDataPreprocessor',
    'SAMNoiseGenerator', 'UnSegNoiseHead', 'PointSampledMaskLoss',
    'PromptSampler', 'SAMSurrogate', 'UnSeg'
]
