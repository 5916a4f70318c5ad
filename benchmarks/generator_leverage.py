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
from mmunseg.utils.model_wrappers import unwrap

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


@torch.no_grad()
def generator_objective(model, data, prompt_types=('box', ), delta=None):
    """The generator's loss on a batch, with fixed prompt types.

    Args:
        model (UnSeg): The model.
        data (dict): A collated batch.
        prompt_types (Sequence[str]): Prompts of both networks.
        delta (Tensor, optional): A unit-range perturbation of the
            surrogate's input, (B, 3, s, s), used instead of the generator's
            noise (to compare with per-image optimisation).

    Returns:
        float: The loss (BCE + Dice) towards the generator's target.
    """
    types = set(prompt_types)
    batch = model.prepare(data, False, model.val_prompt, types)
    if delta is None:
        delta = model.noise(batch)
    surrogate = unwrap(model.surrogate)
    logits = surrogate(
        model.perturb(batch.small_images, delta, batch.small_masks,
                      model.train_budget),
        **model.val_prompt(
            batch.small_masks, surrogate.mask_prompt_size, types=types))
    losses = model.loss(logits,
                        model.target(batch.small_masks, batch.codes, False))
    return float(sum(losses.values()))


def objective(model, batch, delta=None):
    torch.manual_seed(0)  # the same sampled loss points every time
    return generator_objective(model, batch, delta=delta)


def pgd(model, data, steps, step_size=0.1):
    """Signed-gradient descent on a per-pixel unit-range perturbation."""
    batch = model.prepare(data, False, model.val_prompt, {'box'})
    delta = torch.zeros_like(batch.small_images, requires_grad=True)
    prompts = model.val_prompt(batch.small_masks, 0, types={'box'})
    target = model.target(batch.small_masks, batch.codes, False)
    for param in model.surrogate.parameters():
        param.requires_grad_(False)
    for _ in range(steps):
        torch.manual_seed(0)
        logits = model.surrogate(
            model.perturb(batch.small_images, delta, batch.small_masks,
                          model.train_budget), **prompts)
        loss = sum(model.loss(logits, target).values())
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
        noise = model.noise(
            model.prepare(batch, False, model.val_prompt, {'box'}))
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
