from .formatting import PackUnSegInputs
from .geometric import LargeScaleJitter, RandomHorizontalFlip, ResizePad
from .loading import LoadImageAndMask
from .noise import AddUnlearnableNoise, GenerateUnlearnableNoise

__all__ = [
    'LoadImageAndMask', 'RandomHorizontalFlip', 'LargeScaleJitter',
    'ResizePad', 'PackUnSegInputs', 'AddUnlearnableNoise',
    'GenerateUnlearnableNoise'
]
