from .folder_dataset import FolderMaskDataset
from .transforms import (LargeScaleJitter, LoadImageAndMask, PackUnSegInputs,
                         RandomHorizontalFlip, ResizePad)

__all__ = [
    'FolderMaskDataset', 'LoadImageAndMask', 'RandomHorizontalFlip',
    'LargeScaleJitter', 'ResizePad', 'PackUnSegInputs'
]
