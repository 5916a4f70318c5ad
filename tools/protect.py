"""Write an unlearnable (protected) copy of a dataset.

    python tools/protect.py DATASET_CONFIG [GENERATOR_CKPT] --out-dir DIR
        [--method unseg|uniform|em|synper|ar|cuda|shift|NOISE_METHOD]
        [--method-options KEY=VALUE ...]
        [--splits train] [--prompt union] [--budget paper|medical|train]
        [--eps-object 8/255] [--eps-background 2/255] [--format png|jpg]
        [--batch-size 4] [--device cpu|cuda] [--resume] [--vis N]
        [--max-memory 8G] [--workers N]

DATASET_CONFIG is an MMSeg or MMDet dataset config. The copy mirrors the
dataset's folders under DIR (images as lossless PNG by default), with the
annotations unchanged, a manifest (per image: achieved L-inf per region,
PSNR, SSIM), a summary and ``protected_dataset.py``, a config that trains on
the copy. Nothing is written into the source dataset.

``--method`` is the UnSeg generator (``unseg``, needs GENERATOR_CKPT) or any
method registered in ``mmunseg.registry.NOISE_METHODS``: the uniform control
and the baselines (``em`` error-minimising noise, ``synper`` synthetic
patches, ``ar`` autoregressive, ``cuda`` class-wise convolutions, or their
class names) and ``shift``, the constant-brightening control (what
a collapsed generator does). Every method gets the same budgets, prompts
and output.
``--method-options`` go to the method's constructor, for example
``precision=bf16 compile=True`` for the generator or ``steps=10 rounds=2``
for EM; the command line's ``--seed``, ``--device``, budgets and the
dataset's number of classes fill the constructor arguments of those names
that the options leave unset.

``--workers`` processes decode, quantise, verify, encode and write the
images while the method makes the noise of the next batch in the main
process; their number does not change the output.

The first run records its settings in DIR/protect_settings.json. A non-empty
DIR is only written into with ``--resume``, and only with the settings it
was made with; every seeded method draws each image's noise from the seed
and the image's name, so a resumed, re-batched or sharded run writes the
same bytes.
"""
import argparse
import inspect
import json
import os
import os.path as osp
import sys
import warnings

import torch
import torch.distributed as dist
from mmengine.config import Config, DictAction

from mmunseg.protect import (PROMPT_MODES, Protector, UnSegGenerator,
                             background_class_ids, copy_annotations,
                             ensure_outside, load_manifest, load_split,
                             manifest_shard_path, merge_manifests, shard,
                             summarize, summary_line, write_config_override,
                             write_panels)
from mmunseg.protect.image_io import write_bytes_atomic
from mmunseg.protect.manifest import (EXIT_FAILED, EXIT_FAILED_AND_OVER_BUDGET,
                                      EXIT_OVER_BUDGET, exit_status)
from mmunseg.protect.memory import available_memory, format_size
from mmunseg.protect.options import (BUDGET_RULE, format_budget, int_in,
                                     parse_budget, parse_device, parse_size)
from mmunseg.protect.protector import previous_records
from mmunseg.protect.settings import (OutDirError, check_out_dir, file_sha256,
                                      write_settings)
from mmunseg.registry import NOISE_METHODS
from mmunseg.utils import register_all_modules

# Object / background budgets of the paper, in [0, 1] units.
BUDGETS = {
    'paper': (8 / 255, 2 / 255),
    'medical': (4 / 255, 1 / 255),
    'train': (1 / 255, 0.25 / 255),
}

# Short names of the registered noise methods.
METHOD_ALIASES = {
    'unseg': 'UnSegGenerator',
    'uniform': 'UniformNoise',
    'em': 'ErrorMinimizingNoise',
    'synper': 'SyntheticNoise',
    'ar': 'AutoregressiveNoise',
    'cuda': 'ConvolutionNoise',
    'shift': 'ConstantShift',
}

EPILOG = f"""budgets: {BUDGET_RULE}.

exit status: 0 when every image is written within its budget; 1 when the
run stops on an error (bad arguments, a config or checkpoint that cannot be
used, an output folder that would be overwritten or mixed); 2 for command
line usage errors; {EXIT_FAILED} when it finished but some images failed
(unreadable, missing, too large: see manifest.jsonl); {EXIT_OVER_BUDGET}
when some images exceed their budget (lossy --format jpg);
{EXIT_FAILED_AND_OVER_BUDGET} for both."""

#: The splits a dataset config may have, as ``{split}_dataloader``.
SPLITS = ('train', 'val', 'test')


def build_parser():
    """The command line; every value is checked as it is parsed."""
    parser = argparse.ArgumentParser(
        description='Protect a dataset with unlearnable noise',
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='MMSeg / MMDet dataset config')
    parser.add_argument(
        'checkpoint',
        nargs='?',
        help='trained generator (training checkpoint or exported file); '
        'only for --method unseg')
    parser.add_argument('--out-dir', required=True, help='output root')
    parser.add_argument(
        '--splits',
        nargs='+',
        choices=SPLITS,
        default=['train'],
        help='dataloaders to protect: train, val, test (the config must '
        'have them)')
    parser.add_argument(
        '--method',
        choices=sorted(METHOD_ALIASES) + sorted(NOISE_METHODS.module_dict),
        default='unseg',
        metavar='METHOD',
        help='the UnSeg generator (unseg), or a registered noise method: '
        'uniform (the control), em, synper, ar, cuda, or a class name of '
        'mmunseg.registry.NOISE_METHODS')
    parser.add_argument(
        '--method-options',
        nargs='+',
        action=DictAction,
        default={},
        metavar='KEY=VALUE',
        help='constructor arguments of the method, e.g. precision=bf16 '
        'compile=True (unseg) or steps=10 rounds=2 (em)')
    parser.add_argument(
        '--generator-config',
        help='training config of the generator, if the checkpoint does not '
        'record it')
    parser.add_argument(
        '--prompt',
        choices=PROMPT_MODES,
        default='union',
        help='objects to prompt: union of labelled objects (paper), one '
        'call per class / instance, a box or points of the union, or '
        'SAM\'s automatic masks for unlabelled images')
    parser.add_argument(
        '--budget',
        choices=sorted(BUDGETS),
        default='paper',
        help='preset object/background budgets: paper 8/255 and 2/255, '
        'medical 4/255 and 1/255, train 1/255 and 0.25/255')
    parser.add_argument(
        '--eps-object',
        type=parse_budget,
        metavar='BUDGET',
        help='L-inf budget on the objects, overriding --budget: 8 (grey '
        'levels) or 8/255, 5.5/255 (fractions of the range)')
    parser.add_argument(
        '--eps-background',
        type=parse_budget,
        metavar='BUDGET',
        help='L-inf budget off the objects, overriding --budget, written as '
        '--eps-object')
    parser.add_argument(
        '--background-classes',
        nargs='*',
        type=int_in(0),
        help='semantic class ids that are not objects (default: classes '
        'named "background")')
    parser.add_argument(
        '--ignore-index',
        type=int,
        default=255,
        help='label value of unlabelled pixels (never an object)')
    parser.add_argument(
        '--format',
        choices=['png', 'jpg'],
        default='png',
        help='png (lossless, default) or jpg (lossy: may exceed the budget)')
    parser.add_argument(
        '--jpeg-quality',
        type=int_in(0, 100),
        default=95,
        help='JPEG quality, 0-100, for --format jpg')
    parser.add_argument(
        '--batch-size',
        type=int_in(1),
        default=4,
        help='generator calls per forward pass (does not change the output)')
    parser.add_argument(
        '--device',
        type=parse_device,
        default='cuda' if torch.cuda.is_available() else 'cpu',
        help='cpu, cuda or cuda:N (default: cuda where there is one)')
    parser.add_argument(
        '--no-antialias',
        action='store_true',
        help='resize to the generator input without anti-aliasing, as the '
        'released code does')
    parser.add_argument(
        '--limit',
        type=int_in(1),
        metavar='N',
        help='protect only the first N >= 1 images of each split (a trial '
        'run)')
    parser.add_argument(
        '--seed',
        type=int_in(0),
        default=0,
        help='seed of the noise methods; each image draws from the seed and '
        'its name')
    parser.add_argument(
        '--resume',
        action='store_true',
        help='continue the copy in a non-empty --out-dir: skip finished '
        'images; refused unless the settings are those the copy was made '
        'with')
    parser.add_argument(
        '--max-memory',
        type=parse_size,
        metavar='SIZE',
        help='memory one process may use for the images it holds, e.g. 8G '
        '(default: the available memory at start, shared by the processes '
        'of a node); an image that needs more is recorded as failed')
    parser.add_argument(
        '--workers',
        type=int_in(0),
        metavar='N',
        help='worker processes that decode, verify and write the images '
        'beside the method, >= 0; 0 does everything in the main process '
        '(default: the CPU cores shared by the processes of a node, at '
        'most 4); does not change the output')
    parser.add_argument(
        '--save-noise',
        action='store_true',
        help='also keep each perturbation under DIR/noise for the '
        'AddUnlearnableNoise transform')
    parser.add_argument(
        '--vis',
        type=int_in(0),
        default=0,
        metavar='N',
        help='write N >= 0 side-by-side panels')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return parser


def check_splits(parser, cfg, splits):
    """Stop with a usage error (status 2) if the config lacks one of the
    ``--splits``."""
    present = [
        name for name in SPLITS if cfg.get(f'{name}_dataloader') is not None
    ]
    missing = [name for name in splits if name not in present]
    if missing:
        parser.error(f'argument --splits: the config has no '
                     f'{missing[0]}_dataloader (splits present: {present})')


def init_distributed(launcher):
    """(rank, world size); torchrun processes join one group."""
    if launcher == 'none':
        return 0, 1
    backend = 'nccl' if torch.cuda.is_available() else 'gloo'
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get('LOCAL_RANK', 0)))
    return dist.get_rank(), dist.get_world_size()


def build_method(args, defaults):
    """The noise method of ``--method`` with its ``--method-options``.

    Args:
        args (argparse.Namespace): The command line.
        defaults (dict): Values (from the command line and the dataset) for
            the constructor arguments of these names that the options leave
            unset; None values are skipped.

    Returns:
        tuple[NoiseMethod, str, dict]: The method, its registered name and
        the options it was built with.
    """
    name = METHOD_ALIASES.get(args.method, args.method)
    options = dict(args.method_options)
    accepted = inspect.signature(NOISE_METHODS.get(name)).parameters
    for key, value in defaults.items():
        if key in accepted and value is not None:
            options.setdefault(key, value)
    try:
        if name != 'UnSegGenerator':
            if args.checkpoint is not None:
                warnings.warn(f'--method {args.method} uses no generator: '
                              f'{args.checkpoint} is ignored')
            return NOISE_METHODS.build(dict(type=name,
                                            **options)), name, options
        if args.checkpoint is None:
            raise SystemExit('protect.py: the unseg method needs '
                             'GENERATOR_CKPT')
        if args.generator_config:
            options.setdefault(
                'generator_cfg',
                Config.fromfile(
                    args.generator_config).model.generator.to_dict())
        options.setdefault('antialias', not args.no_antialias)
        return UnSegGenerator(args.checkpoint, **options), name, options
    except (TypeError, ValueError, RuntimeError) as error:
        raise SystemExit(f'protect.py: --method {args.method} with options '
                         f'{options}: {error}')


def copy_settings(args, name, options, eps_object, eps_background,
                  background_ids):
    """What makes the copy's bytes: recorded by the first run, compared by
    every resumed one. The method's options include its defaults (an option
    given explicitly at its default value is the same setting). The batch
    size, process count, worker count and memory limit are not settings
    (they do not change the output); the device's type is, for methods
    that run a network on it."""
    parameters = inspect.signature(NOISE_METHODS.get(name)).parameters
    options = dict(
        {
            key: parameter.default
            for key, parameter in parameters.items()
            if parameter.default is not inspect.Parameter.empty
        }, **options)
    if options.get('device') is not None:
        options['device'] = torch.device(options['device']).type
    return dict(
        method=name,
        method_options=options,
        checkpoint_sha256=file_sha256(args.checkpoint)
        if name == 'UnSegGenerator' else None,
        eps_object=eps_object,
        eps_background=eps_background,
        prompt=args.prompt,
        format=args.format,
        jpeg_quality=args.jpeg_quality if args.format == 'jpg' else None,
        ignore_index=args.ignore_index,
        background_ids=list(background_ids),
        save_noise=args.save_noise,
        dataset_config=osp.abspath(args.config))


def automatic_objects(method):
    """SAM's automatic masks over the generator's own (frozen) SAM."""
    from segment_anything import SamAutomaticMaskGenerator
    from segment_anything.modeling import Sam
    generator = method.generator
    sam = Sam(generator.image_encoder, generator.prompt_encoder,
              generator.mask_decoder, [123.675, 116.28, 103.53],
              [58.395, 57.12, 57.375]).eval()
    amg = SamAutomaticMaskGenerator(sam, points_per_side=16)

    def objects(image):
        with torch.no_grad():
            masks = amg.generate(image)
        return {f'auto_{i}': m['segmentation'] for i, m in enumerate(masks)}

    return objects


def main(argv=None):
    """Protect the dataset; returns the exit status (see ``--help``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    register_all_modules(init_default_scope_to_mmunseg=False)
    rank, world_size = init_distributed(args.launcher)
    eps_object, eps_background = BUDGETS[args.budget]
    eps_object = args.eps_object if args.eps_object is not None \
        else eps_object
    eps_background = args.eps_background \
        if args.eps_background is not None else eps_background
    if args.format == 'jpg' and rank == 0:
        warnings.warn('JPEG output re-compresses the protected images: it '
                      'weakens the protection (the paper\'s JPEG defense) '
                      'and the L-inf bound is no longer guaranteed. Use '
                      'PNG unless you must.')

    cfg = Config.fromfile(args.config)
    check_splits(parser, cfg, args.splits)
    splits = [s for name in args.splits for s in load_split(cfg, name)]
    if args.limit is not None:
        for split in splits:
            split.items = split.items[:args.limit]
    out_dir = osp.abspath(args.out_dir)
    ensure_outside(out_dir, [split.root for split in splits])
    items = [item for split in splits for item in split.items]
    classes = cfg.get('metainfo', {}).get('classes') or \
        splits[0].dataset_cfg.get('metainfo', {}).get('classes')
    background_ids = args.background_classes \
        if args.background_classes is not None \
        else background_class_ids(classes)

    method, name, options = build_method(
        args,
        dict(
            seed=args.seed,
            device=args.device,
            eps_object=eps_object,
            eps_background=eps_background,
            num_classes=len(classes) if classes else None))
    if args.prompt == 'everything' and not isinstance(method, UnSegGenerator):
        raise SystemExit('protect.py: --prompt everything uses SAM\'s '
                         'automatic masks of the unseg method')
    if getattr(method, 'needs_labels',
               False) and args.prompt in ('per-class', 'per-instance'):
        raise SystemExit(f'protect.py: --method {args.method} keys its '
                         'noise on the class of each pixel; use --prompt '
                         'union (or box / points)')
    settings = copy_settings(args, name, options, eps_object, eps_background,
                             background_ids)
    try:
        resuming = check_out_dir(out_dir, settings, args.resume)
    except OutDirError as error:
        raise SystemExit(f'protect.py: {error}')
    if not method.order_independent and (resuming or world_size > 1):
        raise SystemExit(
            f'protect.py: --method {args.method} with these options learns '
            'across images in order, so a resumed or sharded run would not '
            'give the bytes of one run; protect from the start, in one '
            'process')
    max_memory = args.max_memory
    if max_memory is None:
        available = available_memory()
        local_processes = int(os.environ.get('LOCAL_WORLD_SIZE', 1))
        max_memory = available // local_processes if available else None
    protector = Protector(
        method,
        out_dir,
        eps_object,
        eps_background,
        prompt_mode=args.prompt,
        fmt=args.format,
        jpeg_quality=args.jpeg_quality,
        batch_size=args.batch_size,
        ignore_index=args.ignore_index,
        background_ids=background_ids,
        automatic_objects=automatic_objects(method)
        if args.prompt == 'everything' else None,
        resume=args.resume,
        save_noise=args.save_noise,
        max_memory=max_memory,
        workers=args.workers)
    outputs = [protector.output_file(item) for item in items]
    if len(set(outputs)) != len(outputs):
        raise SystemExit('protect.py: two source images map to the same '
                         'output file (same name, different suffix)')
    # Every rank has checked the folder before the first write to it.
    if world_size > 1:
        dist.barrier()
    if rank == 0:
        write_settings(out_dir, settings)
    if world_size > 1:
        dist.barrier()
    done = previous_records(out_dir)
    if rank == 0:
        limit = 'no memory limit' if max_memory is None \
            else f'memory limit {format_size(max_memory)} per process'
        print(f'protecting {len(items)} images of {args.splits} with '
              f'{args.method} ({args.prompt} prompt), eps object '
              f'{format_budget(eps_object)}, background '
              f'{format_budget(eps_background)}, {limit}, '
              f'{protector.workers} workers -> {out_dir}')
    protector.run(
        shard(items, rank, world_size),
        manifest_shard_path(out_dir, rank),
        done=done,
        show_progress=rank == 0)
    if world_size > 1:
        dist.barrier()
    if rank != 0:
        return 0

    shard_dir = osp.dirname(manifest_shard_path(out_dir, 0))
    manifest = osp.join(out_dir, 'manifest.jsonl')
    merge_manifests(
        ([manifest] if osp.isfile(manifest) else []) +
        sorted(osp.join(shard_dir, n)
               for n in os.listdir(shard_dir)), manifest)
    for name in os.listdir(shard_dir):
        os.remove(osp.join(shard_dir, name))
    records = load_manifest(manifest)
    for split in splits:
        copy_annotations(split, out_dir, args.format)
    config_path = write_config_override(args.config, splits, out_dir,
                                        args.format)
    summary = summarize(records, eps_object, eps_background)
    summary.update(
        method=args.method,
        method_options=args.method_options,
        prompt=args.prompt,
        splits=args.splits,
        format=args.format,
        source_config=osp.abspath(args.config),
        dataset_config=config_path)
    write_bytes_atomic(
        osp.join(out_dir, 'summary.json'),
        json.dumps(summary, indent=2).encode())
    if args.vis:
        by_file = {
            osp.relpath(protector.output_file(item), out_dir): item
            for item in items
        }
        write_panels(
            sorted(records.values(), key=lambda r: r['file']), by_file,
            out_dir, osp.join(out_dir, 'vis'), args.vis,
            dict(
                ignore_index=args.ignore_index, background_ids=background_ids))
    failed = [r for r in records.values() if r['status'] == 'failed']
    for record in failed[:10]:
        print(f'failed {record["source"]}: {record["error"]}')
    for file in summary['over_budget'][:10]:
        print(f'over budget: {osp.join(out_dir, file)}')
    print(summary_line(summary))
    print(f'dataset config of the protected copy: {config_path}')
    status = exit_status(summary)
    if status:
        print(
            f'protect.py: exit status {status}: {len(failed)} images failed, '
            f'{len(summary["over_budget"])} over budget (records in '
            f'{manifest})',
            file=sys.stderr)
    return status


if __name__ == '__main__':
    sys.exit(main())
