"""Reaching the model inside MMEngine's (distributed) wrappers."""
import torch.nn as nn
from mmengine.model import is_model_wrapper


def unwrap(module: nn.Module) -> nn.Module:
    """The module inside a (distributed) wrapper, or ``module`` itself.

    Args:
        module (nn.Module): A model, maybe wrapped
            (``MMDistributedDataParallel`` and the like).

    Returns:
        nn.Module: The wrapped model.
    """
    return module.module if is_model_wrapper(module) else module
