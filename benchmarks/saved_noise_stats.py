"""Is the saved noise a colour cast? Statistics of protected copies.

For every protected image of each copy (a ``tools/protect.py`` out dir), the
noise actually saved is the protected PNG minus its decoded source. Per
image and channel this prints and records its spatial mean and spatial std
in grey levels, and counts the (image, channel) pairs that are *not a cast*
(spatial std >= 2 x |spatial mean|, the target of the efficacy issue).

    python benchmarks/saved_noise_stats.py COPY [COPY ...] [--out FILE]
"""
import argparse
import json
import os.path as osp
import sys

import numpy as np

from mmunseg.protect.image_io import read_image
from mmunseg.utils.atomic_files import write_bytes_atomic

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def copy_statistics(copy_dir):
    """Per image and channel noise mean / std of one protected copy.

    Returns:
        dict: ``images`` (count), ``mean`` and ``std`` (N, 3) lists in grey
        levels, the median and minimum of std / |mean|, and ``not_cast``
        (the fraction of pairs with std >= 2 |mean|).
    """
    means, stds = [], []
    with open(osp.join(copy_dir, 'manifest.jsonl')) as f:
        records = [json.loads(line) for line in f if line.strip()]
    for record in records:
        if record['status'] != 'protected':
            continue
        clean = read_image(record['source']).astype(np.float64)
        saved = read_image(osp.join(copy_dir, record['file']))
        if saved.shape != clean.shape:
            sys.exit(f'{record["file"]}: shape {saved.shape} differs from '
                     f'its source {record["source"]} {clean.shape}')
        noise = saved.astype(np.float64) - clean
        means.append(noise.mean(axis=(0, 1)))
        stds.append(noise.std(axis=(0, 1)))
    if not means:
        sys.exit(f'{copy_dir}: no protected image in its manifest')
    mean, std = np.array(means), np.array(stds)
    ratio = std / np.maximum(np.abs(mean), 1e-9)
    return dict(
        copy=copy_dir,
        images=len(means),
        mean=mean.round(3).tolist(),
        std=std.round(3).tolist(),
        mean_abs_mean=float(np.abs(mean).mean()),
        mean_std=float(std.mean()),
        ratio_median=float(np.median(ratio)),
        ratio_min=float(ratio.min()),
        not_cast=float((std >= 2 * np.abs(mean)).mean()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('copies', nargs='+', help='tools/protect.py out dirs')
    parser.add_argument(
        '--out',
        default=osp.join(REPO, 'benchmarks', 'results', 'saved_noise.json'))
    args = parser.parse_args()
    rows = [copy_statistics(c) for c in args.copies]
    print('| copy | images | mean abs(mean) | mean std | std/abs(mean) '
          'median (min) | pairs with std >= 2 abs(mean) |')
    print('|---|---|---|---|---|---|')
    for r in rows:
        print(f'| {osp.basename(osp.normpath(r["copy"]))} | {r["images"]} '
              f'| {r["mean_abs_mean"]:.3f} | {r["mean_std"]:.3f} '
              f'| {r["ratio_median"]:.1f} ({r["ratio_min"]:.2f}) '
              f'| {r["not_cast"]:.1%} |')
    write_bytes_atomic(args.out, json.dumps(rows, indent=1).encode())
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
