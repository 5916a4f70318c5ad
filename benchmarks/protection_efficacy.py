"""End to end: does UnSeg protect CamVid against a victim trained from scratch?

1. Train the tiny UnSeg generator on coco128_objects (or reuse one:
   ``--generator CKPT``).
2. Protect CamVid train with it, and with two controls at the same budget:
   uniform random noise and a constant brightening (what a collapsed
   generator does; a victim hurt by it is hurt by a photometric shift, not
   by an unlearnable shortcut).
3. Train the victim on clean and on each protected copy with the same recipe
   and seed; evaluate on clean CamVid val.
4. Print the table and the verdict on the targets (protected at most 30% of
   clean, uniform noise within 10% of clean); write JSON and markdown under
   ``benchmarks/results/``.

    python benchmarks/protection_efficacy.py [--generator CKPT]
        [--methods unseg uniform shift] [--victim CONFIG] [--seeds 1]
        [--work-dir work_dirs/protection_benchmarks] [--out FILE]

It is ``methods_table.py`` with these methods: every option of that script
applies, and the work dir's runs are reused the same way. On a GPU,
``--generator-config configs/unseg/unseg_sam_b_hqseg.py --device cuda``
trains (or ``--generator`` reuses) the full-size generator.
"""
from methods_table import build_parser, run

#: Issue 4's targets: ratios of the victim's metric to the clean one.
PROTECTED_AT_MOST = 0.30
CONTROL_AT_LEAST = 0.90


def verdict(rows):
    """Lines saying whether each target is met."""
    ratios = {
        r['method']: r['ratio_to_clean']
        for r in rows if r['defense'] is None
    }
    lines = []
    if ratios.get('unseg') is not None:
        ok = ratios['unseg'] <= PROTECTED_AT_MOST
        lines.append(f"UnSeg: {ratios['unseg']:.2f} of clean "
                     f"(target <= {PROTECTED_AT_MOST:.2f}): "
                     f"{'met' if ok else 'MISSED'}")
    if ratios.get('uniform') is not None:
        ok = ratios['uniform'] >= CONTROL_AT_LEAST
        lines.append(f"uniform noise: {ratios['uniform']:.2f} of clean "
                     f"(target >= {CONTROL_AT_LEAST:.2f}): "
                     f"{'met' if ok else 'MISSED'}")
    return lines


def main():
    parser = build_parser(
        __doc__.split('\n')[0],
        methods=('unseg', 'uniform', 'shift'),
        out='protection_efficacy.json')
    record = run(parser.parse_args())
    for line in verdict(record['rows']):
        print(line)


if __name__ == '__main__':
    main()
