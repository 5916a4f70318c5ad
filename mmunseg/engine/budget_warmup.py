"""Train at a multiple of the budget first, shrinking to the budget.

At the protection budget a surrogate trained from scratch hardly reads a
code book's textures within a CPU-sized game (its loss stays near what
objectness alone gives; ``benchmarks/surrogate_learnability.py``), so the
generator gets no signal. Without the crafting augmentation, at eight
times the budget, it starts reading them within 150 steps, and in a game
warmed up over 1000 iterations it keeps reading them at the budget. A
warm-up lets both players start where the codes are legible and hands the
game to the real budget gradually.
"""
from typing import Optional

from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmunseg.registry import HOOKS
from ..models.budget import Budget
from ..utils.model_wrappers import unwrap


def warmup_scale(iteration: int, start_scale: float,
                 warmup_iters: int) -> float:
    """The budget's multiple at ``iteration``: ``start_scale`` at 0, falling
    geometrically to 1 at ``warmup_iters`` and 1 from there on."""
    left = max(0., 1. - iteration / warmup_iters)
    return start_scale**left


@HOOKS.register_module()
class BudgetWarmupHook(Hook):
    """Multiply the model's ``train_budget`` by :func:`warmup_scale`.

    Before every training iteration the model trains at ``start_scale``
    times its configured budget, shrinking geometrically to the budget
    itself at ``warmup_iters``; validation keeps the model's
    ``val_budget``. The scale depends on the iteration alone, so a resumed
    run trains at the same budgets as an uninterrupted one.

    Args:
        start_scale (float): Multiple of the budget at iteration 0 (>= 1;
            the scaled budget must stay within [0, 1]).
        warmup_iters (int): Iterations until the configured budget.
    """

    priority = 'NORMAL'

    def __init__(self, start_scale: float = 8., warmup_iters: int = 1000):
        if start_scale < 1 or warmup_iters < 1:
            raise ValueError('start_scale must be >= 1 and warmup_iters >= '
                             f'1, got {start_scale} and {warmup_iters}')
        self.start_scale = start_scale
        self.warmup_iters = warmup_iters
        self.budget: Optional[Budget] = None

    def before_train(self, runner: Runner) -> None:
        self.budget = unwrap(runner.model).train_budget
        # Fail before the first step, not at it.
        self.budget.times(self.start_scale)

    def before_train_iter(self,
                          runner: Runner,
                          batch_idx: int,
                          data_batch: Optional[dict] = None) -> None:
        unwrap(runner.model).train_budget = self.budget.times(
            warmup_scale(runner.iter, self.start_scale, self.warmup_iters))

    def after_train(self, runner: Runner) -> None:
        unwrap(runner.model).train_budget = self.budget
