"""Does the surrogate of a code-book recipe learn to read the codes?

The min-min game only steers the generator if the surrogate learns to
decode the noise: with object codes, the surrogate's target is each
object's (random) code, which only the noise tells. This benchmark trains
the surrogate alone, the generator fixed at its initialisation (for the
code-book recipe: the gratings, which training hardly moves), from the
recipe's own data, schedule and optimiser, and prints its loss against
the chance level ``ln(1 + num_codes)``, for the recipe and for variants
that make the task easier (no crafting augmentation, a larger budget,
larger objects). A surrogate whose loss stays near chance gives the
generator no signal.

Example::

    python benchmarks/surrogate_learnability.py --steps 100 --threads 1
"""
import argparse
import json
import math
import os
import os.path as osp
import platform
import sys
import time

import torch
from mmengine.config import Config
from mmengine.runner import Runner

from mmunseg.engine import warmup_scale
from mmunseg.utils import register_all_modules

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
RECIPE = osp.join(REPO, 'configs', 'unseg',
                  'unseg-codebook_gratings_unet-c16_coco128-objects.py')
WARMUP = dict(start_scale=8., warmup_iters=150)
#: name -> config overrides on top of the recipe.
VARIANTS = {
    'recipe': {},
    'no crafting augmentation': {
        'model.augmentation': None
    },
    'no augmentation, budget x8 (64/255, 16/255)': {
        'model.augmentation': None,
        'model.train_budget': dict(object=64 / 255, background=16 / 255)
    },
    'objects >= 10% of the image': {
        'train_dataloader.dataset.min_mask_ratio': 0.1
    },
    'every grating at 4 noise pixels': {
        'model.generator.grating_periods': (4, )
    },
    # 'warmup': BudgetWarmupHook's arguments, applied per step.
    'budget x8 falling to the budget by step 150': {
        'warmup': WARMUP
    },
    'no crafting augmentation, budget x8 falling to the budget by step 150': {
        'model.augmentation': None,
        'warmup': WARMUP
    },
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default=RECIPE)
    parser.add_argument('--steps', type=int, default=100)
    parser.add_argument(
        '--window',
        type=int,
        default=25,
        help='steps averaged per reported loss')
    parser.add_argument(
        '--variants',
        nargs='+',
        choices=sorted(VARIANTS),
        default=list(VARIANTS))
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--work-dir',
        default=osp.join(REPO, 'work_dirs', 'surrogate_learnability'),
        help='the runner\'s scratch folder')
    parser.add_argument(
        '--out',
        default=osp.join(REPO, 'benchmarks', 'results',
                         'surrogate_learnability.json'))
    return parser.parse_args()


def surrogate_losses(config, overrides, steps, seed, work_dir):
    """The surrogate's loss at each of ``steps`` steps of its phase, the
    generator fixed at its initialisation; an override ``warmup``
    (BudgetWarmupHook's arguments) scales the budget per step as that hook
    does."""
    overrides = dict(overrides)
    warmup = overrides.pop('warmup', None)
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(
        dict(
            overrides, **{
                'train_dataloader.num_workers': 0,
                'train_dataloader.persistent_workers': False
            }))
    cfg.work_dir = work_dir
    cfg.default_hooks.checkpoint = None
    cfg.custom_hooks = []
    cfg.log_level = 'WARNING'
    torch.manual_seed(seed)
    runner = Runner.from_cfg(cfg)
    model = runner.model
    model.train()
    model.set_phase('surrogate')
    optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    loader = runner.build_dataloader(cfg.train_dataloader, seed=seed)
    batches = iter(loader)
    budget = model.train_budget
    losses = []
    for step in range(steps):
        if warmup:
            model.train_budget = budget.times(warmup_scale(step, **warmup))
        losses.append(
            float(
                model.train_step(next(batches),
                                 optim_wrapper)['surrogate_loss']))
    return losses, model.num_codes


def main():
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    register_all_modules()
    rows = []
    for name in args.variants:
        started = time.perf_counter()
        losses, num_codes = surrogate_losses(args.config, VARIANTS[name],
                                             args.steps, args.seed,
                                             args.work_dir)
        windows = [
            sum(losses[i:i + args.window]) / len(losses[i:i + args.window])
            for i in range(0, len(losses), args.window)
        ]
        rows.append(
            dict(
                variant=name,
                overrides=dict(VARIANTS[name]),
                window_means=[round(w, 4) for w in windows],
                seconds=round(time.perf_counter() - started, 1)))
        print(f'{name}: {[round(w, 3) for w in windows]}', flush=True)
    chance = math.log(1 + num_codes)
    header = ' | '.join(f'steps {i + 1}-{min(i + args.window, args.steps)}'
                        for i in range(0, args.steps, args.window))
    print(f'\nsurrogate loss (mean per window; chance ln({1 + num_codes}) '
          f'= {chance:.3f})\n')
    print(f'| variant | {header} |')
    print('|---' * (1 + len(rows[0]['window_means'])) + '|')
    for row in rows:
        cells = ' | '.join(f'{w:.3f}' for w in row['window_means'])
        print(f"| {row['variant']} | {cells} |")
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(
            dict(
                command=' '.join([osp.relpath(sys.argv[0], REPO)] +
                                 sys.argv[1:]),
                config=osp.relpath(args.config, REPO),
                steps=args.steps,
                window=args.window,
                seed=args.seed,
                chance=chance,
                machine=dict(
                    platform=platform.platform(),
                    cpus=os.cpu_count(),
                    threads=torch.get_num_threads()),
                rows=rows),
            f,
            indent=2)


if __name__ == '__main__':
    main()
