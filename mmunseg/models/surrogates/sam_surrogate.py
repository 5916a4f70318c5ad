from typing import Optional, Tuple

from mmengine.model import BaseModule
from torch import Tensor

from mmunseg.registry import MODELS
from ..sam.builder import (build_image_encoder, build_prompt_encoder,
                           build_two_way_transformer, resolve_arch)
from ..sam.encoder import IMAGENET_MEAN, IMAGENET_STD, embed_prompts, normalize
from ..weights import load_parts, read_state_dict
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
    def mask_prompt_size(self) -> int:
        """Side of the mask prompt: 4x the image embedding."""
        return self.img_size // 4

    def init_weights(self) -> None:
        super().init_weights()
        if self.encoder_checkpoint is not None:
            self.load_encoder(self.encoder_checkpoint)

    def load_encoder(self, path: str) -> None:
        """Load image-encoder weights, under ``image_encoder.`` or bare.

        Tensors the file lacks keep their initialisation (reported); shape
        mismatches are errors.
        """
        state = read_state_dict(path)
        prefix = 'image_encoder.'
        if not any(key.startswith(prefix) for key in state):
            prefix = ''
        load_parts({prefix: self.image_encoder},
                   state,
                   path,
                   allow_missing=True)

    def forward(self,
                images: Tensor,
                points: Optional[Tuple[Tensor, Tensor]] = None,
                boxes: Optional[Tensor] = None,
                masks: Optional[Tensor] = None) -> Tensor:
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
