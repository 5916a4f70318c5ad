from .formatting import PackUnSegInputs
from .geometric import LargeScaleJitter, RandomHorizontalFlip, ResizePad
from .loading import LoadImageAndMask

__all__ = [
    'LoadImageAndMask', 'RandomHorizontalFlip', 'LargeScaleJitter',
    'ResizePad', 'PackUnSegInputs'
]
