"""RSPrompter-anchor on MMDet: SAM prompted by a Mask R-CNN-style detector.

Importing the package registers its modules into MMDet's ``MODELS``; configs
do it with ``custom_imports=dict(imports=['projects.rsprompter.rsprompter'])``.
"""
from .feature_aggregator import FeatureAggregator
from .prompt_roi_head import RSPrompterRoIHead
from .rsprompter_anchor import RSPrompterAnchor
from .sam_image_encoder import SAMImageEncoder
from .sam_prompt_mask_head import SAMPromptMaskHead
from .simple_feature_pyramid import SimpleFeaturePyramid

__all__ = [
    'FeatureAggregator', 'RSPrompterAnchor', 'RSPrompterRoIHead',
    'SAMImageEncoder', 'SAMPromptMaskHead', 'SimpleFeaturePyramid'
]
