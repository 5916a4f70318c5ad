"""Evaluate a checkpoint on a split of its config.

    python tools/test.py CONFIG CHECKPOINT [--split train|val|test]
        [--work-dir DIR] [--cfg-options KEY=VALUE ...]
        [--launcher none|pytorch|slurm|mpi]

CONFIG is the training config: an UnSeg config (CHECKPOINT a training
checkpoint, epoch_N.pth, holding both players; the surrogate's IoU on clean
vs noised images) or a victim of ``configs/eval`` (its own metrics, e.g.
mIoU). CHECKPOINT is loaded with ``torch.load(weights_only=True)`` and the
package's allow-list.
"""
import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

from mmunseg.engine.hooks import ensure_safe_resume
from mmunseg.evaluation.split_test import SPLITS, use_split_for_test
from mmunseg.registry import RUNNERS
from mmunseg.utils import (load_checkpoint_file, register_all_modules,
                           setup_cpu_distributed)


def parse_args():
    parser = argparse.ArgumentParser(
        description='Evaluate a generator or victim checkpoint')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--split',
        choices=SPLITS,
        default='test',
        help='the split to evaluate on (default: the config\'s test set)')
    parser.add_argument('--work-dir', help='the dir to save logs')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the used config')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main():
    args = parse_args()
    register_all_modules(init_default_scope_to_mmunseg=False)
    try:
        # A clear error for a file the safe loader refuses, before the
        # runner is built.
        load_checkpoint_file(args.checkpoint)
        cfg = Config.fromfile(args.config)
        cfg.launcher = args.launcher
        if args.cfg_options is not None:
            cfg.merge_from_dict(args.cfg_options)
        use_split_for_test(cfg, args.split)
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(f'test.py: {error}')
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    setup_cpu_distributed(cfg)
    if 'generator' in cfg.model:
        # The checkpoint holds the trained generator: no SAM file needed.
        cfg.model.generator.sam_checkpoint = None
    # Its after_load_checkpoint drops what MMEngine would execute.
    ensure_safe_resume(cfg)
    cfg.load_from = args.checkpoint
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg \
        else Runner.from_cfg(cfg)
    runner.test()


if __name__ == '__main__':
    main()
