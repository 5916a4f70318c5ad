from .budget import (BUDGET_PRESETS, Budget, add_noise, budget_map,
                     perturb_image, remove_dc, scale_noise)
from .crafting_augmentation import CraftingAugmentation
from .data_preprocessor import UnSegDataPreprocessor
from .generators import SAMNoiseGenerator, UnSegNoiseHead
from .losses import PixelCrossEntropyLoss, PointSampledMaskLoss
from .prompts import PromptSampler
from .surrogates import MMSegSurrogate, SAMSurrogate
from .unseg import UnSeg

__all__ = [
    'BUDGET_PRESETS', 'Budget', 'add_noise', 'budget_map', 'perturb_image',
    'remove_dc', 'scale_noise', 'CraftingAugmentation',
    'UnSegDataPreprocessor', 'SAMNoiseGenerator', 'UnSegNoiseHead',
    'PixelCrossEntropyLoss', 'PointSampledMaskLoss', 'PromptSampler',
    'MMSegSurrogate', 'SAMSurrogate', 'UnSeg'
]
