from .point_sampled_mask_loss import (PointSampledMaskLoss, point_sample,
                                      uncertain_point_coords)

__all__ = ['PointSampledMaskLoss', 'point_sample', 'uncertain_point_coords']
