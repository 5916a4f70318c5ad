"""Reaching the model inside MMEngine's (distributed) wrappers."""
from mmengine.model import is_model_wrapper


def unwrap(module):
    """The module inside a (distributed) wrapper, or ``module`` itself.

    Args:
        module (nn.Module): A model, maybe wrapped
            (``MMDistributedDataParallel`` and the like).

    Returns:
        nn.Module: The wrapped model.
    """
    return module.module if is_model_wrapper(module) else module
