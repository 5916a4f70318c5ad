"""Train an UnSeg generator (bilevel min-min), or any MMEngine config (the
victims of ``configs/eval``), from a config.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--cfg-options KEY=VALUE ...] [--launcher none|pytorch|slurm|mpi]

Every run saves checkpoints through ``SafeResumeHook`` (added when the
config lacks it), so they load with ``torch.load(weights_only=True)`` and
``--resume`` works.
"""
import argparse
import logging
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.runner import Runner

from mmunseg.engine.hooks import ensure_safe_resume
from mmunseg.registry import RUNNERS
from mmunseg.utils import register_all_modules, setup_cpu_distributed


def parse_args():
    parser = argparse.ArgumentParser(description='Train an UnSeg generator')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from the given checkpoint, or from the latest one in '
        'the work dir when no path is given')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic-mixed-precision training (GPU)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the used config, key=value pairs such '
        'as train_cfg.max_epochs=2')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch.distributed.launch passes --local_rank, torchrun --local-rank.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def use_amp(cfg):
    """Turn every optim wrapper of the config into an AmpOptimWrapper."""
    optim_wrapper = cfg.optim_wrapper
    if 'constructor' in optim_wrapper and 'optimizer' not in optim_wrapper:
        wrappers = [
            value for key, value in optim_wrapper.items()
            if isinstance(value, dict) and 'optimizer' in value
        ]
    else:
        wrappers = [optim_wrapper]
    for wrapper in wrappers:
        if wrapper.get('type', 'OptimWrapper') == 'AmpOptimWrapper':
            print_log(
                'AMP training is already enabled in your config.',
                logger='current',
                level=logging.WARNING)
        wrapper.type = 'AmpOptimWrapper'
        wrapper.setdefault('loss_scale', 'dynamic')


def main():
    args = parse_args()
    register_all_modules(init_default_scope_to_mmunseg=False)
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    # work_dir: CLI > config > ./work_dirs/CONFIG_NAME
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        use_amp(cfg)
    ensure_safe_resume(cfg)
    if args.resume is not None:
        cfg.resume = True
        cfg.load_from = None if args.resume == 'auto' else args.resume
    setup_cpu_distributed(cfg)

    if 'runner_type' in cfg:
        runner = RUNNERS.build(cfg)
    else:
        runner = Runner.from_cfg(cfg)
    runner.train()


if __name__ == '__main__':
    main()
