"""Protect images inside a training pipeline, with a generator run on the
fly.

Use it for experiments (other budgets or prompts without writing files); it
runs a network in every dataloader worker, on CPU by default (CUDA inside
forked workers is not supported), so keep ``num_workers`` small, or protect
a copy with ``tools/protect.py --save-noise`` and add its stored noise with
``AddUnlearnableNoise``. It goes right after image and annotation loading,
before any geometric transform, and works on BGR (MMCV's default) or RGB
images.
"""
import numpy as np

from mmunseg.datasets.transforms.noise import to_rgb
from mmunseg.models.budget import Budget, perturb_image
from mmunseg.registry import TRANSFORMS
from .methods import Prompt, UnSegGenerator
from .objects import semantic_objects, union


@TRANSFORMS.register_module()
class GenerateUnlearnableNoise:
    """Protect ``results['img']`` with a generator, on the fly.

    The object mask is the union of labelled classes of
    ``results['gt_seg_map']`` (load annotations first), minus
    ``ignore_index`` and ``background_ids``.

    Args:
        checkpoint (str): Trained generator.
        budget (Budget | dict | str): L-inf budgets on the objects and
            elsewhere: ``dict(object=8 / 255, background=2 / 255)`` or a
            preset name (:meth:`Budget.of`; default the paper's).
        ignore_index (int): Unlabelled value of the label map.
        background_ids (Sequence[int]): Classes that are not objects.
        channel_order (str): ``bgr`` or ``rgb``.
        device (str): Device of the generator.
    """

    def __init__(self,
                 checkpoint,
                 budget='paper',
                 ignore_index=255,
                 background_ids=(),
                 channel_order='bgr',
                 device='cpu'):
        self.checkpoint = checkpoint
        self.budget = Budget.of(budget)
        self.ignore_index = ignore_index
        self.background_ids = tuple(background_ids)
        self.channel_order = channel_order
        self.device = device
        self._method = None

    @property
    def method(self):
        # Built lazily, so each dataloader worker loads its own copy.
        if self._method is None:
            self._method = UnSegGenerator(self.checkpoint, device=self.device)
        return self._method

    def __call__(self, results):
        if 'gt_seg_map' not in results:
            raise KeyError('GenerateUnlearnableNoise needs gt_seg_map: put '
                           'LoadAnnotations before it')
        rgb = np.ascontiguousarray(to_rgb(results['img'], self.channel_order))
        objects = semantic_objects(results['gt_seg_map'], self.ignore_index,
                                   self.background_ids)
        mask = union(objects.values(), rgb.shape[:2])
        if not mask.any():
            return results
        noise = self.method.generate([rgb], [Prompt(mask=mask)])[0]
        protected = perturb_image(rgb, mask, noise, self.budget)
        results['img'] = np.ascontiguousarray(
            to_rgb(protected, self.channel_order))
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(checkpoint={self.checkpoint!r}, '
                f'budget=dict(object={self.budget.object:.5f}, '
                f'background={self.budget.background:.5f}))')
