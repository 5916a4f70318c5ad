"""What the generator's noise looks like, at every validation.

A generator that collapses to a constant colour cast (one value per channel)
still lowers its loss against a weak surrogate, and looks fine in the loss
curves. These statistics, at the protection budget and in grey levels, make
it visible while training: a cast has a spatial std well below its |mean|.
"""
import os.path as osp
from typing import Dict, Optional, Tuple

import numpy as np
import torch
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import Runner
from torch import Tensor

from mmunseg.registry import HOOKS
from ..models.budget import Budget
from ..models.unseg import UnSeg
from ..utils.atomic_files import write_image_atomic
from ..utils.model_wrappers import unwrap

CHANNELS = ('R', 'G', 'B')
REGIONS = ('object', 'background')
CAST_CHECKS = (None, 'warn', 'stop')


class NoiseCastError(RuntimeError):
    """The generator's noise is a constant colour cast."""


def noise_statistics(unit_noise: Tensor, delta: Tensor,
                     object_mask: Tensor) -> Dict[str, float]:
    """Per-region statistics of a batch of perturbations, in grey levels.

    Args:
        unit_noise (Tensor): The generator's noise in [-1, 1], resized to the
            images, (B, 3, H, W).
        delta (Tensor): The perturbation at the protection budget in [0, 1]
            units, (B, 3, H, W).
        object_mask (Tensor): Binary object mask, (B, 1, H, W).

    Returns:
        dict[str, float]: For each region and channel the spatial mean and
        std (averaged over images), ``saturated`` (share of unit values
        beyond +-0.99), ``energy_ratio`` (mean squared perturbation on
        objects over that on the background) and ``cast_fraction`` (share of
        (image, channel) pairs on objects whose spatial std is below
        |mean|).
    """
    delta = delta.double() * 255
    stats = {}
    energies = {}
    for region, mask in zip(REGIONS, (object_mask, 1 - object_mask)):
        mask = mask.double()
        area = mask.sum((2, 3)).clamp(min=1)
        mean = (delta * mask).sum((2, 3)) / area
        var = ((delta - mean[..., None, None])**2 * mask).sum((2, 3)) / area
        std = var.sqrt()
        present = mask.sum((1, 2, 3)) > 0
        for index, channel in enumerate(CHANNELS):
            if present.any():
                stats[f'{region}_mean_{channel}'] = float(mean[present,
                                                               index].mean())
                stats[f'{region}_std_{channel}'] = float(std[present,
                                                             index].mean())
        energies[region] = float(
            (delta**2 * mask).sum() / (mask.sum() * 3).clamp(min=1))
        if region == 'object' and present.any():
            stats['cast_fraction'] = float(
                (std[present] < mean[present].abs()).double().mean())
    stats['saturated'] = float((unit_noise.abs() > 0.99).double().mean())
    stats['energy_ratio'] = energies['object'] / max(energies['background'],
                                                     1e-12)
    return stats


def noise_panel(images: Tensor, delta: Tensor, object_mask: Tensor,
                eps: float) -> np.ndarray:
    """Rows of clean | perturbed | noise amplified to full range | mask.

    Args:
        images (Tensor): (B, 3, H, W) in [0, 1].
        delta (Tensor): (B, 3, H, W) perturbation in [0, 1] units.
        object_mask (Tensor): (B, 1, H, W) binary.
        eps (float): The largest budget, which maps to full range.

    Returns:
        np.ndarray: uint8 (B * H, 4 * W, 3) RGB panel.
    """
    amplified = 0.5 + delta / (2 * eps)
    columns = [
        images, (images + delta).clamp(0, 1),
        amplified.clamp(0, 1),
        object_mask.expand_as(images)
    ]
    rows = torch.cat(columns, dim=3)
    panel = torch.cat(list(rows), dim=1).permute(1, 2, 0)
    return (panel * 255).round().clamp(0, 255).byte().cpu().numpy()


@HOOKS.register_module()
class NoiseDiagnosticsHook(Hook):
    """Log the noise's statistics and write a noise panel at validation.

    On the first ``num_images`` validation images, after every validation:
    per region (object, background) and channel the spatial mean and std of
    the perturbation in grey levels at the protection ``budget``, the share
    of saturated unit values and the object/background energy ratio, logged
    as ``val/noise_*``; and a panel ``noise_panels/<step>.png`` in the work
    dir. ``cast_check`` acts when most object channels are a cast (spatial
    std below |mean|): ``'warn'`` logs a warning, ``'stop'`` raises
    :class:`NoiseCastError` (training is pointless from there).

    Args:
        budget (Budget | dict | str): Budgets of protection, a
            :class:`~mmunseg.models.budget.Budget`, ``dict(object=...,
            background=...)`` in [0, 1] units or a preset name (the paper:
            ``'paper'``, 8/255 and 2/255).
        num_images (int): Validation images the statistics use.
        cast_check (str, optional): None, ``'warn'`` or ``'stop'``.
        cast_fraction (float): Share of cast object channels that counts as
            a cast.
    """

    priority = 'ABOVE_NORMAL'  # before the logger prints the val metrics

    def __init__(self,
                 budget='paper',
                 num_images=8,
                 cast_check='warn',
                 cast_fraction=0.5):
        if cast_check not in CAST_CHECKS:
            raise ValueError(f'cast_check must be one of {CAST_CHECKS}, got '
                             f'{cast_check!r}')
        if num_images < 1:
            raise ValueError(f'num_images must be >= 1, got {num_images}')
        self.budget = Budget.of(budget)
        self.num_images = num_images
        self.cast_check = cast_check
        self.cast_fraction = cast_fraction
        self._batches = []
        self._seen = 0

    def before_val_epoch(self, runner: Runner) -> None:
        self._batches, self._seen = [], 0

    def after_val_iter(self,
                       runner: Runner,
                       batch_idx: int,
                       data_batch: Optional[dict] = None,
                       outputs: Optional[list] = None) -> None:
        if self._seen < self.num_images and data_batch is not None:
            self._batches.append(data_batch)
            self._seen += len(data_batch['inputs'])

    @torch.no_grad()
    def measure(self, model: UnSeg,
                data_batch: dict) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """Images, unit noise resized to them, perturbation at the budget
        and binary object mask of one batch, each (B, C, H, W)."""
        batch = model.prepare(data_batch, False, model.val_prompt, {'mask'})
        unit = torch.nn.functional.interpolate(
            model.noise(batch),
            batch.images.shape[-2:],
            mode='bilinear',
            align_corners=False)
        object_mask = batch.gt_masks.round()
        delta = self.budget.scale(
            unit, object_mask,
            getattr(unwrap(model.generator), 'dc_free', False))
        return batch.images, unit, delta, object_mask

    def after_val_epoch(self,
                        runner: Runner,
                        metrics: Optional[Dict[str, float]] = None) -> None:
        if not self._batches:
            return
        model = unwrap(runner.model)
        parts = [self.measure(model, batch) for batch in self._batches]
        images, unit, delta, mask = (
            torch.cat(tensors)[:self.num_images] for tensors in zip(*parts))
        stats = noise_statistics(unit, delta, mask)
        for key, value in stats.items():
            runner.message_hub.update_scalar(f'val/noise_{key}', value)
            if metrics is not None:
                metrics[f'noise_{key}'] = value
        # Iterations trained so far, read from the message hub (asking the
        # runner would build a train loop in a validation-only run).
        step = f'iter_{runner.message_hub.get_info("iter", -1) + 1}'
        if is_main_process():
            write_image_atomic(
                osp.join(runner.work_dir, 'noise_panels', f'{step}.png'),
                noise_panel(images, delta, mask, self.budget.largest))
        self.check_cast(stats)

    def check_cast(self, stats: Dict[str, float]) -> None:
        fraction = stats.get('cast_fraction', 0.)
        if self.cast_check is None or fraction < self.cast_fraction:
            return
        means = ', '.join(f'{c} {stats.get(f"object_mean_{c}", 0):+.1f}'
                          for c in CHANNELS)
        stds = ', '.join(f'{c} {stats.get(f"object_std_{c}", 0):.1f}'
                         for c in CHANNELS)
        message = (f'the generator writes a constant colour cast: on '
                   f'{fraction:.0%} of object channels the spatial std is '
                   f'below |mean| (mean {means}; std {stds} grey levels). A '
                   'cast is a photometric shift, not protection; try '
                   'dc_free=True or crafting augmentation')
        if self.cast_check == 'stop':
            raise NoiseCastError(message)
        print_log(message, logger='current', level=30)
