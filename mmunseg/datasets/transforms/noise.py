"""Train on protected views without reading a protected copy: add the
perturbation ``tools/protect.py --save-noise`` stored for each image.

Exact (the same pixels as the protected copy), cheap, and safe with any
number of dataloader workers. Its sibling that runs a generator on the fly,
``GenerateUnlearnableNoise``, needs the protect layer and lives in
:mod:`mmunseg.protect.on_the_fly`. Both go right after image loading, before
any geometric transform, and work on BGR (MMCV's default) or RGB images.
"""
import os.path as osp

import numpy as np

from mmunseg.registry import TRANSFORMS
from ..protected_copy import noise_file, read_perturbation


def to_rgb(img, channel_order):
    """RGB view of a ``bgr`` or ``rgb`` image (an involution: also back)."""
    return img[..., ::-1] if channel_order == 'bgr' else img


@TRANSFORMS.register_module()
class AddUnlearnableNoise:
    """Add a stored perturbation to ``results['img']``.

    Args:
        noise_root (str): ``DIR/noise`` of a ``tools/protect.py
            --save-noise`` run.
        data_root (str): The dataset root the protect run mirrored.
        channel_order (str): ``bgr`` (MMCV's loader) or ``rgb``.
        missing (str): ``error`` or ``skip`` (leave the image clean) when an
            image has no stored perturbation.
    """

    def __init__(self,
                 noise_root,
                 data_root,
                 channel_order='bgr',
                 missing='error'):
        if channel_order not in ('bgr', 'rgb') or missing not in ('error',
                                                                  'skip'):
            raise ValueError('channel_order is bgr or rgb, missing is error '
                             'or skip')
        self.noise_root = noise_root
        self.data_root = data_root
        self.channel_order = channel_order
        self.missing = missing

    def __call__(self, results):
        path = noise_file(results['img_path'], self.data_root, self.noise_root)
        if not osp.isfile(path):
            if self.missing == 'skip':
                return results
            raise FileNotFoundError(
                f'{path}: no stored noise for {results["img_path"]}')
        delta = read_perturbation(path)
        img = results['img']
        if delta.shape != img.shape:
            raise ValueError(f'{path}: noise is {delta.shape}, the image '
                             f'{results["img_path"]} is {img.shape}')
        delta = to_rgb(delta, self.channel_order)
        results['img'] = np.clip(img.astype(np.int16) + delta, 0,
                                 255).astype(np.uint8)
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(noise_root={self.noise_root!r}, '
                f'data_root={self.data_root!r}, '
                f'channel_order={self.channel_order!r}, '
                f'missing={self.missing!r})')
