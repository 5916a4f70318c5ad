"""Does the protection work? Train a victim on clean and on protected data.

    python tools/eval_protection.py VICTIM_CONFIG --protected-root DIR
        [--clean-root DIR] [--clean-fraction 0 0.2 0.4 0.6 0.8]
        [--defense NAME [--defense-options KEY=VALUE ...]] [--seeds N]
        [--metric mIoU] [--val-interval N] [--work-dir DIR]
        [--cfg-options KEY=VALUE ...] [--launcher none|pytorch]

VICTIM_CONFIG is an MMSeg or MMDet model config (``configs/eval/``). The
victim is trained with the same recipe and seeds on the clean training set
and on the protected copy DIR (written by ``tools/protect.py``; its manifest
maps clean images to protected ones), optionally with a share of clean
images mixed in, and every run is evaluated on the clean validation set.
The work dir gets one folder per run (finished runs are reused: run the
same command again to resume) and ``report.md`` / ``report.json`` /
``report.png``.
"""
import argparse
import os
import os.path as osp

from mmengine.config import DictAction

from mmunseg.evaluation.protection_eval import evaluate_protection
from mmunseg.utils import register_all_modules


def parse_args():
    parser = argparse.ArgumentParser(
        description='Train a victim on clean and protected data')
    parser.add_argument('config', help='victim (MMSeg / MMDet) config')
    parser.add_argument(
        '--protected-root',
        required=True,
        help='output folder of tools/protect.py')
    parser.add_argument(
        '--clean-root',
        help='clean data root, if not the one in the victim config')
    parser.add_argument(
        '--clean-fraction',
        type=float,
        nargs='+',
        default=[0.0],
        help='share(s) of training images left clean in the protected '
        'runs (the paper: 0 0.2 0.4 0.6 0.8)')
    parser.add_argument(
        '--defense',
        help='training-time defense applied to every run (see '
        'mmunseg.defenses.DEFENSE_NAMES)')
    parser.add_argument(
        '--defense-options',
        nargs='+',
        action=DictAction,
        help='options of the defense, KEY=VALUE')
    parser.add_argument(
        '--seeds', type=int, default=1, help='runs per condition')
    parser.add_argument(
        '--no-clean',
        action='store_true',
        help='skip the clean reference run (ratios then are n/a)')
    parser.add_argument(
        '--metric',
        help='metric to compare (default mIoU, else COCO segm/bbox mAP)')
    parser.add_argument(
        '--val-interval',
        type=int,
        help='validate this often for the curve (default: the config\'s)')
    parser.add_argument('--work-dir', help='default work_dirs/eval/CONFIG')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override victim config settings, KEY=VALUE')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main():
    args = parse_args()
    register_all_modules(init_default_scope_to_mmunseg=False)
    work_dir = args.work_dir or osp.join(
        'work_dirs', 'eval',
        osp.splitext(osp.basename(args.config))[0])
    report = evaluate_protection(
        args.config,
        work_dir,
        protected_root=args.protected_root,
        clean_root=args.clean_root,
        clean_fractions=args.clean_fraction,
        seeds=range(args.seeds),
        include_clean=not args.no_clean,
        defense=args.defense,
        defense_options=args.defense_options,
        metric=args.metric,
        val_interval=args.val_interval,
        cfg_options=args.cfg_options,
        launcher=args.launcher)
    if 'paths' in report:
        with open(report['paths']['md']) as f:
            print(f.read())
        print('report: ' + ', '.join(report['paths'].values()))


if __name__ == '__main__':
    main()
