"""Noise methods that ``tools/protect.py`` applies: one interface for the
UnSeg generator and the baselines.

A method maps an image and a prompt of its objects to unit-range noise at the
image's resolution; the budget is applied by the protector, in one place.
"""
import warnings
from dataclasses import dataclass
from typing import List, Optional

import numpy as np
import torch
import torch.nn.functional as F

from mmunseg.registry import MODELS, NOISE_METHODS
from mmunseg.utils import load_checkpoint_file
from .safe_config import parse_config_text


@dataclass
class Prompt:
    """What to protect in one image, in its own pixel coordinates.

    Attributes:
        mask (np.ndarray, optional): (H, W) bool object mask.
        box (np.ndarray, optional): (4, ) xyxy.
        points (np.ndarray, optional): (N, 2) positive (x, y) points.
        labels (np.ndarray, optional): (H, W) int class id of each object
            pixel, -1 elsewhere: what class-wise baselines key their
            noise on.
    """
    mask: Optional[np.ndarray] = None
    box: Optional[np.ndarray] = None
    points: Optional[np.ndarray] = None
    labels: Optional[np.ndarray] = None


class NoiseMethod:
    """Base class: ``generate(images, prompts)`` returns unit-range noise."""

    #: Whether one call may hold several images (it then runs as a batch).
    batched = True

    def generate(self, images: List[np.ndarray],
                 prompts: List[Prompt]) -> List[np.ndarray]:
        """Unit-range noise for each image.

        Args:
            images (list[np.ndarray]): uint8 (H, W, 3) RGB images.
            prompts (list[Prompt]): One prompt per image.

        Returns:
            list[np.ndarray]: float32 (H, W, 3) noise in [-1, 1].
        """
        raise NotImplementedError


def generator_config_from_checkpoint(checkpoint, path):
    """The generator's model config stored in a checkpoint, safely."""
    meta = checkpoint.get('meta', {})
    if isinstance(meta.get('generator_cfg'), dict):
        return meta['generator_cfg']
    if isinstance(meta.get('cfg'), str):
        return parse_config_text(meta['cfg'])['model']['generator']
    raise ValueError(
        f'{path} does not record its generator config (meta.cfg); pass the '
        'training config with --generator-config')


# Autocast dtypes of the generator's network; the noise leaves it in fp32.
PRECISIONS = dict(fp32=None, bf16=torch.bfloat16, fp16=torch.float16)


def autocast_dtype(device, precision):
    """The autocast dtype of ``precision`` on ``device`` (None for fp32).

    Raises:
        ValueError: If ``precision`` is unknown or ``device`` cannot run it.
    """
    if precision not in PRECISIONS:
        raise ValueError(f'precision must be one of {sorted(PRECISIONS)}, '
                         f'got {precision!r}')
    dtype = PRECISIONS[precision]
    if dtype is None:
        return None
    if device.type == 'cuda' and dtype == torch.bfloat16 and (
            not torch.cuda.is_bf16_supported()):
        raise ValueError(f'precision bf16 is not supported by {device} '
                         f'({torch.cuda.get_device_name(device)}); use fp16 '
                         'or fp32')
    # torch disables an unsupported autocast with a warning (or raises):
    # turn both into a clear error rather than silently running fp32.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        try:
            torch.autocast(device.type, dtype=dtype)
        except RuntimeError as error:
            raise ValueError(f'precision {precision} is not supported on '
                             f'{device}: {error}') from error
    disabled = [
        str(w.message) for w in caught if 'autocast' in str(w.message).lower()
    ]
    if disabled:
        raise ValueError(f'precision {precision} is not supported on '
                         f'{device}: {disabled[0]}')
    return dtype


@NOISE_METHODS.register_module()
class UnSegGenerator(NoiseMethod):
    """The trained UnSeg generator: one forward pass per prompted image.

    The paper's procedure: zero-pad to a square S = max(H, W), resize to the
    generator's input, prompt with the object mask (0/255 at a quarter of
    the input), and resize the noise back to S x S before cropping to H x W.

    The fast paths change only how the network runs: ``precision`` autocasts
    it, the noise it returns is cast to fp32 before resizing, and the budget
    is applied by the protector in fp32 as always.

    Args:
        checkpoint (str): A training checkpoint (``epoch_N.pth``) or an
            exported generator file.
        generator_cfg (dict, optional): The generator's model config; read
            from the checkpoint's metadata when omitted.
        device (str): ``cpu`` or ``cuda`` (``cuda:N``).
        antialias (bool): Anti-alias the down-sampling to the input size
            (the released code does not).
        precision (str): ``fp32`` (default), ``bf16`` or ``fp16``: autocast
            dtype of the network. bf16 is the choice on recent GPUs.
        channels_last (bool): Run the network's convolutions in NHWC memory
            layout (faster on tensor-core GPUs).
        compile (bool): ``torch.compile`` the network. The first batch of
            each shape and prompt kind compiles (minutes on a CPU), later
            ones reuse it: worth it for whole datasets, not for a few images.
    """

    def __init__(self,
                 checkpoint,
                 generator_cfg=None,
                 device='cpu',
                 antialias=True,
                 precision='fp32',
                 channels_last=False,
                 compile=False):
        self.device = torch.device(device)
        if self.device.type == 'cuda' and not torch.cuda.is_available():
            raise ValueError(f'device {device!r} requested but CUDA is not '
                             'available')
        for name, value in (('antialias', antialias),
                            ('channels_last', channels_last), ('compile',
                                                               compile)):
            if not isinstance(value, bool):
                raise ValueError(f'{name} must be True or False, got '
                                 f'{value!r}')
        self.autocast_dtype = autocast_dtype(self.device, precision)
        self.precision = precision
        self.channels_last = channels_last
        self.antialias = antialias
        if generator_cfg is None:
            generator_cfg = generator_config_from_checkpoint(
                load_checkpoint_file(checkpoint), checkpoint)
        generator_cfg = dict(generator_cfg)
        generator_cfg['sam_checkpoint'] = None
        # Build in our scope whatever scope the caller has set.
        generator_cfg.setdefault('_scope_', 'mmunseg')
        self.generator = MODELS.build(generator_cfg)
        parts = self.generator.load_weights(checkpoint)
        if 'noise_head' not in parts:
            raise ValueError(f'{checkpoint} holds no trained noise head '
                             f'(found {sorted(parts)})')
        self.generator.to(self.device).eval()
        if channels_last:
            self.generator.to(memory_format=torch.channels_last)
        # The compiled module shares the generator's parameters; the plain
        # module stays available (SAM's automatic masks use its parts).
        self.network = torch.compile(
            self.generator) if compile else self.generator

    @property
    def img_size(self):
        return self.generator.img_size

    def to_input(self, image):
        """Pad to a square and resize: (1, 3, G, G) in [0, 1], and S."""
        height, width = image.shape[:2]
        side = max(height, width)
        tensor = torch.from_numpy(image).to(self.device).permute(2, 0, 1)
        tensor = F.pad(tensor.float() / 255,
                       (0, side - width, 0, side - height))
        return F.interpolate(
            tensor[None], (self.img_size, ) * 2,
            mode='bilinear',
            align_corners=False,
            antialias=self.antialias), side

    def prompt_inputs(self, prompts, sides):
        """Batch the prompts in the generator's frame (all of one kind)."""
        scale = [self.img_size / side for side in sides]
        size = self.generator.noise_size
        kwargs = {}
        if all(p.mask is not None for p in prompts):
            masks = []
            for prompt, side in zip(prompts, sides):
                mask = torch.from_numpy(prompt.mask).to(self.device).float()
                mask = F.pad(
                    mask, (0, side - mask.shape[1], 0, side - mask.shape[0]))
                mask = F.interpolate(
                    mask[None, None], (size, size),
                    mode='bilinear',
                    align_corners=False)
                masks.append(mask.round() * 255)
            kwargs['masks'] = torch.cat(masks)
        if all(p.box is not None for p in prompts):
            kwargs['boxes'] = torch.tensor(
                np.stack([p.box * s for p, s in zip(prompts, scale)]),
                dtype=torch.float32,
                device=self.device)
        if all(p.points is not None for p in prompts):
            coords = torch.tensor(
                np.stack([p.points * s for p, s in zip(prompts, scale)]),
                dtype=torch.float32,
                device=self.device)
            kwargs['points'] = (coords, coords.new_ones(coords.shape[:2]))
        return kwargs

    @torch.inference_mode()
    def forward_network(self, inputs, prompts):
        """The network alone on prepared inputs, with the fast paths.

        Args:
            inputs (Tensor): (B, 3, G, G) in [0, 1].
            prompts (dict): Prompt tensors from :meth:`prompt_inputs`.

        Returns:
            Tensor: fp32 unit-range noise, (B, 3, G/4, G/4).
        """
        if self.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        if self.autocast_dtype is None:
            return self.network(inputs, **prompts)
        with torch.autocast(self.device.type, dtype=self.autocast_dtype):
            noise = self.network(inputs, **prompts)
        return noise.float()

    @torch.inference_mode()
    def generate(self, images, prompts):
        inputs, sides = zip(*(self.to_input(image) for image in images))
        noise = self.forward_network(
            torch.cat(inputs), self.prompt_inputs(prompts, sides))
        outputs = []
        for unit, image, side in zip(noise, images, sides):
            unit = F.interpolate(
                unit[None], (side, side), mode='bilinear',
                align_corners=False)[0]
            height, width = image.shape[:2]
            outputs.append(unit[:, :height, :width].permute(1, 2,
                                                            0).cpu().numpy())
        return outputs


@NOISE_METHODS.register_module()
class UniformNoise(NoiseMethod):
    """Uniform random noise in [-1, 1]: the control at the same budget.

    Args:
        seed (int): Seed of the noise; each image draws its own noise.
    """

    def __init__(self, seed=0):
        self.rng = np.random.default_rng(seed)

    def generate(self, images, prompts):
        return [
            self.rng.uniform(-1, 1, image.shape).astype(np.float32)
            for image in images
        ]
