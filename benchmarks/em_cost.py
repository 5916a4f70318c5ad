"""What error-minimising noise costs to protect a training split, in one run:
EM's earlier defaults (full resolution, 5 rounds of 10 surrogate and 20
noise passes) on a few images beside the current defaults (blocks of 2
pixels, 3 rounds of 10 + 10 passes) and, optionally, the defaults with
groups of images sharing one surrogate (``batch_size``), on more images.

Each setting protects the first images of the train split end to end
through :class:`~mmunseg.protect.Protector` (in this process, no worker
processes: decode, noise, budget, quantise, verify, encode and write all
count) into a temporary folder, the settings interleaved in ``--chunks``
chunks of their images. Prints a markdown table with wall and CPU seconds
per image (with one thread, the CPU seconds are about what the wall time
would be on an idle core), surrogate passes over each image (a pass of a
group covers all its images), the surrogate's pixel accuracy on the
perturbed images when EM stopped (how far min-min got), and the time the
whole train split would take at that rate; writes JSON and the table next
to it (.md). On shared cores the ratios are what to trust; the load average
is recorded.

    python benchmarks/em_cost.py --images 24 --old-images 2 \
        --batched-images 24 --group 8
"""
import argparse
import json
import os
import os.path as osp
import shutil
import tempfile
import time

import torch
from generation_speed import machine
from mmengine.config import Config

from mmunseg.models.budget import Budget
from mmunseg.protect import (Protector, background_class_ids, load_manifest,
                             load_split)
from mmunseg.registry import NOISE_METHODS
from mmunseg.utils import register_all_modules
from mmunseg.utils.atomic_files import write_bytes_atomic

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
BUDGET = Budget(8 / 255, 2 / 255)
#: EM's defaults before issue 14: one image at full resolution.
OLD_DEFAULTS = dict(rounds=5, train_steps=10, steps=20, craft_stride=1)
#: The split is protected in this many minutes or less (issue 14, item 3).
TARGET_MINUTES = 30


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--dataset',
        default=osp.join(REPO, 'configs', '_base_', 'datasets', 'camvid.py'),
        help='dataset config whose train split is protected')
    parser.add_argument(
        '--images',
        type=int,
        default=24,
        help='images protected with the current defaults')
    parser.add_argument(
        '--old-images',
        type=int,
        default=2,
        help='images protected with the earlier defaults (0: skip)')
    parser.add_argument(
        '--batched-images',
        type=int,
        default=0,
        help='images protected with the defaults and --group images per '
        'surrogate (0: skip)')
    parser.add_argument(
        '--group', type=int, default=8, help='batch_size of that setting')
    parser.add_argument(
        '--batch-size',
        type=int,
        default=8,
        help='the protector\'s --batch-size (methods_table.py\'s default)')
    parser.add_argument(
        '--chunks',
        type=int,
        default=2,
        help='each setting\'s images go in this many chunks, interleaved')
    parser.add_argument('--threads', type=int, help='torch threads')
    parser.add_argument(
        '--out',
        default=osp.join(REPO, 'benchmarks', 'results', 'em_cost.json'))
    return parser.parse_args()


def train_split(dataset):
    """The train split's items and the dataset's background class ids."""
    cfg = Config.fromfile(dataset)
    split = load_split(cfg, 'train')[0]
    classes = split.dataset_cfg.get('metainfo', {}).get('classes') or \
        cfg.get('metainfo', {}).get('classes')
    return split.items, classes, background_class_ids(classes)


class Setting:
    """One EM setting protecting its images, a chunk at a time, into a
    temporary folder; wall and CPU seconds add up over the chunks."""

    def __init__(self, options, items, num_classes, background_ids,
                 batch_size):
        self.options = options
        self.items = items
        self.method = NOISE_METHODS.build(
            dict(
                type='ErrorMinimizingNoise',
                num_classes=num_classes,
                **options))
        self.folder = tempfile.mkdtemp(prefix='em_cost_')
        self.manifest = osp.join(self.folder, 'manifest.jsonl')
        self.protector = Protector(
            self.method,
            self.folder,
            BUDGET,
            batch_size=batch_size,
            background_ids=background_ids,
            workers=0)
        self.wall = self.cpu = 0
        self.loads = []

    def chunk(self, index, chunks):
        """The ``index``-th of ``chunks`` runs of whole groups of images."""
        size = self.method.batch_size
        groups = -(-len(self.items) // size)
        return self.items[index * groups // chunks * size:(index + 1) *
                          groups // chunks * size]

    def run(self, items):
        if not items:
            return
        self.loads.append(os.getloadavg()[0])
        wall, cpu = time.perf_counter(), time.process_time()
        counts = self.protector.run(items, self.manifest, show_progress=False)
        self.wall += time.perf_counter() - wall
        self.cpu += time.process_time() - cpu
        if set(counts) != {'protected'}:
            raise RuntimeError(f'not every image was protected: {counts}')

    def row(self, split_images):
        records = load_manifest(self.manifest).values()
        shutil.rmtree(self.folder)
        # One entry per group: each pass of a group runs over each of its
        # images once.
        accuracies = self.method.accuracies
        count = len(self.items)
        return dict(
            options=self.options,
            images=count,
            groups=len(accuracies),
            seconds_per_image=self.wall / count,
            cpu_seconds_per_image=self.cpu / count,
            split_minutes=self.wall / count * split_images / 60,
            split_cpu_minutes=self.cpu / count * split_images / 60,
            passes_per_image=self.method.passes / len(accuracies),
            surrogate_accuracy=sum(accuracies) / len(accuracies),
            linf_object_max=max(r['linf_object'] for r in records),
            linf_background_max=max(r['linf_background'] for r in records),
            load_averages=self.loads)


def label(options):
    if not options:
        return 'current defaults'
    return ', '.join(f'{k}={v}' for k, v in options.items())


def table(result):
    split = result['split_images']
    lines = [
        '| EM setting | images | wall s / image | CPU s / image | passes over '
        f'each image | surrogate accuracy | {split} images, wall (min) | '
        f'{split} images, CPU (min) |',
        '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ]
    for row in result['rows']:
        lines.append(f'| {label(row["options"])} | {row["images"]} | '
                     f'{row["seconds_per_image"]:.2f} | '
                     f'{row["cpu_seconds_per_image"]:.2f} | '
                     f'{row["passes_per_image"]:.0f} | '
                     f'{row["surrogate_accuracy"]:.3f} | '
                     f'{row["split_minutes"]:.0f} | '
                     f'{row["split_cpu_minutes"]:.0f} |')
    return '\n'.join(lines)


def main():
    args = parse_args()
    register_all_modules(init_default_scope_to_mmunseg=False)
    if args.threads:
        torch.set_num_threads(args.threads)
    items, classes, background_ids = train_split(args.dataset)
    settings = [
        Setting(options, items[:count], len(classes), background_ids,
                args.batch_size)
        for options, count in ((OLD_DEFAULTS, args.old_images),
                               ({}, args.images), (dict(batch_size=args.group),
                                                   args.batched_images))
        if count
    ]
    # Chunk by chunk, every setting in turn: load from other processes
    # falls on all alike.
    for index in range(args.chunks):
        for setting in settings:
            setting.run(setting.chunk(index, args.chunks))
    rows = [setting.row(len(items)) for setting in settings]
    for row in rows:
        print(label(row['options']), json.dumps(row), flush=True)
    result = dict(
        command='python benchmarks/em_cost.py ' + ' '.join(
            f'--{k.replace("_", "-")} {v}'
            for k, v in vars(args).items() if v is not None and k != 'out'),
        machine=machine('cpu'),
        note='settings interleaved in chunks in one process, on cores '
        'shared with other jobs (load averages recorded per chunk): compare '
        'ratios; CPU seconds (of this process, torch threads as given) '
        'estimate the wall time on idle cores',
        dataset=osp.relpath(args.dataset, REPO),
        split_images=len(items),
        budget=BUDGET.to_dict(),
        target_minutes=TARGET_MINUTES,
        rows=rows)
    text = table(result)
    result['table'] = text
    print('\n' + text)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    write_bytes_atomic(args.out, json.dumps(result, indent=1).encode())
    write_bytes_atomic(
        osp.splitext(args.out)[0] + '.md', (text + '\n').encode())
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
