"""Noise methods that ``tools/protect.py`` applies: one interface for the
UnSeg generator and the baselines.

A method maps an image and a prompt of its objects to unit-range noise at the
image's resolution; the budget is applied by the protector, in one place.
"""
import hashlib
import warnings
from dataclasses import dataclass
from typing import List, Optional

import numpy as np
import torch
import torch.nn.functional as F

from mmunseg.models.budget import remove_dc
from mmunseg.models.generators import NoiseGenerator
from mmunseg.models.generators.generate import generate_noise
from mmunseg.models.sam.encoder import IMAGENET_MEAN, IMAGENET_STD
from mmunseg.registry import MODELS, NOISE_METHODS
from mmunseg.utils import load_checkpoint_file
from .safe_config import check_own_types, parse_config_text


@dataclass
class Prompt:
    """What to protect in one image, in its own pixel coordinates.

    Attributes:
        mask (np.ndarray, optional): (H, W) bool object mask.
        box (np.ndarray, optional): (4, ) xyxy.
        points (np.ndarray, optional): (N, 2) positive (x, y) points.
        labels (np.ndarray, optional): (H, W) int class id of each object
            pixel, -1 elsewhere: what class-wise baselines key their
            noise on (the protector makes it only for methods that declare
            ``needs_labels``).
        class_id (int, optional): The class of a per-class call, whose
            noise counts only inside ``mask``: a generator with object codes
            paints that class's code there.
        key (str, optional): A name that identifies the call: the image's
            path relative to its dataset root (and the object, for the
            per-object calls). Random methods seed each image's draw from
            it (:func:`sample_seed`).
    """
    mask: Optional[np.ndarray] = None
    box: Optional[np.ndarray] = None
    points: Optional[np.ndarray] = None
    labels: Optional[np.ndarray] = None
    class_id: Optional[int] = None
    key: Optional[str] = None


def sample_seed(prompt, image):
    """128 bits that identify one generator call, for seeding its draws.

    Derived from ``prompt.key`` (set by the protector), or from the image's
    pixels when the prompt has no key (a direct call). Draws seeded from it
    are the same in any order, batch, shard or resumed run.

    Args:
        prompt (Prompt, optional): The call's prompt.
        image (np.ndarray): The call's image.

    Returns:
        int: A non-negative integer below ``2 ** 128``.
    """
    if prompt is not None and prompt.key is not None:
        data = prompt.key.encode('utf-8')
    else:
        data = memoryview(np.ascontiguousarray(image)).cast('B')
    return int.from_bytes(hashlib.sha256(data).digest()[:16], 'little')


class NoiseMethod:
    """Base class: ``generate(images, prompts)`` returns unit-range noise.

    A method's noise for an image must not depend on the other images of
    its call, nor on earlier calls, so that any order, batch size, shard or
    resumed run writes the same bytes; methods that cannot promise it say
    so with ``batched`` and ``order_independent`` below. What a method needs
    from a protect run is declared here too, and
    :func:`~mmunseg.protect.dataset_copy.protect_dataset` reads it.
    """

    #: Constructor arguments that take the protect run's value of the same
    #: name unless the method's options set them: any of ``seed``,
    #: ``device``, ``budget`` (a :class:`~mmunseg.models.budget.Budget`) and
    #: ``num_classes`` (the dataset's).
    run_values = ()
    #: Whether the noise depends on ``Prompt.labels`` (the class of each
    #: pixel): such a method cannot take per-object prompts.
    needs_labels = False
    #: Whether the constructor's first argument is a trained generator's
    #: checkpoint (``GENERATOR_CKPT`` of ``tools/protect.py``).
    needs_checkpoint = False

    #: Whether one call may hold several images (it then runs as a batch).
    #: False for methods whose noise depends on the images they are called
    #: with together: the protector then calls them one image at a time.
    batched = True
    #: Whether an image's noise is independent of the calls made before.
    #: False for a method that learns across calls (EM with one surrogate
    #: for the whole dataset); such a run cannot be resumed or sharded.
    order_independent = True
    #: Peak working memory of :meth:`generate` per pixel of one image, in
    #: bytes: the (H, W, 3) float32 noise and a temporary or two (the
    #: baselines' peaks stay within the protector's, see
    #: :mod:`mmunseg.protect.memory`); methods that need more override it
    #: or :meth:`memory_bytes`.
    bytes_per_pixel = 32

    def memory_bytes(self, height, width):
        """Estimated peak memory of :meth:`generate` on one image.

        Args:
            height (int): Image height.
            width (int): Image width.

        Returns:
            int: Bytes.
        """
        return self.bytes_per_pixel * height * width

    def automatic_masks(self):
        """SAM's automatic object masks, for ``--prompt everything``.

        Returns:
            Callable | None: uint8 (H, W, 3) RGB image -> dict of (H, W)
            bool masks by name; None for a method without a SAM.
        """
        return None

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
    if not isinstance(meta, dict):
        raise ValueError(f'{path}: its meta is a {type(meta).__name__}, '
                         'expected a dict')
    if 'generator_cfg' in meta:
        cfg, where = meta['generator_cfg'], 'meta.generator_cfg'
    elif isinstance(meta.get('cfg'), str):
        where = 'meta.cfg'
        try:
            cfg = parse_config_text(meta['cfg'])['model']['generator']
        except (KeyError, TypeError, SyntaxError, ValueError) as error:
            raise ValueError(f'{path}: {where} holds no readable '
                             f'model.generator ({error})') from None
    else:
        raise ValueError(
            f'{path} does not record its generator config (meta.cfg); pass '
            'the training config with --generator-config')
    if not isinstance(cfg, dict):
        raise ValueError(f'{path}: {where} is a {type(cfg).__name__}, '
                         'expected a dict')
    # The file is untrusted: it may name only our own generators and parts,
    # never a dotted path or another scope (which MMEngine would import).
    check_own_types(cfg, f'{path} ({where})', top_level=MODELS)
    return cfg


def fill_batch(value, start, count, size):
    """Rows ``start:start + count`` of a batched value (a tensor, a tuple of
    tensors, or anything else, returned as is), filled up to ``size`` rows
    with copies of the last one."""
    if isinstance(value, tuple):
        return tuple(fill_batch(item, start, count, size) for item in value)
    if not isinstance(value, torch.Tensor):
        return value
    part = value[start:start + count]
    return torch.cat([part] + [part[-1:]] * (size - count))


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


@NOISE_METHODS.register_module(name=['UnSegGenerator', 'unseg'])
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
        forward_batch (int): Calls per forward pass of the network. Every
            pass has exactly this many (the last one filled up with copies):
            float results differ in their last bits between batch shapes,
            which can flip a grey level, and a fixed shape keeps an image's
            noise independent of the images it is batched with, so any
            ``--batch-size``, order, shard or resume writes the same bytes.
            1 (default) for CPUs; 8 or so is faster on a GPU.
    """

    run_values = ('device', )
    needs_checkpoint = True

    def __init__(self,
                 checkpoint,
                 generator_cfg=None,
                 device='cpu',
                 antialias=True,
                 precision='fp32',
                 channels_last=False,
                 compile=False,
                 forward_batch=1):
        self.device = torch.device(device)
        if not isinstance(forward_batch, int) or forward_batch < 1:
            raise ValueError(f'forward_batch must be an int >= 1, got '
                             f'{forward_batch!r}')
        self.forward_batch = forward_batch
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
        kind = generator_cfg.get('type')
        built = MODELS.get(kind) if isinstance(kind, str) else kind
        if not (isinstance(built, type) and issubclass(built, NoiseGenerator)):
            raise ValueError(f'{checkpoint}: the generator config names '
                             f'{kind!r}, not a noise generator')
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

    def automatic_masks(self, points_per_side=16):
        """SAM's automatic masks over the generator's own (frozen) SAM.

        Args:
            points_per_side (int): The grid of point prompts per side.

        Returns:
            Callable: uint8 (H, W, 3) RGB image -> ``{'auto_<i>': (H, W)
            bool mask}``.
        """
        from segment_anything import SamAutomaticMaskGenerator
        from segment_anything.modeling import Sam

        # SAM normalises 0-255 pixels with the statistics the generator's
        # encoder uses in unit range.
        mean, std = ([
            round(value * 255, 3) for value in stats.flatten().tolist()
        ] for stats in (IMAGENET_MEAN, IMAGENET_STD))
        generator = self.generator
        sam = Sam(generator.image_encoder, generator.prompt_encoder,
                  generator.mask_decoder, mean, std).eval()
        amg = SamAutomaticMaskGenerator(sam, points_per_side=points_per_side)

        def objects(image):
            with torch.no_grad():
                masks = amg.generate(image)
            return {
                f'auto_{i}': m['segmentation']
                for i, m in enumerate(masks)
            }

        return objects

    def memory_bytes(self, height, width):
        # The padded S x S square in float32 (and its scaled copy) on the
        # way in, the noise resized back to S x S on the way out.
        return 40 * max(height, width)**2

    def codes(self, prompts):
        """The object code of each prompt, (B, ); None without codes.

        A per-class prompt gets its class's code (``1 + class_id`` modulo
        the codes); any other prompt the first object code, 1.
        """
        num_codes = self.generator.num_codes
        if not num_codes:
            return None
        return torch.tensor([
            1 if p.class_id is None else 1 + p.class_id % num_codes
            for p in prompts
        ],
                            device=self.device)

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
        """The network alone on prepared inputs, ``forward_batch`` calls a
        pass (the last pass filled up with copies of its last call).

        Args:
            inputs (Tensor): (B, 3, G, G) in [0, 1].
            prompts (dict): Prompt tensors from :meth:`prompt_inputs`
                (and ``codes`` for a generator with object codes).

        Returns:
            Tensor: fp32 unit-range noise, (B, 3, G/4, G/4).
        """
        size = self.forward_batch
        outputs = []
        for start in range(0, len(inputs), size):
            count = min(size, len(inputs) - start)
            chunk = {
                key: fill_batch(value, start, count, size)
                for key, value in prompts.items()
            }
            noise = self.run_network(
                fill_batch(inputs, start, count, size), chunk)
            outputs.append(noise[:count])
        return torch.cat(outputs)

    def run_network(self, inputs, prompts):
        """One pass of the network, with the fast paths."""
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
        inputs = torch.cat(inputs)
        tensors = self.prompt_inputs(prompts, sides)
        codes = self.codes(prompts)
        masks = tensors.get('masks')
        whole_image = torch.tensor([p.class_id is None for p in prompts],
                                   device=self.device)
        noise = generate_noise(
            lambda batch, **kwargs: self.forward_network(batch, kwargs),
            inputs, tensors, codes, None if masks is None else masks / 255,
            whole_image)
        outputs = []
        for unit, image, side, prompt in zip(noise, images, sides, prompts):
            unit = F.interpolate(
                unit[None], (side, side), mode='bilinear', align_corners=False)
            height, width = image.shape[:2]
            unit = unit[..., :height, :width]
            if self.generator.dc_free and prompt.mask is not None:
                region = torch.from_numpy(prompt.mask).to(unit)[None, None]
                unit = remove_dc(unit, region)
            outputs.append(unit[0].permute(1, 2, 0).cpu().numpy())
        return outputs


@NOISE_METHODS.register_module(name=['UniformNoise', 'uniform'])
class UniformNoise(NoiseMethod):
    """Uniform random noise in [-1, 1]: the control at the same budget.

    Args:
        seed (int): Seed of the noise; each image draws its own noise from
            the seed and its key (:func:`sample_seed`).
    """

    run_values = ('seed', )

    def __init__(self, seed=0):
        if not isinstance(seed, int) or seed < 0:
            raise ValueError(f'seed must be a non-negative int, got {seed!r}')
        self.seed = seed

    def generate(self, images, prompts):
        outputs = []
        for image, prompt in zip(images, prompts):
            rng = np.random.default_rng(
                [self.seed, sample_seed(prompt, image)])
            outputs.append(rng.uniform(-1, 1, image.shape).astype(np.float32))
        return outputs
