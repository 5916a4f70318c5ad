from typing import Tuple

import cv2
import numpy as np

from mmunseg.registry import TRANSFORMS


def _resize(results: dict, height: int, width: int) -> None:
    """Bilinearly resize ``img`` and ``gt_mask`` of ``results`` in place.

    The mask is interpolated too, so its edges become soft (0..255), as in
    SAM-HQ's training loader.

    Args:
        results (dict): Result dict with ``img`` (H, W, 3) and ``gt_mask``
            (H, W).
        height (int): Output height.
        width (int): Output width.
    """
    size = (width, height)
    results['img'] = cv2.resize(
        results['img'], size, interpolation=cv2.INTER_LINEAR)
    results['gt_mask'] = cv2.resize(
        results['gt_mask'], size, interpolation=cv2.INTER_LINEAR)


def _pad(results: dict, size: int, img_pad_val: int) -> None:
    """Pad ``img`` and ``gt_mask`` of ``results`` bottom/right to a square.

    Args:
        results (dict): Result dict with ``img`` (h, w, 3) and ``gt_mask``
            (h, w), h and w at most ``size``.
        size (int): Output side S; the outputs are (S, S, 3) and (S, S).
        img_pad_val (int): Image padding value; the mask is padded with 0.
    """
    height, width = results['gt_mask'].shape
    padding = ((0, size - height), (0, size - width))
    results['img'] = np.pad(
        results['img'], padding + ((0, 0), ), constant_values=img_pad_val)
    results['gt_mask'] = np.pad(results['gt_mask'], padding)
    results['pad_shape'] = (size, size)


def _scaled_size(height: int, width: int, long_side: int) -> Tuple[int, int]:
    """Size with the same aspect ratio whose longer side is ``long_side``."""
    scale = long_side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


@TRANSFORMS.register_module()
class RandomHorizontalFlip:
    """Flip the image and mask horizontally together at random.

    Required keys: ``img``, ``gt_mask``.

    Modified keys: ``img``, ``gt_mask``.

    Added keys: ``flip`` (bool).

    Args:
        prob (float): Probability of flipping. Defaults to 0.5.
    """

    def __init__(self, prob: float = 0.5) -> None:
        if not 0 <= prob <= 1:
            raise ValueError(f'prob must be in [0, 1], but got {prob}')
        self.prob = prob

    def __call__(self, results: dict) -> dict:
        """Flip ``results`` with probability ``prob``.

        Args:
            results (dict): Result dict with ``img`` (H, W, 3) and
                ``gt_mask`` (H, W).

        Returns:
            dict: ``results``, flipped or not.
        """
        flip = bool(np.random.rand() < self.prob)
        if flip:
            results['img'] = cv2.flip(results['img'], 1)
            results['gt_mask'] = cv2.flip(results['gt_mask'], 1)
        results['flip'] = flip
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(prob={self.prob})'


@TRANSFORMS.register_module()
class LargeScaleJitter:
    """Large scale jitter (LSJ) as in SAM-HQ's training.

    The longer side is resized to ``round(r * output_size)`` with ``r`` drawn
    uniformly from ``scale_range`` (image and mask bilinearly), a crop of at
    most ``output_size`` x ``output_size`` is taken at a random position and
    the result is padded bottom/right to ``output_size`` x ``output_size``.
    A draw whose crop keeps fewer than ``min_mask_area`` mask pixels above 128
    is redrawn, up to ``max_tries`` times; after that the whole image is
    resized so its longer side is ``output_size`` (``r = 1``, no crop), so
    that a sample never loses its object.

    Required keys: ``img`` (H, W, 3), ``gt_mask`` (H, W).

    Modified keys: ``img`` (S, S, 3), ``gt_mask`` (S, S), ``img_shape``.

    Added keys: ``scale_factor`` ((w_scale, h_scale)), ``pad_shape``.
    ``img_shape`` is the size after resizing and cropping, before padding.

    Args:
        output_size (int): Output side S. Defaults to 1024.
        scale_range (tuple[float, float]): Range of ``r``.
            Defaults to (0.1, 2.0).
        min_mask_area (int): Minimum number of mask pixels above 128 in the
            crop. Defaults to 16.
        max_tries (int): Number of random draws before the fallback.
            Defaults to 10.
        img_pad_val (int): Image padding value (the mask is padded with 0).
            Defaults to 0. SAM-HQ pads images with 128.
    """

    def __init__(self,
                 output_size: int = 1024,
                 scale_range: Tuple[float, float] = (0.1, 2.0),
                 min_mask_area: int = 16,
                 max_tries: int = 10,
                 img_pad_val: int = 0) -> None:
        if not 0 < scale_range[0] <= scale_range[1]:
            raise ValueError('scale_range must be (low, high) with '
                             f'0 < low <= high, but got {scale_range}')
        self.output_size = output_size
        self.scale_range = tuple(scale_range)
        self.min_mask_area = min_mask_area
        self.max_tries = max_tries
        self.img_pad_val = img_pad_val

    def _try_scale(self, img: np.ndarray, mask: np.ndarray,
                   ratio: float) -> dict:
        """Resize by ``ratio`` and take a random crop.

        Args:
            img (np.ndarray): Image, shape (H, W, 3).
            mask (np.ndarray): Mask, shape (H, W).
            ratio (float): Longer side of the resized image over
                ``output_size``.

        Returns:
            dict: ``img`` (h, w, 3), ``gt_mask`` (h, w), ``scale_factor`` and
            ``img_shape`` (h, w) with h, w at most ``output_size``.
        """
        height, width = mask.shape
        new_h, new_w = _scaled_size(height, width,
                                    round(ratio * self.output_size))
        trial = dict(img=img, gt_mask=mask)
        _resize(trial, new_h, new_w)
        crop_h = min(new_h, self.output_size)
        crop_w = min(new_w, self.output_size)
        top = np.random.randint(new_h - crop_h + 1)
        left = np.random.randint(new_w - crop_w + 1)
        for key in ('img', 'gt_mask'):
            trial[key] = trial[key][top:top + crop_h, left:left + crop_w]
        trial['scale_factor'] = (new_w / width, new_h / height)
        trial['img_shape'] = (crop_h, crop_w)
        return trial

    def __call__(self, results: dict) -> dict:
        """Apply LSJ to ``results``.

        Args:
            results (dict): Result dict with ``img`` and ``gt_mask``.

        Returns:
            dict: ``results`` with the image and mask of size (S, S).
        """
        img, mask = results['img'], results['gt_mask']
        for _ in range(self.max_tries):
            trial = self._try_scale(img, mask,
                                    np.random.uniform(*self.scale_range))
            if np.count_nonzero(trial['gt_mask'] > 128) >= self.min_mask_area:
                break
        else:
            trial = self._try_scale(img, mask, 1.0)
        results.update(trial)
        _pad(results, self.output_size, self.img_pad_val)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(output_size={self.output_size}, '
                f'scale_range={self.scale_range}, '
                f'min_mask_area={self.min_mask_area}, '
                f'max_tries={self.max_tries}, '
                f'img_pad_val={self.img_pad_val})')


@TRANSFORMS.register_module()
class ResizePad:
    """Resize the longer side to ``output_size`` and pad to a square.

    The deterministic counterpart of :class:`LargeScaleJitter` for
    validation and protection: image and mask are resized bilinearly keeping
    the aspect ratio, then padded bottom/right to ``output_size`` x
    ``output_size``.

    Required keys: ``img`` (H, W, 3), ``gt_mask`` (H, W).

    Modified keys: ``img`` (S, S, 3), ``gt_mask`` (S, S), ``img_shape``.

    Added keys: ``scale_factor`` ((w_scale, h_scale)), ``pad_shape``.
    ``img_shape`` is the size after resizing, before padding.

    Args:
        output_size (int): Output side S. Defaults to 1024.
        img_pad_val (int): Image padding value (the mask is padded with 0).
            Defaults to 0.
    """

    def __init__(self, output_size: int = 1024, img_pad_val: int = 0) -> None:
        self.output_size = output_size
        self.img_pad_val = img_pad_val

    def __call__(self, results: dict) -> dict:
        """Resize and pad ``results``.

        Args:
            results (dict): Result dict with ``img`` and ``gt_mask``.

        Returns:
            dict: ``results`` with the image and mask of size (S, S).
        """
        height, width = results['gt_mask'].shape
        new_h, new_w = _scaled_size(height, width, self.output_size)
        _resize(results, new_h, new_w)
        results['scale_factor'] = (new_w / width, new_h / height)
        results['img_shape'] = (new_h, new_w)
        _pad(results, self.output_size, self.img_pad_val)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(output_size={self.output_size}, '
                f'img_pad_val={self.img_pad_val})')
