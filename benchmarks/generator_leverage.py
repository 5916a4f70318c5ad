"""How far the generator moves its objective, against per-image PGD.

Both optimise the same thing: the (fixed) surrogate's loss towards the
generator target, within the same per-region budget, on the same real images.
PGD optimises each pixel of each image; the generator only its noise head.
Prints a table and writes JSON.

    python benchmarks/generator_leverage.py [--model tiny] [--steps 100]
        [--surrogate-steps 150] [--eps 16/255] [--out FILE]
"""
import argparse
import json
import os
import os.path as osp
import platform
import time
from fractions import Fraction

import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import build_optim_wrapper

from mmunseg.registry import DATASETS, MODELS
from mmunseg.utils import register_all_modules

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--model',
        default=osp.join(REPO, 'configs', '_base_', 'models',
                         'unseg_sam_tiny.py'))
    parser.add_argument(
        '--data',
        default=osp.join(REPO, 'configs', '_base_', 'datasets',
                         'coco128_objects.py'))
    parser.add_argument('--images', type=int, default=8)
    parser.add_argument('--surrogate-steps', type=int, default=150)
    parser.add_argument('--steps', type=int, default=100)
    parser.add_argument('--eps', default='16/255', help='object budget')
    parser.add_argument('--lr', type=float, default=1e-3)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--out',
        default=osp.join(REPO, 'benchmarks', 'results',
                         'generator_leverage.json'))
    return parser.parse_args()


def objective(model, batch, delta=None):
    torch.manual_seed(0)  # the same sampled loss points every time
    return model.generator_objective(batch, delta=delta)


def pgd(model, batch, steps, step_size=0.1):
    """Signed-gradient descent on a per-pixel unit-range perturbation."""
    data = model.data_preprocessor(batch, False)
    small_images, small_masks = model.surrogate_view(data['inputs'],
                                                     data['gt_masks'])
    delta = torch.zeros_like(small_images, requires_grad=True)
    prompts = model.val_prompt(small_masks, 0, types={'box'})
    for param in model.surrogate.parameters():
        param.requires_grad_(False)
    for _ in range(steps):
        torch.manual_seed(0)
        logits = model.surrogate(
            model.perturb(small_images, delta, small_masks,
                          model.train_budget), **prompts)
        loss = sum(
            model.loss(logits, model.generator_target(small_masks)).values())
        (grad, ) = torch.autograd.grad(loss, delta)
        with torch.no_grad():
            delta -= step_size * grad.sign()
            delta.clamp_(-1, 1)
    for param in model.surrogate.parameters():
        param.requires_grad_(True)
    return delta.detach()


def main():
    args = parse_args()
    register_all_modules()
    torch.manual_seed(args.seed)
    eps = float(Fraction(args.eps))
    model_cfg = Config.fromfile(args.model).model
    model_cfg.train_budget = dict(object=eps, background=eps / 2)
    model = MODELS.build(model_cfg)
    model.init_weights()
    optim = build_optim_wrapper(
        model,
        dict(
            constructor='MultiOptimWrapperConstructor',
            generator=dict(optimizer=dict(type='Adam', lr=args.lr)),
            surrogate=dict(optimizer=dict(type='Adam', lr=args.lr))))
    data_cfg = Config.fromfile(args.data)
    dataset = DATASETS.build(data_cfg.val_dataloader.dataset)
    batch = pseudo_collate([dataset[i] for i in range(args.images)])

    started = time.perf_counter()
    model.set_phase('surrogate')
    for _ in range(args.surrogate_steps):
        model.train_step(batch, optim)
    start = objective(model, batch)
    delta = pgd(model, batch, args.steps)
    pgd_end = objective(model, batch, delta)
    model.set_phase('generator')
    for _ in range(args.steps):
        model.train_step(batch, optim)
    generator_end = objective(model, batch)
    with torch.no_grad():
        data = model.data_preprocessor(batch, False)
        noise = model.generator(
            data['inputs'],
            **model.val_prompt(
                data['gt_masks'], model.generator.noise_size, types={'box'}))
    saturated = float((noise.abs() > 0.99).float().mean())

    result = dict(
        model=osp.relpath(args.model, REPO),
        images=args.images,
        eps_object=eps,
        eps_background=eps / 2,
        surrogate_steps=args.surrogate_steps,
        steps=args.steps,
        objective_start=start,
        objective_pgd=pgd_end,
        objective_generator=generator_end,
        generator_noise_saturated=saturated,
        seconds=round(time.perf_counter() - started, 1),
        machine=f'{platform.machine()}, {os.cpu_count()} CPUs, '
        f'torch {torch.__version__}, {torch.get_num_threads()} threads')
    print(f'| method | objective after {args.steps} steps (start '
          f'{start:.3f}) |\n|---|---|\n'
          f'| per-image PGD | {pgd_end:.3f} |\n'
          f'| generator head | {generator_end:.3f} (noise saturated: '
          f'{saturated:.0%}) |')
    os.makedirs(osp.dirname(args.out), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(result, f, indent=2)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
