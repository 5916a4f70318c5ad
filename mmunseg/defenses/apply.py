"""Put a training-time defense into a victim config: the one entry point of
the evaluation tool."""
import copy
import inspect

from mmunseg.utils.dataset_configs import dataset_pipelines
from .bit_depth_reduction import BitDepthReduction
from .ddc_adversarial_training import DDCAdversarialTraining
from .gaussian_smoothing import GaussianSmoothing
from .grayscale import Grayscale
from .jpeg_compression import JPEGCompression
from .pgd_adversarial_training import PGDAdversarialTraining, check_attack

#: Defenses that are image transforms, by name.
TRANSFORM_DEFENSES = {
    'gaussian': GaussianSmoothing,
    'jpeg': JPEGCompression,
    'grayscale': Grayscale,
    'bit_depth': BitDepthReduction,
}
#: Defenses that wrap the victim model, by name.
MODEL_DEFENSES = {
    'pgd_at': PGDAdversarialTraining,
    'ddc_at': DDCAdversarialTraining,
}
DEFENSE_NAMES = tuple(TRANSFORM_DEFENSES) + tuple(MODEL_DEFENSES)

#: Transforms that put the protection in (they follow image loading); a
#: defense goes after them, so it acts on the protected image.
NOISE_TRANSFORMS = ('AddUnlearnableNoise', 'GenerateUnlearnableNoise')


def _type_name(transform):
    """``LoadImageFromFile`` of ``mmseg.LoadImageFromFile`` or a class."""
    kind = transform.get('type', '')
    return getattr(kind, '__name__', str(kind)).rpartition('.')[2]


def insert_after_loading(datasets, transform):
    """Insert ``transform`` after the image loading (and protection noise)
    of every pipeline of ``datasets`` that loads images, in place, once per
    pipeline (configs may share one between dataloaders).

    Args:
        datasets (list[dict]): Dataset configs.
        transform (dict): The transform's config.

    Returns:
        int: How many pipelines got it.
    """
    pipelines = {
        id(pipeline): pipeline
        for dataset in datasets
        for pipeline in dataset_pipelines(dataset)
    }
    count = 0
    for pipeline in pipelines.values():
        steps = [
            i for i, step in enumerate(pipeline)
            if _type_name(step).startswith('LoadImage')
            or _type_name(step) in NOISE_TRANSFORMS
        ]
        if steps:
            pipeline.insert(steps[-1] + 1, copy.deepcopy(transform))
            count += 1
    return count


def _check_options(name, cls, options):
    accepted = [
        key for key in inspect.signature(cls).parameters
        if key not in ('segmentor', 'data_preprocessor', 'init_cfg')
    ]
    for key in options:
        if key not in accepted:
            raise ValueError(f'defense {name!r} has no option {key!r}; its '
                             f'options: {accepted}')


def apply_defense(cfg, name, **options):
    """Add a training-time defense to a victim config, in place.

    Transform defenses (:data:`TRANSFORM_DEFENSES`) go right after the
    image loading step (and after any ``AddUnlearnableNoise`` /
    ``GenerateUnlearnableNoise``) of the training pipelines, found in
    ``cfg.train_dataloader.dataset`` through dataset wrappers, as
    ``type='mmunseg.<Name>'`` so that mmseg and mmdet scopes resolve it.
    ``pgd_at`` and ``ddc_at`` wrap ``cfg.model`` in
    :class:`PGDAdversarialTraining` or :class:`DDCAdversarialTraining`.

    Args:
        cfg (mmengine.Config): The victim config, modified in place.
        name (str): One of :data:`DEFENSE_NAMES`.
        **options: The defense's constructor arguments. Transform defenses
            also take ``test=True`` to squeeze validation and test images
            too (ISS's "both" setting: grayscale training and colour testing
            shift the distribution).

    Raises:
        ValueError: Unknown defense or option, an invalid value, or a config
            without an image-loading training pipeline.
    """
    if name not in DEFENSE_NAMES:
        raise ValueError(f'unknown defense {name!r}; choose one of '
                         f'{DEFENSE_NAMES}')
    if name in MODEL_DEFENSES:
        cls = MODEL_DEFENSES[name]
        _check_options(name, cls, options)
        attack = {
            key: options.get(key, parameter.default)
            for key, parameter in inspect.signature(cls).parameters.items()
            if key in ('epsilon', 'step_size', 'steps')
        }
        try:
            check_attack(**attack)
        except ValueError as error:
            raise ValueError(f'defense {name!r}: {error}') from error
        segmentor = copy.deepcopy(cfg.model)
        if '.' not in str(segmentor.get('type', '')):
            # Resolve the victim in its config's scope from ours.
            segmentor.setdefault('_scope_', cfg.get('default_scope', 'mmseg'))
        cfg.model = dict(
            type=f'mmunseg.{cls.__name__}', segmentor=segmentor, **options)
        return
    cls = TRANSFORM_DEFENSES[name]
    test = options.pop('test', False)
    if not isinstance(test, bool):
        raise ValueError(f'defense {name!r}: test must be True or False, got '
                         f'{test!r}')
    _check_options(name, cls, options)
    try:
        cls(**options)
    except ValueError as error:
        raise ValueError(f'defense {name!r}: {error}') from error
    transform = dict(type=f'mmunseg.{cls.__name__}', **options)
    if not insert_after_loading([cfg.train_dataloader.dataset], transform):
        raise ValueError(f'defense {name!r}: no training pipeline in '
                         'cfg.train_dataloader.dataset loads images')
    if test:
        insert_after_loading([
            cfg[key].dataset
            for key in ('val_dataloader', 'test_dataloader') if cfg.get(key)
        ], transform)
