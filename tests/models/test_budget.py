import numpy as np
import pytest
import torch

from mmunseg.models.budget import (BUDGET_PRESETS, Budget, budget_levels,
                                   format_eps, parse_eps, perturb_image)


def test_budget_values_presets_and_config_forms():
    paper = Budget.preset('paper')
    assert (paper.object, paper.background) == (8 / 255, 2 / 255)
    assert Budget.of('paper') is paper
    assert Budget.of(dict(object=8 / 255, background=2 / 255)) == paper
    assert Budget.of(paper) is paper
    assert Budget.of(paper.to_dict()) == paper
    assert paper.largest == 8 / 255
    assert set(BUDGET_PRESETS) == {'paper', 'medical', 'train'}
    assert Budget.preset('train') == Budget(1 / 255, 0.25 / 255)
    assert Budget.parse('4', '1/255') == BUDGET_PRESETS['medical']


@pytest.mark.parametrize('value, message', [
    (dict(object=8, background=2), 'object budget must be a number in'),
    (dict(object=0.1, background=-0.1), 'background budget'),
    (dict(object=0.1), 'dict\\(object=eps, background=eps\\)'),
    (dict(object=0.1, background=0.1, extra=0), 'background=eps'),
    ('huge', 'unknown budget preset'),
    (dict(object=True, background=0.), 'object budget'),
])
def test_bad_budgets_name_the_problem(value, message):
    with pytest.raises(ValueError, match=message):
        Budget.of(value)


@pytest.mark.parametrize('text, levels', [('8', 8), ('8/255', 8),
                                          ('5.5/255', 5.5), ('0', 0),
                                          (' 2/255 ', 2)])
def test_parse_and_format_round_trip(text, levels):
    assert parse_eps(text) * 255 == pytest.approx(levels, abs=1e-9)
    assert parse_eps(format_eps(parse_eps(text))) == parse_eps(text)


@pytest.mark.parametrize('text, message', [('0.03', 'ambiguous'),
                                           ('-2', 'negative'),
                                           ('300', 'more than the 255'),
                                           ('2/0', 'divides by zero'),
                                           ('abc', 'not a budget')])
def test_parse_refuses_what_could_be_misread(text, message):
    with pytest.raises(ValueError, match=message):
        parse_eps(text)


def test_perturb_image_keeps_each_region_within_its_grey_levels():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    mask = np.zeros((20, 30), bool)
    mask[5:15, 10:20] = True
    noise = rng.uniform(-1, 1, (20, 30, 3)).astype(np.float32)
    budget = Budget(2.5 / 255, 1 / 255)
    protected = perturb_image(image, mask, noise, budget)
    diff = np.abs(protected.astype(int) - image)
    assert diff[mask].max() == budget_levels(budget.object) == 2
    assert diff[~mask].max() == budget_levels(budget.background) == 1
    # The float perturbation before rounding is the budget's scale.
    delta = budget.scale(
        torch.from_numpy(noise).permute(2, 0, 1)[None],
        torch.from_numpy(mask)[None, None].float())
    assert delta[0, :, mask].abs().max() <= budget.object + 1e-7
