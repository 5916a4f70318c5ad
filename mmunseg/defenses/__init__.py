"""Training-time defenses against unlearnable examples
(``../shared/docs/baselines_and_defenses.md`` §3): image transforms for
MMSeg / MMDet pipelines and a PGD adversarial-training wrapper, put into a
victim config by :func:`apply_defense`."""
from .apply import DEFENSE_NAMES, apply_defense
from .bit_depth_reduction import BitDepthReduction
from .gaussian_smoothing import GaussianSmoothing
from .grayscale import Grayscale
from .jpeg_compression import JPEGCompression
from .pgd_adversarial_training import PGDAdversarialTraining

__all__ = [
    'DEFENSE_NAMES', 'apply_defense', 'GaussianSmoothing', 'JPEGCompression',
    'Grayscale', 'BitDepthReduction', 'PGDAdversarialTraining'
]
