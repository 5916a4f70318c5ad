"""SynPer / LSP: linearly separable synthetic perturbations (Yu et al.,
"Availability Attacks Create Shortcuts", KDD 2022), per class region."""
import numpy as np

from mmunseg.registry import NOISE_METHODS
from .class_wise import ClassWiseNoise, paint, tile_to, unit_scale


@NOISE_METHODS.register_module(name=['SyntheticNoise', 'synper'])
class SyntheticNoise(ClassWiseNoise):
    """Patch-structured noise drawn from one Gaussian cluster per class.

    As sklearn's ``make_classification`` in the paper: class ``c``'s cluster
    is centred on a random vertex of the hypercube ``[-class_sep,
    class_sep]^D`` and a draw adds unit Gaussian noise. A draw is a grid of
    ``grid x grid`` patches of 3 values, upsampled by nearest repetition to
    ``patch_size`` pixels and repeated periodically over the image, so a
    class's pattern does not depend on the image size. Every pixel of class
    ``c`` shows the class's pattern; no surrogate, labels only.

    Args:
        patch_size (int): Pixels per patch side (the paper's 8).
        grid (int): Patches per side of the repeated tile (64: 512 px).
        class_sep (float): Half side of the hypercube (the paper's 10).
        sample_wise (bool): False: one draw per class, the same in every
            image. True: each image draws its own sample of each class's
            cluster (the paper: class-clustered, sample-wise), keyed on its
            name.
        rms (float, optional): None scales each draw's peak to 1 (the
            L-inf budget). A float gives an RMS of that fraction of the
            region's budget, clipped to it: the paper's L2 budget, RMS
            6/255, is ``rms=0.75`` at an 8/255 object budget.
        seed (int): Secret key of the clusters and class-wise draws.
        background (str): ``class``: non-object pixels are one more class;
            ``none``: no noise there.
    """

    def __init__(self,
                 patch_size=8,
                 grid=64,
                 class_sep=10.0,
                 sample_wise=False,
                 rms=None,
                 seed=0,
                 background='class'):
        super().__init__(seed=seed, background=background)
        if patch_size < 1 or grid < 1 or class_sep <= 0:
            raise ValueError('patch_size and grid must be >= 1 and class_sep '
                             f'> 0, got {patch_size}, {grid}, {class_sep}')
        self.patch_size = patch_size
        self.grid = grid
        self.class_sep = class_sep
        self.sample_wise = sample_wise
        self.rms = rms
        self._tiles = {}

    def draw(self, key, sample=None):
        """One unit-range (grid * p, grid * p, 3) tile of class ``key``, of
        the image ``sample`` (or the class's own tile)."""
        shape = (self.grid, self.grid, 3)
        centre = self.class_sep * self.rng(key).choice([-1.0, 1.0], shape)
        jitter = self.rng(key, stream=1, sample=sample).standard_normal(shape)
        tile = np.repeat(
            np.repeat(centre + jitter, self.patch_size, 0), self.patch_size, 1)
        return unit_scale(tile, self.rms)

    def tile(self, key, sample):
        if self.sample_wise:
            return self.draw(key, sample)
        if key not in self._tiles:
            self._tiles[key] = self.draw(key)
        return self._tiles[key]

    def noise_of(self, image, labels, keys, sample):
        height, width = image.shape[:2]
        maps = (tile_to(self.tile(key, sample), height, width) for key in keys)
        return paint(np.zeros(image.shape, np.float32), labels, keys, maps)
