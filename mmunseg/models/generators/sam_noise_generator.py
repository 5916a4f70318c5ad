import re

import torch
from mmengine.logging import print_log
from mmengine.model import BaseModule
from segment_anything.modeling import MaskDecoder

from mmunseg.registry import MODELS
from mmunseg.utils import extract_state_dict, load_checkpoint_file
from ..sam.builder import (build_image_encoder, build_prompt_encoder,
                           build_two_way_transformer, resolve_arch)
from ..sam.encoder import (IMAGENET_MEAN, IMAGENET_STD, embed_prompts,
                           encode_with_early_feature, normalize)
from .noise_head import UnSegNoiseHead

SAM_PARTS = ('image_encoder', 'prompt_encoder', 'mask_decoder')
# The released UnSeg generator keeps its head inside the mask decoder.
OFFICIAL_HEAD_PREFIX = 'mask_decoder.noise_'


def official_to_own(key):
    """Key of the released generator's head in this package's layout."""
    if key.startswith(OFFICIAL_HEAD_PREFIX):
        return 'noise_head.' + key[len('mask_decoder.'):]
    return key


@MODELS.register_module()
class SAMNoiseGenerator(BaseModule):
    """The UnSeg noise generator: SAM plus a trainable noise head.

    One forward pass maps an image and a prompt of the object to protect to a
    unit-range noise map at a quarter of the input size. The budget (object
    and background epsilon) is applied outside, by the caller.

    Args:
        arch (str | dict): SAM size, see :func:`resolve_arch`.
        img_size (int): Square input size (1024 for the paper).
        num_noise_tokens (int): Output channels (3, RGB).
        token_slice (str): ``'official'`` (default, the released code) or
            ``'fixed'``; see :class:`UnSegNoiseHead`.
        trainable_sam_parts (Sequence[str]): SAM parts trained together with
            the noise head (subset of ``image_encoder``, ``prompt_encoder``,
            ``mask_decoder``). Empty for a pretrained SAM, as in the paper; a
            randomly initialised SAM may be worth training.
        sam_checkpoint (str, optional): SAM weights in the official layout
            (``sam_vit_b_01ec64.pth``), loaded by :meth:`init_weights`.
        num_codes (int): Object codes of the noise head (0: none, the
            paper); see :class:`UnSegNoiseHead`.
        texture_period (int): Texture bank of the noise head (0: none).
        image_features (bool): The head reads SAM's features (True, the
            paper) or is a code book of textures (False), see
            :class:`UnSegNoiseHead`.
        texture_init (str): How a code book starts (``'random'`` or
            ``'gratings'``), see :class:`UnSegNoiseHead`.
        dc_free (bool): The noise carries no per-channel mean within a
            region: whoever applies the budget first removes it with
            :func:`mmunseg.models.budget.remove_dc` (so the generator cannot
            express a constant colour cast). False in the paper.
        init_cfg (dict, optional): MMEngine initialisation config.
    """

    def __init__(self,
                 arch='vit_b',
                 img_size=1024,
                 num_noise_tokens=3,
                 token_slice='official',
                 trainable_sam_parts=(),
                 sam_checkpoint=None,
                 num_codes=0,
                 texture_period=0,
                 image_features=True,
                 texture_init='random',
                 dc_free=False,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        unknown = set(trainable_sam_parts) - set(SAM_PARTS)
        if unknown:
            raise ValueError(f'trainable_sam_parts {sorted(unknown)} are not '
                             f'SAM parts {SAM_PARTS}')
        arch = resolve_arch(arch)
        self.img_size = img_size
        self.sam_checkpoint = sam_checkpoint
        self.trainable_sam_parts = tuple(trainable_sam_parts)
        self.dc_free = dc_free
        self.early_index = arch['global_attn_indexes'][0]
        self.image_encoder = build_image_encoder(arch, img_size)
        self.prompt_encoder = build_prompt_encoder(arch, img_size)
        self.mask_decoder = MaskDecoder(
            transformer_dim=arch['prompt_embed_dim'],
            transformer=build_two_way_transformer(arch),
            num_multimask_outputs=3)
        self.noise_head = UnSegNoiseHead(
            vit_dim=arch['embed_dim'],
            transformer_dim=arch['prompt_embed_dim'],
            num_noise_tokens=num_noise_tokens,
            num_sam_tokens=1 + self.mask_decoder.num_mask_tokens,
            token_slice=token_slice,
            num_codes=num_codes,
            texture_period=texture_period,
            image_features=image_features,
            texture_init=texture_init)
        self.register_buffer('pixel_mean', IMAGENET_MEAN.clone(), False)
        self.register_buffer('pixel_std', IMAGENET_STD.clone(), False)
        self.freeze_sam()

    @property
    def num_codes(self):
        """Object codes the noise head knows (0: none)."""
        return self.noise_head.num_codes

    @property
    def noise_size(self):
        """Side of the square noise map: a quarter of the input."""
        return self.img_size // 4

    def freeze_sam(self):
        """Freeze the SAM parts not listed in ``trainable_sam_parts``."""
        for name in SAM_PARTS:
            trainable = name in self.trainable_sam_parts
            for param in getattr(self, name).parameters():
                param.requires_grad_(trainable)

    def init_weights(self):
        super().init_weights()
        if self.sam_checkpoint is not None:
            self.load_weights(self.sam_checkpoint)

    def load_weights(self, path):
        """Load SAM or generator weights from ``path``, by its layout.

        Understood layouts: the official SAM file (``image_encoder.*``,
        ``prompt_encoder.*``, ``mask_decoder.*``), the released UnSeg
        generator (head under ``mask_decoder.noise_*``), an exported
        generator (``noise_head.*`` and optionally the SAM parts) and an
        MMEngine training checkpoint (everything under ``generator.``).
        SAM parts present in the file must match exactly: a missing or
        mis-shaped tensor is an error, never skipped silently.

        Returns:
            set[str]: The top-level parts that were loaded.
        """
        state = extract_state_dict(load_checkpoint_file(path), path)
        # A training checkpoint: the generator under 'generator.' (and
        # 'generator.module.' when saved from a wrapped, distributed model).
        training = re.compile(r'^generator\.(module\.)?')
        if any(training.match(key) for key in state):
            state = {
                training.sub('', key): value
                for key, value in state.items() if training.match(key)
            }
        state = {official_to_own(key): value for key, value in state.items()}
        parts = {key.split('.', 1)[0] for key in state}
        known = set(SAM_PARTS) | {'noise_head'}
        if not parts & known:
            raise ValueError(
                f'unknown checkpoint layout in {path}: no key starts with '
                f'{sorted(known)} (or "generator." / "{OFFICIAL_HEAD_PREFIX}")'
                f'; first keys: {sorted(state)[:5]}')
        own = self.state_dict()
        expected = [
            key for key in own if key.split('.', 1)[0] in parts
            & known and not key.startswith('pixel_')
        ]
        missing = [key for key in expected if key not in state]
        mismatched = [
            f'{key}: file {tuple(state[key].shape)} vs model '
            f'{tuple(own[key].shape)}' for key in expected
            if key in state and state[key].shape != own[key].shape
        ]
        if missing or mismatched:
            raise ValueError(
                f'checkpoint {path} does not fit this generator (wrong SAM '
                f'size or img_size?): {len(missing)} missing keys '
                f'{missing[:5]}, {len(mismatched)} mismatched shapes '
                f'{mismatched[:5]}')
        ignored = sorted(set(state) - set(own))
        self.load_state_dict({key: state[key]
                              for key in expected},
                             strict=False)
        print_log(
            f'loaded {sorted(parts & known)} from {path}' +
            (f'; ignored {len(ignored)} keys such as {ignored[:3]}'
             if ignored else ''),
            logger='current')
        return parts & known

    def encode_image(self, images):
        """Encode [0, 1] images; no autograd graph when the encoder is frozen.

        Args:
            images (Tensor): (B, 3, S, S) in [0, 1].

        Returns:
            tuple[Tensor, Tensor]: Image embedding (B, C, S/16, S/16) and the
            early ViT feature (B, C_vit, S/16, S/16).
        """
        trainable = 'image_encoder' in self.trainable_sam_parts
        with torch.set_grad_enabled(torch.is_grad_enabled() and trainable):
            return encode_with_early_feature(
                self.image_encoder,
                normalize(images, self.pixel_mean, self.pixel_std),
                self.early_index)

    def forward(self, images, points=None, boxes=None, masks=None, codes=None):
        """Generate unit-range noise for a batch of prompted images.

        Args:
            images (Tensor): (B, 3, S, S) in [0, 1], zero-padded squares.
            points (tuple[Tensor, Tensor], optional): Coordinates (B, N, 2)
                as (x, y) in input pixels and labels (B, N), 1 = object.
            boxes (Tensor, optional): (B, 4) xyxy in input pixels.
            masks (Tensor, optional): (B, 1, S/4, S/4) mask prompts, 0 / 255.
            codes (Tensor, optional): (B, ) int64 object codes, for a head
                with ``num_codes``.

        Returns:
            Tensor: Noise in (-1, 1), (B, num_noise_tokens, S/4, S/4).
        """
        if images.shape[-2:] != (self.img_size, self.img_size):
            raise ValueError(f'generator input must be {self.img_size}x'
                             f'{self.img_size}, got {tuple(images.shape)}')
        if not self.noise_head.image_features:
            if codes is None:
                codes = images.new_ones(images.shape[0], dtype=torch.long)
            return self.noise_head.code_book(codes, self.noise_size)
        embedding, vit_feature = self.encode_image(images)
        batch = embedding.shape[0]
        sparse, dense = embed_prompts(self.prompt_encoder, batch, points,
                                      boxes, masks)
        decoder = self.mask_decoder
        tokens = torch.cat([
            decoder.iou_token.weight, decoder.mask_tokens.weight,
            self.noise_head.noise_token.weight
        ])
        tokens = torch.cat([tokens.unsqueeze(0).expand(batch, -1, -1), sparse],
                           dim=1)
        pos = self.prompt_encoder.get_dense_pe().expand(batch, -1, -1, -1)
        token_outputs, src = decoder.transformer(embedding + dense, pos,
                                                 tokens)
        src = src.transpose(1, 2).reshape(embedding.shape)
        mask_feature = decoder.output_upscaling(src)
        return self.noise_head(token_outputs, mask_feature, embedding,
                               vit_feature, codes)
