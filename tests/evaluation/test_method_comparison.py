import json
import os.path as osp
import sys

import pytest
from mmengine.config import Config

from mmunseg.evaluation.method_comparison import (Training, comparison_table,
                                                  copy_key, data_key,
                                                  markdown_table,
                                                  set_iterations, victim_key)
from mmunseg.models.budget import Budget

VICTIM = 'configs/eval/fcn-unet-s5-d16-c16_4xb8-500it_camvid-240x176.py'
BENCHMARKS = osp.join(osp.dirname(__file__), '..', '..', 'benchmarks')


def test_keys_change_with_everything_that_changes_the_data():
    camvid = 'configs/_base_/datasets/camvid.py'
    assert data_key(camvid, Budget.preset('paper')) == 'camvid_obj8-bg2'
    assert data_key(camvid, Budget(4 / 255, 5.5 / 255)) == 'camvid_obj4-bg5.5'
    assert copy_key('uniform') == 'uniform'
    assert copy_key('em', dict(rounds=2)) != copy_key('em', dict(rounds=3))
    assert copy_key(
        'unseg', checkpoint='a.pth') != copy_key(
            'unseg', checkpoint='b.pth')
    assert victim_key(VICTIM) == osp.basename(VICTIM)[:-3]
    assert victim_key(VICTIM, 50).endswith('_50it')
    copies = dict(em='/w/protected/camvid_obj8-bg2/em_1234abcd')
    assert Training('em').folder(copies) == 'em_1234abcd'
    assert Training('clean', 'jpeg').folder(copies) == 'clean+jpeg'
    assert Training('em', 'jpeg', dict(quality=10)).folder(copies) != \
        Training('em', 'jpeg', dict(quality=50)).folder(copies)


def test_set_iterations_moves_the_schedule_end_and_the_last_validation():
    cfg = Config.fromfile(VICTIM)
    set_iterations(cfg, 40)
    assert cfg.train_cfg.max_iters == 40 and cfg.train_cfg.val_interval == 40
    assert cfg.param_scheduler[0].end == 40
    assert cfg.default_hooks.checkpoint.interval == 40


def fake_run(method, seed, miou, defense=None):
    return dict(
        training=Training(method, defense),
        seed=seed,
        result=dict(metrics={
            'mIoU': miou,
            'IoU.Road': miou * 2
        }))


def test_table_averages_seeds_and_divides_by_undefended_clean():
    runs = [
        fake_run('clean', 0, 30.0),
        fake_run('clean', 1, 34.0),
        fake_run('unseg', 0, 6.0),
        fake_run('unseg', 1, 10.0),
        fake_run('unseg', 0, 16.0, 'jpeg'),
    ]
    rows = comparison_table(runs, 'mIoU')
    assert [r['training'] for r in rows] == ['clean', 'unseg', 'unseg+jpeg']
    assert rows[0]['mean'] == 32 and rows[0]['ratio_to_clean'] == 1
    assert rows[1]['mean'] == 8 and rows[1]['ratio_to_clean'] == 0.25
    assert rows[1]['std'] == 2 and rows[1]['per_class']['Road'] == 16
    assert rows[2]['ratio_to_clean'] == 0.5
    summary = dict(
        linf_object=8,
        allowed_object=8,
        linf_background=2,
        allowed_background=2,
        psnr=dict(mean=30.61, min=29),
        seconds=dict(mean=0.0123, min=0.01))
    table = markdown_table('mIoU', rows, dict(unseg=summary),
                           dict(unseg='UnSeg'), ['Road'])
    lines = table.splitlines()
    assert lines[0].startswith('| training data | defense | mIoU |')
    assert lines[0].endswith('| Road |')
    assert lines[2].startswith('| clean | none | 32.00 ± 2.00 | 1.00 | - |')
    assert lines[3] == ('| UnSeg | none | 8.00 ± 2.00 | 0.25 | 8/8 / 2/2 | '
                        '30.6 | 0.0123 | 16.0 |')
    assert lines[4].startswith('| UnSeg | jpeg | 16.00 | 0.50 |')


def test_a_fraction_metric_keeps_three_decimals():
    # COCO AP is a fraction: 0.110 against 0.118 must not read 0.11 / 0.12.
    rows = comparison_table(
        [fake_run('clean', 0, 0.110),
         fake_run('unseg', 0, 0.118)], 'mIoU')
    lines = markdown_table('coco/segm_mAP', rows, {}).splitlines()
    assert lines[2].startswith('| clean | none | 0.110 | 1.00 |')
    assert lines[3].startswith('| unseg | none | 0.118 | 1.07 |')


def import_methods_table():
    sys.path.insert(0, BENCHMARKS)
    try:
        import methods_table
    finally:
        sys.path.remove(BENCHMARKS)
    return methods_table


def test_method_options_are_parsed_and_shown_in_the_label():
    methods_table = import_methods_table()
    args = methods_table.build_parser('test', ('shift', ),
                                      'x.json').parse_args([
                                          '--method-options',
                                          'shift:value=(1,-1,1)', 'em:rounds=2'
                                      ])
    options = methods_table.grouped(args.method_options)
    assert options == dict(shift=dict(value=(1, -1, 1)), em=dict(rounds=2))
    assert methods_table.label('shift', options['shift']) == \
        'constant shift (value=(1, -1, 1))'
    for bad in (['--method-options', 'rounds=2'], ['--jobs', '0']):
        with pytest.raises(SystemExit):
            methods_table.build_parser('test', (), 'x.json').parse_args(bad)


def test_methods_table_budgets_follow_the_rule_of_protect(capsys):
    methods_table = import_methods_table()
    parser = methods_table.build_parser('test', (), 'x.json')
    args = parser.parse_args([])
    assert (args.eps_object, args.eps_background) == (8 / 255, 2 / 255)
    # The default victim is the one a constant colour cast does not fool.
    assert osp.isfile(args.victim) and 'mfb-pmd' in args.victim
    args = parser.parse_args(
        ['--eps-object', '8', '--eps-background', '5.5/255'])
    assert args.eps_object == 8 / 255
    assert args.eps_background == pytest.approx(5.5 / 255, abs=1e-15)
    # A bare decimal could be either: refused, as by tools/protect.py.
    for value in ('0.03', '1.0'):
        with pytest.raises(SystemExit):
            parser.parse_args(['--eps-object', value])
        assert 'is ambiguous' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args(['--help'])
    assert 'a whole number N is N grey levels' in ' '.join(
        capsys.readouterr().out.split())


def test_methods_table_end_to_end_on_a_camvid_subset(camvid_subset, tmp_path):
    """Protect (through tools/protect.py), train the victim two iterations
    on clean, the copy and the defended copy in two processes at once,
    tabulate, resume."""
    root, _ = camvid_subset
    dataset = tmp_path / 'camvid_subset.py'
    camvid = osp.abspath('configs/_base_/datasets/camvid.py')
    dataset.write_text(f'_base_ = [{camvid!r}]\n'
                       f'train_dataloader = dict(dataset=dict('
                       f'data_root={str(root)!r}))\n')
    methods_table = import_methods_table()
    loaders = ('train_dataloader', 'val_dataloader')
    cfg_options = [f'{loader}.dataset.data_root={root}' for loader in loaders]
    cfg_options += [f'{loader}.num_workers=0' for loader in loaders]
    cfg_options += [f'{loader}.persistent_workers=False' for loader in loaders]
    cfg_options += ['train_dataloader.batch_size=2']
    out = tmp_path / 'table.json'
    args = methods_table.build_parser(
        'test', ('uniform', ), 'unused.json').parse_args([
            '--dataset',
            str(dataset), '--victim', VICTIM, '--iterations', '2',
            '--defenses', 'gaussian', '--defended', 'uniform', '--first-seed',
            '1', '--jobs', '2', '--work-dir',
            str(tmp_path / 'work'), '--out',
            str(out), '--cfg-options'
        ] + cfg_options)
    record = methods_table.run(args)
    rows = {row['training']: row for row in record['rows']}
    assert list(rows) == ['clean', 'uniform', 'uniform+gaussian']
    assert rows['clean']['ratio_to_clean'] == pytest.approx(1)
    summary = record['protection']['uniform']
    assert summary['budget_ok'] and summary['counts'] == dict(protected=8)
    assert summary['seconds']['mean'] >= 0
    assert record['iterations'] == 2
    assert [run['seed'] for run in record['runs']] == [1, 1, 1]
    assert 'seed(s) 1)' in record['caption']
    saved = json.loads(out.read_text())
    assert saved['table'] == record['table']
    markdown = out.with_suffix('.md').read_text()
    assert '| uniform random noise | none |' in markdown
    assert '| uniform random noise | gaussian |' in markdown
    # Finished runs are reused: a second run trains nothing.
    results = list((tmp_path / 'work' / 'victims').rglob('result.json'))
    assert len(results) == 3
    assert all('seed1' in str(p) for p in results)
    stamps = {p: p.stat().st_mtime_ns for p in results}
    args.jobs = 1
    methods_table.run(args)
    assert {p: p.stat().st_mtime_ns for p in results} == stamps
    # No undefended method: the clean and defended rows only.
    args.methods = []
    record = methods_table.run(args)
    assert [row['training']
            for row in record['rows']] == ['clean', 'uniform+gaussian']
    assert {p: p.stat().st_mtime_ns for p in results} == stamps
