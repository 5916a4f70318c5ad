"""Protect the images of a dataset config into a copy: the one call behind
``tools/protect.py``, the benchmarks and the method comparison.

:func:`protect_dataset` builds the method from the registry (its declared
:attr:`~mmunseg.protect.NoiseMethod.run_values` filled from the run),
records and checks the copy's settings, runs the :class:`Protector` on this
process's share of the images, and on rank 0 merges the shards' manifests
and writes the annotations, ``protected_dataset.py``, ``summary.json`` and
any panels. Errors a user can fix raise :class:`ProtectError`, whose message
``tools/protect.py`` prints.
"""
import inspect
import json
import os
import os.path as osp
import warnings

import torch
import torch.distributed as dist
from mmengine.config import Config

from mmunseg.datasets.protected_copy import MANIFEST_FILE, load_manifest
from mmunseg.models.budget import Budget, format_eps
from mmunseg.registry import NOISE_METHODS
from mmunseg.utils import register_all_modules
from mmunseg.utils.atomic_files import write_bytes_atomic
from .export import copy_annotations, write_config_override, write_panels
from .image_io import ensure_outside
from .manifest import merge_manifests, summarize, summary_line
from .memory import available_memory, format_size
from .protector import Protector, manifest_shard_path, previous_records, shard
from .settings import OutDirError, check_out_dir, file_sha256, write_settings
from .sources import background_class_ids, load_split


class ProtectError(ValueError):
    """A protect run that cannot start: bad method or options, a folder
    that would be overwritten or mixed, prompts the method cannot take."""


def method_class(method):
    """The registered class of a ``--method`` name (short or class name).

    Raises:
        ProtectError: No noise method is registered under ``method``.
    """
    cls = NOISE_METHODS.get(method)
    if cls is None:
        raise ProtectError(f'unknown method {method!r}; registered: '
                           f'{sorted(NOISE_METHODS.module_dict)}')
    return cls


def build_method(method,
                 options,
                 run_values,
                 checkpoint=None,
                 generator_config=None,
                 antialias=True):
    """A noise method from the registry with its options.

    Args:
        method (str): A registered name (``uniform`` or ``UniformNoise``).
        options (dict): Constructor arguments.
        run_values (dict): The run's ``seed``, ``device``, budgets and
            ``num_classes``; those the class declares in ``run_values`` fill
            the constructor arguments the options leave unset (None values
            are skipped).
        checkpoint (str, optional): The generator, for a method that
            ``needs_checkpoint``; ignored (with a warning) by the others.
        generator_config (str, optional): The generator's training config,
            if the checkpoint does not record it.
        antialias (bool): Anti-alias the generator's input resize.

    Returns:
        tuple[NoiseMethod, str, dict]: The method, its class name and the
        options it was built with.

    Raises:
        ProtectError: The method is unknown, needs a checkpoint that is
            missing, or refuses its options.
    """
    cls = method_class(method)
    options = dict(options)
    for key in cls.run_values:
        if run_values.get(key) is not None:
            options.setdefault(key, run_values[key])
    try:
        if not cls.needs_checkpoint:
            if checkpoint is not None:
                warnings.warn(f'--method {method} uses no generator: '
                              f'{checkpoint} is ignored')
            return cls(**options), cls.__name__, options
        if checkpoint is None:
            raise ProtectError('the unseg method needs GENERATOR_CKPT')
        if generator_config:
            options.setdefault(
                'generator_cfg',
                Config.fromfile(generator_config).model.generator.to_dict())
        options.setdefault('antialias', antialias)
        return cls(checkpoint, **options), cls.__name__, options
    except ProtectError:
        raise
    except (TypeError, ValueError, RuntimeError) as error:
        raise ProtectError(f'--method {method} with options {options}: '
                           f'{error}') from error


def copy_settings(cls, options, checkpoint, run):
    """What makes the copy's bytes: recorded by the first run, compared by
    every resumed one. The method's options include its defaults (an option
    given explicitly at its default value is the same setting). The batch
    size, process count, worker count and memory limit are not settings
    (they do not change the output); the device's type is, for methods
    that run a network on it.

    Args:
        cls (type): The method's class.
        options (dict): The options it was built with.
        checkpoint (str, optional): The generator's checkpoint.
        run (dict): ``budget``, ``prompt``, ``format``, ``jpeg_quality``,
            ``ignore_index``, ``background_ids``, ``save_noise`` and
            ``dataset_config``.

    Returns:
        dict: The settings record.
    """
    parameters = inspect.signature(cls).parameters
    options = dict(
        {
            key: parameter.default
            for key, parameter in parameters.items()
            if parameter.default is not inspect.Parameter.empty
        }, **options)
    if options.get('device') is not None:
        options['device'] = torch.device(options['device']).type
    if 'budget' in options:
        options['budget'] = Budget.of(options['budget']).to_dict()
    return dict(
        method=cls.__name__,
        method_options=options,
        checkpoint_sha256=file_sha256(checkpoint)
        if cls.needs_checkpoint else None,
        eps_object=run['budget'].object,
        eps_background=run['budget'].background,
        prompt=run['prompt'],
        format=run['format'],
        jpeg_quality=run['jpeg_quality'] if run['format'] == 'jpg' else None,
        ignore_index=run['ignore_index'],
        background_ids=list(run['background_ids']),
        save_noise=run['save_noise'],
        dataset_config=run['dataset_config'])


def dist_info():
    """(rank, world size) of the process group, (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def default_max_memory():
    """The available memory shared by the processes of this node (None
    when it cannot be read)."""
    available = available_memory()
    local_processes = int(os.environ.get('LOCAL_WORLD_SIZE', 1))
    return available // local_processes if available else None


def finish_copy(out_dir, splits, items, protector, config, summary_fields, vis,
                panel_options):
    """Rank 0, after every rank's images: merge the shards' manifests, copy
    the annotations, write the copy's config, summary and panels.

    Returns:
        tuple[dict, dict, str]: The manifest's records by file, the summary
        and the copy's dataset config.
    """
    shard_dir = osp.dirname(manifest_shard_path(out_dir, 0))
    manifest = osp.join(out_dir, MANIFEST_FILE)
    merge_manifests(
        ([manifest] if osp.isfile(manifest) else []) +
        sorted(osp.join(shard_dir, n)
               for n in os.listdir(shard_dir)), manifest)
    for name in os.listdir(shard_dir):
        os.remove(osp.join(shard_dir, name))
    records = load_manifest(manifest)
    for split in splits:
        copy_annotations(split, out_dir, protector.spec.fmt)
    config_path = write_config_override(config, splits, out_dir,
                                        protector.spec.fmt)
    summary = summarize(records, protector.spec.budget)
    summary.update(summary_fields, dataset_config=config_path)
    write_bytes_atomic(
        osp.join(out_dir, 'summary.json'),
        json.dumps(summary, indent=2).encode())
    if vis:
        by_file = {
            osp.relpath(protector.output_file(item), out_dir): item
            for item in items
        }
        write_panels(
            sorted(records.values(), key=lambda r: r['file']), by_file,
            out_dir, osp.join(out_dir, 'vis'), vis, panel_options)
    return records, summary, config_path


def protect_dataset(config,
                    method,
                    out_dir,
                    checkpoint=None,
                    method_options=None,
                    splits=('train', ),
                    prompt='union',
                    budget='paper',
                    background_classes=None,
                    ignore_index=255,
                    fmt='png',
                    jpeg_quality=95,
                    batch_size=4,
                    device=None,
                    antialias=True,
                    generator_config=None,
                    limit=None,
                    seed=0,
                    resume=False,
                    max_memory=None,
                    workers=None,
                    save_noise=False,
                    vis=0):
    """Write a protected copy of a dataset config's splits.

    Every process of a ``torch.distributed`` group (if one is initialised)
    protects its share of the images; rank 0 then finishes the copy.

    Args:
        config (str): An MMSeg or MMDet dataset config file.
        method (str): A registered noise method (``unseg``, ``uniform``,
            ``em``, ... or a class name).
        out_dir (str): The copy's root: new, empty, or (with ``resume``) a
            copy made with the same settings.
        checkpoint (str, optional): The generator, for ``unseg``.
        method_options (dict, optional): The method's constructor arguments.
        splits (Sequence[str]): ``train``, ``val``, ``test``.
        prompt (str): One of :data:`~mmunseg.protect.PROMPT_MODES`.
        budget (Budget | dict | str): L-inf budgets of the objects and the
            background (:meth:`Budget.of`: a budget, its dict or a preset
            name; default the paper's 8/255 and 2/255).
        background_classes (Sequence[int], optional): Semantic classes that
            are not objects (default: classes named like "background").
        ignore_index (int): Label value of unlabelled pixels.
        fmt (str): ``png`` (lossless) or ``jpg``.
        jpeg_quality (int): JPEG quality, for ``fmt='jpg'``.
        batch_size (int): Images per call of the method.
        device (str, optional): Where the method runs (default: cuda where
            there is one).
        antialias (bool): Anti-alias the generator's input resize.
        generator_config (str, optional): The generator's training config.
        limit (int, optional): Only the first ``limit`` images of each
            split.
        seed (int): Seed of the noise methods.
        resume (bool): Continue the copy in a non-empty ``out_dir``.
        max_memory (int, optional): Bytes one process may use for its
            images (default: the available memory, shared on the node).
        workers (int, optional): Worker processes beside the method.
        save_noise (bool): Also keep each perturbation under ``noise/``.
        vis (int): Side-by-side panels to write.

    Returns:
        dict | None: The copy's summary (``summary.json``) on rank 0, None
        on the other ranks.

    Raises:
        ProtectError: The run cannot start (see the class).
    """
    register_all_modules(init_default_scope_to_mmunseg=False)
    try:
        budget = Budget.of(budget)
    except ValueError as error:
        raise ProtectError(str(error)) from None
    rank, world_size = dist_info()
    if device is None:
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
    method_options = dict(method_options or {})
    if fmt == 'jpg' and rank == 0:
        warnings.warn('JPEG output re-compresses the protected images: it '
                      'weakens the protection (the paper\'s JPEG defense) '
                      'and the L-inf bound is no longer guaranteed. Use '
                      'PNG unless you must.')
    cfg = Config.fromfile(config)
    dataset_splits = [s for name in splits for s in load_split(cfg, name)]
    if limit is not None:
        for split in dataset_splits:
            split.items = split.items[:limit]
    out_dir = osp.abspath(out_dir)
    ensure_outside(out_dir, [split.root for split in dataset_splits])
    items = [item for split in dataset_splits for item in split.items]
    classes = cfg.get('metainfo', {}).get('classes') or \
        dataset_splits[0].dataset_cfg.get('metainfo', {}).get('classes')
    background_ids = background_classes \
        if background_classes is not None \
        else background_class_ids(classes)

    noise_method, name, options = build_method(
        method,
        method_options,
        dict(
            seed=seed,
            device=device,
            budget=budget,
            num_classes=len(classes) if classes else None),
        checkpoint=checkpoint,
        generator_config=generator_config,
        antialias=antialias)
    cls = type(noise_method)
    automatic_objects = noise_method.automatic_masks() \
        if prompt == 'everything' else None
    if prompt == 'everything' and automatic_objects is None:
        raise ProtectError('--prompt everything uses SAM\'s automatic masks '
                           'of the unseg method')
    if cls.needs_labels and prompt in ('per-class', 'per-instance'):
        raise ProtectError(f'--method {method} keys its noise on the class '
                           'of each pixel; use --prompt union (or box / '
                           'points)')
    settings = copy_settings(
        cls, options, checkpoint,
        dict(
            budget=budget,
            prompt=prompt,
            format=fmt,
            jpeg_quality=jpeg_quality,
            ignore_index=ignore_index,
            background_ids=background_ids,
            save_noise=save_noise,
            dataset_config=osp.abspath(config)))
    try:
        resuming = check_out_dir(out_dir, settings, resume)
    except OutDirError as error:
        raise ProtectError(str(error)) from None
    if not noise_method.order_independent and (resuming or world_size > 1):
        raise ProtectError(
            f'--method {method} with these options learns across images in '
            'order, so a resumed or sharded run would not give the bytes of '
            'one run; protect from the start, in one process')
    if max_memory is None:
        max_memory = default_max_memory()
    protector = Protector(
        noise_method,
        out_dir,
        budget,
        prompt_mode=prompt,
        fmt=fmt,
        jpeg_quality=jpeg_quality,
        batch_size=batch_size,
        ignore_index=ignore_index,
        background_ids=background_ids,
        automatic_objects=automatic_objects,
        resume=resume,
        save_noise=save_noise,
        max_memory=max_memory,
        workers=workers)
    outputs = [protector.output_file(item) for item in items]
    if len(set(outputs)) != len(outputs):
        raise ProtectError('two source images map to the same output file '
                           '(same name, different suffix)')
    # Every rank has checked the folder before the first write to it.
    if world_size > 1:
        dist.barrier()
    if rank == 0:
        write_settings(out_dir, settings)
    if world_size > 1:
        dist.barrier()
    done = previous_records(out_dir)
    if rank == 0:
        memory = 'no memory limit' if max_memory is None \
            else f'memory limit {format_size(max_memory)} per process'
        print(f'protecting {len(items)} images of {list(splits)} with '
              f'{method} ({prompt} prompt), eps object '
              f'{format_eps(budget.object)}, background '
              f'{format_eps(budget.background)}, {memory}, '
              f'{protector.workers} workers -> {out_dir}')
    protector.run(
        shard(items, rank, world_size),
        manifest_shard_path(out_dir, rank),
        done=done,
        show_progress=rank == 0)
    if world_size > 1:
        dist.barrier()
    if rank != 0:
        return None

    records, summary, config_path = finish_copy(
        out_dir, dataset_splits, items, protector, config,
        dict(
            method=method,
            method_options=method_options,
            prompt=prompt,
            splits=list(splits),
            format=fmt,
            source_config=osp.abspath(config)), vis,
        dict(ignore_index=ignore_index, background_ids=background_ids))
    failed = [r for r in records.values() if r['status'] == 'failed']
    for record in failed[:10]:
        print(f'failed {record["source"]}: {record["error"]}')
    for file in summary['over_budget'][:10]:
        print(f'over budget: {osp.join(out_dir, file)}')
    print(summary_line(summary))
    print(f'dataset config of the protected copy: {config_path}')
    return summary
