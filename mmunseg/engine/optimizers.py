import copy
from typing import Iterator

import torch.nn as nn
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapperDict

from mmunseg.registry import OPTIM_WRAPPER_CONSTRUCTORS
from ..utils.model_wrappers import unwrap


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class MultiOptimWrapperConstructor:
    """One optimizer wrapper per named sub-network.

    Example config (two players, each with its own optimizer and, through a
    dict ``param_scheduler``, its own schedule)::

        optim_wrapper = dict(
            constructor='MultiOptimWrapperConstructor',
            generator=dict(optimizer=dict(type='Adam', lr=1e-4)),
            surrogate=dict(optimizer=dict(type='Adam', lr=1e-4)))

    Only parameters with ``requires_grad`` join an optimizer, so frozen
    parts (SAM inside the generator) never move.

    Args:
        optim_wrapper_cfg (dict): ``{attribute name: optim wrapper cfg}``.
        paramwise_cfg (dict, optional): Must be given per sub-network.
    """

    def __init__(self, optim_wrapper_cfg, paramwise_cfg=None):
        if paramwise_cfg is not None:
            raise ValueError('give paramwise_cfg inside each sub-network\'s '
                             'optim wrapper config')
        if not optim_wrapper_cfg:
            raise ValueError('MultiOptimWrapperConstructor needs one optim '
                             'wrapper config per sub-network')
        self.optim_wrapper_cfg = copy.deepcopy(optim_wrapper_cfg)

    def __call__(self, model: nn.Module) -> OptimWrapperDict:
        model = unwrap(model)
        wrappers = {}
        for name, cfg in self.optim_wrapper_cfg.items():
            module = getattr(model, name, None)
            if module is None:
                raise ValueError(f'the model has no sub-network {name!r} to '
                                 'optimise')
            module = unwrap(module)
            cfg = dict(cfg)
            cfg.setdefault('type', 'OptimWrapper')
            paramwise_cfg = cfg.pop('paramwise_cfg', None)
            # paramwise_cfg walks the module tree, which a view cannot; the
            # frozen parameters it then includes never receive gradients.
            target = module if paramwise_cfg else TrainableView(module)
            wrappers[name] = DefaultOptimWrapperConstructor(
                cfg, paramwise_cfg)(
                    target)
        return OptimWrapperDict(**wrappers)


class TrainableView:
    """Duck-typed module exposing only parameters that require grad."""

    def __init__(self, module):
        self.module = module

    def parameters(self) -> Iterator[nn.Parameter]:
        return (p for p in self.module.parameters() if p.requires_grad)
