import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from segment_anything.modeling.common import LayerNorm2d

from .feature_aggregator import conv_norm_relu


def resampler(channels, scale):
    """Resample a map by ``scale`` (4, 2, 1 or 0.5); returns the module and
    its output width."""
    if scale == 4:
        return nn.Sequential(
            nn.ConvTranspose2d(channels, channels // 2, 2, stride=2),
            LayerNorm2d(channels // 2), nn.GELU(),
            nn.ConvTranspose2d(channels // 2, channels // 4, 2,
                               stride=2)), channels // 4
    if scale == 2:
        return nn.ConvTranspose2d(
            channels, channels // 2, 2, stride=2), channels // 2
    if scale == 1:
        return nn.Identity(), channels
    if scale == 0.5:
        return nn.MaxPool2d(2), channels
    raise ValueError(f'unsupported scale {scale}; use 4, 2, 1 or 0.5')


@MODELS.register_module()
class SimpleFeaturePyramid(BaseModule):
    """A feature pyramid from one single-scale map (ViTDet's simple FPN).

    The aggregated stride-16 map is up-sampled by transposed convolutions and
    down-sampled by max pooling to the strides an FPN detector expects;
    levels beyond those are max-pooled from the last one, as in MMDet's FPN.

    Args:
        in_channels (int): Width of the input map.
        out_channels (int): Width of every level.
        scale_factors (Sequence[float]): Resampling of the input per level,
            e.g. (4, 2, 1, 0.5) for strides 4-32 from a stride-16 map.
        num_outs (int): Number of levels, at least ``len(scale_factors)``.
        init_cfg (dict, optional): MMEngine initialisation config.
    """

    def __init__(self,
                 in_channels,
                 out_channels=256,
                 scale_factors=(4, 2, 1, 0.5),
                 num_outs=5,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if num_outs < len(scale_factors):
            raise ValueError(f'num_outs {num_outs} < {len(scale_factors)} '
                             'scale factors')
        self.num_outs = num_outs
        self.levels = nn.ModuleList()
        for scale in scale_factors:
            resample, channels = resampler(in_channels, scale)
            self.levels.append(
                nn.Sequential(
                    resample,
                    conv_norm_relu(channels, out_channels, 1, relu=False),
                    conv_norm_relu(out_channels, out_channels, 3, relu=False)))

    def forward(self, x):
        """Build the pyramid.

        Args:
            x (Tensor): (B, in_channels, h, w).

        Returns:
            tuple[Tensor]: ``num_outs`` maps (B, out_channels, h * s, w * s)
            for the scale factors s, then halved levels.
        """
        outs = [level(x) for level in self.levels]
        while len(outs) < self.num_outs:
            outs.append(F.max_pool2d(outs[-1], 1, stride=2))
        return tuple(outs)
