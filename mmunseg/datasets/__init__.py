from .folder_dataset import FolderMaskDataset
from .partially_protected import PartiallyProtectedDataset
from .transforms import (AddUnlearnableNoise, GenerateUnlearnableNoise,
                         LargeScaleJitter, LoadImageAndMask, PackUnSegInputs,
                         RandomHorizontalFlip, ResizePad)

__all__ = [
    'FolderMaskDataset', 'PartiallyProtectedDataset', 'LoadImageAndMask',
    'RandomHorizontalFlip', 'LargeScaleJitter', 'ResizePad', 'PackUnSegInputs',
    'AddUnlearnableNoise', 'GenerateUnlearnableNoise'
]
