import copy
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from mmunseg.engine import BilevelSchedule
from mmunseg.utils import load_checkpoint_file
from tests.utils import REPO_ROOT, write_micro_train_config


def test_paper_schedule_surrogate_epochs():
    schedule = BilevelSchedule(surrogate=1, generator=3)
    surrogate = [e for e in range(27) if schedule.phase(e) == 'surrogate']
    assert surrogate == [0, 4, 8, 12, 16, 20, 24]
    assert schedule.count('generator', 27) == 20
    assert BilevelSchedule(2, 1).phase(1) == 'surrogate'
    with pytest.raises(ValueError, match='>= 1'):
        BilevelSchedule(0, 3)


def adam_steps(optim_wrapper):
    """Adam's step count of the first parameter with state."""
    state = optim_wrapper.optimizer.state
    return int(next(iter(state.values()))['step']) if state else 0


def run(cfg_path, work_dir, **options):
    cfg = Config.fromfile(cfg_path)
    cfg.work_dir = str(work_dir)
    cfg.merge_from_dict(copy.deepcopy(options))
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def test_save_and_resume_restores_both_players(tmp_path):
    cfg_path = write_micro_train_config(tmp_path / 'micro.py', max_epochs=2)
    first = run(cfg_path, tmp_path / 'run')
    steps_per_epoch = len(first.train_dataloader)
    checkpoint = load_checkpoint_file(str(tmp_path / 'run' / 'epoch_2.pth'))
    assert set(checkpoint['optimizer']) == {'generator', 'surrogate'}
    assert set(checkpoint['param_schedulers']) == {'generator', 'surrogate'}
    assert checkpoint['meta']['epoch'] == 2

    # Resume to 3 epochs: epoch index 2 is a generator epoch.
    resumed = run(
        cfg_path,
        tmp_path / 'run',
        resume=True,
        load_from=str(tmp_path / 'run' / 'epoch_2.pth'),
        train_cfg=dict(max_epochs=3))
    assert resumed.epoch == 3
    assert resumed.model.phase == 'generator'
    optim = resumed.optim_wrapper
    # Restored states: the surrogate did not step after resuming; the
    # generator continued from its own count.
    assert adam_steps(optim['surrogate']) == steps_per_epoch
    assert adam_steps(optim['generator']) == 2 * steps_per_epoch
    log = open(resumed.logger.log_file).read()
    assert 'resumed epoch: 2' in log
    assert 'bilevel: epoch 3 trains the generator' in log


def run_dist_train(cfg_path, work_dir):
    env = dict(
        os.environ, PYTHON=sys.executable, OMP_NUM_THREADS='1', PORT='29517')
    return subprocess.run([
        'bash',
        osp.join(REPO_ROOT, 'tools', 'dist_train.sh'), cfg_path, '2',
        '--work-dir', work_dir
    ],
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=600)


@pytest.mark.slow
def test_two_process_distributed_training(tmp_path):
    cfg_path = write_micro_train_config(
        tmp_path / 'micro.py', max_epochs=2, num_images=8)
    work_dir = tmp_path / 'dist'
    result = run_dist_train(cfg_path, str(work_dir))
    output = result.stdout + result.stderr
    if result.returncode != 0 and 'SIGABRT' in output:
        # Gloo on the CPU aborted a rank in C++ ("terminate called without
        # an active exception") in one of five runs seen on 2 cores;
        # a second abort in a row fails the test.
        work_dir = tmp_path / 'dist_again'
        result = run_dist_train(cfg_path, str(work_dir))
        output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "'world_size': 2" in output or 'world_size: 2' in output or \
        'Distributed launcher: pytorch' in output
    checkpoint = load_checkpoint_file(str(work_dir / 'epoch_2.pth'))
    # 8 images over 2 ranks with batch 2: 2 iterations per epoch.
    assert checkpoint['meta']['iter'] == 4
    assert torch.is_tensor(
        checkpoint['state_dict']['generator.noise_head.noise_token.weight'])


def test_checkpoint_keys_adapt_to_the_loading_run_wrapping():
    from mmunseg.engine.hooks import SafeResumeHook
    adapt = SafeResumeHook._adapt
    assert adapt('generator.module.noise_head.w', set()) == \
        'generator.noise_head.w'
    assert adapt('generator.noise_head.w', {'generator'}) == \
        'generator.module.noise_head.w'
    assert adapt('surrogate.x', {'generator'}) == 'surrogate.x'


@pytest.mark.slow
def test_generator_phase_lowers_its_objective_on_real_data(tmp_path):
    """A real iteration-based bilevel run on coco128_objects: 150 surrogate
    iterations, then (resumed) 100 generator iterations, which must lower the
    generator's objective (all-ones target, label modification) on fixed
    real images. The budget is larger than the paper's training budget so
    that a few micro steps suffice."""
    from mmengine.dataset import pseudo_collate

    from benchmarks.generator_leverage import generator_objective
    cfg_path = write_micro_train_config(tmp_path / 'micro.py', num_images=16)
    options = dict(
        model=dict(train_budget=dict(object=16 / 255, background=8 / 255)),
        train_cfg=dict(
            _delete_=True,
            type='BilevelIterBasedTrainLoop',
            max_iters=150,
            surrogate_iters=150,
            generator_iters=100,
            val_interval=1000),
        optim_wrapper=dict(
            generator=dict(optimizer=dict(lr=1e-3)),
            surrogate=dict(optimizer=dict(lr=1e-3))),
        param_scheduler=dict(
            generator=[dict(type='ConstantLR', factor=1.0, by_epoch=False)],
            surrogate=[dict(type='ConstantLR', factor=1.0, by_epoch=False)]),
        train_dataloader=dict(sampler=dict(type='InfiniteSampler')),
        default_hooks=dict(checkpoint=dict(by_epoch=False, interval=150)))
    surrogate_phase = run(cfg_path, tmp_path / 'iters', **options)
    fixed = pseudo_collate(
        [surrogate_phase.val_dataloader.dataset[i] for i in range(4)])
    torch.manual_seed(0)
    before = generator_objective(surrogate_phase.model, fixed)
    surrogate_state = {
        k: v.clone()
        for k, v in surrogate_phase.model.surrogate.state_dict().items()
    }

    options['train_cfg']['max_iters'] = 250
    generator_phase = run(
        cfg_path,
        tmp_path / 'iters',
        resume=True,
        load_from=str(tmp_path / 'iters' / 'iter_150.pth'),
        **options)
    assert generator_phase.iter == 250
    assert generator_phase.model.phase == 'generator'
    # The surrogate is the same: only the generator moved.
    for key, value in generator_phase.model.surrogate.state_dict().items():
        assert torch.equal(value, surrogate_state[key]), key
    torch.manual_seed(0)
    after = generator_objective(generator_phase.model, fixed)
    assert after < 0.97 * before, (before, after)


def test_amp_option_converts_every_optim_wrapper():
    from tools.train import use_amp
    cfg = Config.fromfile(
        osp.join(REPO_ROOT, 'configs', 'unseg', 'unseg_sam_b_hqseg.py'))
    use_amp(cfg)
    assert cfg.optim_wrapper.generator.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.surrogate.type == 'AmpOptimWrapper'


def test_test_tool_validates_a_checkpoint(tmp_path, monkeypatch):
    from tools import test as test_tool
    cfg_path = write_micro_train_config(tmp_path / 'micro.py', max_epochs=1)
    run(cfg_path, tmp_path / 'run')
    monkeypatch.setattr(sys, 'argv', [
        'test.py', cfg_path,
        str(tmp_path / 'run' / 'epoch_1.pth'), '--work-dir',
        str(tmp_path / 'test')
    ])
    test_tool.main()
    logs = [
        open(osp.join(root, name)).read()
        for root, _, names in os.walk(tmp_path / 'test') for name in names
        if name.endswith('.log')
    ]
    assert any('surrogate/miou_clean' in log for log in logs)
