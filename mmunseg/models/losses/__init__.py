from .pixel_cross_entropy_loss import PixelCrossEntropyLoss
from .point_sampled_mask_loss import (PointSampledMaskLoss, point_sample,
                                      uncertain_point_coords)
from .weighted_cross_entropy_loss import WeightedCrossEntropyLoss

__all__ = [
    'PixelCrossEntropyLoss', 'PointSampledMaskLoss', 'point_sample',
    'uncertain_point_coords', 'WeightedCrossEntropyLoss'
]
