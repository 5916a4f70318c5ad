import os

import torch
import torch.distributed as dist


def setup_cpu_distributed(cfg):
    """Start gloo process groups for a torchrun launch on CPU-only machines.

    MMEngine's pytorch launcher always calls ``torch.cuda.set_device`` and
    gives DDP the local rank as its device; on a machine without CUDA the
    tools initialise the group themselves (MMEngine then finds it
    initialised), switch the backend to gloo and let DDP wrap CPU modules.

    Args:
        cfg (Config): The run's config; ``cfg.launcher`` is read,
            ``env_cfg.dist_cfg`` and ``model_wrapper_cfg`` updated.
    """
    if cfg.get('launcher', 'none') == 'none' or torch.cuda.is_available():
        return
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg',
                                             {})['backend'] = 'gloo'
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel')
    cfg.model_wrapper_cfg.device_ids = None
    if cfg.launcher == 'pytorch' and not dist.is_initialized():
        dist.init_process_group(
            backend='gloo',
            rank=int(os.environ['RANK']),
            world_size=int(os.environ['WORLD_SIZE']))
