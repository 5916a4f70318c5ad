from typing import Optional, Tuple

import torch
from segment_anything.modeling import ImageEncoderViT, PromptEncoder
from torch import Tensor


def encode_with_early_feature(image_encoder: ImageEncoderViT, images: Tensor,
                              early_index: int) -> Tuple[Tensor, Tensor]:
    """Run SAM's ViT and also return one intermediate block's output.

    Args:
        image_encoder (ImageEncoderViT): The encoder.
        images (Tensor): Normalised images, (B, 3, H, W).
        early_index (int): Index of the block whose output is returned.

    Returns:
        tuple[Tensor, Tensor]: The image embedding (B, C_out, H/16, W/16) and
        the block output (B, C_vit, H/16, W/16).
    """
    x = image_encoder.patch_embed(images)
    if image_encoder.pos_embed is not None:
        x = x + image_encoder.pos_embed
    early = None
    for index, block in enumerate(image_encoder.blocks):
        x = block(x)
        if index == early_index:
            early = x
    embedding = image_encoder.neck(x.permute(0, 3, 1, 2))
    return embedding, early.permute(0, 3, 1, 2)


def normalize(images: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """ImageNet normalisation of [0, 1] images, (B, 3, H, W)."""
    return (images - mean) / std


IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def embed_prompts(prompt_encoder: PromptEncoder,
                  batch: int,
                  points: Optional[Tuple[Tensor, Tensor]] = None,
                  boxes: Optional[Tensor] = None,
                  masks: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """SAM prompt embeddings broadcast to ``batch`` images.

    SAM's prompt encoder returns a batch of one when no prompt is given; the
    decoders here always pair one prompt set with one image.

    Returns:
        tuple[Tensor, Tensor]: Sparse (B, N, C) and dense (B, C, h, w).
    """
    sparse, dense = prompt_encoder(points, boxes, masks)
    return (sparse.expand(batch, -1, -1), dense.expand(batch, -1, -1, -1))
