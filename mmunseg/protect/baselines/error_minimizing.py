"""EM: sample-wise error-minimising noise (Huang et al., "Unlearnable
Examples: Making Personal Data Unexploitable", ICLR 2021), with a per-pixel
segmentation loss."""
import copy

import numpy as np
import torch
import torch.nn.functional as F
from mmseg.models import BaseSegmentor

from mmunseg.registry import MODELS, NOISE_METHODS, OPTIMIZERS
from mmunseg.utils import extract_state_dict, load_checkpoint_file
from ..methods import NoiseMethod, sample_seed

#: Label of pixels without a class (the surrogate's loss ignores them).
IGNORE_INDEX = 255
#: Inputs are zero-padded to a multiple of this (UNet and most backbones
#: need sides divisible by their total stride); logits are cropped back.
SIZE_DIVISOR = 32


def tiny_unet(num_classes):
    """The default surrogate: MMSeg's UNet with 8 base channels, 3 stages of
    one conv, and an FCN head (13k parameters; about 1 s per forward and
    backward pass at 480 x 360 on 2 CPU cores)."""
    norm_cfg = dict(type='BN', requires_grad=True)
    return dict(
        type='EncoderDecoder',
        backbone=dict(
            type='UNet',
            in_channels=3,
            base_channels=8,
            num_stages=3,
            strides=(1, 1, 1),
            enc_num_convs=(1, 1, 1),
            dec_num_convs=(1, 1),
            downsamples=(True, True),
            enc_dilations=(1, 1, 1),
            dec_dilations=(1, 1),
            norm_cfg=norm_cfg,
            upsample_cfg=dict(type='InterpConv')),
        decode_head=dict(
            type='FCNHead',
            in_channels=8,
            in_index=2,
            channels=8,
            num_convs=1,
            concat_input=False,
            num_classes=num_classes,
            norm_cfg=norm_cfg,
            align_corners=False,
            loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)))


@NOISE_METHODS.register_module()
class ErrorMinimizingNoise(NoiseMethod):
    """Noise that minimises a surrogate's segmentation loss (min-min).

    Each call optimises the noise of its images (grouped by size) jointly
    with a surrogate, as EM's sample-wise loop does over a dataset
    (../shared/docs/baselines_and_defenses.md §2a): for up to ``rounds``
    rounds, train the surrogate ``train_steps`` steps on the perturbed
    images, then take ``steps`` signed-gradient *descent* steps on the noise
    against the per-pixel cross-entropy; stop once the surrogate's pixel
    accuracy on the perturbed images reaches ``stop_accuracy``. The noise
    ``u`` is optimised in unit range, the images are ``clip(x + eps * u)``
    with the same per-region budget the protector then applies (``eps``
    ``eps_object`` on labelled pixels, ``eps_background`` elsewhere), so
    what is optimised is what is saved (up to quantisation).

    Cost per image: ``rounds * (train_steps + steps)`` forward and backward
    passes of the surrogate at full resolution (counted in :attr:`passes`),
    divided by the images per call; EM's defaults at CIFAR scale are
    ``train_steps=10, steps=20`` and rounds until 99% accuracy. The images
    of one call are optimised together, so the protector calls it with one
    image at a time (``batched = False``): an image's noise then depends on
    that image alone, whatever the batch size, order or sharding.

    Args:
        num_classes (int): Classes of the labels (``tools/protect.py``
            fills it from the dataset); the surrogate predicts as many.
        surrogate (dict, optional): Model config built in the ``mmseg``
            scope (unless it sets ``_scope_``): an MMSeg segmentor (its
            decode head's logits are used) or any module mapping normalised
            (B, 3, H, W) images to (B, num_classes, h, w) logits. Defaults
            to :func:`tiny_unet`.
        surrogate_checkpoint (str, optional): Weights to start the surrogate
            from (any layout :func:`extract_state_dict` reads).
        eps_object (float): Budget on labelled pixels, [0, 1] units; use the
            protector's.
        eps_background (float): Budget elsewhere.
        steps (int): PGD steps on the noise per round (EM: 20).
        step_size (float): PGD step in unit range (EM: eps / 10 = 0.1).
        rounds (int): Most surrogate / noise rounds per call (EM runs until
            ``stop_accuracy``; the cap keeps the cost bounded).
        train_steps (int): Surrogate steps per round (EM: 10).
        stop_accuracy (float): Stop once the surrogate's pixel accuracy on
            the perturbed images reaches it (EM: 0.99).
        optimizer (dict, optional): Surrogate optimizer config (default EM's
            SGD, lr 0.1, momentum 0.9, weight decay 5e-4).
        random_start (bool): Start from uniform noise instead of zero,
            drawn per image from ``seed`` and the image's key.
        background_label (int, optional): Class given to unlabelled pixels
            (label -1); None leaves them out of the loss (they still get
            noise: it moves the predictions of their labelled neighbours).
        reset_surrogate (bool): True: every call starts from the same
            surrogate (its initial or loaded weights), so an image's noise
            depends only on the images of its call (reruns, resumes and
            shards agree). False: the surrogate keeps training across calls,
            like EM's one surrogate over the whole dataset; the noise then
            depends on the order of the images (``tools/protect.py`` refuses
            to resume or shard such a run).
        mean (Sequence[float]): Normalisation mean, 0-255 RGB.
        std (Sequence[float]): Normalisation std.
        device (str): ``cpu`` or ``cuda``.
        seed (int): Seeds the surrogate's initialisation and random starts.
    """

    #: The noise depends on ``Prompt.labels``.
    needs_labels = True
    #: The images of a call are optimised together (see above).
    batched = False
    #: Full-resolution surrogate activations with their gradients, the
    #: noise and its gradient: about 580 bytes per pixel with the default
    #: surrogate (peak RSS over one 2000 x 1500 image); rounded up.
    bytes_per_pixel = 700

    def __init__(self,
                 num_classes,
                 surrogate=None,
                 surrogate_checkpoint=None,
                 eps_object=8 / 255,
                 eps_background=2 / 255,
                 steps=20,
                 step_size=0.1,
                 rounds=5,
                 train_steps=10,
                 stop_accuracy=0.99,
                 optimizer=None,
                 random_start=False,
                 background_label=None,
                 reset_surrogate=True,
                 mean=(123.675, 116.28, 103.53),
                 std=(58.395, 57.12, 57.375),
                 device='cpu',
                 seed=0):
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f'num_classes must be a positive int, got '
                             f'{num_classes!r}')
        for name, value in (('steps', steps), ('rounds', rounds),
                            ('train_steps', train_steps)):
            if not isinstance(value, int) or value < 0:
                raise ValueError(f'{name} must be an int >= 0, got {value!r}')
        for name, value in (('eps_object', eps_object), ('eps_background',
                                                         eps_background)):
            if not 0 <= value <= 1:
                raise ValueError(f'{name} must be in [0, 1], got {value}')
        if background_label is not None and not (0 <= background_label <
                                                 num_classes):
            raise ValueError(f'background_label must be in [0, {num_classes})'
                             f', got {background_label}')
        self.num_classes = num_classes
        self.eps_object = eps_object
        self.eps_background = eps_background
        self.steps = steps
        self.step_size = step_size
        self.rounds = rounds
        self.train_steps = train_steps
        self.stop_accuracy = stop_accuracy
        self.optimizer_cfg = optimizer or dict(
            type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4)
        self.random_start = random_start
        self.background_label = background_label
        self.reset_surrogate = reset_surrogate
        self.order_independent = reset_surrogate
        self.device = torch.device(device)
        self.seed = seed
        self.mean = torch.tensor(mean, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, device=self.device).view(1, 3, 1, 1)
        cfg = copy.deepcopy(surrogate or tiny_unet(num_classes))
        cfg.setdefault('_scope_', 'mmseg')
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.surrogate = MODELS.build(cfg)
        if surrogate_checkpoint is not None:
            self.surrogate.load_state_dict(
                extract_state_dict(
                    load_checkpoint_file(surrogate_checkpoint),
                    surrogate_checkpoint))
        self.surrogate.to(self.device)
        self.initial_state = copy.deepcopy(self.surrogate.state_dict())
        self.optimizer = self.build_optimizer()
        #: Forward-and-backward passes of the surrogate so far.
        self.passes = 0

    def build_optimizer(self):
        return OPTIMIZERS.build(
            dict(self.optimizer_cfg, params=self.surrogate.parameters()))

    def logits(self, images):
        """Surrogate logits at the images' size.

        Args:
            images (Tensor): (B, 3, H, W) in [0, 1].

        Returns:
            Tensor: (B, num_classes, H, W).
        """
        height, width = images.shape[-2:]
        inputs = (images * 255 - self.mean) / self.std
        inputs = F.pad(inputs,
                       (0, -width % SIZE_DIVISOR, 0, -height % SIZE_DIVISOR))
        if isinstance(self.surrogate, BaseSegmentor):
            logits = self.surrogate._forward(inputs)
        else:
            logits = self.surrogate(inputs)
        if logits.shape[1] != self.num_classes:
            raise ValueError(f'the surrogate predicts {logits.shape[1]} '
                             f'classes, num_classes is {self.num_classes}')
        logits = F.interpolate(
            logits, inputs.shape[-2:], mode='bilinear', align_corners=False)
        return logits[..., :height, :width]

    def loss(self, images, targets):
        """Mean per-pixel cross-entropy (one forward pass)."""
        return F.cross_entropy(
            self.logits(images), targets, ignore_index=IGNORE_INDEX)

    def targets_of(self, prompts, shape):
        """(B, H, W) class targets and (B, 1, H, W) budgets of the prompts."""
        targets, budgets = [], []
        for prompt in prompts:
            if prompt.labels is None:
                raise ValueError(
                    'ErrorMinimizingNoise needs the class of each object '
                    'pixel (Prompt.labels); the per-object calls of the '
                    'per-class and per-instance prompt modes carry none: use '
                    'the union, box or points prompt')
            labels = prompt.labels
            if labels.shape != shape:
                raise ValueError(f'labels are {labels.shape}, the image is '
                                 f'{shape}')
            if labels.max() >= self.num_classes:
                raise ValueError(f'label {labels.max()} >= num_classes '
                                 f'{self.num_classes}')
            objects = labels >= 0
            unlabelled = IGNORE_INDEX if self.background_label is None \
                else self.background_label
            targets.append(np.where(objects, labels, unlabelled))
            budgets.append(
                np.where(objects, self.eps_object, self.eps_background))
        targets = torch.from_numpy(np.stack(targets)).to(self.device)
        budgets = torch.from_numpy(np.stack(budgets)).float()
        return targets, budgets[:, None].to(self.device)

    def start(self, images, prompts):
        """(B, 3, H, W) starting noise: zero, or uniform drawn per image from
        the seed and its key (:func:`~mmunseg.protect.methods.sample_seed`).
        """
        if not self.random_start:
            return torch.zeros(
                (len(images), 3) + images[0].shape[:2], device=self.device)
        draws = []
        for image, prompt in zip(images, prompts):
            rng = np.random.default_rng(
                [self.seed, sample_seed(prompt, image)])
            draws.append(rng.uniform(-1, 1, image.shape))
        draws = torch.from_numpy(np.stack(draws)).permute(0, 3, 1, 2)
        return draws.to(self.device, torch.float32)

    def min_min(self, images, targets, budgets, noise):
        """EM's loop on one batch; returns the unit-range noise.

        Args:
            images (Tensor): (B, 3, H, W) in [0, 1].
            targets (Tensor): (B, H, W) class ids, ``IGNORE_INDEX`` unused.
            budgets (Tensor): (B, 1, H, W) L-inf budget per pixel.
            noise (Tensor): (B, 3, H, W) starting noise (:meth:`start`).

        Returns:
            Tensor: (B, 3, H, W) noise in [-1, 1].
        """
        labelled = targets != IGNORE_INDEX

        def perturbed(unit):
            return (images + budgets * unit).clamp(0, 1)

        # BN in training mode throughout: the objective is the training
        # loss, and a surrogate trained for a few steps has poor running
        # statistics.
        self.surrogate.train()
        for _ in range(self.rounds):
            for _ in range(self.train_steps):
                self.optimizer.zero_grad()
                self.loss(perturbed(noise), targets).backward()
                self.optimizer.step()
                self.passes += 1
            for _ in range(self.steps):
                noise.requires_grad_(True)
                loss = self.loss(perturbed(noise), targets)
                (grad, ) = torch.autograd.grad(loss, noise)
                noise = (noise.detach() - self.step_size * grad.sign()).clamp(
                    -1, 1)
                self.passes += 1
            with torch.no_grad():
                predictions = self.logits(perturbed(noise)).argmax(1)
            accuracy = (predictions == targets)[labelled].float().mean()
            if labelled.any() and accuracy >= self.stop_accuracy:
                break
        return noise.detach()

    def generate(self, images, prompts):
        outputs = [None] * len(images)
        by_shape = {}
        for index, image in enumerate(images):
            by_shape.setdefault(image.shape, []).append(index)
        for shape, indices in by_shape.items():
            if self.reset_surrogate:
                self.surrogate.load_state_dict(self.initial_state)
                self.optimizer = self.build_optimizer()
            batch = torch.from_numpy(np.stack([images[i] for i in indices]))
            batch = batch.to(self.device).permute(0, 3, 1, 2).float() / 255
            group = [prompts[i] for i in indices]
            targets, budgets = self.targets_of(group, shape[:2])
            noise = self.min_min(
                batch, targets, budgets,
                self.start([images[i] for i in indices], group))
            for index, unit in zip(indices, noise.permute(0, 2, 3, 1)):
                outputs[index] = unit.cpu().numpy()
        return outputs
