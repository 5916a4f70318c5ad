"""protect_dataset, the call behind tools/protect.py: methods come from the
registry by short or class name, get exactly the run values they declare,
and a library call writes the copy the tool writes (issue 13, item 1)."""
import json
import os.path as osp

import pytest

from mmunseg.models.budget import Budget
from mmunseg.protect import (ConstantShift, NoiseMethod, UniformNoise,
                             UnSegGenerator)
from mmunseg.protect.baselines import (AutoregressiveNoise, ConvolutionNoise,
                                       ErrorMinimizingNoise, SyntheticNoise)
from mmunseg.protect.dataset_copy import (ProtectError, build_method,
                                          method_class, protect_dataset)
from tests.tools.test_protect_copies import protect, small_camvid, tree

RUN = dict(
    seed=3, device='cpu', budget=Budget(8 / 255, 2 / 255), num_classes=11)


@pytest.mark.parametrize('short, cls', [('unseg', UnSegGenerator),
                                        ('uniform', UniformNoise),
                                        ('em', ErrorMinimizingNoise),
                                        ('synper', SyntheticNoise),
                                        ('ar', AutoregressiveNoise),
                                        ('cuda', ConvolutionNoise),
                                        ('shift', ConstantShift)])
def test_short_names_are_registry_names(short, cls):
    assert method_class(short) is cls
    assert method_class(cls.__name__) is cls
    assert issubclass(cls, NoiseMethod)


def test_unknown_method_is_refused_with_the_registered_names():
    with pytest.raises(ProtectError, match="unknown method 'noise'.*uniform"):
        method_class('noise')


def test_methods_get_only_the_run_values_they_declare():
    method, name, options = build_method('uniform', {}, RUN)
    assert (name, options, method.seed) == ('UniformNoise', dict(seed=3), 3)
    # An option given explicitly wins over the run's value.
    assert build_method('ar', dict(seed=5), RUN)[2] == dict(seed=5)
    # The shift declares nothing: the run's seed and budgets stay out.
    assert build_method('shift', {}, RUN)[2] == {}
    assert ErrorMinimizingNoise.run_values == ('seed', 'device', 'budget',
                                               'num_classes')
    em, _, options = build_method('em', {}, RUN)
    assert em.budget == RUN['budget'] and options['budget'] is RUN['budget']
    assert not ConstantShift.needs_labels and SyntheticNoise.needs_labels
    assert UnSegGenerator.needs_checkpoint
    assert not UniformNoise.needs_checkpoint


def test_bad_options_and_a_missing_checkpoint_are_protect_errors():
    with pytest.raises(ProtectError, match='--method uniform with options'):
        build_method('uniform', dict(seed=-1), RUN)
    with pytest.raises(ProtectError, match='needs GENERATOR_CKPT'):
        build_method('unseg', {}, RUN)
    with pytest.warns(UserWarning, match='uses no generator'):
        build_method('uniform', {}, RUN, checkpoint='x.pth')


def test_library_call_writes_the_tools_copy(tmp_path, capsys):
    config, _ = small_camvid(tmp_path / 'camvid')
    assert protect(config, '--out-dir', tmp_path / 'tool', '--method', 'ar',
                   '--workers', '0', '--seed', '2', '--device', 'cpu') == 0
    summary = protect_dataset(
        config, 'ar', str(tmp_path / 'call'), seed=2, device='cpu', workers=0)
    assert summary['counts'] == dict(protected=3)
    assert 'protected 3/3 images' in capsys.readouterr().out
    tool, call = tree(tmp_path / 'tool'), tree(tmp_path / 'call')
    # Everything but the files that name their own folder or hold timings.
    own = ('manifest.jsonl', 'summary.json', 'protected_dataset.py')
    assert sorted(tool) == sorted(call)
    assert {f: h for f, h in tool.items() if f not in own} == \
        {f: h for f, h in call.items() if f not in own}
    with open(osp.join(tmp_path / 'call', 'protect_settings.json')) as f:
        assert json.load(f)['method'] == 'AutoregressiveNoise'


def test_labelled_methods_refuse_per_object_prompts(tmp_path):
    config, _ = small_camvid(tmp_path / 'camvid')
    with pytest.raises(ProtectError, match='keys its noise on the class'):
        protect_dataset(
            config, 'cuda', str(tmp_path / 'out'), prompt='per-class')
    with pytest.raises(ProtectError, match='automatic masks'):
        protect_dataset(
            config, 'uniform', str(tmp_path / 'out'), prompt='everything')
    assert not osp.exists(tmp_path / 'out')
