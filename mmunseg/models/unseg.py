"""UnSeg: the bilevel min-min game of a noise generator and a surrogate."""
from contextlib import contextmanager
from typing import (Callable, Dict, Iterator, List, NamedTuple, Optional,
                    Sequence, Set)

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper, OptimWrapperDict
from torch import Tensor

from mmunseg.registry import MODELS
from mmunseg.utils.model_wrappers import unwrap
from .budget import Budget
from .generators.generate import generate_noise
from .losses import PointSampledMaskLoss
from .prompts import PromptSampler

PHASES = ('surrogate', 'generator')


@contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Temporarily stop gradients to a module's parameters."""
    params = [p for p in module.parameters() if p.requires_grad]
    for param in params:
        param.requires_grad_(False)
    try:
        yield
    finally:
        for param in params:
            param.requires_grad_(True)


def class_iou(pred: Tensor, masks: Tensor) -> Tensor:
    """Per-sample IoU of a bool prediction with ``masks > 0.5``, (B,)."""
    gt = masks > 0.5
    inter = (pred & gt).flatten(1).sum(1).float()
    union = (pred | gt).flatten(1).sum(1).float()
    return torch.where(union > 0, inter / union.clamp(min=1),
                       torch.ones_like(union))


def mask_iou(logits: Tensor, masks: Tensor) -> Tensor:
    """Per-sample IoU of ``logits > 0`` with ``masks > 0.5``, (B,)."""
    if logits.shape[-2:] != masks.shape[-2:]:
        logits = F.interpolate(
            logits, masks.shape[-2:], mode='bilinear', align_corners=False)
    return class_iou(logits > 0, masks)


class Batch(NamedTuple):
    """A batch prepared for both players (:meth:`UnSeg.prepare`).

    Attributes:
        images (Tensor): The generator's view, (B, 3, S, S) in [0, 1].
        gt_masks (Tensor): Soft object masks, (B, 1, S, S) in [0, 1].
        small_images (Tensor): The surrogate's view, (B, 3, s, s).
        small_masks (Tensor): Its masks, (B, 1, s, s).
        prompts (dict): The generator's prompts (``points``, ``boxes``,
            ``masks``).
        codes (Tensor, optional): (B, ) object codes; None without codes.
        samples (list): The data samples.
    """
    images: Tensor
    gt_masks: Tensor
    small_images: Tensor
    small_masks: Tensor
    prompts: Dict
    codes: Optional[Tensor]
    samples: List


@MODELS.register_module()
class UnSeg(BaseModel):
    """Bilevel min-min training of the UnSeg noise generator.

    Two players share one batch. In the ``surrogate`` phase the surrogate
    learns to segment images perturbed by the (fixed) generator; in the
    ``generator`` phase the noise head learns noise that minimises the
    (fixed) surrogate's loss, against an all-ones target under label
    modification. Both minimise: error-minimising, unlearnable noise. The
    phase is set by the training loop (:mod:`mmunseg.engine.loops`);
    :meth:`train_step` prepares the batch once (:meth:`prepare`) and
    dispatches to :meth:`train_surrogate` or :meth:`train_generator`.

    With a generator that has object codes (``num_codes`` > 0), every
    training object gets a random code in ``1..num_codes`` and the
    background code 0; the generator paints the object with its code's noise
    and the rest with the background's, and the surrogate (``1 + num_codes``
    outputs) learns the code map. As the codes are random, only the noise
    tells them apart: the generator learns one easily learnt texture family
    per code, which protection gives to each class of a semantic dataset.

    Args:
        generator (dict): Config of the noise generator.
        surrogate (dict): Config of the surrogate.
        loss (dict): Config of the loss, shared by both players (a mask loss,
            or a class loss such as ``PixelCrossEntropyLoss`` with codes).
        train_budget (Budget | dict | str): L-inf budgets of training, a
            :class:`Budget`, ``dict(object=..., background=...)`` in [0, 1]
            units or a preset name (paper: ``'train'``, 1/255 and 0.25/255;
            they are scaled up at protection time, epsilon generalisation).
        val_budget (Budget | dict | str, optional): Budgets of validation;
            defaults to ``train_budget``.
        label_modification (bool): The generator's target is the object
            everywhere (paper: an all-ones mask; with codes, the object's
            code everywhere) rather than the true mask (code map).
        augmentation (dict, optional): Config of a
            :class:`CraftingAugmentation` applied to the perturbed surrogate
            input and its target in both phases. None in the paper.
        generator_prompt (dict): :class:`PromptSampler` arguments of the
            generator (a random combination of box, points and mask).
        surrogate_prompt (dict): Those of the surrogate (one type).
        val_prompt (dict): Prompts of validation, for both networks (the
            paper: boxes).
        data_preprocessor (dict): Config of the data preprocessor.
        init_cfg (dict, optional): MMEngine initialisation config.
    """

    def __init__(self,
                 generator,
                 surrogate,
                 loss=dict(type='PointSampledMaskLoss'),
                 train_budget=dict(object=1 / 255, background=0.25 / 255),
                 val_budget=None,
                 label_modification=True,
                 augmentation=None,
                 generator_prompt=dict(combine=True),
                 surrogate_prompt=dict(combine=False),
                 val_prompt=dict(prompt_types=('box', ), boundary_noise=False),
                 data_preprocessor=dict(type='UnSegDataPreprocessor'),
                 init_cfg=None):
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.generator = MODELS.build(generator)
        self.surrogate = MODELS.build(surrogate)
        self.loss = MODELS.build(loss)
        self.train_budget = Budget.of(train_budget)
        self.val_budget = Budget.of(val_budget or train_budget)
        self.label_modification = label_modification
        self.augmentation = MODELS.build(
            augmentation) if augmentation else None
        self.generator_prompt = PromptSampler(**generator_prompt)
        self.surrogate_prompt = PromptSampler(**surrogate_prompt)
        self.val_prompt = PromptSampler(**val_prompt)
        self.num_codes = getattr(self.generator, 'num_codes', 0)
        if self.num_codes and isinstance(self.loss, PointSampledMaskLoss):
            raise ValueError('a generator with object codes needs a class '
                             'loss (e.g. PixelCrossEntropyLoss) and a '
                             'surrogate with 1 + num_codes outputs, not a '
                             'binary mask loss')
        self.phase = 'surrogate'

    def set_phase(self, phase: str) -> None:
        """Select the player that the next ``train_step`` optimises."""
        if phase not in PHASES:
            raise ValueError(f'phase must be one of {PHASES}, got {phase!r}')
        self.phase = phase

    def surrogate_view(self, images: Tensor,
                       gt_masks: Tensor) -> Sequence[Tensor]:
        """Down-sample the generator's view to the surrogate's input size.

        Returns:
            tuple[Tensor, Tensor]: Images (B, 3, s, s) and masks (B, 1, s,
            s).
        """
        size = unwrap(self.surrogate).img_size
        images = F.interpolate(
            images, (size, size), mode='bilinear', align_corners=False)
        gt_masks = F.interpolate(
            gt_masks, (size, size), mode='bilinear', align_corners=False)
        return images, gt_masks

    def draw_codes(self,
                   samples: Sequence,
                   device: torch.device,
                   training: bool = True) -> Optional[Tensor]:
        """Each object's code, (B, ) in ``1..num_codes``; None without codes.

        Samples of a semantic dataset with a ``class_id`` (fine-tuning on a
        target, :class:`mmunseg.datasets.SemanticObjectsDataset`) get their
        class's code, ``1 + class_id % num_codes``, as protection gives it.
        Others get a random code in training; in validation the i-th sample
        of a batch gets ``1 + i % num_codes``, for reproducible figures.
        """
        if not self.num_codes:
            return None
        classes = [sample.metainfo.get('class_id') for sample in samples]
        if all(c is not None for c in classes):
            return 1 + torch.tensor(classes, device=device) % self.num_codes
        if training:
            return torch.randint(
                1, self.num_codes + 1, (len(samples), ), device=device)
        return 1 + torch.arange(len(samples), device=device) % self.num_codes

    def prepare(self,
                data: dict,
                training: bool,
                prompt: PromptSampler,
                types: Optional[Set[str]] = None) -> Batch:
        """Preprocess a batch and draw the generator's prompts and codes.

        Args:
            data (dict): A collated batch from the dataloader.
            training (bool): Training (random codes) or validation.
            prompt (PromptSampler): Draws the generator's prompts.
            types (set[str], optional): Force these prompt types.

        Returns:
            Batch: What both players use.
        """
        data = self.data_preprocessor(data, training)
        images, gt_masks = data['inputs'], data['gt_masks']
        small_images, small_masks = self.surrogate_view(images, gt_masks)
        prompts = prompt(
            gt_masks, unwrap(self.generator).noise_size, types=types)
        codes = self.draw_codes(data['data_samples'], images.device, training)
        return Batch(images, gt_masks, small_images, small_masks, prompts,
                     codes, data['data_samples'])

    def noise(self,
              batch: Batch,
              network: Optional[Callable[..., Tensor]] = None) -> Tensor:
        """The generator's unit-range noise of a batch, (B, 3, S/4, S/4).

        With codes, the object gets its code and the rest of the image the
        background code 0 (:func:`generate_noise`).

        Args:
            batch (Batch): A prepared batch.
            network (Callable, optional): The generator to run (the wrapped
                one, to train it); the bare generator by default.
        """
        if network is None:
            network = unwrap(self.generator)
        return generate_noise(network, batch.images, batch.prompts,
                              batch.codes, batch.gt_masks)

    def perturb(self, images: Tensor, noise: Tensor, gt_masks: Tensor,
                budget: Budget) -> Tensor:
        """Add the budgeted noise; the object is where the mask is > 0.5."""
        return budget.add(images, noise, gt_masks.round(),
                          getattr(unwrap(self.generator), 'dc_free', False))

    def target(self, masks: Tensor, codes: Optional[Tensor],
               truth: bool) -> Tensor:
        """What the surrogate is trained towards, (B, 1, s, s).

        Args:
            masks (Tensor): Soft object masks in [0, 1], (B, 1, s, s).
            codes (Tensor, optional): (B, ) object codes.
            truth (bool): The true target (the surrogate's), or the
                generator's (label modification: the object everywhere).
        """
        everywhere = not truth and self.label_modification
        if codes is None:
            return torch.ones_like(masks) if everywhere else masks
        codes = codes.to(masks.dtype)[:, None, None, None]
        if everywhere:
            return codes.expand_as(masks).clone()
        return codes * (masks > 0.5).to(masks.dtype)

    def surrogate_loss(self, surrogate: Callable[..., Tensor], batch: Batch,
                       noise: Tensor, truth: bool) -> Dict[str, Tensor]:
        """Perturb, augment and segment; the loss towards :meth:`target`."""
        masks = batch.small_masks
        inputs = self.perturb(batch.small_images, noise, masks,
                              self.train_budget)
        target = self.target(masks, batch.codes, truth)
        if self.augmentation is not None:
            inputs, both = self.augmentation(inputs,
                                             torch.cat([masks, target], 1))
            masks, target = both[:, :1], both[:, 1:]
        prompts = self.surrogate_prompt(masks,
                                        unwrap(surrogate).mask_prompt_size)
        return self.loss(surrogate(inputs, **prompts), target)

    def train_step(self, data: dict,
                   optim_wrapper: OptimWrapperDict) -> Dict[str, Tensor]:
        """One step of the current phase's player.

        Args:
            data (dict): A collated batch from the dataloader.
            optim_wrapper (OptimWrapperDict): ``generator`` and
                ``surrogate`` wrappers; only the active one steps.

        Returns:
            dict[str, Tensor]: Losses named ``{phase}_loss*``.
        """
        batch = self.prepare(data, True, self.generator_prompt)
        if self.phase == 'surrogate':
            return self.train_surrogate(batch, optim_wrapper['surrogate'])
        return self.train_generator(batch, optim_wrapper['generator'])

    def train_surrogate(self, batch: Batch,
                        optim_wrapper: OptimWrapper) -> Dict[str, Tensor]:
        """Fit the surrogate to the (fixed) generator's perturbed images."""
        with torch.no_grad():
            noise = self.noise(batch)
        with optim_wrapper.optim_context(self.surrogate):
            losses = self.surrogate_loss(self.surrogate, batch, noise, True)
        return self.update_player('surrogate', losses, optim_wrapper)

    def train_generator(self, batch: Batch,
                        optim_wrapper: OptimWrapper) -> Dict[str, Tensor]:
        """Move the noise head towards the (frozen) surrogate's smallest
        loss on the generator's target."""
        surrogate = unwrap(self.surrogate)
        with optim_wrapper.optim_context(self.generator), frozen(surrogate):
            noise = self.noise(batch, self.generator)
            losses = self.surrogate_loss(surrogate, batch, noise, False)
        return self.update_player('generator', losses, optim_wrapper)

    def update_player(self, phase: str, losses: Dict[str, Tensor],
                      optim_wrapper: OptimWrapper) -> Dict[str, Tensor]:
        """Step one player's optimizer; its losses named ``{phase}_*``."""
        parsed, log_vars = self.parse_losses(losses)
        optim_wrapper.update_params(parsed)
        return {
            f'{phase}_{key}': value.detach()
            for key, value in log_vars.items()
        }

    def object_iou(self, logits: Tensor, masks: Tensor,
                   codes: Optional[Tensor]) -> Tensor:
        """IoU of the predicted object (code) with the true mask, (B,)."""
        if codes is None:
            return mask_iou(logits, masks)
        logits = F.interpolate(
            logits, masks.shape[-2:], mode='bilinear', align_corners=False)
        return class_iou(
            logits.argmax(1, keepdim=True) == codes[:, None, None, None],
            masks)

    @torch.no_grad()
    def val_step(self, data: dict) -> List[dict]:
        """Surrogate IoU on clean and on noised images (``val_prompt``).

        With codes, the IoU of the pixels predicted as the object's code:
        on clean images nothing tells the code, so it measures how much of
        the object the noise alone makes the surrogate recognise.

        Returns:
            list[dict]: Per sample ``iou_clean``, ``iou_noised`` and
            ``img_path``.
        """
        types = self.val_prompt.draw_types()
        batch = self.prepare(data, False, self.val_prompt, types)
        surrogate = unwrap(self.surrogate)
        noise = self.noise(batch)
        sur_prompts = self.val_prompt(
            batch.small_masks, surrogate.mask_prompt_size, types=types)
        noised = self.perturb(batch.small_images, noise, batch.small_masks,
                              self.val_budget)
        iou_clean = self.object_iou(
            surrogate(batch.small_images, **sur_prompts), batch.small_masks,
            batch.codes)
        iou_noised = self.object_iou(
            surrogate(noised, **sur_prompts), batch.small_masks, batch.codes)
        return [
            dict(
                iou_clean=float(clean),
                iou_noised=float(noisy),
                img_path=sample.metainfo.get('img_path')) for clean, noisy,
            sample in zip(iou_clean, iou_noised, batch.samples)
        ]

    def test_step(self, data: dict) -> List[dict]:
        return self.val_step(data)

    def forward(self,
                inputs: Tensor,
                data_samples: Optional[list] = None,
                mode: str = 'tensor') -> Tensor:
        """Generate noise for mask-prompted images (``mode='tensor'``).

        The noise of validation and protection: with codes, each sample's
        code (:meth:`draw_codes`, validation) on its object and the
        background code elsewhere.

        Args:
            inputs (Tensor): (B, 3, S, S) in [0, 1].
            data_samples (list): Samples with ``gt_mask`` (1, S, S), 0..255.
            mode (str): Only ``'tensor'``: training and validation go
                through :meth:`train_step` and :meth:`val_step`.

        Returns:
            Tensor: Unit-range noise, (B, 3, S/4, S/4).
        """
        if mode != 'tensor':
            raise ValueError(f'UnSeg.forward supports mode="tensor" only, '
                             f'got {mode!r}; use train_step / val_step')
        gt_masks = torch.stack([s.gt_mask for s in data_samples]) / 255
        prompts = self.generator_prompt(
            gt_masks, unwrap(self.generator).noise_size, types={'mask'})
        codes = self.draw_codes(data_samples, inputs.device, False)
        return generate_noise(self.generator, inputs, prompts, codes, gt_masks)
