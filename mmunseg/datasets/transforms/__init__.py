from .formatting import PackUnSegInputs
from .geometric import LargeScaleJitter, RandomHorizontalFlip, ResizePad
from .loading import LoadImageAndClassMask, LoadImageAndMask, read_label_map
from .noise import AddUnlearnableNoise

__all__ = [
    'LoadImageAndClassMask', 'LoadImageAndMask', 'read_label_map',
    'RandomHorizontalFlip', 'LargeScaleJitter', 'ResizePad', 'PackUnSegInputs',
    'AddUnlearnableNoise'
]
