"""Train a victim on clean and on protected data; compare on clean val.

The runs share one recipe (the victim config) and differ only in their
training images: the clean dataset, the protected copy, or a mix with a
share of clean images. Each run lives in its own work_dir and leaves a
``result.json``; a finished run is reused, so an interrupted evaluation
resumes where it stopped.
"""
import copy
import fcntl
import json
import math
import os
import os.path as osp
import time
from dataclasses import asdict, dataclass
from typing import Optional

import numpy as np
from mmengine.config import Config
from mmengine.dist import get_rank
from mmengine.runner import Runner

from mmunseg.engine.hooks import ensure_safe_resume
from mmunseg.registry import RUNNERS
from mmunseg.utils import setup_cpu_distributed
from mmunseg.utils.atomic_files import write_bytes_atomic
from mmunseg.utils.dataset_configs import leaf_datasets

#: Evaluators whose per-class output the report reads.
SEG_METRICS = ('IoUMetric', 'mmseg.IoUMetric')
COCO_METRICS = ('CocoMetric', 'mmdet.CocoMetric')


@dataclass
class RunSpec:
    """One victim training run.

    Attributes:
        condition (str): ``clean`` or ``protected`` (possibly mixed).
        clean_fraction (float): Share of training images left clean.
        seed (int): Seed of the run (model init, data order, clean share).
    """
    condition: str
    clean_fraction: float
    seed: int

    @property
    def name(self):
        if self.condition == 'clean':
            return 'clean'
        if self.clean_fraction == 0:
            return 'protected'
        return f'protected_{round(self.clean_fraction * 100)}pct_clean'

    @property
    def dirname(self):
        return f'{self.name}_seed{self.seed}'


def plan_runs(clean_fractions=(0.0, ), seeds=(0, ), include_clean=True):
    """Every run of an evaluation, clean first, in a stable order."""
    for fraction in clean_fractions:
        if not 0 <= fraction < 1:
            raise ValueError('a clean fraction is in [0, 1) (1 is the clean '
                             f'run, always included), got {fraction}')
    runs = []
    for seed in seeds:
        if include_clean:
            runs.append(RunSpec('clean', 1.0, seed))
        runs += [
            RunSpec('protected', fraction, seed)
            for fraction in sorted(set(clean_fractions))
        ]
    return runs


def _set_data_root(dataset_cfg, root):
    """Point a dataset (or the leaves of a wrapper) at another root."""
    for leaf in leaf_datasets(dataset_cfg):
        leaf['data_root'] = root


def primary_metric(cfg, metrics):
    """The metric a report ranks by: mIoU, else COCO mask AP, else box."""
    for key in ('mIoU', 'coco/segm_mAP', 'coco/bbox_mAP'):
        if key in metrics:
            return key
    raise ValueError(f'{cfg.filename}: no mIoU or COCO AP among the '
                     f'validation metrics {sorted(metrics)}; pass --metric')


def victim_config(base_cfg,
                  spec,
                  work_dir,
                  protected_root=None,
                  clean_root=None,
                  defense=None,
                  defense_options=None,
                  val_interval=None):
    """The config of one run.

    Args:
        base_cfg (Config): The victim config (not modified).
        spec (RunSpec): Which run.
        work_dir (str): The evaluation's folder; the run uses a subfolder.
        protected_root (str, optional): Output of ``tools/protect.py``;
            needed by protected runs.
        clean_root (str, optional): Clean data root replacing the config's
            (training and validation).
        defense (str, optional): A name of :data:`mmunseg.defenses.
            DEFENSE_NAMES`, applied to every run alike.
        defense_options (dict, optional): Its options.
        val_interval (int, optional): Validate this often (a curve); the
            last iteration is always validated.

    Returns:
        Config
    """
    cfg = copy.deepcopy(base_cfg)
    cfg.work_dir = osp.join(work_dir, spec.dirname)
    # Unique per run: loggers and visualizers are per-name singletons.
    cfg.experiment_name = f'{spec.dirname}_{time.strftime("%Y%m%d_%H%M%S")}'
    cfg.randomness = dict(seed=spec.seed, deterministic=False)
    if clean_root is not None:
        _set_data_root(cfg.train_dataloader.dataset, clean_root)
        for key in ('val_dataloader', 'test_dataloader'):
            if cfg.get(key):
                _set_data_root(cfg[key].dataset, clean_root)
    if spec.condition == 'protected':
        if protected_root is None:
            raise ValueError('protected runs need protected_root')
        cfg.train_dataloader.dataset = dict(
            type='mmunseg.PartiallyProtectedDataset',
            dataset=cfg.train_dataloader.dataset,
            protected_root=osp.abspath(protected_root),
            clean_fraction=spec.clean_fraction,
            seed=spec.seed)
    if defense is not None:
        from mmunseg.defenses import apply_defense
        apply_defense(cfg, defense, **(defense_options or {}))
    if val_interval is not None:
        cfg.train_cfg.val_interval = val_interval
    evaluator = cfg.val_evaluator
    if evaluator.get('type') in SEG_METRICS:
        evaluator.type = 'mmunseg.PerClassIoUMetric'
    elif evaluator.get('type') in COCO_METRICS:
        evaluator.classwise = True
    cfg.custom_hooks = list(cfg.get(
        'custom_hooks', [])) + [dict(type='mmunseg.ValMetricHistoryHook')]
    # Checkpoints of any victim config load safely and resume.
    ensure_safe_resume(cfg)
    return cfg


def run_victim(cfg):
    """Train one run (or reuse its result) and return its result dict.

    A run launched without a distributed launcher holds a lock on its work
    dir while it trains: a second process asking for the same run (two
    table commands sharing a work dir, say) waits and reuses its result
    instead of training it again.
    """
    result_path = osp.join(cfg.work_dir, 'result.json')
    if osp.isfile(result_path):
        return _read_result(result_path)
    if cfg.get('launcher', 'none') != 'none':
        return _train_victim(cfg, result_path)
    os.makedirs(cfg.work_dir, exist_ok=True)
    # flock is released by the kernel when its holder dies: a killed run
    # never leaves the next one waiting.
    with open(osp.join(cfg.work_dir, '.lock'), 'a') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if osp.isfile(result_path):
            return _read_result(result_path)
        return _train_victim(cfg, result_path)


def _read_result(path):
    with open(path) as f:
        return json.load(f)


def _train_victim(cfg, result_path):
    setup_cpu_distributed(cfg)
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(
        cfg)
    runner.train()
    history_path = osp.join(cfg.work_dir, 'val_history.json')
    history = []
    if osp.isfile(history_path):
        with open(history_path) as f:
            history = json.load(f)
    if not history or history[-1]['iter'] != runner.iter:
        # The schedule's last iteration was not a validation step.
        metrics = runner.val_loop.run()
        history.append(
            dict(
                iter=runner.iter,
                epoch=runner.epoch,
                metrics={
                    k: float(v)
                    for k, v in metrics.items()
                }))
    dataset = runner.train_dataloader.dataset
    result = dict(
        metrics=history[-1]['metrics'],
        history=history,
        iterations=runner.iter,
        training_images=getattr(dataset, 'summary', None)
        or dict(images=len(dataset)))
    if get_rank() == 0:
        write_bytes_atomic(result_path, json.dumps(result, indent=1).encode())
    return result


def mean_std(values):
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return None, None
    return float(np.mean(values)), float(np.std(values))


def aggregate(groups, metric):
    """The victim results of each training set, over its seeds.

    Args:
        groups (dict[str, list[dict]]): Run results (:func:`run_victim`) by
            training set, in order; ``clean`` is the reference.
        metric (str): The metric to compare.

    Returns:
        dict[str, dict]: By training set: ``values`` (the metric per run),
        their ``mean`` and ``std``, ``ratio_to_clean`` (None without a
        clean mean) and ``per_class`` (the mean of each per-class metric,
        ``IoU.<class>`` or ``coco/<class>_precision``).
    """
    clean, _ = mean_std(
        [r['metrics'].get(metric) for r in groups.get('clean', [])])
    stats = {}
    for name, results in groups.items():
        values = [r['metrics'].get(metric) for r in results]
        mean, std = mean_std(values)
        per_class = {}
        for result in results:
            for key, value in result['metrics'].items():
                if key.startswith('IoU.') or key.endswith('_precision'):
                    per_class.setdefault(key, []).append(value)
        stats[name] = dict(
            values=values,
            mean=mean,
            std=std,
            ratio_to_clean=None if mean is None or not clean else mean / clean,
            per_class={
                key: mean_std(vals)[0]
                for key, vals in per_class.items()
            })
    return stats


def summarize(runs, results, metric):
    """Aggregate runs over seeds into the report's rows.

    Args:
        runs (list[RunSpec]): The runs, in order.
        results (list[dict]): Their results (:func:`run_victim`).
        metric (str): The metric to compare.

    Returns:
        dict: ``rows`` (one per condition: mean, std, per seed, ratio to
        clean), ``classes`` (per-class means), ``curves`` (metric over
        iterations, mean over seeds).
    """
    groups = {}
    for spec, result in zip(runs, results):
        groups.setdefault(spec.name, []).append((spec, result))
    stats = aggregate(
        {
            name: [r for _, r in members]
            for name, members in groups.items()
        }, metric)
    rows, classes, curves = [], {}, {}
    for name, members in groups.items():
        rows.append(
            dict(
                condition=name,
                clean_fraction=members[0][0].clean_fraction,
                seeds=[spec.seed for spec, _ in members],
                values=stats[name]['values'],
                mean=stats[name]['mean'],
                std=stats[name]['std'],
                ratio_to_clean=stats[name]['ratio_to_clean'],
                training_images=members[0][1].get('training_images')))
        classes[name] = stats[name]['per_class']
        steps = {}
        for _, result in members:
            for entry in result['history']:
                if metric in entry['metrics']:
                    steps.setdefault(entry['iter'],
                                     []).append(entry['metrics'][metric])
        curves[name] = [[it, float(np.mean(v))]
                        for it, v in sorted(steps.items())]
    return dict(rows=rows, classes=classes, curves=curves)


def class_label(key):
    """``IoU.Road`` -> ``Road``; ``coco/airplane_precision`` -> airplane."""
    if key.startswith('IoU.'):
        return key[4:]
    return key.split('/')[-1][:-len('_precision')]


def metric_text(row):
    """A row's metric as text: its mean, and its spread over several seeds.

    Fractions (COCO AP, 0.118) keep three decimals as MMDetection prints
    them; percentages (mIoU, 48.63) two.
    """
    if row['mean'] is None:
        return 'n/a'
    digits = 3 if abs(row['mean']) < 1 else 2
    text = f"{row['mean']:.{digits}f}"
    if row['std'] is not None and len(row['seeds']) > 1:
        text += f" ± {row['std']:.{digits}f}"
    return text


def markdown_report(report):
    """The report as markdown: the comparison table and per-class table."""
    metric = report['metric']
    lines = [
        f"# Protection evaluation: {report['victim']}", '',
        f"Protected data: `{report['protected_root']}`; "
        f"defense: {report['defense'] or 'none'}; metric: {metric} on the "
        'clean validation set.', '',
        f'| training data | clean share | seeds | {metric} | ratio to clean |',
        '|---|---|---|---|---|'
    ]
    for row in report['rows']:
        value = metric_text(row)
        ratio = 'n/a' if row['ratio_to_clean'] is None else \
            f"{row['ratio_to_clean']:.2f}"
        lines.append(f"| {row['condition']} | {row['clean_fraction']:.0%} | "
                     f"{len(row['seeds'])} | {value} | {ratio} |")
    keys = sorted({key for c in report['classes'].values() for key in c})
    if keys:
        names = list(report['classes'])
        lines += [
            '', '| class | ' + ' | '.join(names) + ' |',
            '|---|' + '---|' * len(names)
        ]
        for key in keys:
            cells = []
            for name in names:
                value = report['classes'][name].get(key)
                cells.append('n/a' if value is None else f'{value:.1f}')
            lines.append(f'| {class_label(key)} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def plot_report(report, path):
    """Per-class bars and the metric over training iterations, as PNG."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    names = list(report['classes'])
    keys = sorted({key for c in report['classes'].values() for key in c})
    fig, (bars, curve) = plt.subplots(
        1, 2, figsize=(12, 4), gridspec_kw=dict(width_ratios=[2, 1]))
    width = 0.8 / max(len(names), 1)
    for i, name in enumerate(names):
        values = [report['classes'][name].get(key) or 0 for key in keys]
        bars.bar(np.arange(len(keys)) + i * width, values, width, label=name)
    bars.set_xticks(np.arange(len(keys)) + 0.4 - width / 2)
    bars.set_xticklabels([class_label(k) for k in keys],
                         rotation=45,
                         ha='right')
    bars.set_ylabel('per class (%)')
    bars.legend(fontsize='small')
    for name, points in report['curves'].items():
        if points:
            steps, values = zip(*points)
            curve.plot(steps, values, marker='o', label=name)
    curve.set_xlabel('training iteration')
    curve.set_ylabel(report['metric'])
    curve.legend(fontsize='small')
    fig.tight_layout()
    fig.savefig(path + '.tmp.png', dpi=100)
    plt.close(fig)
    os.replace(path + '.tmp.png', path)


def write_report(report, work_dir):
    """``report.md``, ``report.json`` and ``report.png`` in ``work_dir``.

    Returns:
        dict[str, str]: The written paths by kind.
    """
    paths = {
        kind: osp.join(work_dir, f'report.{kind}')
        for kind in ('md', 'json', 'png')
    }
    write_bytes_atomic(paths['md'], markdown_report(report).encode())
    write_bytes_atomic(paths['json'], json.dumps(report, indent=1).encode())
    plot_report(report, paths['png'])
    return paths


def evaluate_protection(victim,
                        work_dir,
                        protected_root=None,
                        clean_root=None,
                        clean_fractions=(0.0, ),
                        seeds=(0, ),
                        include_clean=True,
                        defense=None,
                        defense_options=None,
                        metric: Optional[str] = None,
                        val_interval=None,
                        cfg_options=None,
                        launcher='none'):
    """Train and compare; write the report on rank 0.

    Args:
        victim (str | Config): The victim (MMSeg or MMDet) config.
        work_dir (str): Where runs and the report go.
        protected_root (str, optional): Output of ``tools/protect.py``.
        clean_root (str, optional): Clean data root if not the config's.
        clean_fractions (Sequence[float]): Clean shares of the protected
            runs (0 = all protected).
        seeds (Sequence[int]): One run per seed and condition.
        include_clean (bool): Also train on clean data (the reference).
        defense (str, optional): A training-time defense for every run.
        defense_options (dict, optional): Its options.
        metric (str, optional): Compared metric (default: mIoU, else COCO
            segm/bbox mAP).
        val_interval (int, optional): Validation interval (for curves).
        cfg_options (dict, optional): Overrides of the victim config.
        launcher (str): ``none`` or ``pytorch`` (as ``tools/train.py``).

    Returns:
        dict: The report (see :func:`summarize`), with ``paths`` on rank 0.
    """
    base_cfg = victim if isinstance(victim,
                                    Config) else Config.fromfile(victim)
    if cfg_options:
        base_cfg.merge_from_dict(cfg_options)
    base_cfg.launcher = launcher
    runs = plan_runs(clean_fractions, seeds, include_clean)
    if any(spec.condition == 'protected' for spec in runs):
        if protected_root is None or not osp.isdir(protected_root):
            raise FileNotFoundError(
                f'protected root {protected_root!r} is not a folder')
    results = []
    for spec in runs:
        cfg = victim_config(base_cfg, spec, work_dir, protected_root,
                            clean_root, defense, defense_options, val_interval)
        results.append(run_victim(cfg))
    metric = metric or primary_metric(base_cfg, results[0]['metrics'])
    report = dict(
        victim=base_cfg.filename,
        protected_root=protected_root and osp.abspath(protected_root),
        clean_root=clean_root,
        defense=defense,
        defense_options=defense_options or {},
        metric=metric,
        runs=[
            dict(**asdict(spec), name=spec.name, result=result)
            for spec, result in zip(runs, results)
        ],
        **summarize(runs, results, metric))
    if get_rank() == 0:
        report['paths'] = write_report(report, work_dir)
    return report
