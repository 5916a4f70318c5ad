"""Cost of one bilevel UnSeg step in each phase, and what the generator phase
backpropagates through.

Times ``UnSeg.train_step`` in the surrogate phase and in the generator
phase on real batches, with peak memory per phase (process RSS on a CPU,
``torch.cuda.max_memory_allocated`` on a GPU). During one generator step it
walks the autograd graph of the loss: which parameters it reaches and
whether the frozen SAM image encoder's output is in it. For contrast it
also times a generator step with the encoder made trainable (what
backpropagating through it would cost). Prints a table, writes JSON.

    python benchmarks/train_step.py                           # tiny, CPU
    python benchmarks/train_step.py --device cuda --arch vit_b  # a GPU
"""
import argparse
import json
import logging
import os
import os.path as osp
import statistics

import torch
from generation_speed import PeakMemory, machine, time_once
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.logging import MMLogger
from mmengine.optim import build_optim_wrapper
from torch.utils.flop_counter import FlopCounterMode

from mmunseg.registry import DATASETS, MODELS
from mmunseg.utils import register_all_modules

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
PARTS = ('generator.image_encoder', 'generator.prompt_encoder',
         'generator.mask_decoder', 'generator.noise_head', 'surrogate')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--config',
        default=osp.join(REPO, 'configs', 'unseg',
                         'unseg_sam_tiny_coco128-objects.py'))
    parser.add_argument(
        '--arch',
        help='vit_b: the paper\'s sizes (generator 1024, surrogate 512, '
        'random weights) on the config\'s data')
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument(
        '--warmup',
        type=int,
        default=3,
        help='untimed steps per phase, where peak memory is measured')
    parser.add_argument('--steps', type=int, default=20)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--threads', type=int, help='CPU threads')
    parser.add_argument(
        '--no-contrast',
        action='store_true',
        help='skip the generator step with a trainable encoder')
    parser.add_argument(
        '--out',
        help='JSON file (default: results/'
        'train_step_{arch}_{device}.json)')
    return parser.parse_args()


def load_config(args):
    cfg = Config.fromfile(args.config)
    if args.arch:
        paper = Config.fromfile(
            osp.join(REPO, 'configs', '_base_', 'models',
                     'unseg_sam_vit_b.py')).model
        cfg.model.generator.update(
            arch=args.arch, img_size=paper.generator.img_size)
        cfg.model.surrogate.update(
            arch=args.arch, img_size=paper.surrogate.img_size)
        cfg.model.loss = paper.loss
        for transform in cfg.train_dataloader.dataset.pipeline:
            if 'output_size' in transform:
                transform.output_size = paper.generator.img_size
    cfg.model.generator.sam_checkpoint = None
    return cfg


def build(cfg, device, trainable_sam_parts=()):
    model_cfg = cfg.model.copy()
    model_cfg.generator = dict(
        model_cfg.generator, trainable_sam_parts=trainable_sam_parts)
    model = MODELS.build(model_cfg)
    # init_weights logs every parameter it leaves alone: keep the table.
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    model.init_weights()
    logger.setLevel(level)
    model.to(device).train()
    return model, build_optim_wrapper(model, cfg.optim_wrapper)


def load_batches(cfg, batch_size, count):
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    return [
        pseudo_collate([
            dataset[(i * batch_size + j) % len(dataset)]
            for j in range(batch_size)
        ]) for i in range(count)
    ]


def part_of(name):
    return next((part for part in PARTS if name.startswith(part + '.')),
                'other')


def graph_leaves(loss):
    """Parameters the autograd graph of ``loss`` reaches, and its size."""
    leaves, seen, stack = [], set(), [loss.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if hasattr(node, 'variable'):
            leaves.append(node.variable)
        stack.extend(next_node for next_node, _ in node.next_functions)
    return leaves, len(seen)


def inspect_generator_step(model, optim, batch):
    """One generator step, watching its loss's graph and the encoder.

    Returns:
        dict: Per part, the parameter tensors in the graph (of all), the
        graph's node count, whether the encoder's output required grad and
        how many encoder parameters hold a gradient after the step.
    """
    wrapper = optim['generator']
    found = {}

    def backward(loss, **kwargs):
        found['leaves'], found['nodes'] = graph_leaves(loss)
        return type(wrapper).backward(wrapper, loss, **kwargs)

    def watch_encoder(module, inputs, output):
        found['encoder_output_requires_grad'] = output.requires_grad

    encoder = model.generator.image_encoder
    hook = encoder.neck.register_forward_hook(watch_encoder)
    wrapper.backward = backward
    try:
        model.train_step(batch, optim)
    finally:
        del wrapper.backward
        hook.remove()
    names = {id(p): name for name, p in model.named_parameters()}
    totals, in_graph = {}, {}
    for name, _ in model.named_parameters():
        totals[part_of(name)] = totals.get(part_of(name), 0) + 1
    for leaf in found['leaves']:
        part = part_of(names[id(leaf)])
        in_graph[part] = in_graph.get(part, 0) + 1
    return dict(
        params_in_graph={
            part: f'{in_graph.get(part, 0)}/{total}'
            for part, total in totals.items()
        },
        graph_nodes=found['nodes'],
        encoder_output_requires_grad=found['encoder_output_requires_grad'],
        encoder_params_with_grad=sum(p.grad is not None
                                     for p in encoder.parameters()))


def measure_phase(model, optim, batches, phase, args):
    """Peak memory over the warm-up steps of ``phase``, and the FLOPs of
    one step (matmuls and convolutions, forward and backward)."""
    model.set_phase(phase)
    with PeakMemory(args.device) as peak:
        for i in range(args.warmup):
            model.train_step(batches[i % len(batches)], optim)
    with FlopCounterMode(display=False) as counter:
        model.train_step(batches[0], optim)
    return dict(
        gflops_per_step=counter.get_total_flops() / 1e9,
        peak_memory_mb=round(peak.peak_mb, 1),
        added_memory_mb=round(peak.added_mb, 1))


def time_steps(runs, batches, args):
    """Seconds per step of each run, interleaved step by step so that load
    from other processes hits every run alike."""
    times = {name: [] for name in runs}
    for i in range(args.steps):
        batch = batches[i % len(batches)]
        for name, (model, optim, phase) in runs.items():
            model.set_phase(phase)
            times[name].append(
                time_once(lambda: model.train_step(batch, optim), args.device))
    return times


def main():
    args = parse_args()
    register_all_modules()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = load_config(args)
    batches = load_batches(cfg, args.batch_size, 4)
    model, optim = build(cfg, args.device)
    runs = dict(
        surrogate=(model, optim, 'surrogate'),
        generator=(model, optim, 'generator'))
    if not args.no_contrast:
        runs['generator, encoder trainable (contrast)'] = build(
            cfg, args.device, ('image_encoder', )) + ('generator', )
    phases = {
        name: measure_phase(model, optim, batches, phase, args)
        for name, (model, optim, phase) in runs.items()
    }
    for name, times in time_steps(runs, batches, args).items():
        phases[name].update(
            seconds_per_step=statistics.median(times),
            seconds_all=[round(t, 4) for t in times])
    graph = inspect_generator_step(*runs['generator'][:2], batches[0])
    seconds = {phase: v['seconds_per_step'] for phase, v in phases.items()}
    flops = {phase: v['gflops_per_step'] for phase, v in phases.items()}
    result = dict(
        config=osp.relpath(osp.abspath(args.config), REPO),
        arch=args.arch or cfg.model.generator.arch,
        generator_img_size=cfg.model.generator.img_size,
        surrogate_img_size=cfg.model.surrogate.img_size,
        batch_size=args.batch_size,
        warmup=args.warmup,
        steps=args.steps,
        device=args.device,
        phases=phases,
        generator_over_surrogate=seconds['generator'] / seconds['surrogate'],
        generator_over_surrogate_flops=flops['generator'] / flops['surrogate'],
        generator_step_graph=graph,
        memory_kind='cuda max_memory_allocated'
        if torch.device(args.device).type == 'cuda' else 'process RSS',
        machine=machine(args.device))
    print_table(result)
    arch = args.arch or 'tiny'
    out = args.out or osp.join(
        REPO, 'benchmarks', 'results',
        f'train_step_{arch}_{torch.device(args.device).type}.json')
    os.makedirs(osp.dirname(out), exist_ok=True)
    with open(out, 'w') as f:
        json.dump(result, f, indent=2)
    print(f'wrote {out}')


def print_table(result):
    print(f'{result["arch"]}: generator {result["generator_img_size"]} px, '
          f'surrogate {result["surrogate_img_size"]} px, batch '
          f'{result["batch_size"]}, {result["device"]}, {result["machine"]}')
    print(f'| phase | s/step (median of {result["steps"]}) | GFLOPs/step '
          f'| peak MB {result["memory_kind"]} (added) |\n|---|---|---|---|')
    for phase, values in result['phases'].items():
        print(f'| {phase} | {values["seconds_per_step"]:.3f} | '
              f'{values["gflops_per_step"]:.3g} | '
              f'{values["peak_memory_mb"]:.0f} '
              f'(+{values["added_memory_mb"]:.0f}) |')
    graph = result['generator_step_graph']
    print(f'generator / surrogate step: '
          f'{result["generator_over_surrogate"]:.2f} (FLOPs '
          f'{result["generator_over_surrogate_flops"]:.2f})\n'
          'generator step, parameter tensors in the loss graph: ' +
          ', '.join(f'{part} {count}'
                    for part, count in graph['params_in_graph'].items()) +
          f'; {graph["graph_nodes"]} nodes; encoder output requires grad: '
          f'{graph["encoder_output_requires_grad"]}; encoder params with a '
          f'grad: {graph["encoder_params_with_grad"]}')


if __name__ == '__main__':
    main()
