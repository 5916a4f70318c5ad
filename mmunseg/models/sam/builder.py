"""Build the parts of SAM (Segment Anything) by size.

The modules come from ``segment_anything``.

Sizes follow the official releases (``vit_b``, ``vit_l``, ``vit_h``) plus
``tiny``, a SAM-shaped network small enough to train on a CPU in minutes. A
size may also be given as a dict that overrides any field of a named size,
for example ``dict(base='tiny', embed_dim=128)``.
"""
import copy
from functools import partial
from typing import Union

import torch.nn as nn
from segment_anything.modeling import (ImageEncoderViT, PromptEncoder,
                                       TwoWayTransformer)

SAM_ARCHS = {
    'vit_b':
    dict(
        embed_dim=768,
        depth=12,
        num_heads=12,
        global_attn_indexes=(2, 5, 8, 11),
        window_size=14,
        prompt_embed_dim=256,
        decoder_mlp_dim=2048,
        decoder_num_heads=8,
        mask_in_chans=16),
    'vit_l':
    dict(
        embed_dim=1024,
        depth=24,
        num_heads=16,
        global_attn_indexes=(5, 11, 17, 23),
        window_size=14,
        prompt_embed_dim=256,
        decoder_mlp_dim=2048,
        decoder_num_heads=8,
        mask_in_chans=16),
    'vit_h':
    dict(
        embed_dim=1280,
        depth=32,
        num_heads=16,
        global_attn_indexes=(7, 15, 23, 31),
        window_size=14,
        prompt_embed_dim=256,
        decoder_mlp_dim=2048,
        decoder_num_heads=8,
        mask_in_chans=16),
    # Same topology as SAM (windowed + global blocks, rel-pos, neck, two-way
    # decoder), a few hundredths of its cost.
    'tiny':
    dict(
        embed_dim=96,
        depth=4,
        num_heads=3,
        global_attn_indexes=(1, 3),
        window_size=4,
        prompt_embed_dim=64,
        decoder_mlp_dim=256,
        decoder_num_heads=4,
        mask_in_chans=16),
}

PATCH_SIZE = 16


def resolve_arch(arch: Union[str, dict]) -> dict:
    """Return the full architecture dict of a size name or override dict.

    Args:
        arch (str | dict): A key of :data:`SAM_ARCHS`, or a dict with an
            optional ``base`` key naming one and fields to override.

    Returns:
        dict: Every field of :data:`SAM_ARCHS` entries.
    """
    if isinstance(arch, str):
        if arch not in SAM_ARCHS:
            raise ValueError(f'unknown SAM size {arch!r}; '
                             f'expected one of {sorted(SAM_ARCHS)} or a dict')
        return copy.deepcopy(SAM_ARCHS[arch])
    arch = dict(arch)
    resolved = resolve_arch(arch.pop('base', 'vit_b'))
    unknown = set(arch) - set(resolved)
    if unknown:
        raise ValueError(f'unknown SAM architecture fields {sorted(unknown)}')
    resolved.update(arch)
    return resolved


def build_image_encoder(arch: dict, img_size: int) -> ImageEncoderViT:
    """SAM's ViT image encoder at ``img_size`` (a multiple of 16).

    Returns:
        ImageEncoderViT: Maps (B, 3, img_size, img_size) normalised images to
        (B, prompt_embed_dim, img_size/16, img_size/16) embeddings.
    """
    if img_size % PATCH_SIZE:
        raise ValueError(f'img_size must be a multiple of {PATCH_SIZE}, '
                         f'got {img_size}')
    return ImageEncoderViT(
        depth=arch['depth'],
        embed_dim=arch['embed_dim'],
        img_size=img_size,
        mlp_ratio=4,
        norm_layer=partial(nn.LayerNorm, eps=1e-6),
        num_heads=arch['num_heads'],
        patch_size=PATCH_SIZE,
        qkv_bias=True,
        use_rel_pos=True,
        global_attn_indexes=tuple(arch['global_attn_indexes']),
        window_size=arch['window_size'],
        out_chans=arch['prompt_embed_dim'])


def build_prompt_encoder(arch: dict, img_size: int) -> PromptEncoder:
    """SAM's prompt encoder for an ``img_size`` input frame."""
    embedding_size = img_size // PATCH_SIZE
    return PromptEncoder(
        embed_dim=arch['prompt_embed_dim'],
        image_embedding_size=(embedding_size, embedding_size),
        input_image_size=(img_size, img_size),
        mask_in_chans=arch['mask_in_chans'])


def build_two_way_transformer(arch: dict) -> TwoWayTransformer:
    """SAM's two-way transformer of the mask decoder."""
    return TwoWayTransformer(
        depth=2,
        embedding_dim=arch['prompt_embed_dim'],
        mlp_dim=arch['decoder_mlp_dim'],
        num_heads=arch['decoder_num_heads'])
