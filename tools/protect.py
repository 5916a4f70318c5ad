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
dataset's number of classes fill the constructor arguments the method
declares (``NoiseMethod.run_values``) that the options leave unset.

The work is :func:`mmunseg.protect.dataset_copy.protect_dataset`; this file
only reads the command line.

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
import os
import sys

import torch
import torch.distributed as dist
from mmengine.config import Config, DictAction

from mmunseg.models.budget import BUDGET_PRESETS, BUDGET_RULE, Budget
from mmunseg.protect import PROMPT_MODES
from mmunseg.protect.dataset_copy import ProtectError, protect_dataset
from mmunseg.protect.manifest import (EXIT_FAILED, EXIT_FAILED_AND_OVER_BUDGET,
                                      EXIT_OVER_BUDGET, exit_status)
from mmunseg.protect.options import (int_in, parse_budget, parse_device,
                                     parse_size)
from mmunseg.registry import NOISE_METHODS
from mmunseg.utils import register_all_modules

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
        # Short names (lower case) first, then class names.
        choices=sorted(
            NOISE_METHODS.module_dict,
            key=lambda name: (name[:1].isupper(), name)),
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
        choices=sorted(BUDGET_PRESETS),
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


def main(argv=None):
    """Protect the dataset; returns the exit status (see ``--help``)."""
    register_all_modules(init_default_scope_to_mmunseg=False)
    parser = build_parser()
    args = parser.parse_args(argv)
    rank, _ = init_distributed(args.launcher)
    preset = BUDGET_PRESETS[args.budget]
    budget = Budget(
        preset.object if args.eps_object is None else args.eps_object,
        preset.background
        if args.eps_background is None else args.eps_background)
    check_splits(parser, Config.fromfile(args.config), args.splits)
    try:
        summary = protect_dataset(
            args.config,
            args.method,
            args.out_dir,
            checkpoint=args.checkpoint,
            method_options=args.method_options,
            splits=args.splits,
            prompt=args.prompt,
            budget=budget,
            background_classes=args.background_classes,
            ignore_index=args.ignore_index,
            fmt=args.format,
            jpeg_quality=args.jpeg_quality,
            batch_size=args.batch_size,
            device=args.device,
            antialias=not args.no_antialias,
            generator_config=args.generator_config,
            limit=args.limit,
            seed=args.seed,
            resume=args.resume,
            max_memory=args.max_memory,
            workers=args.workers,
            save_noise=args.save_noise,
            vis=args.vis)
    except ProtectError as error:
        raise SystemExit(f'protect.py: {error}')
    if rank != 0:
        return 0
    status = exit_status(summary)
    if status:
        manifest = os.path.join(
            os.path.abspath(args.out_dir), 'manifest.jsonl')
        print(
            f'protect.py: exit status {status}: '
            f'{summary["counts"].get("failed", 0)} images failed, '
            f'{len(summary["over_budget"])} over budget (records in '
            f'{manifest})',
            file=sys.stderr)
    return status


if __name__ == '__main__':
    sys.exit(main())
