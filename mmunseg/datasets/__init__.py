from .folder_dataset import FolderMaskDataset
from .transforms import (AddUnlearnableNoise, GenerateUnlearnableNoise,
                         LargeScaleJitter, LoadImageAndMask, PackUnSegInputs,
                         RandomHorizontalFlip, ResizePad)

__all__ = [
    'FolderMaskDataset', 'LoadImageAndMask', 'RandomHorizontalFlip',
    'LargeScaleJitter', 'ResizePad', 'PackUnSegInputs', 'AddUnlearnableNoise',
    'GenerateUnlearnableNoise'
]
