"""Transforms that put unlearnable noise into a training pipeline.

Two ways to train on protected views without reading a protected copy:

- :class:`AddUnlearnableNoise` adds the perturbation ``tools/protect.py
  --save-noise`` stored for the image: exact (the same pixels as the protected
  copy), cheap, and safe with any number of dataloader workers.
- :class:`GenerateUnlearnableNoise` runs a trained generator on the fly. Use it
  for experiments (other budgets or prompts without writing files); it runs a
  network in every worker, on CPU by default (CUDA inside forked workers is
  not supported), so keep ``num_workers`` small or use the first transform.

Both go right after image (and, for the second, annotation) loading, before
any geometric transform, and work on BGR (MMCV's default) or RGB images.
"""
import os.path as osp
import zipfile
import zlib

import numpy as np

from mmunseg.registry import TRANSFORMS


def _to_rgb(img, channel_order):
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

    def noise_file(self, img_path):
        relative = osp.relpath(
            osp.abspath(img_path), osp.abspath(self.data_root))
        return osp.join(self.noise_root, relative + '.npz')

    @staticmethod
    def read_noise(path):
        """The stored int8 perturbation of ``path`` as int16; a file that is
        not such a perturbation is an error naming it."""
        try:
            with np.load(path, allow_pickle=False) as data:
                delta = data['delta']
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile,
                zlib.error) as error:
            raise ValueError(f'{path}: not a stored perturbation of '
                             f'tools/protect.py --save-noise (an .npz with '
                             f'an int8 "delta"): {error}') from None
        if delta.dtype != np.int8 or delta.ndim != 3:
            raise ValueError(f'{path}: the stored perturbation is '
                             f'{delta.dtype} of shape {delta.shape}, expected '
                             'int8 (H, W, 3)')
        return delta.astype(np.int16)

    def __call__(self, results):
        path = self.noise_file(results['img_path'])
        if not osp.isfile(path):
            if self.missing == 'skip':
                return results
            raise FileNotFoundError(
                f'{path}: no stored noise for {results["img_path"]}')
        delta = self.read_noise(path)
        img = results['img']
        if delta.shape != img.shape:
            raise ValueError(f'{path}: noise is {delta.shape}, the image '
                             f'{results["img_path"]} is {img.shape}')
        delta = _to_rgb(delta, self.channel_order)
        results['img'] = np.clip(img.astype(np.int16) + delta, 0,
                                 255).astype(np.uint8)
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(noise_root={self.noise_root!r}, '
                f'data_root={self.data_root!r}, '
                f'channel_order={self.channel_order!r}, '
                f'missing={self.missing!r})')


@TRANSFORMS.register_module()
class GenerateUnlearnableNoise:
    """Protect ``results['img']`` with a generator, on the fly.

    The object mask is the union of labelled classes of
    ``results['gt_seg_map']`` (load annotations first), minus
    ``ignore_index`` and ``background_ids``.

    Args:
        checkpoint (str): Trained generator.
        eps_object (float): Budget on objects, [0, 1] units (8/255).
        eps_background (float): Budget elsewhere (2/255).
        ignore_index (int): Unlabelled value of the label map.
        background_ids (Sequence[int]): Classes that are not objects.
        channel_order (str): ``bgr`` or ``rgb``.
        device (str): Device of the generator.
    """

    def __init__(self,
                 checkpoint,
                 eps_object=8 / 255,
                 eps_background=2 / 255,
                 ignore_index=255,
                 background_ids=(),
                 channel_order='bgr',
                 device='cpu'):
        self.checkpoint = checkpoint
        self.eps_object = eps_object
        self.eps_background = eps_background
        self.ignore_index = ignore_index
        self.background_ids = tuple(background_ids)
        self.channel_order = channel_order
        self.device = device
        self._method = None

    @property
    def method(self):
        # Built lazily, so each dataloader worker loads its own copy.
        if self._method is None:
            from mmunseg.protect.methods import UnSegGenerator
            self._method = UnSegGenerator(self.checkpoint, device=self.device)
        return self._method

    def __call__(self, results):
        from mmunseg.protect.methods import Prompt
        from mmunseg.protect.objects import semantic_objects, union
        from mmunseg.protect.protector import perturb_image
        if 'gt_seg_map' not in results:
            raise KeyError('GenerateUnlearnableNoise needs gt_seg_map: put '
                           'LoadAnnotations before it')
        rgb = np.ascontiguousarray(_to_rgb(results['img'], self.channel_order))
        objects = semantic_objects(results['gt_seg_map'], self.ignore_index,
                                   self.background_ids)
        mask = union(objects.values(), rgb.shape[:2])
        if not mask.any():
            return results
        noise = self.method.generate([rgb], [Prompt(mask=mask)])[0]
        protected = perturb_image(rgb, mask, noise, self.eps_object,
                                  self.eps_background)
        results['img'] = np.ascontiguousarray(
            _to_rgb(protected, self.channel_order))
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(checkpoint={self.checkpoint!r}, '
                f'eps_object={self.eps_object:.5f}, '
                f'eps_background={self.eps_background:.5f})')
