"""The one path from prompted images to a generator's unit-range noise."""
from typing import Callable, Dict, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from ..prompts import map_prompts


def generate_noise(network: Callable[..., Tensor],
                   images: Tensor,
                   prompts: Dict,
                   codes: Optional[Tensor] = None,
                   object_masks: Optional[Tensor] = None,
                   whole_image: Optional[Tensor] = None) -> Tensor:
    """Unit-range noise of a batch of prompted images.

    Training, validation, the diagnostics and protection all make noise
    here. Without codes it is one call of the network. With codes, each
    prompt's code paints its object; for the prompts of ``whole_image`` the
    rest of the image gets the background code 0, as in training: one call
    of the network sees the batch and, appended, those images with code 0,
    and the two are joined along ``object_masks``.

    Args:
        network (Callable): The generator (a
            :class:`~mmunseg.models.generators.NoiseGenerator`, maybe
            wrapped) or any function of ``(images, **prompts, codes=...)``
            that runs it.
        images (Tensor): (B, 3, S, S) in [0, 1].
        prompts (dict): ``points``, ``boxes`` and ``masks`` keyword
            arguments of the generator (any may be missing or None).
        codes (Tensor, optional): (B, ) int64 object codes, for a generator
            with codes; None for one without.
        object_masks (Tensor, optional): Object masks in [0, 1], (B, 1, H,
            W) at any size, where the object's code applies; None paints
            the whole image with the object's code.
        whole_image (Tensor, optional): (B, ) bool, the prompts whose
            background gets code 0 (all when None); the others' noise counts
            only inside their mask (per-class prompts).

    Returns:
        Tensor: Noise in [-1, 1], (B, 3, S/4, S/4).
    """
    if codes is None:
        return network(images, **prompts)
    if object_masks is None:
        return network(images, **prompts, codes=codes)
    if whole_image is None:
        index = torch.arange(len(images), device=images.device)
    else:
        index = torch.nonzero(whole_image)[:, 0]
    noise = network(
        torch.cat([images, images[index]]),
        **map_prompts(prompts, lambda value: torch.cat([value, value[index]])),
        codes=torch.cat([codes, torch.zeros_like(codes[index])]))
    noise, background = noise[:len(images)], noise[len(images):]
    mask = F.interpolate(
        object_masks[index].to(noise.dtype),
        noise.shape[-2:],
        mode='bilinear',
        align_corners=False).round()
    return noise.index_copy(0, index,
                            mask * noise[index] + (1 - mask) * background)
