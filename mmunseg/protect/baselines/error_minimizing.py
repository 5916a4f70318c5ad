"""EM: sample-wise error-minimising noise (Huang et al., "Unlearnable
Examples: Making Personal Data Unexploitable", ICLR 2021), with a per-pixel
segmentation loss."""
import copy

import numpy as np
import torch
import torch.nn.functional as F
from mmseg.models import BaseSegmentor

from mmunseg.models.budget import Budget
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


@NOISE_METHODS.register_module(name=['ErrorMinimizingNoise', 'em'])
class ErrorMinimizingNoise(NoiseMethod):
    """Noise that minimises a surrogate's segmentation loss (min-min).

    Each group of images (up to ``batch_size`` images of one size) has its
    noise optimised jointly with a surrogate, as EM's sample-wise loop does
    over a dataset (../shared/docs/baselines_and_defenses.md §2a): for up
    to ``rounds`` rounds, train the surrogate ``train_steps`` steps on the
    perturbed images, then take ``steps`` signed-gradient *descent* steps
    on the noise against the per-pixel cross-entropy; stop once the
    surrogate's pixel accuracy on the perturbed images reaches
    ``stop_accuracy``. The noise ``u`` is optimised in unit range, the
    images are ``clip(x + eps * u)`` with the same per-region budget the
    protector then applies (the object budget on labelled pixels, the
    background one elsewhere), so what is optimised is what is saved
    (up to quantisation).

    Crafting resolution (``craft_stride`` s): the noise is one value per
    s x s block of pixels, held over its block in the saved noise. It is
    optimised on the block means of the image (the view of a victim that
    shrinks the image s times by area interpolation, or by bilinear at
    s = 2), with the block means of the per-pixel budget (the mean of
    ``eps * u`` over a block is ``u`` times the block's mean budget) and
    the label of each block's first pixel (what a nearest-neighbour resize
    of the labels keeps). So the optimised images are the saved ones seen
    at 1/s of their size (exactly without clipping, before quantisation),
    and the budget is still the protector's per pixel. Trade: about s^2
    times fewer pixels per pass (2.3 times faster per pass at s = 2 on a
    CamVid frame, one thread: per-pass overheads weigh more at fewer
    pixels), for noise without detail finer than s pixels: none is lost on
    a victim that sees the images shrunk s times or more (the CamVid
    victims see its 480 x 360 frames at 0.37 to 0.73 of their size, hence
    s = 2), some on one that sees them at full size.

    Images per surrogate step (``batch_size`` B): the images of a group
    share one surrogate, closer to EM's one surrogate for the whole
    dataset, and one pass runs on all B of them. Trades: (a) a pass costs
    about B single-image passes on a CPU (one thread, default surrogate at
    240 x 180: 0.136 s per image at B = 8 against 0.129 s at B = 1; 7% less
    CPU time per CamVid image end to end at B = 8), so B > 1 saves little
    time but on a GPU; (b) an image's noise then depends on the other
    images of its group, which are the images the protector hands over in
    one call, cut into groups of B in their order: the bytes depend on the
    order and on ``tools/protect.py --batch-size`` (use a multiple of B),
    so such a method is ``order_independent = False`` and
    ``tools/protect.py`` refuses to resume or shard it. B = 1 (the
    default) crafts each image alone: same bytes for any order, batch
    size, shard or resume.

    Cost per image: ``rounds * (train_steps + steps)`` forward and backward
    passes of the surrogate at the crafting resolution (counted in
    :attr:`passes`, per group), each costing about as much as B single
    passes on a CPU. EM's defaults at CIFAR scale are ``train_steps=10,
    steps=20`` and rounds until 99% accuracy over a dataset-wide
    surrogate. The defaults here, 3 rounds of 10 surrogate and 10 noise
    steps at s = 2 (60 passes at a quarter of the pixels), cost 3.1 CPU
    seconds per CamVid image on one thread, 19 minutes for the 367
    training images on an idle core, where the earlier ``rounds=5,
    train_steps=10, steps=20, craft_stride=1`` cost 25.7 s, 2.6 hours
    (``benchmarks/em_cost.py``; ``benchmarks/results/em_cost.md``).
    Trade: min-min stops short of EM's 99%, as it did before: the
    surrogate ends at about 0.8 pixel accuracy on the perturbed CamVid
    images with either defaults (0.77 to 0.86 over runs); 5 rounds reached
    0.9 on 4 images at 1.7 times the cost, ``rounds`` buys that where time
    allows.

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
        budget (Budget | dict | str): L-inf budgets on labelled pixels
            (object) and elsewhere (background), as :meth:`Budget.of` reads
            them; use the protector's (a protect run passes its own).
        steps (int): PGD steps on the noise per round (EM: 20).
        step_size (float): PGD step in unit range (EM: eps / 10 = 0.1).
        rounds (int): Most surrogate / noise rounds per group (EM runs
            until ``stop_accuracy``; the cap keeps the cost bounded).
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
        reset_surrogate (bool): True: every group starts from the same
            surrogate (its initial or loaded weights), so an image's noise
            depends only on the images of its group (reruns, resumes and
            shards agree when groups are single images). False: the
            surrogate keeps training across groups, like EM's one surrogate
            over the whole dataset; the noise then depends on the order of
            the images (``tools/protect.py`` refuses to resume or shard
            such a run).
        batch_size (int): Images per group, >= 1 (see above).
        craft_stride (int): Side in pixels of the blocks the noise is
            crafted on, >= 1; 1 crafts at full resolution (see above).
        mean (Sequence[float]): Normalisation mean, 0-255 RGB.
        std (Sequence[float]): Normalisation std.
        device (str): ``cpu`` or ``cuda``.
        seed (int): Seeds the surrogate's initialisation and random starts.
    """

    #: The noise depends on ``Prompt.labels``.
    needs_labels = True
    run_values = ('seed', 'device', 'budget', 'num_classes')
    #: Surrogate activations with their gradients, the noise and its
    #: gradient, per pixel of the crafting resolution: about 580 bytes with
    #: the default surrogate (peak RSS over one 2000 x 1500 image at
    #: ``craft_stride=1``); rounded up.
    bytes_per_pixel = 700
    #: The full-resolution arrays around the crafting, per image pixel: the
    #: image, budget and targets, their padded copies and the noise held
    #: over its blocks (float32 and int64), rounded up.
    full_resolution_bytes_per_pixel = 80

    def __init__(self,
                 num_classes,
                 surrogate=None,
                 surrogate_checkpoint=None,
                 budget='paper',
                 steps=10,
                 step_size=0.1,
                 rounds=3,
                 train_steps=10,
                 stop_accuracy=0.99,
                 optimizer=None,
                 random_start=False,
                 background_label=None,
                 reset_surrogate=True,
                 batch_size=1,
                 craft_stride=2,
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
        for name, value in (('batch_size', batch_size), ('craft_stride',
                                                         craft_stride)):
            # Not isinstance: a bool is an int, and batch_size=True is a
            # typo, not 1.
            if type(value) is not int or value < 1:
                raise ValueError(f'{name} must be an int >= 1, got {value!r}')
        if background_label is not None and not (0 <= background_label <
                                                 num_classes):
            raise ValueError(f'background_label must be in [0, {num_classes})'
                             f', got {background_label}')
        self.num_classes = num_classes
        self.budget = Budget.of(budget)
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
        self.batch_size = batch_size
        self.craft_stride = craft_stride
        #: One image per call unless images share a surrogate (the
        #: protector then hands over its batches, cut here into groups).
        self.batched = batch_size > 1
        #: An image's noise depends on its group and, without resets, on
        #: the groups before it.
        self.order_independent = reset_surrogate and batch_size == 1
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
        #: The surrogate's pixel accuracy on the perturbed images of each
        #: group so far, when its loop ended (how far min-min got).
        self.accuracies = []

    def memory_bytes(self, height, width):
        stride = self.craft_stride
        crafted = -(-height // stride) * -(-width // stride)
        return (self.bytes_per_pixel * crafted +
                self.full_resolution_bytes_per_pixel * height * width)

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
                np.where(objects, self.budget.object, self.budget.background))
        targets = torch.from_numpy(np.stack(targets)).to(self.device)
        budgets = torch.from_numpy(np.stack(budgets)).float()
        return targets, budgets[:, None].to(self.device)

    def start(self, images, prompts, size):
        """(B, 3, h, w) starting noise at the crafting resolution ``size``
        (h, w): zero, or uniform drawn per image from the seed and its key
        (:func:`~mmunseg.protect.methods.sample_seed`).
        """
        if not self.random_start:
            return torch.zeros(
                (len(images), 3) + tuple(size), device=self.device)
        draws = []
        for image, prompt in zip(images, prompts):
            rng = np.random.default_rng(
                [self.seed, sample_seed(prompt, image)])
            draws.append(rng.uniform(-1, 1, tuple(size) + (3, )))
        draws = torch.from_numpy(np.stack(draws)).permute(0, 3, 1, 2)
        return draws.to(self.device, torch.float32)

    def min_min(self, images, targets, budgets, noise):
        """EM's loop on one group; returns the unit-range noise.

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
        if self.rounds and labelled.any():
            self.accuracies.append(accuracy.item())
        return noise.detach()

    def to_craft(self, images, targets, budgets):
        """The images, targets and budgets at the crafting resolution.

        Sides are padded (edge values; ignored targets) up to a multiple of
        ``craft_stride`` s; each s x s block becomes one pixel: the mean of
        its image and budget values, the target of its first pixel.

        Args:
            images (Tensor): (B, 3, H, W) in [0, 1].
            targets (Tensor): (B, H, W) class ids.
            budgets (Tensor): (B, 1, H, W) L-inf budget per pixel.

        Returns:
            tuple[Tensor]: (B, 3, h, w), (B, h, w) and (B, 1, h, w), with
            h = ceil(H / s), w = ceil(W / s).
        """
        stride = self.craft_stride
        if stride == 1:
            return images, targets, budgets
        height, width = images.shape[-2:]
        pad = (0, -width % stride, 0, -height % stride)
        images = F.avg_pool2d(F.pad(images, pad, mode='replicate'), stride)
        budgets = F.avg_pool2d(F.pad(budgets, pad, mode='replicate'), stride)
        return images, targets[:, ::stride, ::stride], budgets

    def from_craft(self, noise, height, width):
        """(B, 3, h, w) crafted noise held over its s x s blocks and
        cropped: (B, 3, height, width)."""
        stride = self.craft_stride
        noise = noise.repeat_interleave(stride, 2).repeat_interleave(stride, 3)
        return noise[..., :height, :width]

    def craft(self, images, prompts):
        """Noise of one group of same-sized images, crafted together.

        Args:
            images (list[np.ndarray]): uint8 (H, W, 3) RGB images.
            prompts (list[Prompt]): Their prompts, with labels.

        Returns:
            Tensor: (B, H, W, 3) noise in [-1, 1].
        """
        if self.reset_surrogate:
            self.surrogate.load_state_dict(self.initial_state)
            self.optimizer = self.build_optimizer()
        height, width = images[0].shape[:2]
        batch = torch.from_numpy(np.stack(images)).to(self.device)
        batch = batch.permute(0, 3, 1, 2).float() / 255
        targets, budgets = self.targets_of(prompts, (height, width))
        batch, targets, budgets = self.to_craft(batch, targets, budgets)
        noise = self.min_min(batch, targets, budgets,
                             self.start(images, prompts, batch.shape[-2:]))
        return self.from_craft(noise, height, width).permute(0, 2, 3, 1)

    def generate(self, images, prompts):
        outputs = [None] * len(images)
        by_shape = {}
        for index, image in enumerate(images):
            by_shape.setdefault(image.shape, []).append(index)
        for indices in by_shape.values():
            for start in range(0, len(indices), self.batch_size):
                group = indices[start:start + self.batch_size]
                noise = self.craft([images[i] for i in group],
                                   [prompts[i] for i in group])
                for index, unit in zip(group, noise):
                    outputs[index] = unit.cpu().numpy()
        return outputs
