"""Controls for efficacy measurements: noise that should *not* protect."""
import numpy as np

from mmunseg.registry import NOISE_METHODS
from .methods import NoiseMethod


@NOISE_METHODS.register_module(name=['ConstantShift', 'shift'])
class ConstantShift(NoiseMethod):
    """The same value on every pixel: a brightness / colour shift.

    With the unit value 1 and the paper's budgets it brightens objects by
    8/255 and the rest by 2/255, which is what a collapsed generator does.
    A victim that is hurt by this is hurt by a photometric domain shift,
    not by an unlearnable shortcut; it is the control that tells the two
    apart.

    Args:
        value (float | Sequence[float]): Unit-range value, one or one per
            RGB channel, in [-1, 1].
    """

    def __init__(self, value=1.0):
        value = np.broadcast_to(np.asarray(value, np.float32), (3, ))
        if np.abs(value).max() > 1:
            raise ValueError(f'ConstantShift value must be in [-1, 1], got '
                             f'{value.tolist()}')
        self.value = value.copy()

    def generate(self, images, prompts):
        return [
            np.broadcast_to(self.value, image.shape).astype(np.float32)
            for image in images
        ]
