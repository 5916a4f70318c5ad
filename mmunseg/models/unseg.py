from contextlib import contextmanager

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel, is_model_wrapper

from mmunseg.registry import MODELS
from .budget import add_noise
from .prompts import PromptSampler

PHASES = ('surrogate', 'generator')


def unwrap(module):
    """The module inside a (distributed) wrapper."""
    return module.module if is_model_wrapper(module) else module


@contextmanager
def frozen(module):
    """Temporarily stop gradients to a module's parameters."""
    params = [p for p in module.parameters() if p.requires_grad]
    for param in params:
        param.requires_grad_(False)
    try:
        yield
    finally:
        for param in params:
            param.requires_grad_(True)


def mask_iou(logits, masks):
    """Per-sample IoU of ``logits > 0`` with ``masks > 0.5``, (B,)."""
    if logits.shape[-2:] != masks.shape[-2:]:
        logits = F.interpolate(
            logits, masks.shape[-2:], mode='bilinear', align_corners=False)
    pred, gt = logits > 0, masks > 0.5
    inter = (pred & gt).flatten(1).sum(1).float()
    union = (pred | gt).flatten(1).sum(1).float()
    return torch.where(union > 0, inter / union.clamp(min=1),
                       torch.ones_like(union))


@MODELS.register_module()
class UnSeg(BaseModel):
    """Bilevel min-min training of the UnSeg noise generator.

    Two players share one batch. In the ``surrogate`` phase the surrogate
    learns to segment images perturbed by the (fixed) generator; in the
    ``generator`` phase the noise head learns noise that minimises the
    (fixed) surrogate's loss, against an all-ones target under label
    modification. Both minimise: error-minimising, unlearnable noise. The
    phase is set by the training loop (:mod:`mmunseg.engine.loops`).

    Args:
        generator (dict): Config of the noise generator.
        surrogate (dict): Config of the surrogate.
        loss (dict): Config of the mask loss, shared by both players.
        train_budget (dict): ``object`` and ``background`` L-inf budgets in
            [0, 1] units used in training (paper: 1/255 and 0.25/255; they
            are scaled up at protection time, epsilon generalisation).
        val_budget (dict, optional): Budgets of validation; defaults to
            ``train_budget``.
        label_modification (bool): Generator target all ones (paper) or
            the true mask.
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
        self.train_budget = self._check_budget(train_budget)
        self.val_budget = self._check_budget(val_budget or train_budget)
        self.label_modification = label_modification
        self.generator_prompt = PromptSampler(**generator_prompt)
        self.surrogate_prompt = PromptSampler(**surrogate_prompt)
        self.val_prompt = PromptSampler(**val_prompt)
        self.phase = 'surrogate'

    @staticmethod
    def _check_budget(budget):
        budget = dict(budget)
        if set(budget) != {'object', 'background'
                           } or not all(0 <= v <= 1 for v in budget.values()):
            raise ValueError('a budget is dict(object=eps, background=eps) '
                             f'with eps in [0, 1], got {budget}')
        return budget

    def set_phase(self, phase):
        """Select the player that the next ``train_step`` optimises."""
        if phase not in PHASES:
            raise ValueError(f'phase must be one of {PHASES}, got {phase!r}')
        self.phase = phase

    def surrogate_view(self, images, gt_masks):
        """Down-sample the generator's view to the surrogate's input size."""
        size = unwrap(self.surrogate).img_size
        images = F.interpolate(
            images, (size, size), mode='bilinear', align_corners=False)
        gt_masks = F.interpolate(
            gt_masks, (size, size), mode='bilinear', align_corners=False)
        return images, gt_masks

    def generator_target(self, gt_masks):
        """What the generator drives the surrogate to predict."""
        if self.label_modification:
            return torch.ones_like(gt_masks)
        return gt_masks

    def perturb(self, images, noise, gt_masks, budget):
        """Add the budgeted noise; the object is where the mask is > 0.5."""
        return add_noise(images, noise, gt_masks.round(), budget['object'],
                         budget['background'])

    def train_step(self, data, optim_wrapper):
        """One step of the current phase's player.

        Args:
            data (dict): A collated batch from the dataloader.
            optim_wrapper (OptimWrapperDict): ``generator`` and
                ``surrogate`` wrappers; only the active one steps.

        Returns:
            dict[str, Tensor]: Losses named ``{phase}_loss*``.
        """
        data = self.data_preprocessor(data, True)
        images, gt_masks = data['inputs'], data['gt_masks']
        small_images, small_masks = self.surrogate_view(images, gt_masks)
        generator = unwrap(self.generator)
        surrogate = unwrap(self.surrogate)
        gen_prompts = self.generator_prompt(gt_masks, generator.noise_size)
        sur_prompts = self.surrogate_prompt(small_masks,
                                            surrogate.mask_prompt_size)
        wrapper = optim_wrapper[self.phase]
        if self.phase == 'surrogate':
            with torch.no_grad():
                noise = generator(images, **gen_prompts)
            with wrapper.optim_context(self.surrogate):
                inputs = self.perturb(small_images, noise, small_masks,
                                      self.train_budget)
                logits = self.surrogate(inputs, **sur_prompts)
                losses = self.loss(logits, small_masks)
        else:
            with wrapper.optim_context(self.generator), frozen(surrogate):
                noise = self.generator(images, **gen_prompts)
                inputs = self.perturb(small_images, noise, small_masks,
                                      self.train_budget)
                logits = surrogate(inputs, **sur_prompts)
                losses = self.loss(logits, self.generator_target(small_masks))
        parsed, log_vars = self.parse_losses(losses)
        wrapper.update_params(parsed)
        return {
            f"{self.phase}_{key}": value.detach()
            for key, value in log_vars.items()
        }

    @torch.no_grad()
    def val_step(self, data):
        """Surrogate IoU on clean and on noised images (``val_prompt``).

        Returns:
            list[dict]: Per sample ``iou_clean``, ``iou_noised`` and
            ``img_path``.
        """
        data = self.data_preprocessor(data, False)
        images, gt_masks = data['inputs'], data['gt_masks']
        small_images, small_masks = self.surrogate_view(images, gt_masks)
        generator = unwrap(self.generator)
        surrogate = unwrap(self.surrogate)
        types = self.val_prompt.draw_types()
        noise = generator(
            images,
            **self.val_prompt(gt_masks, generator.noise_size, types=types))
        sur_prompts = self.val_prompt(
            small_masks, surrogate.mask_prompt_size, types=types)
        noised = self.perturb(small_images, noise, small_masks,
                              self.val_budget)
        iou_clean = mask_iou(
            surrogate(small_images, **sur_prompts), small_masks)
        iou_noised = mask_iou(surrogate(noised, **sur_prompts), small_masks)
        return [
            dict(
                iou_clean=float(clean),
                iou_noised=float(noisy),
                img_path=sample.metainfo.get('img_path')) for clean, noisy,
            sample in zip(iou_clean, iou_noised, data['data_samples'])
        ]

    @torch.no_grad()
    def generator_objective(self, data, prompt_types=('box', ), delta=None):
        """The generator's loss on a batch, with fixed prompt types.

        Args:
            data (dict): A collated batch.
            prompt_types (Sequence[str]): Prompts of both networks.
            delta (Tensor, optional): A unit-range perturbation of the
                surrogate's input, (B, 3, s, s), used instead of the
                generator's noise (to compare with per-image optimisation).

        Returns:
            float: BCE + Dice towards :meth:`generator_target`.
        """
        data = self.data_preprocessor(data, False)
        images, gt_masks = data['inputs'], data['gt_masks']
        small_images, small_masks = self.surrogate_view(images, gt_masks)
        generator = unwrap(self.generator)
        types = set(prompt_types)
        if delta is None:
            delta = generator(
                images,
                **self.val_prompt(gt_masks, generator.noise_size, types=types))
        logits = unwrap(self.surrogate)(
            self.perturb(small_images, delta, small_masks, self.train_budget),
            **self.val_prompt(small_masks, 0, types=types))
        losses = self.loss(logits, self.generator_target(small_masks))
        return float(sum(losses.values()))

    def test_step(self, data):
        return self.val_step(data)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        """Generate noise for mask-prompted images (``mode='tensor'``).

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
        generator = unwrap(self.generator)
        prompts = self.generator_prompt(
            gt_masks, generator.noise_size, types={'mask'})
        return self.generator(inputs, **prompts)
