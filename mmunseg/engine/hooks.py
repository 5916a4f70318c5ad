import json
import logging
import numbers
import os.path as osp
import re
from typing import Dict, Optional, Set

import torch.nn as nn
from mmengine.config import Config
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner

from mmunseg.registry import HOOKS
from mmunseg.utils.checkpoint import make_message_hub_portable
from ..utils.atomic_files import write_bytes_atomic
from ..utils.model_wrappers import unwrap


def wrapped_children(model: nn.Module) -> Set[str]:
    """Names of the direct children held in a (DDP) wrapper."""
    return {
        name
        for name, child in unwrap(model).named_children()
        if is_model_wrapper(child)
    }


@HOOKS.register_module()
class SafeResumeHook(Hook):
    """Save checkpoints that load safely and anywhere.

    - MMEngine's message hub pickles function references (through
      ``getattr``), which a safe loader must refuse; the logs are stored as
      plain data so ``--resume`` keeps ``weights_only=True``.
    - A separately wrapped model (``MMSeparateDistributedDataParallel``)
      saves keys such as ``generator.module.noise_head...``; they are saved
      without the wrapper and adapted to the loading run's wrapping, so a
      checkpoint from 8 GPUs resumes on 1 process and the other way round.
    - ``Runner.resume`` executes a checkpoint's ``meta['config']`` as Python
      (``Config.fromstring``, to compare GPU counts). MMEngine itself never
      writes that key (it writes ``meta['cfg']``); one found in a loaded
      checkpoint is dropped before the runner can read it, so a checkpoint
      cannot choose code to run.
    """

    priority = 'VERY_LOW'

    def before_save_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        make_message_hub_portable(checkpoint)
        names = wrapped_children(runner.model)
        if names:
            pattern = re.compile(rf'^({"|".join(map(re.escape, names))})'
                                 r'\.module\.')
            checkpoint['state_dict'] = type(checkpoint['state_dict'])(
                (pattern.sub(r'\1.', key), value)
                for key, value in checkpoint['state_dict'].items())

    def after_load_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        meta = checkpoint.get('meta')
        if isinstance(meta, dict) and 'config' in meta:
            del meta['config']
            print_log(
                'ignored meta.config of the loaded checkpoint: MMEngine '
                'would execute it as Python',
                logger='current',
                level=logging.WARNING)
        names = wrapped_children(runner.model)
        state = checkpoint.get('state_dict', {})
        checkpoint['state_dict'] = type(state)(
            (self._adapt(key, names), value) for key, value in state.items())

    @staticmethod
    def _adapt(key, wrapped):
        head, _, rest = key.partition('.')
        if rest.startswith('module.'):
            rest = rest[len('module.'):]
        if head in wrapped:
            return f'{head}.module.{rest}'
        return f'{head}.{rest}' if rest else head


def ensure_safe_resume(cfg: Config) -> None:
    """Add :class:`SafeResumeHook` to a config that lacks it, in place.

    Any run of the tools then writes checkpoints that load with
    ``weights_only=True`` and resume, whatever config it was given.

    Args:
        cfg (Config): A runner config.
    """
    hooks = list(cfg.get('custom_hooks') or [])
    names = ('SafeResumeHook', 'mmunseg.SafeResumeHook')
    if not any(
            isinstance(hook, SafeResumeHook)
            or isinstance(hook, dict) and hook.get('type') in names
            for hook in hooks):
        hooks.append(dict(type='mmunseg.SafeResumeHook'))
    cfg.custom_hooks = hooks


@HOOKS.register_module()
class ValMetricHistoryHook(Hook):
    """Record every validation's metrics with its iteration.

    Writes ``<work_dir>/<filename>`` (a JSON list of
    ``{"iter", "epoch", "metrics"}``) after each validation, atomically, so
    a report can plot a metric over training.

    Args:
        filename (str): Name of the file in the run's work_dir.
    """

    priority = 'LOW'

    def __init__(self, filename='val_history.json'):
        self.filename = filename
        self.history = []

    def after_val_epoch(self,
                        runner: Runner,
                        metrics: Optional[Dict[str, float]] = None) -> None:
        if not metrics:
            return
        self.history.append(
            dict(
                iter=runner.iter,
                epoch=runner.epoch,
                metrics={
                    key: float(value)
                    for key, value in metrics.items()
                    if isinstance(value, numbers.Real)
                }))
        if is_main_process():
            write_bytes_atomic(
                osp.join(runner.work_dir, self.filename),
                json.dumps(self.history, indent=1).encode())
