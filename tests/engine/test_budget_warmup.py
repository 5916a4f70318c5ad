from types import SimpleNamespace

import pytest
import torch.nn as nn

from mmunseg.engine import BudgetWarmupHook, warmup_scale
from mmunseg.models.budget import Budget
from mmunseg.registry import HOOKS


def test_warmup_scale_falls_geometrically_to_one():
    assert warmup_scale(0, 8., 300) == 8.
    assert warmup_scale(100, 8., 300) == pytest.approx(4.)
    assert warmup_scale(150, 8., 300) == pytest.approx(8**0.5)
    assert warmup_scale(300, 8., 300) == 1.
    assert warmup_scale(10_000, 8., 300) == 1.


class Model(nn.Module):

    def __init__(self, budget):
        super().__init__()
        self.train_budget = budget
        self.val_budget = budget


def test_hook_scales_the_training_budget_and_restores_it():
    paper = Budget(8 / 255, 2 / 255)
    model = Model(paper)
    runner = SimpleNamespace(model=model, iter=0)
    hook = HOOKS.build(
        dict(type='BudgetWarmupHook', start_scale=4., warmup_iters=10))
    hook.before_train(runner)
    budgets = []
    for iteration in (0, 5, 10, 20):
        runner.iter = iteration
        hook.before_train_iter(runner, iteration)
        budgets.append(model.train_budget)
    assert budgets[0] == Budget(32 / 255, 8 / 255)
    assert budgets[1].object == pytest.approx(16 / 255)
    assert budgets[2] == budgets[3] == paper
    # Validation is measured at the protection budget throughout.
    assert model.val_budget is paper
    runner.iter = 3
    hook.before_train_iter(runner, 3)
    hook.after_train(runner)
    assert model.train_budget is paper
    # The same iteration gets the same budget, as after a resume.
    resumed = BudgetWarmupHook(start_scale=4., warmup_iters=10)
    resumed.before_train(runner)
    runner.iter = 5
    resumed.before_train_iter(runner, 5)
    assert model.train_budget == budgets[1]


def test_bad_warmups_are_refused():
    with pytest.raises(ValueError, match='start_scale'):
        BudgetWarmupHook(start_scale=0.5)
    with pytest.raises(ValueError, match='warmup_iters'):
        BudgetWarmupHook(warmup_iters=0)
    # A scaled budget beyond the pixel range fails before training starts.
    runner = SimpleNamespace(model=Model(Budget(64 / 255, 2 / 255)), iter=0)
    with pytest.raises(ValueError, match='object budget'):
        BudgetWarmupHook(start_scale=8.).before_train(runner)
