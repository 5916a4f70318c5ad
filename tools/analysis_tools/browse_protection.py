"""Side-by-side panels of a protected copy: clean | protected | amplified
noise | object mask, one PNG per image.

    python tools/analysis_tools/browse_protection.py DATASET_CONFIG OUT_DIR
        [--num 8] [--vis-dir DIR]

OUT_DIR is the ``--out-dir`` of ``tools/protect.py`` and DATASET_CONFIG the
dataset config it protected, named on the command line: a config is Python,
and the path recorded in OUT_DIR/summary.json (a file anyone may have
edited) is never executed.
"""
import argparse
import json
import os.path as osp
import warnings

from mmengine.config import Config

from mmunseg.protect import (background_class_ids, load_manifest, load_split,
                             mirrored_path, write_panels)


def parse_args():
    parser = argparse.ArgumentParser(description='Browse a protected copy')
    parser.add_argument(
        'config', help='the dataset config tools/protect.py protected')
    parser.add_argument('out_dir', help='output folder of tools/protect.py')
    parser.add_argument('--num', type=int, default=8, help='panels to write')
    parser.add_argument(
        '--vis-dir', help='where to write them (default OUT_DIR/vis)')
    return parser.parse_args()


def main():
    args = parse_args()
    summary_file = osp.join(args.out_dir, 'summary.json')
    if not osp.isfile(summary_file):
        raise SystemExit(f'{summary_file} is missing: is {args.out_dir} the '
                         'output of tools/protect.py?')
    with open(summary_file) as f:
        summary = json.load(f)
    splits, fmt = summary.get('splits'), summary.get('format')
    if fmt not in ('png', 'jpg') or not isinstance(splits, list) or not all(
            isinstance(name, str) for name in splits):
        raise SystemExit(f'{summary_file}: no valid "splits" and "format"')
    if summary.get('source_config') != osp.abspath(args.config):
        warnings.warn(f'{args.out_dir} was protected from '
                      f'{summary.get("source_config")}, not {args.config}')
    cfg = Config.fromfile(args.config)
    splits = [s for name in splits for s in load_split(cfg, name)]
    items = {}
    for split in splits:
        for item in split.items:
            path = mirrored_path(item.img_path, split.root, args.out_dir,
                                 '.' + fmt)
            items[osp.relpath(path, args.out_dir)] = item
    records = sorted((record for record in load_manifest(
        osp.join(args.out_dir, 'manifest.jsonl')).values()
                      if record['file'] in items),
                     key=lambda r: r['file'])
    classes = (cfg.get('metainfo') or {}).get('classes')
    written = write_panels(
        records, items, args.out_dir, args.vis_dir
        or osp.join(args.out_dir, 'vis'), args.num,
        dict(ignore_index=255, background_ids=background_class_ids(classes)))
    for path in written:
        print(path)


if __name__ == '__main__':
    main()
