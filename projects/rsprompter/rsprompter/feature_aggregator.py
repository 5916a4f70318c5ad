import torch.nn as nn
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from segment_anything.modeling.common import LayerNorm2d


def conv_norm_relu(in_channels, out_channels, kernel_size, relu=True):
    """Conv (no bias) -> LayerNorm2d -> optional ReLU, size-preserving."""
    layers = [
        nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            padding=kernel_size // 2,
            bias=False),
        LayerNorm2d(out_channels)
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


@MODELS.register_module()
class FeatureAggregator(BaseModule):
    """RSPrompter's aggregator of the encoder's intermediate features.

    SAM's image embedding is made for its own decoder; the detector needs
    semantic features, which the paper takes from several ViT blocks. Each
    block output F_i is reduced to a few channels (1x1 then 3x3 conv), the
    reduced maps are merged from shallow to deep by a residual recursion,
    ``m_1 = r_1``, ``m_i = m_{i-1} + conv(m_{i-1}) + r_i``, and the last one
    is projected to the detector's width.

    Args:
        in_channels (int): Width of the ViT blocks (768 for ViT-B).
        num_inputs (int): Number of block outputs.
        hidden_channels (int): Width of the reduced maps; small, so that
            many layers cost little.
        out_channels (int): Width of the aggregated map.
        init_cfg (dict, optional): MMEngine initialisation config.
    """

    def __init__(self,
                 in_channels,
                 num_inputs,
                 hidden_channels=32,
                 out_channels=256,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.num_inputs = num_inputs
        self.reduce = nn.ModuleList(
            nn.Sequential(
                conv_norm_relu(in_channels, hidden_channels, 1),
                conv_norm_relu(hidden_channels, hidden_channels, 3))
            for _ in range(num_inputs))
        self.recurse = nn.ModuleList(
            conv_norm_relu(hidden_channels, hidden_channels, 3)
            for _ in range(num_inputs - 1))
        self.fuse = nn.Sequential(
            conv_norm_relu(hidden_channels, out_channels, 1),
            conv_norm_relu(out_channels, out_channels, 3, relu=False))

    def forward(self, inputs):
        """Aggregate the block outputs.

        Args:
            inputs (Sequence[Tensor]): ``num_inputs`` maps, shallow to deep,
                each (B, in_channels, h, w).

        Returns:
            Tensor: (B, out_channels, h, w).
        """
        if len(inputs) != self.num_inputs:
            raise ValueError(f'expected {self.num_inputs} block outputs, '
                             f'got {len(inputs)}')
        merged = self.reduce[0](inputs[0])
        for reduce, recurse, feature in zip(self.reduce[1:], self.recurse,
                                            inputs[1:]):
            merged = merged + recurse(merged) + reduce(feature)
        return self.fuse(merged)
