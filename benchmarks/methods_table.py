"""Every protection on one dataset and victim, in one table.

Protects the training split with each method at the same budget (through
``protect_dataset``, the call behind ``tools/protect.py``), trains the
victim on clean data and on each copy with the same recipe and seed(s),
evaluates on the clean validation split and prints the paper-style table
(Tables 1-3): the metric, its ratio to clean, the budget each copy
achieved, PSNR and generation seconds per image. ``--defenses`` adds the
robustness table (Table 4): the victim trained on the ``--defended``
method's copy under each defense.

    python benchmarks/methods_table.py [--dataset CONFIG] [--victim CONFIG]
        [--methods uniform synper ar cuda em unseg] [--generator CKPT]
        [--method-options em:rounds=2 ...] [--defenses gaussian jpeg ...]
        [--defended unseg] [--defend-clean] [--iterations N] [--seeds 1]
        [--first-seed 0] [--jobs 1] [--work-dir DIR] [--out FILE]

Resumable: protected images and finished victim runs under ``--work-dir``
are reused, so the command can be re-run after an interruption, with more
methods or, through ``--first-seed``, with more seeds. ``--jobs 2`` trains
two victims at once (each on half the CPU threads); runs another command is
training in the same work dir are awaited, not trained twice. ``unseg``
needs ``--generator`` or trains ``--generator-config`` first. On a GPU
pass ``--device cuda`` and the paper-size configs
(``configs/eval/*_voc12aug-512x512.py`` with
``configs/_base_/datasets/voc12aug.py``, the generator of
``configs/unseg/unseg_sam_b_hqseg.py``).
"""
import argparse
import ast
import json
import os
import os.path as osp
import platform
import sys
import time

from mmengine.config import Config, DictAction

from mmunseg.defenses import DEFENSE_NAMES
from mmunseg.evaluation import method_comparison as comparison
from mmunseg.evaluation.protection_eval import primary_metric
from mmunseg.models.budget import BUDGET_RULE, Budget, format_eps
from mmunseg.protect.options import parse_budget
from mmunseg.utils import register_all_modules
from mmunseg.utils.atomic_files import write_bytes_atomic

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
LABELS = {
    'clean': 'clean',
    'uniform': 'uniform random noise',
    'shift': 'constant shift',
    'synper': 'SynPer',
    'ar': 'AR',
    'cuda': 'CUDA',
    'em': 'EM (sample-wise)',
    'unseg': 'UnSeg',
}
#: Columns of the per-class part of the CamVid table.
CLASSES = ('Sky', 'Building', 'Road', 'Tree', 'Car')


def at_least_one(text):
    """A whole number >= 1 (checked here, before any copy is made)."""
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError(f'must be >= 1, got {number}')
    return number


def named_option(text):
    """``NAME:KEY=VALUE`` (an option of one method or defense) -> (name,
    key, value); the value is a Python literal or else a string."""
    name, sep, option = text.partition(':')
    if not sep or '=' not in option:
        raise argparse.ArgumentTypeError(
            f'{text!r} is not NAME:KEY=VALUE (e.g. em:rounds=2)')
    key, value = option.split('=', 1)
    try:
        value = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        pass  # a plain string
    return name, key, value


def build_parser(description, methods, out):
    parser = argparse.ArgumentParser(
        description=description, epilog=f'budgets: {BUDGET_RULE}.')
    parser.add_argument(
        '--dataset',
        default=osp.join(REPO, 'configs', '_base_', 'datasets', 'camvid.py'),
        help='dataset config whose training split is protected')
    parser.add_argument(
        '--victim',
        default=osp.join(
            REPO, 'configs', 'eval',
            'fcn-unet-s5-d16-c16-mfb-pmd_1xb8-1200it_camvid-240x176.py'),
        help='victim config trained on each copy (default: the CamVid UNet '
        'with median-frequency class weights and photometric distortion, '
        'the victim a constant colour cast does not fool)')
    parser.add_argument(
        '--methods',
        nargs='*',
        default=list(methods),
        help='tools/protect.py --method names, one undefended row each; '
        'with --defenses, none at all trains only the clean and defended '
        'rows')
    parser.add_argument(
        '--method-options',
        nargs='+',
        type=named_option,
        default=[],
        metavar='METHOD:KEY=VALUE',
        help='constructor options of one method, e.g. em:rounds=2')
    parser.add_argument(
        '--generator', help='trained generator checkpoint for unseg')
    parser.add_argument(
        '--prompt',
        default='union',
        help='tools/protect.py --prompt of every method (per-class gives '
        'each class of a semantic dataset its own code)')
    parser.add_argument(
        '--generator-config',
        default=osp.join(
            REPO, 'configs', 'unseg',
            'unseg-codebook_gratings-p4_unet-c16_coco128-objects.py'),
        help='trained first when unseg runs without --generator')
    parser.add_argument(
        '--defenses',
        nargs='*',
        default=[],
        choices=DEFENSE_NAMES,
        help='robustness table: train on the --defended copy under each')
    parser.add_argument(
        '--defense-options',
        nargs='+',
        type=named_option,
        default=[],
        metavar='DEFENSE:KEY=VALUE',
        help='options of one defense, e.g. jpeg:quality=10')
    parser.add_argument('--defended', default='unseg')
    parser.add_argument(
        '--defend-clean',
        action='store_true',
        help='also train on clean data under each defense (its own cost)')
    parser.add_argument(
        '--iterations',
        type=int,
        help='victim iterations instead of the config\'s (a shorter, '
        'cheaper table; say so when reporting it)')
    parser.add_argument('--metric', help='default: mIoU, else COCO AP')
    parser.add_argument(
        '--eps-object',
        type=parse_budget,
        default='8/255',
        metavar='BUDGET',
        help='L-inf budget on the objects, as tools/protect.py reads it: '
        '8 (grey levels) or 8/255, 5.5/255 (fractions of the range)')
    parser.add_argument(
        '--eps-background',
        type=parse_budget,
        default='2/255',
        metavar='BUDGET',
        help='L-inf budget off the objects, written as --eps-object')
    parser.add_argument('--seeds', type=int, default=1)
    parser.add_argument(
        '--first-seed',
        type=int,
        default=0,
        help='the seeds are FIRST_SEED .. FIRST_SEED + SEEDS - 1 (a second '
        'seed can join finished ones in the same work dir)')
    parser.add_argument(
        '--jobs',
        type=at_least_one,
        default=1,
        help='victim runs trained at once, each in its own process with an '
        'equal share of the CPU threads')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument(
        '--work-dir',
        default=osp.join(REPO, 'work_dirs', 'protection_benchmarks'),
        help='shared with protection_efficacy.py: runs of the same method, '
        'budget and victim are trained once')
    parser.add_argument(
        '--out',
        default=osp.join(REPO, 'benchmarks', 'results', out),
        help='JSON record; the markdown table goes next to it (.md)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='overrides of the victim config')
    return parser


def label(method, options):
    """Display name of a method, with its options if any."""
    text = LABELS.get(method, method)
    if options:
        text += ' ({})'.format(', '.join(f'{k}={v}'
                                         for k, v in options.items()))
    return text


def grouped(options):
    by_name = {}
    for name, key, value in options:
        by_name.setdefault(name, {})[key] = value
    return by_name


def run(args):
    """Protect, train, tabulate; the JSON record (also written)."""
    register_all_modules(init_default_scope_to_mmunseg=False)
    started = time.time()
    methods = list(dict.fromkeys(args.methods))
    protected = list(methods)
    if args.defenses and args.defended not in protected:
        protected.append(args.defended)
    if not protected:
        raise SystemExit('nothing to compare: give --methods or --defenses')
    checkpoint = args.generator
    if 'unseg' in protected and checkpoint is None:
        checkpoint = comparison.train_generator(
            args.generator_config,
            osp.join(args.work_dir, 'generator',
                     comparison.config_stem(args.generator_config)))
    options = grouped(args.method_options)
    budget = Budget(args.eps_object, args.eps_background)
    data = comparison.data_key(args.dataset, budget)
    roots, protection = {}, {}
    for name in protected:
        roots[name] = osp.join(
            args.work_dir, 'protected', data,
            comparison.copy_key(name, options.get(name),
                                checkpoint if name == 'unseg' else None,
                                args.prompt))
        protection[name] = comparison.protect_split(
            name,
            args.dataset,
            roots[name],
            budget,
            checkpoint=checkpoint,
            options=options.get(name),
            batch_size=args.batch_size,
            device=args.device,
            prompt=args.prompt)

    victim = Config.fromfile(args.victim)
    if args.cfg_options:
        victim.merge_from_dict(args.cfg_options)
    if args.iterations:
        comparison.set_iterations(victim, args.iterations)
    defense_options = grouped(args.defense_options)
    trainings = [comparison.Training(m) for m in ['clean'] + methods]
    for defense in args.defenses:
        opts = defense_options.get(defense, {})
        if args.defend_clean:
            trainings.append(comparison.Training('clean', defense, opts))
        trainings.append(comparison.Training(args.defended, defense, opts))
    runs_dir = osp.join(
        args.work_dir, 'victims',
        comparison.victim_key(args.victim, args.iterations, args.cfg_options),
        data)
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    runs = comparison.train_victims(victim, trainings, roots, runs_dir, seeds,
                                    args.jobs)
    metric = args.metric or primary_metric(victim,
                                           runs[0]['result']['metrics'])
    rows = comparison.comparison_table(runs, metric)
    classes = [c for c in CLASSES if c in rows[0]['per_class']]
    labels = {name: label(name, options.get(name)) for name in protected}
    table = comparison.markdown_table(metric, rows, protection, labels,
                                      classes)
    iterations = victim.train_cfg.get('max_iters')
    caption = (f'Victim `{osp.relpath(args.victim, REPO)}` '
               f'({iterations} iterations, seed(s) '
               f'{", ".join(map(str, seeds))}) on '
               f'`{osp.relpath(args.dataset, REPO)}`; budget object '
               f'{format_eps(budget.object)}, background '
               f'{format_eps(budget.background)}; evaluated on clean '
               'validation images.')
    print('\n' + caption + '\n\n' + table + '\n')
    record = dict(
        command=' '.join([osp.relpath(sys.argv[0], REPO)] + sys.argv[1:]),
        machine=dict(
            platform=platform.platform(),
            processor=platform.processor(),
            cpus=os.cpu_count(),
            device=args.device),
        generator=checkpoint,
        dataset=osp.relpath(args.dataset, REPO),
        victim=osp.relpath(args.victim, REPO),
        iterations=iterations,
        metric=metric,
        budget=budget.to_dict(),
        protection=protection,
        rows=rows,
        runs=[
            dict(
                training=r['training'].name,
                seed=r['seed'],
                metrics=r['result']['metrics']) for r in runs
        ],
        caption=caption,
        table=table,
        wall_seconds=round(time.time() - started, 1))
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    write_bytes_atomic(args.out, json.dumps(record, indent=1).encode())
    write_bytes_atomic(
        osp.splitext(args.out)[0] + '.md',
        (caption + '\n\n' + table + '\n').encode())
    print(f'wrote {args.out}')
    return record


def main():
    parser = build_parser(
        __doc__.split('\n')[0],
        methods=('uniform', 'synper', 'ar', 'cuda', 'em', 'unseg'),
        out='methods_table.json')
    run(parser.parse_args())


if __name__ == '__main__':
    main()
