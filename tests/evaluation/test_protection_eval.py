import fcntl
import json
import os.path as osp
import threading

import pytest
from mmengine.config import Config

from mmunseg.datasets import PartiallyProtectedDataset
from mmunseg.evaluation.protection_eval import (evaluate_protection, plan_runs,
                                                run_victim, victim_config)

VICTIM = 'configs/eval/fcn-unet-s5-d16-c16_4xb8-500it_camvid-240x176.py'


def clean_dataset_cfg(root):
    cfg = Config.fromfile('configs/_base_/datasets/camvid.py')
    dataset = cfg.train_dataloader.dataset
    dataset.data_root = str(root)
    return dataset


def test_dataset_swaps_images_for_their_protected_copies(camvid_subset):
    root, protected = camvid_subset
    dataset = PartiallyProtectedDataset(
        clean_dataset_cfg(root), str(protected), clean_fraction=0)
    assert dataset.summary == dict(
        images=8, protected=8, clean_by_choice=0, clean_not_in_manifest=0)
    for i in range(len(dataset)):
        path = dataset.get_data_info(i)['img_path']
        assert path.startswith(str(protected)) and path.endswith('.png')
    sample = dataset[0]
    assert sample['inputs'].shape[0] == 3
    assert sample['data_samples'].gt_sem_seg.data.shape[-2:] == \
        sample['inputs'].shape[-2:]


def test_clean_share_is_stable_and_seeded(camvid_subset):
    root, protected = camvid_subset

    def clean_paths(seed):
        dataset = PartiallyProtectedDataset(
            clean_dataset_cfg(root),
            str(protected),
            clean_fraction=0.5,
            seed=seed)
        assert dataset.summary['protected'] == 4
        return {
            dataset.get_data_info(i)['img_path']
            for i in range(len(dataset)) if i not in dataset.protected
        }

    assert clean_paths(0) == clean_paths(0)
    assert all(path.endswith('.jpg') for path in clean_paths(0))
    assert clean_paths(0) != clean_paths(1)


def test_dataset_rejects_a_folder_that_is_not_a_protected_copy(
        camvid_subset, tmp_path):
    root, protected = camvid_subset
    with pytest.raises(FileNotFoundError, match='no manifest'):
        PartiallyProtectedDataset(clean_dataset_cfg(root), str(tmp_path))
    (tmp_path / 'manifest.jsonl').write_text(
        json.dumps(
            dict(file='x.png', source='/elsewhere/x.jpg', status='protected'))
        + '\n')
    with pytest.raises(ValueError, match='covers none'):
        PartiallyProtectedDataset(clean_dataset_cfg(root), str(tmp_path))
    with pytest.raises(ValueError, match='clean_fraction'):
        PartiallyProtectedDataset(
            clean_dataset_cfg(root), str(protected), clean_fraction=1.5)


def test_runs_are_planned_clean_first_per_seed():
    runs = plan_runs([0.2, 0.0], seeds=[0, 1])
    assert [r.dirname for r in runs] == [
        'clean_seed0', 'protected_seed0', 'protected_20pct_clean_seed0',
        'clean_seed1', 'protected_seed1', 'protected_20pct_clean_seed1'
    ]
    with pytest.raises(ValueError, match='clean fraction'):
        plan_runs([1.0])


def test_victim_config_wraps_only_the_training_set(camvid_subset, tmp_path):
    root, protected = camvid_subset
    base = Config.fromfile(VICTIM)
    clean, protected_run = plan_runs([0.0])
    cfg = victim_config(
        base,
        protected_run,
        str(tmp_path),
        str(protected),
        clean_root=str(root))
    dataset = cfg.train_dataloader.dataset
    assert dataset.type == 'mmunseg.PartiallyProtectedDataset'
    assert dataset.dataset.data_root == str(root)
    assert cfg.val_dataloader.dataset.data_root == str(root)
    assert cfg.val_evaluator.type == 'mmunseg.PerClassIoUMetric'
    assert cfg.work_dir == osp.join(str(tmp_path), 'protected_seed0')
    clean_cfg = victim_config(base, clean, str(tmp_path), str(protected))
    assert clean_cfg.train_dataloader.dataset.type == 'mmseg.BaseSegDataset'
    # The victim config itself is untouched.
    assert base.train_dataloader.dataset.type == 'mmseg.BaseSegDataset'


def test_report_on_a_two_iteration_schedule(camvid_subset, tmp_path):
    root, protected = camvid_subset
    tiny_schedule = {
        'train_cfg.max_iters': 2,
        'param_scheduler.0.end': 2,
        'train_dataloader.batch_size': 2,
        'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'val_dataloader.num_workers': 0,
        'val_dataloader.persistent_workers': False,
        'default_hooks.checkpoint.interval': 2,
        'default_hooks.logger.interval': 1,
    }
    report = evaluate_protection(
        VICTIM,
        str(tmp_path),
        protected_root=str(protected),
        clean_root=str(root),
        clean_fractions=[0.0, 0.5],
        val_interval=1,
        cfg_options=tiny_schedule)
    assert report['metric'] == 'mIoU'
    rows = {row['condition']: row for row in report['rows']}
    assert set(rows) == {'clean', 'protected', 'protected_50pct_clean'}
    assert rows['clean']['ratio_to_clean'] == pytest.approx(1)
    assert rows['protected']['training_images']['protected'] == 8
    assert rows['protected_50pct_clean']['training_images']['protected'] == 4
    # A curve point per validation, per-class IoU in the table.
    assert [step for step, _ in report['curves']['protected']] == [1, 2]
    assert 'IoU.Road' in report['classes']['clean']
    for kind in ('md', 'json', 'png'):
        assert osp.getsize(report['paths'][kind]) > 0
    markdown = open(report['paths']['md']).read()
    assert '| protected | 0% | 1 |' in markdown and '| Road |' in markdown
    # Finished runs are reused: a second call trains nothing.
    result = tmp_path / 'protected_seed0' / 'result.json'
    stamp = result.stat().st_mtime_ns
    evaluate_protection(
        VICTIM,
        str(tmp_path),
        protected_root=str(protected),
        clean_root=str(root),
        cfg_options=tiny_schedule)
    assert result.stat().st_mtime_ns == stamp


def test_dataset_wraps_a_concatenated_training_set(camvid_subset):
    root, protected = camvid_subset
    leaf = clean_dataset_cfg(root)
    dataset = PartiallyProtectedDataset(
        dict(type='ConcatDataset', datasets=[leaf, leaf]), str(protected))
    assert len(dataset) == 16 and dataset.summary['protected'] == 16
    assert dataset[9]['inputs'].shape[0] == 3


def test_a_run_in_progress_elsewhere_is_awaited_not_trained_again(tmp_path):
    """While another process holds a run's lock, run_victim waits for it
    and returns the result that process wrote (this config could not
    train: it has no model)."""
    work_dir = tmp_path / 'clean_seed1'
    work_dir.mkdir()
    result = dict(metrics=dict(mIoU=41.0), history=[], iterations=1200)
    holder = open(work_dir / '.lock', 'a')
    fcntl.flock(holder, fcntl.LOCK_EX)

    def finish():
        (work_dir / 'result.json').write_text(json.dumps(result))
        holder.close()  # releases the lock, as the other run's exit would

    timer = threading.Timer(0.5, finish)
    timer.start()
    try:
        assert run_victim(Config(dict(work_dir=str(work_dir)))) == result
    finally:
        timer.join()
