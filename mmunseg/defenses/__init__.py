"""Training-time defenses against unlearnable examples
(``../shared/docs/baselines_and_defenses.md`` §3): image transforms for
MMSeg / MMDet pipelines and adversarial-training wrappers of the victim (PGD
and DDC-AT), put into a victim config by :func:`apply_defense`."""
from .apply import DEFENSE_NAMES, apply_defense
from .bit_depth_reduction import BitDepthReduction
from .ddc_adversarial_training import DDCAdversarialTraining
from .gaussian_smoothing import GaussianSmoothing
from .grayscale import Grayscale
from .jpeg_compression import JPEGCompression
from .pgd_adversarial_training import PGDAdversarialTraining

__all__ = [
    'DEFENSE_NAMES', 'apply_defense', 'GaussianSmoothing', 'JPEGCompression',
    'Grayscale', 'BitDepthReduction', 'PGDAdversarialTraining',
    'DDCAdversarialTraining'
]
