from typing import Optional, Tuple

from mmengine.model import BaseModule
from torch import Tensor

from mmunseg.registry import MODELS
from ..sam.encoder import IMAGENET_MEAN, IMAGENET_STD, normalize


@MODELS.register_module()
class MMSegSurrogate(BaseModule):
    """Any MMSeg segmentor as the surrogate (e.g. a CNN like the victims).

    UnSeg's own surrogate is SAM-shaped and promptable; the victims that the
    noise must defeat are ordinary segmentors trained from scratch. This one
    wraps an MMSeg segmentor built from its config: it segments the whole
    image and ignores prompts, with one output channel for an object logit
    (binary targets) or ``1 + num_codes`` channels for code maps.

    Args:
        segmentor (dict): Config of an MMSeg segmentor whose ``_forward``
            returns the decode head's logits (``mmseg.EncoderDecoder``).
            Its data preprocessor is dropped: images arrive in [0, 1] and
            are normalised here with the ImageNet statistics. Built in
            ``_scope_='mmseg'`` unless the config names another scope.
        img_size (int): Square input size.
        init_cfg (dict, optional): MMEngine initialisation config.
    """

    def __init__(self, segmentor, img_size=128, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        segmentor = dict(segmentor)
        segmentor.pop('data_preprocessor', None)
        # Built in MMSeg's scope, so its parts (backbone, head) resolve
        # there whatever the caller's default scope is.
        segmentor.setdefault('_scope_', 'mmseg')
        self.img_size = img_size
        self.segmentor = MODELS.build(segmentor)
        self.register_buffer('pixel_mean', IMAGENET_MEAN.clone(), False)
        self.register_buffer('pixel_std', IMAGENET_STD.clone(), False)

    @property
    def mask_prompt_size(self) -> int:
        """Side of the (unused) mask prompt, as for the SAM surrogate."""
        return self.img_size // 4

    def forward(self,
                images: Tensor,
                points: Optional[Tuple[Tensor, Tensor]] = None,
                boxes: Optional[Tensor] = None,
                masks: Optional[Tensor] = None) -> Tensor:
        """Segment the images; prompts are accepted and ignored.

        Args:
            images (Tensor): (B, 3, S, S) in [0, 1].

        Returns:
            Tensor: Logits (B, C, h, w) at the decode head's resolution.
        """
        return self.segmentor._forward(
            normalize(images, self.pixel_mean, self.pixel_std))
