"""MMUnSeg provides 17 registry nodes to support using modules across projects.

Each node is a child of the root registry in MMEngine, so configs with
``default_scope='mmunseg'`` find our modules first and fall back to MMEngine's.
Modules of other OpenMMLab libraries are referenced with their scope prefix,
for example ``type='mmseg.UNet'`` or ``type='mmdet.PackDetInputs'``.
"""
from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import EVALUATOR as MMENGINE_EVALUATOR
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOG_PROCESSORS as MMENGINE_LOG_PROCESSORS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import \
    OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import TASK_UTILS as MMENGINE_TASK_UTILS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
from mmengine.registry import Registry

RUNNERS = Registry(
    'runner', parent=MMENGINE_RUNNERS, locations=['mmunseg.engine'])
LOOPS = Registry('loop', parent=MMENGINE_LOOPS, locations=['mmunseg.engine'])
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, locations=['mmunseg.engine'])
DATASETS = Registry(
    'dataset', parent=MMENGINE_DATASETS, locations=['mmunseg.datasets'])
DATA_SAMPLERS = Registry(
    'data sampler',
    parent=MMENGINE_DATA_SAMPLERS,
    locations=['mmunseg.datasets'])
TRANSFORMS = Registry(
    'transform',
    parent=MMENGINE_TRANSFORMS,
    locations=['mmunseg.datasets.transforms', 'mmunseg.defenses'])
MODELS = Registry(
    'model',
    parent=MMENGINE_MODELS,
    locations=['mmunseg.models', 'mmunseg.defenses'])
MODEL_WRAPPERS = Registry(
    'model_wrapper',
    parent=MMENGINE_MODEL_WRAPPERS,
    locations=['mmunseg.models'])
OPTIMIZERS = Registry(
    'optimizer', parent=MMENGINE_OPTIMIZERS, locations=['mmunseg.engine'])
OPTIM_WRAPPERS = Registry(
    'optim_wrapper',
    parent=MMENGINE_OPTIM_WRAPPERS,
    locations=['mmunseg.engine'])
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor',
    parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
    locations=['mmunseg.engine'])
PARAM_SCHEDULERS = Registry(
    'parameter scheduler',
    parent=MMENGINE_PARAM_SCHEDULERS,
    locations=['mmunseg.engine'])
METRICS = Registry(
    'metric', parent=MMENGINE_METRICS, locations=['mmunseg.evaluation'])
EVALUATOR = Registry(
    'evaluator', parent=MMENGINE_EVALUATOR, locations=['mmunseg.evaluation'])
TASK_UTILS = Registry(
    'task util', parent=MMENGINE_TASK_UTILS, locations=['mmunseg.models'])
VISUALIZERS = Registry('visualizer', parent=MMENGINE_VISUALIZERS)
LOG_PROCESSORS = Registry(
    'log_processor',
    parent=MMENGINE_LOG_PROCESSORS,
    locations=['mmunseg.engine'])
# Noise methods that tools/protect.py can apply: the UnSeg generator and the
# baselines share one interface (see mmunseg.protect).
NOISE_METHODS = Registry('noise method', locations=['mmunseg.protect'])
