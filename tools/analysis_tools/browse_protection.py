"""Side-by-side panels of a protected copy: clean | protected | amplified
noise | object mask, one PNG per image.

    python tools/analysis_tools/browse_protection.py OUT_DIR [--num 8]
        [--vis-dir DIR]

OUT_DIR is the ``--out-dir`` of ``tools/protect.py``; its ``summary.json``
names the source config, so the panels compare with the original images.
"""
import argparse
import json
import os.path as osp

from mmengine.config import Config

from mmunseg.protect import (background_class_ids, load_manifest, load_split,
                             mirrored_path, write_panels)


def parse_args():
    parser = argparse.ArgumentParser(description='Browse a protected copy')
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
    cfg = Config.fromfile(summary['source_config'])
    splits = [s for name in summary['splits'] for s in load_split(cfg, name)]
    suffix = '.' + summary['format']
    items = {}
    for split in splits:
        for item in split.items:
            path = mirrored_path(item.img_path, split.root, args.out_dir,
                                 suffix)
            items[osp.relpath(path, args.out_dir)] = item
    records = sorted(
        load_manifest(osp.join(args.out_dir, 'manifest.jsonl')).values(),
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
