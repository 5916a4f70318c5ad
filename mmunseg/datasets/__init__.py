from .folder_dataset import FolderMaskDataset
from .partially_protected import PartiallyProtectedDataset
from .semantic_objects import SemanticObjectsDataset
from .transforms import (AddUnlearnableNoise, LargeScaleJitter,
                         LoadImageAndClassMask, LoadImageAndMask,
                         PackUnSegInputs, RandomHorizontalFlip, ResizePad)

__all__ = [
    'FolderMaskDataset', 'PartiallyProtectedDataset', 'SemanticObjectsDataset',
    'LoadImageAndClassMask', 'LoadImageAndMask', 'RandomHorizontalFlip',
    'LargeScaleJitter', 'ResizePad', 'PackUnSegInputs', 'AddUnlearnableNoise'
]
