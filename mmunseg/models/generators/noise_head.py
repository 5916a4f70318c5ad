from typing import Optional, Sequence

import torch
import torch.nn as nn
from segment_anything.modeling.common import LayerNorm2d
from segment_anything.modeling.mask_decoder import MLP
from torch import Tensor

from mmunseg.registry import MODELS

# Where the noise tokens' outputs are read in the decoder's token sequence
# [iou_token, mask_tokens (4), noise_tokens (3), prompt tokens...].
# 'official' reproduces the released code, which reads positions 4..6 (SAM's
# last mask token and noise tokens 0 and 1; the iou token is not counted);
# 'fixed' reads the noise tokens themselves, positions 5..7.
TOKEN_SLICES = ('official', 'fixed')

# Colour sign vectors (R, G, B) of the code book's gratings: codes sharing a
# grating differ in colour, luma-only first, then the chromatic ones (R and
# B against G; green, the largest part of luma, stays positive).
GRATING_COLOURS = ((1, 1, 1), (-1, 1, -1), (1, 1, -1), (-1, 1, 1))
# The same four ordered by the luma a grey conversion keeps (1.0, 0.77,
# 0.40, 0.17 of the amplitude).
LUMA_GRATING_COLOURS = ((1, 1, 1), (1, 1, -1), (-1, 1, 1), (-1, 1, -1))
# The chromatic ones first (green-magenta, yellow-blue, cyan-red), grey last,
# so the first twelve codes all carry a colour texture. Measured on a
# colour-jittered CamVid victim it protects less than the default order
# (yellow-blue, an axis natural images vary along, makes weak codes).
CHROMA_GRATING_COLOURS = ((-1, 1, -1), (1, 1, -1), (-1, 1, 1), (1, 1, 1))


def _upsample_branch(in_channels, mid_channels, out_channels):
    """Conv3x3 -> LN -> GELU -> ConvT2x2 -> LN -> GELU -> ConvT2x2 (4x up)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, in_channels, 3, padding=1),
        LayerNorm2d(in_channels), nn.GELU(),
        nn.ConvTranspose2d(in_channels, mid_channels, 2, stride=2),
        LayerNorm2d(mid_channels), nn.GELU(),
        nn.ConvTranspose2d(mid_channels, out_channels, 2, stride=2))


@MODELS.register_module()
class UnSegNoiseHead(nn.Module):
    """The trainable head of the UnSeg generator (HQ-SAM-like).

    Noise tokens join SAM's decoder tokens; their outputs go through
    per-token hypernetwork MLPs and are multiplied with a fused feature map
    (SAM's up-scaled mask feature + the image embedding + an early ViT
    feature), giving one noise channel per token.

    Args:
        vit_dim (int): Channels of the ViT blocks (768 for ViT-B).
        transformer_dim (int): Channels of SAM's decoder (256).
        num_noise_tokens (int): Noise tokens, one per output channel (3).
        num_sam_tokens (int): SAM's decoder tokens before the noise tokens
            (1 iou token + 4 mask tokens).
        token_slice (str): ``'official'`` or ``'fixed'``, see
            :data:`TOKEN_SLICES`.
        num_codes (int): Object codes (0: none, the paper). With codes, a
            learned embedding of the prompt's code (0 = background,
            1..num_codes = objects) joins the hypernetworks' input, so each
            code (e.g. each class of a semantic dataset) gets its own noise.
        texture_period (int): Side, in noise pixels, of a learned texture
            bank tiled over the noise map and added to the fused feature
            (0: none, the paper). It gives the hypernetworks patterns that
            do not depend on the image, so one code paints the same texture
            family in every image.
        image_features (bool): Read SAM's features (the paper). False
            makes the head a learnt code book: each code's noise is its own
            learnt mix of the texture bank, the same in every image (needs
            ``num_codes`` and ``texture_period``); the generator then skips
            SAM altogether.
        texture_init (str): ``'random'`` (Gaussian texture bank and mixes)
            or ``'gratings'`` (code book only): channel ``j`` of the bank
            starts as an oriented sine grating that tiles the period, and
            code ``c`` as grating ``c mod C`` with its own colour sign
            vector, the hand-made class code that a victim is known to
            learn (shared docs, efficacy notes), for training to refine.
        grating_periods (Sequence[int], optional): Periods, in noise pixels,
            of the initial gratings: channel ``j`` gets orientation ``j mod
            4`` and period ``grating_periods[(j // 4) mod len]``, and the
            codes cycle through these ``4 * len`` distinct gratings before
            changing colour. Each must divide ``texture_period`` and be at
            least 3 (a 2-pixel sine samples to zero). None keeps the rule of
            :meth:`init_gratings` (``2 + 2 * (j // 4)`` cycles per period).
        grating_colours (Sequence[Sequence[int]], optional): The colour sign
            vectors (R, G, B of +-1) that codes sharing a grating take in
            turn; None keeps :data:`GRATING_COLOURS`. A grey conversion
            keeps ``|0.299 R + 0.587 G + 0.114 B|`` of a code's amplitude
            (1.0, 0.77, 0.40 or 0.17); an order by luma
            (:data:`LUMA_GRATING_COLOURS`) keeps more of the first codes'
            amplitude in grey (measured on CamVid, it does not stop a
            victim trained on grey copies from learning the classes:
            ``benchmarks/results/README.md``); :data:`CHROMA_GRATING_COLOURS`
            gives the first twelve codes a colour texture each.
    """

    def __init__(self,
                 vit_dim=768,
                 transformer_dim=256,
                 num_noise_tokens=3,
                 num_sam_tokens=5,
                 token_slice='official',
                 num_codes=0,
                 texture_period=0,
                 image_features=True,
                 texture_init='random',
                 grating_periods=None,
                 grating_colours=None):
        super().__init__()
        if num_codes < 0 or texture_period < 0:
            raise ValueError('num_codes and texture_period must be >= 0, got '
                             f'{num_codes} and {texture_period}')
        if texture_init not in ('random',
                                'gratings') or (texture_init == 'gratings'
                                                and image_features):
            raise ValueError('texture_init must be "random", or "gratings" '
                             f'for a code book, got {texture_init!r}')
        if not image_features and not (num_codes and texture_period):
            raise ValueError('a code book head (image_features=False) needs '
                             'num_codes and texture_period')
        if grating_periods is not None and not (
                texture_init == 'gratings' and grating_periods
                and all(p >= 3 and texture_period % p == 0
                        for p in grating_periods)):
            raise ValueError('grating_periods needs texture_init="gratings" '
                             'and periods >= 3 that divide texture_period '
                             f'{texture_period}, got {grating_periods!r}')
        if grating_colours is not None and not (
                texture_init == 'gratings' and grating_colours and all(
                    len(c) == 3 and all(v in (-1, 1) for v in c)
                    for c in grating_colours)):
            raise ValueError('grating_colours needs texture_init="gratings" '
                             'and sign vectors of three +-1, got '
                             f'{grating_colours!r}')
        if token_slice not in TOKEN_SLICES:
            raise ValueError(f'token_slice must be one of {TOKEN_SLICES}, '
                             f'got {token_slice!r}')
        feat_dim = transformer_dim // 8
        self.num_noise_tokens = num_noise_tokens
        self.num_sam_tokens = num_sam_tokens
        self.token_slice = token_slice
        self.image_features = image_features
        self.num_codes = num_codes
        self.texture_period = texture_period
        # Parameter names keep 'noise': the paper's rule for what trains.
        if texture_period:
            self.noise_texture = nn.Parameter(
                torch.randn(feat_dim, texture_period, texture_period))
        if not image_features:
            # Each code mixes the texture bank with its own weights, drawn
            # so that codes start nearly orthogonal and tanh mostly
            # saturated (std 3 before it): distinct, full-budget patterns.
            self.noise_code_mix = nn.Parameter(
                torch.randn(num_codes + 1, num_noise_tokens, feat_dim) * 3 /
                feat_dim**0.5)
            if texture_init == 'gratings':
                self.init_gratings(grating_periods, grating_colours)
            return
        self.noise_token = nn.Embedding(num_noise_tokens, transformer_dim)
        self.noise_mlp = nn.ModuleList(
            MLP(transformer_dim, transformer_dim, feat_dim, 3)
            for _ in range(num_noise_tokens))
        self.noise_compress_vit_feat = _upsample_branch(
            vit_dim, transformer_dim, feat_dim)
        self.noise_embedding_encoder = _upsample_branch(
            transformer_dim, transformer_dim // 4, feat_dim)
        self.noise_embedding_maskfeature = nn.Sequential(
            nn.Conv2d(feat_dim, feat_dim * 2, 3, padding=1),
            LayerNorm2d(feat_dim * 2), nn.GELU(),
            nn.Conv2d(feat_dim * 2, feat_dim, 3, padding=1))
        if num_codes:
            self.noise_code_embedding = nn.Embedding(num_codes + 1,
                                                     transformer_dim)
        self.init_weights()

    def init_weights(self) -> None:
        """Xavier-uniform on the noise tokens and every (transposed) conv;
        a code book keeps the draw of its construction."""
        if not self.image_features:
            return
        nn.init.xavier_uniform_(self.noise_token.weight)
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.xavier_uniform_(module.weight)

    def select_token_outputs(self, token_outputs: Tensor) -> Tensor:
        """Pick the outputs the hypernetworks read, (B, num_noise, C)."""
        start = self.num_sam_tokens
        if self.token_slice == 'official':
            start -= 1
        return token_outputs[:, start:start + self.num_noise_tokens]

    @torch.no_grad()
    def init_gratings(
            self,
            periods: Optional[Sequence[int]] = None,
            colours: Optional[Sequence[Sequence[int]]] = None) -> None:
        """Oriented gratings in the bank, one grating and colour per code.

        Grating ``j`` runs along one of four orientations (0, 90, 45, 135
        degrees, ``j mod 4``) with ``2 + 2 * (j // 4)`` cycles per texture
        period, or with period ``periods[(j // 4) mod len(periods)]`` noise
        pixels when ``periods`` is given. Code ``c`` reads grating ``c mod
        G`` of the ``G`` distinct ones through a colour sign vector (green,
        the largest part of luma, always positive so the code survives grey
        conversion); codes ``c`` and ``c + G`` share a grating with another
        colour. Channels beyond the ``G`` distinct gratings hold them a
        quarter cycle shifted, room for training to move their phase.

        Args:
            periods (Sequence[int], optional): Grating periods in noise
                pixels, see the class's ``grating_periods``.
            colours (Sequence[Sequence[int]], optional): Colour sign
                vectors, see the class's ``grating_colours``.
        """
        channels, period = self.noise_texture.shape[:2]
        distinct = channels if periods is None else min(
            channels, 4 * len(periods))
        y, x = torch.meshgrid(
            torch.arange(period), torch.arange(period), indexing='ij')
        directions = ((1, 0), (0, 1), (1, 1), (1, -1))
        for j in range(channels):
            dx, dy = directions[j % 4]
            if periods is None:
                cycles = 2 * (1 + j // 4)
            else:
                cycles = period // periods[(j // 4) % len(periods)]
            # Given periods, sample an eighth of a cycle off the zeros: a
            # 4-pixel sine then reads (1, 1, -1, -1) / sqrt 2, not (0, 1, 0,
            # -1), twice the energy once tanh saturates.
            shift = torch.pi / 2 * ((j // distinct) % 2) + (
                0. if periods is None else torch.pi / 4)
            phase = 2 * torch.pi * cycles * (dx * x + dy * y) / period
            self.noise_texture[j] = torch.sin(phase + shift) * 2**0.5
        colours = GRATING_COLOURS if colours is None else colours
        mix = torch.zeros_like(self.noise_code_mix)
        for code in range(len(mix)):
            signs = colours[(code // distinct) % len(colours)]
            for channel in range(mix.shape[1]):
                mix[code, channel, code % distinct] = 3. * signs[channel % 3]
        self.noise_code_mix.copy_(mix)

    def tiled_texture(self, height: int, width: int) -> Tensor:
        """The texture bank repeated over a (C/8, height, width) map."""
        period = self.texture_period
        reps = (-(-height // period), -(-width // period))
        return self.noise_texture.repeat(1, *reps)[:, :height, :width]

    def forward(self,
                token_outputs: Tensor,
                mask_feature: Tensor,
                image_embedding: Tensor,
                vit_feature: Tensor,
                codes: Optional[Tensor] = None) -> Tensor:
        """Predict the unit-range noise.

        Args:
            token_outputs (Tensor): Decoder token outputs, (B, T, C).
            mask_feature (Tensor): SAM's up-scaled mask feature,
                (B, C/8, 4h, 4w).
            image_embedding (Tensor): Encoder output, (B, C, h, w).
            vit_feature (Tensor): Early global-attention block output,
                (B, C_vit, h, w).
            codes (Tensor, optional): (B, ) int64 code of each prompt, in
                [0, num_codes]; 1 (the first object code) when omitted.

        Returns:
            Tensor: Noise in (-1, 1), (B, num_noise_tokens, 4h, 4w).
        """
        fused = (
            self.noise_embedding_maskfeature(mask_feature) +
            self.noise_embedding_encoder(image_embedding) +
            self.noise_compress_vit_feat(vit_feature))
        if self.texture_period:
            fused = fused + self.tiled_texture(*fused.shape[-2:])
        return self.mix(self.select_token_outputs(token_outputs), fused, codes)

    def code_book(self, codes: Tensor, size: int) -> Tensor:
        """The noise of a code book head (``image_features=False``).

        Args:
            codes (Tensor): (B, ) int64 codes in [0, num_codes].
            size (int): Side of the noise map.

        Returns:
            Tensor: Noise in (-1, 1), (B, num_noise_tokens, size, size).
        """
        self.check_codes(codes)
        texture = self.tiled_texture(size, size)
        noise = self.noise_code_mix[codes] @ texture.reshape(
            texture.shape[0], -1)
        return torch.tanh(noise).reshape(len(codes), -1, size, size)

    def check_codes(self, codes: Tensor) -> None:
        if codes.min() < 0 or codes.max() > self.num_codes:
            raise ValueError(f'codes must be in [0, {self.num_codes}], '
                             f'got {codes.tolist()}')

    def mix(self, tokens: Tensor, fused: Tensor,
            codes: Optional[Tensor]) -> Tensor:
        """Hypernetworks of the (coded) tokens times the fused feature.

        Args:
            tokens (Tensor): (B, num_noise_tokens, C) token features.
            fused (Tensor): (B, C/8, H, W) fused feature.
            codes (Tensor, optional): (B, ) codes, see :meth:`forward`.

        Returns:
            Tensor: Noise in (-1, 1), (B, num_noise_tokens, H, W).
        """
        if self.num_codes:
            if codes is None:
                codes = tokens.new_ones(tokens.shape[0], dtype=torch.long)
            self.check_codes(codes)
            tokens = tokens + self.noise_code_embedding(codes)[:, None]
        elif codes is not None:
            raise ValueError('codes given to a noise head without codes '
                             '(num_codes=0)')
        hyper = torch.stack(
            [mlp(tokens[:, i]) for i, mlp in enumerate(self.noise_mlp)], dim=1)
        b, c, h, w = fused.shape
        noise = hyper @ fused.reshape(b, c, h * w)
        return torch.tanh(noise).reshape(b, -1, h, w)
