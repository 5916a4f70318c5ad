"""Compare protections on one dataset and one victim.

Each method protects the training split through
:func:`~mmunseg.protect.dataset_copy.protect_dataset`, the call behind
``tools/protect.py`` (so a comparison measures exactly what a user's
command writes: the same budgets, prompts, quantisation and manifest); the
victim is then trained
with one recipe and seed on the clean split and on each protected copy,
optionally under a defense, and evaluated on the clean validation split.
Everything is resumable: finished protected images and finished victim
runs (their ``result.json``) are reused.

Layout under the work dir (the keys make a changed budget, method option,
generator, victim or schedule a new folder, never a stale reuse)::

    generator/<config stem>/                    the generator, if trained
    protected/<data key>/<copy key>/            tools/protect.py output
    victims/<victim key>/<data key>/<copy key>[+<defense>]/<run>_seed<k>/
"""
import hashlib
import json
import multiprocessing
import os
import os.path as osp
import sys
from dataclasses import dataclass, field
from typing import Optional

import torch
from mmengine.config import Config

from ..protect.dataset_copy import protect_dataset
from ..protect.manifest import exit_status
from ..utils import register_all_modules
from ..utils.process_pool import WatchedProcessPool, run_with_parent
from .protection_eval import (RunSpec, aggregate, class_label, metric_text,
                              run_victim, victim_config)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TRAIN_TOOL = osp.join(REPO, 'tools', 'train.py')


def run_tool(command):
    """Run one of the repository's tools with this interpreter, ending it if
    this process is killed; the repository is importable whether or not
    mmunseg is installed."""
    path = os.environ.get('PYTHONPATH')
    env = dict(
        os.environ, PYTHONPATH=REPO + (os.pathsep + path if path else ''))
    run_with_parent([sys.executable] + command, check=True, env=env)


@dataclass
class Training:
    """One victim training set: clean or a method's copy, maybe defended.

    Attributes:
        method (str): ``clean`` or a ``tools/protect.py --method`` name.
        defense (str, optional): A name of :data:`mmunseg.defenses.
            DEFENSE_NAMES` applied while training, or None.
        defense_options (dict): Its options.
    """
    method: str
    defense: Optional[str] = None
    defense_options: dict = field(default_factory=dict)

    @property
    def name(self):
        return self.method + (f'+{self.defense}' if self.defense else '')

    def folder(self, copies):
        """Its runs' folder name, given each method's copy folder."""
        data = self.method if self.method == 'clean' \
            else osp.basename(copies[self.method])
        if self.defense:
            data += f'+{self.defense}' + short_hash(self.defense_options)
        return data


def short_hash(value):
    """'' for an empty value, else ``_`` and 8 hex digits of its JSON."""
    if not value:
        return ''
    text = json.dumps(value, sort_keys=True, default=str)
    return '_' + hashlib.sha256(text.encode()).hexdigest()[:8]


def config_stem(path):
    return osp.splitext(osp.basename(path))[0]


def data_key(dataset_config, budget):
    """``camvid_obj8-bg2``: the dataset and the budget in grey levels."""
    return (f'{config_stem(dataset_config)}_obj{budget.object * 255:.4g}'
            f'-bg{budget.background * 255:.4g}')


def copy_key(method, options=None, checkpoint=None, prompt='union'):
    """``em`` or ``em_1a2b3c4d``: the method, its options, generator and
    prompt mode (other than the paper's union)."""
    keyed = dict(options or {})
    if checkpoint is not None:
        keyed['checkpoint'] = osp.abspath(checkpoint)
    if prompt != 'union':
        keyed['prompt'] = prompt
    return method + short_hash(keyed)


def victim_key(victim_config, iterations=None, cfg_options=None):
    """``<config stem>[_<N>it][_<hash of overrides>]``."""
    return (config_stem(victim_config) +
            (f'_{iterations}it' if iterations else '') +
            short_hash(cfg_options))


def train_generator(config, work_dir):
    """The last checkpoint of ``config``, trained (resumably) if missing.

    Args:
        config (str): A generator training config (``configs/unseg``).
        work_dir (str): Where ``tools/train.py`` writes.

    Returns:
        str: The checkpoint path.
    """
    cfg = Config.fromfile(config)
    loop = cfg.train_cfg
    last = f'epoch_{loop.max_epochs}.pth' if 'max_epochs' in loop \
        else f'iter_{loop.max_iters}.pth'
    checkpoint = osp.join(work_dir, last)
    if not osp.isfile(checkpoint):
        run_tool(
            [TRAIN_TOOL, config, '--work-dir', work_dir, '--resume', 'auto'])
    return checkpoint


def protect_split(method,
                  dataset_config,
                  out_dir,
                  budget,
                  checkpoint=None,
                  options=None,
                  batch_size=8,
                  device='cpu',
                  prompt='union'):
    """Protect the training split with one method (resumed where a copy
    with the same settings exists).

    Args:
        method (str): A ``tools/protect.py --method`` name.
        dataset_config (str): MMSeg / MMDet dataset config.
        out_dir (str): The copy's root.
        budget (Budget): The L-inf budgets of the two regions.
        checkpoint (str, optional): The generator, for ``unseg``.
        options (dict, optional): ``--method-options``.
        batch_size (int): Images per generation call.
        device (str): ``cpu`` or ``cuda``.
        prompt (str): ``tools/protect.py --prompt`` mode (``per-class``
            gives each class of a semantic dataset its own code).

    Returns:
        dict: The copy's ``summary.json`` (budget check, PSNR, SSIM and
        generation ``seconds`` per image).

    Raises:
        RuntimeError: Images failed or exceed their budget (the copy is
            not what the comparison needs).
    """
    summary = protect_dataset(
        dataset_config,
        method,
        out_dir,
        checkpoint=checkpoint if method == 'unseg' else None,
        method_options=options,
        prompt=prompt,
        budget=budget,
        batch_size=batch_size,
        device=device,
        resume=True)
    status = exit_status(summary)
    if status:
        raise RuntimeError(
            f'{out_dir}: protecting {dataset_config} with {method} left '
            f'{summary["counts"].get("failed", 0)} images failed and '
            f'{len(summary["over_budget"])} over budget (exit status {status}'
            ' of tools/protect.py; records in its manifest.jsonl)')
    return summary


def set_iterations(cfg, iterations):
    """Shorten (or lengthen) an iteration-based victim schedule in place:
    the loop, its last validation, checkpoints and the schedulers' end."""
    old = cfg.train_cfg.max_iters
    cfg.train_cfg.max_iters = iterations
    cfg.train_cfg.val_interval = iterations
    checkpoint = cfg.default_hooks.get('checkpoint')
    if checkpoint is not None:
        checkpoint.interval = iterations
    schedulers = cfg.param_scheduler
    for scheduler in schedulers if isinstance(schedulers,
                                              list) else [schedulers]:
        if scheduler.get('end', old) >= old:
            scheduler.end = iterations


def train_victims(victim, trainings, roots, runs_dir, seeds=(0, ), jobs=1):
    """Train the victim on each training set and seed (finished runs are
    reused).

    Args:
        victim (Config): The victim config (not modified).
        trainings (list[Training]): What to train on.
        roots (dict[str, str]): Protected copy of each method.
        runs_dir (str): Parent of the runs' folders
            (``victims/<victim key>/<data key>``).
        seeds (Sequence[int]): Seeds; each training set runs every seed.
        jobs (int): Runs trained at once, each in its own process with an
            equal share of the CPU's threads (1: one after another, here).

    Returns:
        list[dict]: One per run, in seed then training order: ``training``
        (:class:`Training`), ``seed`` and the run's result
        (:func:`run_victim`).
    """
    if jobs < 1:
        raise ValueError(f'jobs must be >= 1, got {jobs}')
    plan = []
    for seed in seeds:
        for training in trainings:
            clean = training.method == 'clean'
            spec = RunSpec('clean', 1.0, seed) if clean \
                else RunSpec('protected', 0.0, seed)
            cfg = victim_config(
                victim,
                spec,
                osp.join(runs_dir, training.folder(roots)),
                protected_root=None if clean else roots[training.method],
                defense=training.defense,
                defense_options=training.defense_options)
            plan.append((training, seed, cfg))
    if jobs == 1:
        results = [run_victim(cfg) for _, _, cfg in plan]
    else:
        threads = max(1, (os.cpu_count() or 1) // jobs)
        # Spawned, not forked: each run starts from a clean interpreter with
        # its own thread pool, as a run of tools/train.py would.
        # A killed comparison takes its trainings with it.
        with WatchedProcessPool(
                jobs,
                multiprocessing.get_context('spawn'),
                initializer=_start_victim_process,
                initargs=(threads, )) as pool:
            results = list(pool.map(run_victim, [cfg for _, _, cfg in plan]))
    return [
        dict(training=training, seed=seed, result=result)
        for (training, seed, _), result in zip(plan, results)
    ]


def _start_victim_process(threads):
    """Worker set-up for :func:`train_victims`: its threads and registries."""
    torch.set_num_threads(threads)
    register_all_modules(init_default_scope_to_mmunseg=False)


def comparison_table(runs, metric):
    """One row per training set: the metric's mean and std over seeds, its
    ratio to the undefended clean run, and per-class means.

    Args:
        runs (list[dict]): :func:`train_victims`'s output.
        metric (str): The metric to compare (see :func:`primary_metric`).

    Returns:
        list[dict]: The rows, in training order.
    """
    groups = {}
    for run in runs:
        groups.setdefault(run['training'].name, []).append(run)
    stats = aggregate(
        {
            name: [run['result'] for run in members]
            for name, members in groups.items()
        }, metric)
    rows = []
    for name, members in groups.items():
        training = members[0]['training']
        rows.append(
            dict(
                training=name,
                method=training.method,
                defense=training.defense,
                seeds=[r['seed'] for r in members],
                mean=stats[name]['mean'],
                std=stats[name]['std'],
                ratio_to_clean=stats[name]['ratio_to_clean'],
                per_class={
                    class_label(key): value
                    for key, value in stats[name]['per_class'].items()
                }))
    return rows


def markdown_table(metric, rows, protection, labels=None, classes=()):
    """The paper-style table: training data, defense, metric, ratio to
    clean, the budget each copy achieved, its quality and generation cost.

    Args:
        metric (str): The metric's name.
        rows (list[dict]): :func:`comparison_table`'s rows.
        protection (dict[str, dict]): Each method's ``summary.json``.
        labels (dict[str, str], optional): Display names of methods.
        classes (Sequence[str]): Per-class columns to add.

    Returns:
        str: Markdown, one line per row.
    """
    labels = labels or {}
    header = (f'| training data | defense | {metric} | ratio to clean | '
              'L-inf object / background | PSNR (dB) | s / image |' +
              ''.join(f' {c} |' for c in classes))
    lines = [header, '|' + '---|' * (header.count('|') - 1)]
    for row in rows:
        summary = protection.get(row['method'])
        if summary is None:
            budget = quality = cost = '-'
        else:
            budget = (f"{summary['linf_object']}/{summary['allowed_object']}"
                      f" / {summary['linf_background']}/"
                      f"{summary['allowed_background']}")
            quality = _fmt(summary.get('psnr'), '{:.1f}')
            cost = _fmt(summary.get('seconds'), '{:.3g}')
        value = '-' if row['mean'] is None else metric_text(row)
        ratio = '-' if row['ratio_to_clean'] is None \
            else f"{row['ratio_to_clean']:.2f}"
        line = (f"| {labels.get(row['method'], row['method'])} | "
                f"{row['defense'] or 'none'} | {value} | {ratio} | {budget} "
                f'| {quality} | {cost} |')
        line += ''.join(
            ' {} |'.format(_fmt(dict(mean=row['per_class'].get(c)), '{:.1f}'))
            for c in classes)
        lines.append(line)
    return '\n'.join(lines)


def _fmt(stats, pattern):
    if not stats or stats.get('mean') is None:
        return '-'
    return pattern.format(stats['mean'])
