from contextlib import contextmanager

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel, is_model_wrapper

from mmunseg.registry import MODELS
from .budget import Budget
from .losses import PointSampledMaskLoss
from .prompts import PromptSampler, map_prompts

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


def class_iou(pred, masks):
    """Per-sample IoU of a bool prediction with ``masks > 0.5``, (B,)."""
    gt = masks > 0.5
    inter = (pred & gt).flatten(1).sum(1).float()
    union = (pred | gt).flatten(1).sum(1).float()
    return torch.where(union > 0, inter / union.clamp(min=1),
                       torch.ones_like(union))


def mask_iou(logits, masks):
    """Per-sample IoU of ``logits > 0`` with ``masks > 0.5``, (B,)."""
    if logits.shape[-2:] != masks.shape[-2:]:
        logits = F.interpolate(
            logits, masks.shape[-2:], mode='bilinear', align_corners=False)
    return class_iou(logits > 0, masks)


@MODELS.register_module()
class UnSeg(BaseModel):
    """Bilevel min-min training of the UnSeg noise generator.

    Two players share one batch. In the ``surrogate`` phase the surrogate
    learns to segment images perturbed by the (fixed) generator; in the
    ``generator`` phase the noise head learns noise that minimises the
    (fixed) surrogate's loss, against an all-ones target under label
    modification. Both minimise: error-minimising, unlearnable noise. The
    phase is set by the training loop (:mod:`mmunseg.engine.loops`).

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

    def draw_codes(self, samples, device, training=True):
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

    def generate(self, generator, images, prompts, gt_masks, codes):
        """Unit-range noise of a batch, (B, 3, S/4, S/4).

        With codes, one pass paints the object with its code and the
        background with code 0, in one batch of 2B, and the two are joined
        along the generator's mask.
        """
        if codes is None:
            return generator(images, **prompts)
        both = generator(
            images.repeat(2, 1, 1, 1),
            **map_prompts(
                prompts,
                lambda value: value.repeat(2, *([1] * (value.dim() - 1)))),
            codes=torch.cat([codes, torch.zeros_like(codes)]))
        on_object, on_background = both.chunk(2)
        mask = F.interpolate(
            gt_masks,
            on_object.shape[-2:],
            mode='bilinear',
            align_corners=False).round()
        return mask * on_object + (1 - mask) * on_background

    def perturb(self, images, noise, gt_masks, budget):
        """Add the budgeted noise; the object is where the mask is > 0.5."""
        return budget.add(images, noise, gt_masks.round(),
                          getattr(unwrap(self.generator), 'dc_free', False))

    def target(self, masks, codes, truth):
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

    def surrogate_loss(self, surrogate, images, noise, masks, codes, truth):
        """Perturb, augment and segment; the loss towards :meth:`target`."""
        inputs = self.perturb(images, noise, masks, self.train_budget)
        target = self.target(masks, codes, truth)
        if self.augmentation is not None:
            inputs, both = self.augmentation(inputs,
                                             torch.cat([masks, target], 1))
            masks, target = both[:, :1], both[:, 1:]
        prompts = self.surrogate_prompt(masks,
                                        unwrap(surrogate).mask_prompt_size)
        return self.loss(surrogate(inputs, **prompts), target)

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
        codes = self.draw_codes(data['data_samples'], images.device)
        wrapper = optim_wrapper[self.phase]
        if self.phase == 'surrogate':
            with torch.no_grad():
                noise = self.generate(generator, images, gen_prompts, gt_masks,
                                      codes)
            with wrapper.optim_context(self.surrogate):
                losses = self.surrogate_loss(self.surrogate, small_images,
                                             noise, small_masks, codes, True)
        else:
            with wrapper.optim_context(self.generator), frozen(surrogate):
                noise = self.generate(self.generator, images, gen_prompts,
                                      gt_masks, codes)
                losses = self.surrogate_loss(surrogate, small_images, noise,
                                             small_masks, codes, False)
        parsed, log_vars = self.parse_losses(losses)
        wrapper.update_params(parsed)
        return {
            f"{self.phase}_{key}": value.detach()
            for key, value in log_vars.items()
        }

    def object_iou(self, logits, masks, codes):
        """IoU of the predicted object (code) with the true mask, (B,)."""
        if codes is None:
            return mask_iou(logits, masks)
        logits = F.interpolate(
            logits, masks.shape[-2:], mode='bilinear', align_corners=False)
        return class_iou(
            logits.argmax(1, keepdim=True) == codes[:, None, None, None],
            masks)

    @torch.no_grad()
    def val_step(self, data):
        """Surrogate IoU on clean and on noised images (``val_prompt``).

        With codes, the IoU of the pixels predicted as the object's code:
        on clean images nothing tells the code, so it measures how much of
        the object the noise alone makes the surrogate recognise.

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
        codes = self.draw_codes(data['data_samples'], images.device, False)
        noise = self.generate(
            generator, images,
            self.val_prompt(gt_masks, generator.noise_size, types=types),
            gt_masks, codes)
        sur_prompts = self.val_prompt(
            small_masks, surrogate.mask_prompt_size, types=types)
        noised = self.perturb(small_images, noise, small_masks,
                              self.val_budget)
        iou_clean = self.object_iou(
            surrogate(small_images, **sur_prompts), small_masks, codes)
        iou_noised = self.object_iou(
            surrogate(noised, **sur_prompts), small_masks, codes)
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
            float: BCE + Dice towards the generator's target.
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
        losses = self.loss(logits, self.target(small_masks, None, False))
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
