from mmengine.logging import print_log
from mmengine.model import BaseModule

from mmunseg.registry import MODELS
from mmunseg.utils import extract_state_dict, load_checkpoint_file
from ..sam.builder import (build_image_encoder, build_prompt_encoder,
                           build_two_way_transformer, resolve_arch)
from ..sam.encoder import IMAGENET_MEAN, IMAGENET_STD, embed_prompts, normalize
from .scratch_mask_decoder import ScratchMaskDecoder


@MODELS.register_module()
class SAMSurrogate(BaseModule):
    """The UnSeg surrogate: a SAM-shaped segmenter trained from scratch.

    Args:
        arch (str | dict): SAM size, see :func:`resolve_arch`.
        img_size (int): Square input size (512 for the paper).
        num_mask_tokens (int): Mask tokens of the decoder (3).
        encoder_checkpoint (str, optional): Encoder weights (SAM key names,
            e.g. converted MAE) loaded by :meth:`init_weights`. Keys that do
            not fit are reported; random initialisation otherwise.
        init_cfg (dict, optional): MMEngine initialisation config.
    """

    def __init__(self,
                 arch='vit_b',
                 img_size=512,
                 num_mask_tokens=3,
                 encoder_checkpoint=None,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        arch = resolve_arch(arch)
        self.img_size = img_size
        self.encoder_checkpoint = encoder_checkpoint
        self.image_encoder = build_image_encoder(arch, img_size)
        self.prompt_encoder = build_prompt_encoder(arch, img_size)
        self.mask_decoder = ScratchMaskDecoder(
            build_two_way_transformer(arch), arch['prompt_embed_dim'],
            num_mask_tokens)
        self.register_buffer('pixel_mean', IMAGENET_MEAN.clone(), False)
        self.register_buffer('pixel_std', IMAGENET_STD.clone(), False)

    @property
    def mask_prompt_size(self):
        """Side of the mask prompt: 4x the image embedding."""
        return self.img_size // 4

    def init_weights(self):
        super().init_weights()
        if self.encoder_checkpoint is not None:
            self.load_encoder(self.encoder_checkpoint)

    def load_encoder(self, path):
        """Load image-encoder weights; shape mismatches are errors."""
        state = extract_state_dict(load_checkpoint_file(path), path)
        prefix = 'image_encoder.'
        if any(key.startswith(prefix) for key in state):
            state = {
                key[len(prefix):]: value
                for key, value in state.items() if key.startswith(prefix)
            }
        own = self.image_encoder.state_dict()
        mismatched = [
            f'{key}: {tuple(value.shape)} vs {tuple(own[key].shape)}'
            for key, value in state.items()
            if key in own and value.shape != own[key].shape
        ]
        if mismatched:
            raise ValueError(f'encoder checkpoint {path} does not fit the '
                             f'surrogate: {mismatched[:5]}')
        result = self.image_encoder.load_state_dict(state, strict=False)
        print_log(
            f'surrogate encoder from {path}: '
            f'{len(result.missing_keys)} keys missing (kept at init, e.g. '
            f'{result.missing_keys[:3]}), {len(result.unexpected_keys)} '
            f'unexpected (ignored, e.g. {result.unexpected_keys[:3]})',
            logger='current')

    def forward(self, images, points=None, boxes=None, masks=None):
        """Segment the prompted object.

        Args:
            images (Tensor): (B, 3, S, S) in [0, 1].
            points (tuple[Tensor, Tensor], optional): (B, N, 2), (B, N).
            boxes (Tensor, optional): (B, 4) xyxy.
            masks (Tensor, optional): (B, 1, S/4, S/4), 0 / 255.

        Returns:
            Tensor: Mask logits, (B, 1, S/4, S/4).
        """
        embedding = self.image_encoder(
            normalize(images, self.pixel_mean, self.pixel_std))
        sparse, dense = embed_prompts(self.prompt_encoder, embedding.shape[0],
                                      points, boxes, masks)
        return self.mask_decoder(embedding, self.prompt_encoder.get_dense_pe(),
                                 sparse, dense)
