from .baselines import (AutoregressiveNoise, ConvolutionNoise,
                        ErrorMinimizingNoise, SyntheticNoise)
from .controls import ConstantShift
from .dataset_copy import ProtectError, protect_dataset
from .export import (copy_annotations, protection_panel, write_config_override,
                     write_panels)
from .image_io import ImageReadError, ensure_outside, mirrored_path, read_image
from .manifest import (ManifestWriter, load_manifest, merge_manifests,
                       summarize, summary_line)
from .methods import NoiseMethod, Prompt, UniformNoise, UnSegGenerator
from .objects import PROMPT_MODES
from .on_the_fly import GenerateUnlearnableNoise
from .protector import Protector, manifest_shard_path, shard
from .quality import BudgetViolation, check_budget, psnr, ssim
from .sources import (DatasetSplit, ProtectItem, background_class_ids,
                      load_split)

__all__ = [
    'copy_annotations', 'protection_panel', 'write_config_override',
    'write_panels', 'ImageReadError', 'ensure_outside', 'read_image',
    'ManifestWriter', 'load_manifest', 'merge_manifests', 'summarize',
    'summary_line', 'NoiseMethod', 'Prompt', 'UniformNoise', 'UnSegGenerator',
    'PROMPT_MODES', 'Protector', 'manifest_shard_path', 'mirrored_path',
    'shard', 'BudgetViolation', 'check_budget', 'psnr', 'ssim', 'DatasetSplit',
    'ProtectItem', 'background_class_ids', 'load_split', 'AutoregressiveNoise',
    'ConvolutionNoise', 'ErrorMinimizingNoise', 'SyntheticNoise',
    'ConstantShift', 'GenerateUnlearnableNoise', 'ProtectError',
    'protect_dataset'
]
