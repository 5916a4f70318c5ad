from .builder import (SAM_ARCHS, build_image_encoder, build_prompt_encoder,
                      build_two_way_transformer, resolve_arch)
from .encoder import encode_with_early_feature

__all__ = [
    'SAM_ARCHS', 'build_image_encoder', 'build_prompt_encoder',
    'build_two_way_transformer', 'resolve_arch', 'encode_with_early_feature'
]
