import re
from typing import Optional, Set, Tuple

import torch
from segment_anything.modeling import MaskDecoder, Sam
from torch import Tensor

from mmunseg.registry import MODELS
from ..sam.builder import (build_image_encoder, build_prompt_encoder,
                           build_two_way_transformer, resolve_arch)
from ..sam.encoder import (IMAGENET_MEAN, IMAGENET_STD, embed_prompts,
                           encode_with_early_feature, normalize)
from ..weights import load_parts, read_state_dict
from .base import NoiseGenerator

SAM_PARTS = ('image_encoder', 'prompt_encoder', 'mask_decoder')
# The released UnSeg generator keeps its head inside the mask decoder.
OFFICIAL_HEAD_PREFIX = 'mask_decoder.noise_'
# A training checkpoint holds the generator under 'generator.' (and
# 'generator.module.' when saved from a wrapped, distributed model).
TRAINING_PREFIX = re.compile(r'^generator\.(module\.)?')


def official_to_own(key: str) -> str:
    """Key of the released generator's head in this package's layout."""
    if key.startswith(OFFICIAL_HEAD_PREFIX):
        return 'noise_head.' + key[len('mask_decoder.'):]
    return key


@MODELS.register_module()
class SAMNoiseGenerator(NoiseGenerator):
    """The UnSeg noise generator: SAM plus a trainable noise head.

    One forward pass maps an image and a prompt of the object to protect to a
    unit-range noise map at a quarter of the input size. The budget (object
    and background epsilon) is applied outside, by the caller.

    Args:
        arch (str | dict): SAM size, see :func:`resolve_arch`.
        img_size (int): Square input size (1024 for the paper).
        noise_head (dict, optional): Config of the noise head,
            ``dict(type='UnSegNoiseHead')`` by default; its sizes that SAM
            fixes (``vit_dim``, ``transformer_dim``, ``num_sam_tokens``) are
            filled in from ``arch``.
        trainable_sam_parts (Sequence[str]): SAM parts trained together with
            the noise head (subset of ``image_encoder``, ``prompt_encoder``,
            ``mask_decoder``). Empty for a pretrained SAM, as in the paper; a
            randomly initialised SAM may be worth training.
        sam_checkpoint (str, optional): SAM weights in the official layout
            (``sam_vit_b_01ec64.pth``), loaded by :meth:`init_weights`.
        dc_free (bool): The noise carries no per-channel mean within a
            region: whoever applies the budget first removes it with
            :func:`mmunseg.models.budget.remove_dc` (so the generator cannot
            express a constant colour cast). False in the paper.
        init_cfg (dict, optional): MMEngine initialisation config.
        **head_args: Arguments of the noise head given flat
            (``num_noise_tokens``, ``token_slice``, ``num_codes``,
            ``texture_period``, ``image_features``, ``texture_init``,
            ``grating_periods``, ``grating_colours``), as configs and saved
            checkpoints (whose configs protection reads) did before the head
            had its own config; they join ``noise_head``.
    """

    def __init__(self,
                 arch='vit_b',
                 img_size=1024,
                 noise_head=None,
                 trainable_sam_parts=(),
                 sam_checkpoint=None,
                 dc_free=False,
                 init_cfg=None,
                 **head_args):
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
        head_cfg = dict(noise_head or dict(type='UnSegNoiseHead'))
        both = set(head_cfg) & set(head_args)
        if both:
            raise ValueError(f'noise head arguments {sorted(both)} given both '
                             'flat and in noise_head')
        head_cfg.update(head_args)
        head_cfg.setdefault('_scope_', 'mmunseg')
        head_cfg.setdefault('vit_dim', arch['embed_dim'])
        head_cfg.setdefault('transformer_dim', arch['prompt_embed_dim'])
        head_cfg.setdefault('num_sam_tokens',
                            1 + self.mask_decoder.num_mask_tokens)
        self.noise_head = MODELS.build(head_cfg)
        self.register_buffer('pixel_mean', IMAGENET_MEAN.clone(), False)
        self.register_buffer('pixel_std', IMAGENET_STD.clone(), False)
        self.freeze_sam()

    @property
    def num_codes(self) -> int:
        """Object codes the noise head knows (0: none)."""
        return self.noise_head.num_codes

    def freeze_sam(self) -> None:
        """Freeze the SAM parts not listed in ``trainable_sam_parts``."""
        for name in SAM_PARTS:
            trainable = name in self.trainable_sam_parts
            for param in getattr(self, name).parameters():
                param.requires_grad_(trainable)

    def init_weights(self) -> None:
        super().init_weights()
        if self.sam_checkpoint is not None:
            self.load_weights(self.sam_checkpoint)

    def load_weights(self, path: str) -> Set[str]:
        """Load SAM or generator weights from ``path``, by its layout.

        Understood layouts: the official SAM file (``image_encoder.*``,
        ``prompt_encoder.*``, ``mask_decoder.*``), the released UnSeg
        generator (head under ``mask_decoder.noise_*``), an exported
        generator (``noise_head.*`` and optionally the SAM parts) and an
        MMEngine training checkpoint (everything under ``generator.``).
        Parts present in the file must match exactly: a missing or
        mis-shaped tensor is an error, never skipped silently
        (:func:`mmunseg.models.weights.load_parts`).

        Returns:
            set[str]: The top-level parts that were loaded.
        """
        state = read_state_dict(path)
        if any(TRAINING_PREFIX.match(key) for key in state):
            state = {
                TRAINING_PREFIX.sub('', key): value
                for key, value in state.items() if TRAINING_PREFIX.match(key)
            }
        state = {official_to_own(key): value for key, value in state.items()}
        known = set(SAM_PARTS) | {'noise_head'}
        parts = {key.split('.', 1)[0] for key in state} & known
        if not parts:
            raise ValueError(
                f'unknown checkpoint layout in {path}: no key starts with '
                f'{sorted(known)} (or "generator." / "{OFFICIAL_HEAD_PREFIX}")'
                f'; first keys: {sorted(state)[:5]}')
        load_parts({f'{part}.': getattr(self, part)
                    for part in sorted(parts)}, state, path)
        return parts

    def as_sam(self) -> Sam:
        """A ``segment_anything`` ``Sam`` sharing this generator's (frozen)
        SAM parts, for SAM's automatic masks."""
        # SAM normalises 0..255 images: the ImageNet statistics x 255.
        return Sam(self.image_encoder, self.prompt_encoder, self.mask_decoder,
                   [123.675, 116.28, 103.53], [58.395, 57.12, 57.375])

    def encode_image(self, images: Tensor) -> Tuple[Tensor, Tensor]:
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

    def forward(self,
                images: Tensor,
                points: Optional[Tuple[Tensor, Tensor]] = None,
                boxes: Optional[Tensor] = None,
                masks: Optional[Tensor] = None,
                codes: Optional[Tensor] = None) -> Tensor:
        """Noise in (-1, 1), (B, num_noise_tokens, S/4, S/4), of prompted
        (B, 3, S, S) images: arguments as in :meth:`NoiseGenerator.forward`.

        SAM's decoder runs with the noise tokens among its own; the noise
        head reads their outputs (a code-book head skips SAM altogether).
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
