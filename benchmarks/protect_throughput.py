"""End-to-end protection throughput: the whole protector (decode, noise,
budget, quantise, verify, encode, write) with 1 and 2 worker processes,
beside the generator's ``generate()`` alone and the I/O ceiling.

Protects the CamVid train split (``--images`` limits it) into a temporary
folder with

- the UnSeg generator (random weights of ``--arch`` unless
  ``--checkpoint``: its speed does not depend on its weights), end to end
  through :class:`~mmunseg.protect.Protector`, for each ``--workers``;
- ``ConstantShift``, the cheapest registered method (a constant, no
  computation): the same pipeline with free noise, the I/O ceiling, for
  each ``--workers``;
- ``UnSegGenerator.generate`` alone on the same batches (images decoded
  and prompted beforehand, untimed).

The images go in chunks of ``--chunk``; each chunk runs every path in turn
(their files read once before, so all find them cached), so that load from
other processes hits all paths alike. Prints a markdown table and writes
JSON with the targets: end to end >= 0.8 x the slower of ``generate()``
and the I/O ceiling (at the same workers), and the I/O ceiling >= 1.6 x
faster with 2 workers than with 1.

    python benchmarks/protect_throughput.py --images 40 --threads 1
    python benchmarks/protect_throughput.py --device cuda --arch vit_b \\
        --precision bf16 --workers 1 2 4
"""
import argparse
import json
import os
import os.path as osp
import shutil
import tempfile
import time

import torch
from generation_speed import (build_generator, generator_config, machine,
                              synchronize)
from mmengine.config import Config

from mmunseg.models.budget import Budget
from mmunseg.protect import Protector, background_class_ids, load_split
from mmunseg.protect.pipeline import StagePool
from mmunseg.protect.protector import Loaded, load_item
from mmunseg.registry import NOISE_METHODS
from mmunseg.utils import register_all_modules

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
BUDGET = Budget(8 / 255, 2 / 255)
#: End to end against the slower of generate() and the I/O ceiling.
END_TO_END_TARGET = 0.8
#: The I/O ceiling with 2 workers against 1.
SCALING_TARGET = 1.6


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--dataset',
        default=osp.join(REPO, 'configs', '_base_', 'datasets', 'camvid.py'),
        help='dataset config whose train split is protected')
    parser.add_argument(
        '--images',
        type=int,
        help='protect only the first N train images (default: all)')
    parser.add_argument(
        '--workers',
        type=int,
        nargs='+',
        default=[1, 2],
        help='worker counts to run the protector with (0: all in the main '
        'process)')
    parser.add_argument(
        '--chunk',
        type=int,
        default=40,
        help='images per interleaved round of all paths')
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument(
        '--checkpoint', help='trained generator (default: random init)')
    parser.add_argument(
        '--arch', default='tiny', help='SAM size of a random generator')
    parser.add_argument(
        '--img-size',
        type=int,
        help='generator input (default 256 for tiny, else 1024)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument(
        '--threads',
        type=int,
        help='CPU threads of the main process (default: torch\'s); the '
        'workers use one each')
    parser.add_argument(
        '--precision', default='fp32', choices=['fp32', 'bf16', 'fp16'])
    parser.add_argument('--channels-last', action='store_true')
    parser.add_argument(
        '--out',
        default=osp.join(REPO, 'benchmarks', 'results',
                         'protect_throughput.json'),
        help='JSON file')
    args = parser.parse_args()
    # build_generator's options that this benchmark keeps at their default.
    args.compile = False
    return args


def train_items(dataset, count):
    """The train split's items (the first ``count``) and background ids."""
    cfg = Config.fromfile(dataset)
    split = load_split(cfg, 'train')[0]
    classes = split.dataset_cfg.get('metainfo', {}).get('classes') or \
        cfg.get('metainfo', {}).get('classes')
    return split.items[:count], background_class_ids(classes)


def read_files(items):
    """Read the chunk's files once, so that every path finds them in the
    page cache."""
    for item in items:
        for path in (item.img_path, item.seg_map_path):
            with open(path, 'rb') as f:
                f.read()


def time_protector(method, items, folder, workers, args, background_ids):
    """Seconds to protect ``items`` into ``folder`` (removed after)."""
    protector = Protector(
        method,
        folder,
        BUDGET,
        batch_size=args.batch_size,
        background_ids=background_ids,
        workers=workers)
    synchronize(args.device)
    started = time.perf_counter()
    counts = protector.run(
        items, osp.join(folder, 'manifest.jsonl'), show_progress=False)
    synchronize(args.device)
    seconds = time.perf_counter() - started
    shutil.rmtree(folder)
    if counts.get('failed'):
        raise RuntimeError(f'{counts["failed"]} images failed: {counts}')
    return seconds


def time_generate(method, items, folder, args, background_ids):
    """Seconds of ``generate()`` alone on the batches the protector gives
    it; decoding and prompts come first, untimed."""
    probe = Protector(
        method, folder, BUDGET, background_ids=background_ids, workers=0)
    seconds = 0
    for start in range(0, len(items), args.batch_size):
        images, prompts = [], []
        for item in items[start:start + args.batch_size]:
            loaded = load_item(probe.spec, item)
            if isinstance(loaded, Loaded):  # not an image without objects
                images += [loaded.image] * len(loaded.calls)
                prompts += [prompt for _, prompt in loaded.calls]
        if not images:
            continue
        synchronize(args.device)
        started = time.perf_counter()
        method.generate(images, prompts)
        synchronize(args.device)
        seconds += time.perf_counter() - started
    # Images without objects are copied: they may have left files.
    shutil.rmtree(folder, ignore_errors=True)
    return seconds


def targets(speed, workers):
    """Each target with its value and whether it is met."""
    result = {}
    for count in workers:
        floor = min(speed['generate'], speed[f'io_ceiling_w{count}'])
        value = speed[f'end_to_end_w{count}'] / floor
        result[f'end_to_end_w{count}'] = dict(
            target=f'>= {END_TO_END_TARGET} x min(generate, io_ceiling_w'
            f'{count})',
            value=value,
            met=value >= END_TO_END_TARGET)
    if 1 in workers and 2 in workers:
        value = speed['io_ceiling_w2'] / speed['io_ceiling_w1']
        result['io_ceiling_scaling'] = dict(
            target=f'io_ceiling_w2 >= {SCALING_TARGET} x io_ceiling_w1',
            value=value,
            met=value >= SCALING_TARGET)
    return result


def main():
    args = parse_args()
    register_all_modules()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    items, background_ids = train_items(args.dataset, args.images)
    cfg = generator_config(args)
    shift = NOISE_METHODS.build(dict(type='ConstantShift'))
    with tempfile.TemporaryDirectory() as folder:
        generator = build_generator(args, cfg, folder)
        # Start the workers' server (a one-off import) and warm the
        # generator (its first pass allocates) before timing.
        with StagePool(1) as pool:
            pool.submit(os.getpid).result()
        time_generate(generator, items[:args.batch_size],
                      osp.join(folder, 'warm'), args, background_ids)
        # Path -> (method, workers) of the protector; None: generate().
        paths = {'generate': None}
        for count in args.workers:
            paths[f'end_to_end_w{count}'] = (generator, count)
            paths[f'io_ceiling_w{count}'] = (shift, count)
        seconds = dict.fromkeys(paths, 0.0)
        for start in range(0, len(items), args.chunk):
            chunk = items[start:start + args.chunk]
            read_files(chunk)
            for name, path in paths.items():
                out = osp.join(folder, name)
                if path is None:
                    seconds[name] += time_generate(generator, chunk, out, args,
                                                   background_ids)
                    continue
                method, workers = path
                seconds[name] += time_protector(method, chunk, out, workers,
                                                args, background_ids)
            print(f'{start + len(chunk)}/{len(items)} images', flush=True)
    speed = {name: len(items) / value for name, value in seconds.items()}
    result = dict(
        settings=dict(
            dataset=osp.relpath(osp.abspath(args.dataset), REPO),
            split='train',
            images=len(items),
            chunk=args.chunk,
            batch_size=args.batch_size,
            workers=args.workers,
            generator=dict(
                cfg,
                checkpoint=args.checkpoint or 'random init',
                precision=args.precision,
                channels_last=args.channels_last),
            io_ceiling_method='ConstantShift',
            prompt='union',
            format='png',
            eps_object='8/255',
            eps_background='2/255',
            device=args.device,
            main_threads=torch.get_num_threads()),
        machine=machine(args.device),
        seconds=seconds,
        images_per_second=speed,
        targets=targets(speed, args.workers))
    print_table(result)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(result, f, indent=2)
    print(f'wrote {args.out}')


def print_table(result):
    settings = result['settings']
    print(f'{settings["images"]} {settings["dataset"]} train images, batch '
          f'{settings["batch_size"]}, generator '
          f'{settings["generator"]["arch"]} at '
          f'{settings["generator"]["img_size"]} px '
          f'({settings["generator"]["precision"]}), {settings["device"]}, '
          f'{result["machine"]}')
    print('| path | workers | images/s | s |\n|---|---|---|---|')
    labels = dict(
        generate='generate() alone',
        end_to_end='end to end, generator',
        io_ceiling='I/O ceiling (ConstantShift)')
    for name, speed in result['images_per_second'].items():
        kind, _, workers = name.partition('_w')
        print(f'| {labels[kind]} | {workers or "-"} | {speed:.3g} | '
              f'{result["seconds"][name]:.1f} |')
    for name, target in result['targets'].items():
        print(f'{name}: {target["value"]:.2f} ({target["target"]}): '
              f'{"met" if target["met"] else "NOT met"}')


if __name__ == '__main__':
    main()
