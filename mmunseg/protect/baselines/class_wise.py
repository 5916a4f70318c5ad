"""What the class-wise baselines share: one pattern (or filter) per class,
painted into the class's region of each image, ``delta = sum_c M_c *
delta_c`` (``../shared/docs/baselines_and_defenses.md`` §1.1)."""
import numpy as np

from ..methods import NoiseMethod, sample_seed

#: What non-object pixels (label -1: background, void) get.
BACKGROUND_MODES = ('class', 'none')


def unit_scale(pattern, rms=None):
    """Scale a pattern to unit range.

    Args:
        pattern (np.ndarray): Float array, any shape.
        rms (float, optional): None scales the peak to 1 (the L-inf
            reading: the region's whole budget is used). A float scales the
            root mean square to ``rms`` (the L2 reading of AR / SynPer, as a
            fraction of the region's budget) and clips to [-1, 1].

    Returns:
        np.ndarray: float32, same shape, in [-1, 1].
    """
    pattern = pattern.astype(np.float32)
    if rms is None:
        peak = np.abs(pattern).max()
        return pattern / peak if peak > 0 else pattern
    norm = np.sqrt(np.mean(pattern**2))
    scaled = pattern * (rms / norm) if norm > 0 else pattern
    return np.clip(scaled, -1, 1)


def tile_to(canvas, height, width):
    """Repeat a (h, w, ...) canvas periodically to (height, width, ...): a
    class pattern defined independently of the image size (§1.5)."""
    rows = np.arange(height) % canvas.shape[0]
    cols = np.arange(width) % canvas.shape[1]
    return canvas[rows][:, cols]


def paint(canvas, labels, keys, maps):
    """Copy ``maps[k]`` into ``canvas`` where ``labels == keys[k]``.

    Args:
        canvas (np.ndarray): (H, W, 3), written in place.
        labels (np.ndarray): (H, W) class ids.
        keys (list[int]): Classes to paint.
        maps (Iterable[np.ndarray]): (H, W, 3) per key; a generator keeps
            one full-size map in memory at a time.

    Returns:
        np.ndarray: ``canvas``.
    """
    for key, values in zip(keys, maps):
        region = labels == key
        canvas[region] = values[region]
    return canvas


class ClassWiseNoise(NoiseMethod):
    """Base of the methods that key their noise on each pixel's class.

    A pixel of class ``c`` (``Prompt.labels``) gets its class's noise;
    non-object pixels (label -1) form one more class, ``background='class'``,
    or get no noise, ``background='none'`` (the doc's "ignore pixels get the
    background budget or no noise").

    Args:
        seed (int): Secret key of the patterns: the same seed and class give
            the same pattern (or process, or filter) in every image.
        background (str): ``class`` or ``none``, see above.
    """

    #: The noise depends on ``Prompt.labels`` (``tools/protect.py`` refuses
    #: the prompt modes whose calls carry none).
    needs_labels = True
    run_values = ('seed', )

    def __init__(self, seed=0, background='class'):
        if background not in BACKGROUND_MODES:
            raise ValueError(f'background must be one of {BACKGROUND_MODES}, '
                             f'got {background!r}')
        if not isinstance(seed, int) or seed < 0:
            raise ValueError(f'seed must be a non-negative int, got {seed!r}')
        self.seed = seed
        self.background = background

    def rng(self, key, stream=0, sample=None):
        """The random stream ``stream`` of class ``key`` (-1: background).

        With ``sample`` (an image's :func:`~mmunseg.protect.methods.
        sample_seed`), the stream is also keyed on the image: per-image
        draws that a rerun, a resume or another shard reproduce.
        """
        entropy = [self.seed, int(key) + 1, stream]
        if sample is not None:
            entropy.append(sample)
        return np.random.default_rng(entropy)

    def labels_of(self, prompt, shape):
        """The prompt's (H, W) class map; raises if it has none."""
        if prompt.labels is None:
            raise ValueError(
                f'{type(self).__name__} needs the class of each object pixel '
                '(Prompt.labels); the per-object calls of the per-class and '
                'per-instance prompt modes carry none: use the union, box or '
                'points prompt')
        if prompt.labels.shape != shape:
            raise ValueError(f'labels are {prompt.labels.shape}, the image is '
                             f'{shape}')
        return prompt.labels

    def keys_of(self, labels):
        """The classes to paint: those present, background per the mode."""
        keys = [int(k) for k in np.unique(labels)]
        if self.background == 'none':
            keys = [k for k in keys if k >= 0]
        return keys

    def noise_of(self, image, labels, keys, sample):
        """Unit-range noise of one image.

        Args:
            image (np.ndarray): uint8 (H, W, 3) RGB.
            labels (np.ndarray): (H, W) int class ids, -1 off objects.
            keys (list[int]): The classes to give noise.
            sample (int): The image's seed, for sample-wise draws.

        Returns:
            np.ndarray: float32 (H, W, 3) in [-1, 1], zero off ``keys``.
        """
        raise NotImplementedError

    def generate(self, images, prompts):
        outputs = []
        for image, prompt in zip(images, prompts):
            labels = self.labels_of(prompt, image.shape[:2])
            keys = self.keys_of(labels)
            outputs.append(
                self.noise_of(image, labels, keys, sample_seed(prompt, image)
                              ) if keys else np.zeros(image.shape, np.float32))
        return outputs
