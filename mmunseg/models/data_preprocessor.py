import torch
from mmengine.model import BaseDataPreprocessor

from mmunseg.registry import MODELS


@MODELS.register_module()
class UnSegDataPreprocessor(BaseDataPreprocessor):
    """Stack images and object masks and scale both to [0, 1].

    Normalisation is left to each network: the noise must be added to
    [0, 1] images, before normalisation.

    Returns (from ``forward``):
        dict: ``inputs`` (B, 3, S, S) in [0, 1], ``gt_masks`` (B, 1, S, S)
        soft masks in [0, 1], and the ``data_samples``.
    """

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        shapes = {tuple(img.shape) for img in data['inputs']}
        if len(shapes) != 1:
            raise ValueError(f'inputs of one batch must share a shape (pad '
                             f'them in the pipeline), got {sorted(shapes)}')
        inputs = torch.stack(data['inputs']).float() / 255
        samples = data['data_samples']
        gt_masks = torch.stack([sample.gt_mask for sample in samples])
        return dict(
            inputs=inputs,
            gt_masks=gt_masks.float() / 255,
            data_samples=samples)
