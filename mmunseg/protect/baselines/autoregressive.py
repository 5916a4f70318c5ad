"""AR: autoregressive perturbations (Sandoval-Segura et al., "Autoregressive
Perturbations for Data Poisoning", NeurIPS 2022), per class region."""
import numpy as np
import torch
import torch.nn.functional as F

from mmunseg.registry import NOISE_METHODS
from .class_wise import ClassWiseNoise, paint, tile_to, unit_scale

#: Rows and columns dropped from each generated canvas: the start-up
#: transient of the recursion (the paper's crop of 4).
CROP = 4


def ar_patterns(coefficients, start):
    """Run 3-channel AR processes over start signals, vectorised.

    Pixel (i, j) of channel c, for i, j >= 2, becomes the combination of the
    8 earlier pixels of its 3 x 3 window (rows i-2..i, columns j-2..j) with
    ``coefficients[:, c]``; the first two rows and columns keep the start
    signal. A pixel's window lies on earlier anti-diagonals (i + j), so each
    anti-diagonal is one vectorised update: H + W steps instead of H * W.

    Args:
        coefficients (np.ndarray): (N, 3, 3, 3); entry [..., 2, 2] is unused
            (the current pixel).
        start (np.ndarray): (N, 3, H, W) start signals.

    Returns:
        np.ndarray: (N, 3, H, W) float64 patterns.
    """
    signal = start.astype(np.float64)
    height, width = signal.shape[-2:]
    taps = [(di, dj) for di in range(3) for dj in range(3)
            if (di, dj) != (2, 2)]
    for diagonal in range(4, height + width - 1):
        rows = np.arange(
            max(2, diagonal - width + 1), min(height, diagonal - 1))
        cols = diagonal - rows
        value = 0
        for di, dj in taps:
            window = signal[:, :, rows - 2 + di, cols - 2 + dj]
            value = value + coefficients[:, :, di, dj, None] * window
        signal[:, :, rows, cols] = value
    return signal


def matching_filter(coefficients):
    """(1, 3, 3, 3) filter that is zero on its own process's patterns: the
    coefficients with -1 at the current pixel (the paper's shortcut: a 3 x 3
    conv classifies AR noise perfectly)."""
    weights = coefficients.copy()
    weights[:, 2, 2] = -1
    return torch.from_numpy(weights)[None].float()


def response(filters, patterns):
    """Sum of the ReLU of each filter on each pattern.

    Args:
        filters (Tensor): (F, 3, 3, 3).
        patterns (np.ndarray): (N, 3, h, w).

    Returns:
        np.ndarray: (N, F).
    """
    output = F.conv2d(torch.from_numpy(patterns).float(), filters)
    return F.relu(output).sum((2, 3)).numpy()


@NOISE_METHODS.register_module(name=['AutoregressiveNoise', 'ar'])
class AutoregressiveNoise(ClassWiseNoise):
    """Noise of one autoregressive process per class.

    Each class owns a 3-channel AR process (3 x 3 causal window per channel,
    8 Gaussian coefficients normalised to sum to 1). Processes are found as
    in the paper's greedy search: a draw is rejected if any of 3 trial
    patterns (36 x 36, crop 4) diverges (pre-scaling L2 norm above
    ``norm_bound``, or NaN) or if an accepted process's matching filter
    responds less than ``min_response`` to it. Class ``c``'s process
    depends only on ``seed`` and the classes before it (background, 0, ...,
    c - 1), found once and cached.

    Segmentation images are far larger than the 32 px the processes are
    checked at, and a process stable there may diverge over hundreds of
    pixels; so the noise is a grid of ``tile_size`` tiles, each a fresh
    pattern of the class's process from its own Gaussian start, L2-normalised
    per tile as the paper normalises per image, then repeated periodically
    over the image (``grid`` tiles per side). The recursion is vectorised
    over tiles and anti-diagonals (:func:`ar_patterns`).

    Args:
        tile_size (int): Side of one pattern (the paper's 32 on CIFAR).
        grid (int): Tiles per side of the repeated canvas (16: 512 px).
        sample_wise (bool): False: the same tiles for a class in every image.
            True: fresh starts per image (the paper: a fixed process per
            class, a new pattern per image), keyed on its name.
        rms (float, optional): The RMS of the noise as a fraction of the
            region's budget, clipped to it; the default is the paper's L2 = 1
            at 32 px (RMS 4.6/255) at an 8/255 object budget. None scales the
            canvas peak to 1 instead (the paper's weaker L-inf variant: AR
            noise is peaky, its RMS is then about 0.15).
        norm_bound (float): Largest pre-scaling L2 norm of a trial pattern.
        min_response (float): Least response of an accepted process's
            matching filter to a new process (the paper: 10 for 10 classes,
            3 for 100).
        max_draws (int): Coefficient draws tried per class before giving up.
        seed (int): Secret key of the processes and class-wise starts.
        background (str): ``class``: non-object pixels are one more class;
            ``none``: no noise there.
    """

    def __init__(self,
                 tile_size=32,
                 grid=16,
                 sample_wise=False,
                 rms=0.575,
                 norm_bound=50.0,
                 min_response=3.0,
                 max_draws=100000,
                 seed=0,
                 background='class'):
        super().__init__(seed=seed, background=background)
        if tile_size < 1 or grid < 1:
            raise ValueError(f'tile_size and grid must be >= 1, got '
                             f'{tile_size}, {grid}')
        self.tile_size = tile_size
        self.grid = grid
        self.sample_wise = sample_wise
        self.rms = rms
        self.norm_bound = norm_bound
        self.min_response = min_response
        self.max_draws = max_draws
        self.processes = []  # coefficients of background, class 0, 1, ...
        self._canvases = {}

    def process(self, key):
        """(3, 3, 3) coefficients of class ``key`` (-1: background)."""
        while len(self.processes) <= key + 1:
            self.processes.append(self._find(len(self.processes) - 1))
        return self.processes[key + 1]

    def _find(self, key, batch=64):
        rng = self.rng(key, stream=1)
        filters = torch.cat([matching_filter(p) for p in self.processes]) \
            if self.processes else None
        for _ in range(0, self.max_draws, batch):
            coefficients = rng.standard_normal((batch, 3, 3, 3))
            coefficients[:, :, 2, 2] = 0
            coefficients /= coefficients.sum((2, 3), keepdims=True)
            trials = ar_patterns(
                np.repeat(coefficients, 3, 0),
                rng.standard_normal((3 * batch, 3, 36, 36)))[:, :, CROP:,
                                                             CROP:]
            with np.errstate(over='ignore', invalid='ignore'):
                norms = np.sqrt((trials**2).sum((1, 2, 3)))
            stable = np.isfinite(norms) & (norms <= self.norm_bound)
            stable = stable.reshape(batch, 3).all(1)
            if filters is not None and stable.any():
                kept = np.repeat(stable, 3)
                trials = trials[kept] / norms[kept, None, None, None]
                least = response(filters,
                                 trials).reshape(-1, 3 * len(filters)).min(1)
                stable[stable] = least >= self.min_response
            if stable.any():
                return coefficients[np.argmax(stable)]
        raise RuntimeError(
            f'no AR process for class {key} within {self.max_draws} draws '
            f'(norm_bound={self.norm_bound}, min_response='
            f'{self.min_response}); lower min_response for many classes')

    def canvas(self, key, sample=None):
        """A unit-range (grid * t, grid * t, 3) canvas of class ``key``, of
        the image ``sample`` (or the class's own canvas)."""
        side = self.tile_size + CROP
        count = self.grid * self.grid
        start = self.rng(
            key, stream=2, sample=sample).standard_normal(
                (count, 3, side, side))
        tiles = ar_patterns(
            np.broadcast_to(self.process(key), (count, 3, 3, 3)),
            start)[:, :, CROP:, CROP:]
        tiles /= np.sqrt((tiles**2).mean((1, 2, 3), keepdims=True))
        canvas = tiles.reshape(self.grid, self.grid, 3, self.tile_size,
                               self.tile_size).transpose(0, 3, 1, 4, 2)
        return unit_scale(
            canvas.reshape(self.grid * self.tile_size,
                           self.grid * self.tile_size, 3), self.rms)

    def class_canvas(self, key, sample):
        if self.sample_wise:
            return self.canvas(key, sample)
        if key not in self._canvases:
            self._canvases[key] = self.canvas(key)
        return self._canvases[key]

    def noise_of(self, image, labels, keys, sample):
        height, width = image.shape[:2]
        maps = (
            tile_to(self.class_canvas(key, sample), height, width)
            for key in keys)
        return paint(np.zeros(image.shape, np.float32), labels, keys, maps)
