"""End to end: does UnSeg protect CamVid against a victim trained from scratch?

1. Train the tiny UnSeg generator on coco128_objects (or reuse one:
   ``--generator CKPT``).
2. Protect CamVid train with it, and with two controls at the same budget:
   uniform random noise and a constant brightening (what a collapsed
   generator does).
3. Train the victim on clean and on each protected copy with the same recipe
   and seed; evaluate on clean CamVid val.
4. Print the table and write JSON (``benchmarks/results/``).

Every stage is resumable: protected images and finished victim runs under
``--work-dir`` are reused, so the command can be re-run after an
interruption or with more methods.

    python benchmarks/protection_efficacy.py [--generator CKPT]
        [--methods unseg uniform shift] [--victim CONFIG] [--seeds 1]
        [--work-dir work_dirs/protection_efficacy] [--out FILE]

On a GPU, ``--generator-config configs/unseg/unseg_sam_b_hqseg.py`` trains
the full-size generator (or pass its checkpoint) and ``--device cuda``
protects with it.
"""
import argparse
import json
import os
import os.path as osp
import platform
import subprocess
import sys
import time

from mmengine.config import Config

from mmunseg.evaluation.protection_eval import (RunSpec, run_victim,
                                                victim_config)
from mmunseg.protect import (Protector, UniformNoise, UnSegGenerator,
                             load_manifest, load_split, summarize)
from mmunseg.protect.controls import ConstantShift
from mmunseg.utils import register_all_modules

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
METHODS = ('unseg', 'uniform', 'shift')
LABELS = {
    'unseg': 'UnSeg (tiny generator)',
    'uniform': 'uniform random noise (control)',
    'shift': 'constant brightening (control)',
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--generator', help='trained generator checkpoint to reuse')
    parser.add_argument(
        '--generator-config',
        default=osp.join(REPO, 'configs', 'unseg',
                         'unseg_sam_tiny_coco128-objects.py'),
        help='trains the generator when --generator is not given')
    parser.add_argument(
        '--dataset',
        default=osp.join(REPO, 'configs', '_base_', 'datasets', 'camvid.py'))
    parser.add_argument(
        '--victim',
        default=osp.join(REPO, 'configs', 'eval',
                         'fcn-unet-s5-d16-c16_4xb8-500it_camvid-240x176.py'))
    parser.add_argument(
        '--methods', nargs='+', choices=METHODS, default=list(METHODS))
    parser.add_argument('--eps-object', type=float, default=8 / 255)
    parser.add_argument('--eps-background', type=float, default=2 / 255)
    parser.add_argument('--seeds', type=int, default=1)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument(
        '--work-dir',
        default=osp.join(REPO, 'work_dirs', 'protection_efficacy'))
    parser.add_argument(
        '--out',
        default=osp.join(REPO, 'benchmarks', 'results',
                         'protection_efficacy.json'))
    return parser.parse_args()


def train_generator(args):
    """The checkpoint of the generator, trained here if not given."""
    if args.generator:
        return args.generator
    work_dir = osp.join(args.work_dir, 'generator')
    cfg = Config.fromfile(args.generator_config)
    checkpoint = osp.join(work_dir, f'epoch_{cfg.train_cfg.max_epochs}.pth')
    if not osp.isfile(checkpoint):
        subprocess.run([
            sys.executable,
            osp.join(REPO, 'tools', 'train.py'), args.generator_config,
            '--work-dir', work_dir, '--resume', 'auto'
        ],
                       check=True)
    return checkpoint


def build_method(name, args, checkpoint):
    if name == 'unseg':
        return UnSegGenerator(checkpoint, device=args.device)
    if name == 'uniform':
        return UniformNoise(seed=0)
    return ConstantShift(1.0)


def protect(name, args, checkpoint):
    """Protect the training split (resumable); its folder and summary."""
    out_dir = osp.join(args.work_dir, f'camvid_{name}')
    cfg = Config.fromfile(args.dataset)
    (split, ) = load_split(cfg, 'train')
    manifest = osp.join(out_dir, 'manifest.jsonl')
    done = load_manifest(manifest) if osp.isfile(manifest) else {}
    Protector(
        build_method(name, args, checkpoint),
        out_dir,
        args.eps_object,
        args.eps_background,
        batch_size=args.batch_size,
        resume=True).run(
            split.items, manifest, done=done)
    return out_dir, summarize(
        load_manifest(manifest), args.eps_object, args.eps_background)


def main():
    args = parse_args()
    register_all_modules(init_default_scope_to_mmunseg=False)
    started = time.time()
    checkpoint = train_generator(args) if 'unseg' in args.methods else None
    roots, protection = {}, {}
    for name in args.methods:
        began = time.time()
        roots[name], protection[name] = protect(name, args, checkpoint)
        protection[name]['wall_seconds'] = round(time.time() - began, 1)
    victim = Config.fromfile(args.victim)
    rows = []
    for seed in range(args.seeds):
        clean = run_victim(
            victim_config(victim, RunSpec('clean', 1.0, seed), args.work_dir))
        rows.append(dict(training='clean', seed=seed, **clean['metrics']))
        for name in args.methods:
            result = run_victim(
                victim_config(victim, RunSpec('protected', 0.0, seed),
                              osp.join(args.work_dir, f'victim_{name}'),
                              roots[name]))
            rows.append(dict(training=name, seed=seed, **result['metrics']))
    table = summarize_rows(rows)
    print_table(table, args)
    record = dict(
        command=' '.join([osp.relpath(sys.argv[0], REPO)] + sys.argv[1:]),
        machine=dict(
            platform=platform.platform(),
            processor=platform.processor(),
            cpus=os.cpu_count(),
            device=args.device),
        generator=checkpoint,
        victim=osp.relpath(args.victim, REPO),
        budget=dict(object=args.eps_object, background=args.eps_background),
        protection=protection,
        runs=rows,
        table=table,
        wall_seconds=round(time.time() - started, 1))
    os.makedirs(osp.dirname(args.out), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(record, f, indent=1)
    print(f'wrote {args.out}')


def summarize_rows(rows):
    """Mean mIoU per training set, its ratio to clean and per-class IoU."""
    by_name = {}
    for row in rows:
        by_name.setdefault(row['training'], []).append(row)
    clean = sum(r['mIoU'] for r in by_name['clean']) / len(by_name['clean'])
    table = []
    for name, members in by_name.items():
        miou = sum(r['mIoU'] for r in members) / len(members)
        classes = sorted(k for k in members[0] if k.startswith('IoU.'))
        table.append(
            dict(
                training=name,
                seeds=len(members),
                mIoU=round(miou, 2),
                aAcc=round(sum(r['aAcc'] for r in members) / len(members), 2),
                ratio_to_clean=round(miou / clean, 3),
                per_class={
                    k[4:]:
                    round(sum(r.get(k, 0) for r in members) / len(members), 1)
                    for k in classes
                }))
    return table


def print_table(table, args):
    print(f'\nvictim {osp.basename(args.victim)}; budget object '
          f'{args.eps_object * 255:.0f}/255, background '
          f'{args.eps_background * 255:.0f}/255; clean CamVid val')
    print(f"{'training images':34s} {'mIoU':>6s} {'aAcc':>6s} "
          f"{'ratio':>6s}  Road  Bldg  Sky   Car")
    for row in table:
        cls = row['per_class']
        print(f"{LABELS.get(row['training'], row['training']):34s} "
              f"{row['mIoU']:6.2f} {row['aAcc']:6.2f} "
              f"{row['ratio_to_clean']:6.2f} " +
              ' '.join(f"{cls.get(k, float('nan')):5.1f}"
                       for k in ('Road', 'Building', 'Sky', 'Car')))


if __name__ == '__main__':
    main()
