"""Per-image records of a protect job (JSON Lines): what lets a killed job
resume where it stopped and what its final report is made of.

Each record is one JSON object on one line, keyed by ``file`` (the output
path relative to the output folder). A line counts only once its newline is
written, so a job killed mid-line leaves a partial last line that readers
ignore and the next :class:`ManifestWriter` removes. JSON cannot hold
infinity, so the PSNR of an image identical to its original is stored as
None.
"""
import json
import os
import os.path as osp
from collections import Counter
from typing import Dict, Iterable, List, Mapping, Optional, Union

import numpy as np

from mmunseg.datasets.protected_copy import load_manifest
from mmunseg.models.budget import Budget, budget_levels
from mmunseg.utils.atomic_files import PathLike, write_bytes_atomic

# How summary_line names the statuses other than 'protected', in its order.
_STATUS_WORDS = {
    'failed': 'failed',
    'skipped_empty_mask': 'empty mask',
    'copied': 'copied',
}

#: Exit status of a protect job that finished but left images unprotected
#: (``failed`` records: unreadable, missing, too large, ...).
EXIT_FAILED = 3
#: Exit status of a job whose images are all written but some exceed their
#: L-inf budget (lossy ``--format jpg``).
EXIT_OVER_BUDGET = 4
#: Both of the above.
EXIT_FAILED_AND_OVER_BUDGET = 5


def _to_builtin(obj):
    """Let records hold numpy scalars, e.g. a PSNR computed by numpy."""
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f'{type(obj).__name__} is not JSON serializable')


def _encode(record: dict) -> str:
    if not isinstance(record.get('file'), str):
        raise ValueError(f'a manifest record needs a str "file": {record!r}')
    try:
        return json.dumps(
            record, ensure_ascii=False, allow_nan=False,
            default=_to_builtin) + '\n'
    except ValueError as err:
        raise ValueError(f'record of {record["file"]}: {err} (store an '
                         'infinite PSNR as None)') from err


def _drop_partial_line(path: str) -> None:
    """Cut a file back to its last newline, the end of its last record."""
    with open(path, 'rb+') as f:
        end = f.seek(0, os.SEEK_END)
        pos = end
        while pos > 0:
            start = max(0, pos - 65536)
            f.seek(start)
            newline = f.read(pos - start).rfind(b'\n')
            if newline >= 0:
                pos = start + newline + 1
                break
            pos = start
        if pos < end:
            f.truncate(pos)


class ManifestWriter:
    """Append records to a JSONL manifest, one durable line per record.

    Every line is flushed and fsynced as it is written, so a killed job
    loses at most the record it was writing. An existing manifest is
    appended to (a resumed job); a partial last line left by a kill is
    removed first. A later record of the same ``file`` supersedes earlier
    ones. One writer per file: ranks write their own manifests and
    :func:`merge_manifests` joins them.

    Args:
        path (str | os.PathLike): Manifest file; missing parents are
            created.

    Example:
        >>> with ManifestWriter('out/manifest.rank0.jsonl') as writer:
        ...     writer.write(dict(file='a.png', status='protected'))
    """

    def __init__(self, path: PathLike) -> None:
        self.path = os.fspath(path)
        os.makedirs(osp.dirname(osp.abspath(self.path)), exist_ok=True)
        if osp.exists(self.path):
            _drop_partial_line(self.path)
        self._file = open(self.path, 'a', encoding='utf-8', newline='\n')

    def write(self, record: dict) -> None:
        """Append one record and make it durable.

        Args:
            record (dict): JSON-serializable record with a str ``file``;
                numpy scalars are converted, NaN and infinity are refused.
        """
        self._file.write(_encode(record))
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> 'ManifestWriter':
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def merge_manifests(paths: Iterable[PathLike],
                    out_path: PathLike) -> List[str]:
    """Join per-rank manifests into one, sorted by ``file``.

    The merged file is written atomically, so ``out_path`` may be one of
    ``paths``.

    Args:
        paths (Iterable[str | os.PathLike]): Manifests, in increasing
            precedence: a file recorded in several keeps the record of the
            last one.
        out_path (str | os.PathLike): Merged manifest.

    Returns:
        list[str]: Sorted ``file`` values recorded in more than one of
        ``paths``; these point at overlapping shards.
    """
    merged = {}
    seen = Counter()
    for path in paths:
        records = load_manifest(path)
        seen.update(records.keys())
        merged.update(records)
    data = ''.join(_encode(merged[file]) for file in sorted(merged))
    write_bytes_atomic(out_path, data.encode('utf-8'))
    return sorted(file for file, count in seen.items() if count > 1)


def _stats(values: List[float]) -> Optional[Dict[str, float]]:
    if not values:
        return None
    return dict(mean=float(np.mean(values)), min=float(np.min(values)))


def summarize(records: Union[Iterable[dict], Mapping[str, dict]],
              budget: Budget) -> dict:
    """Totals of a protect job.

    Args:
        records (Iterable[dict] | Mapping[str, dict]): Records, or the dict
            returned by :func:`load_manifest`.
        budget (Budget): The job's budgets.

    Returns:
        dict: With keys

        - ``total`` (int): Number of records.
        - ``counts`` (dict[str, int]): Records per ``status``.
        - ``failed_reasons`` (dict[str, int]): ``failed`` records per
          ``reason``, sorted (records without one are not counted).
        - ``linf_object``, ``linf_background`` (int | None): Largest
          achieved L-inf over all records, in grey levels.
        - ``allowed_object``, ``allowed_background`` (int): The budgets in
          grey levels, ``floor(255 * eps)``.
        - ``over_budget`` (list[str]): Sorted files whose L-inf exceeds the
          budget of its region.
        - ``budget_ok`` (bool): Whether ``over_budget`` is empty.
        - ``psnr``, ``ssim`` (dict | None): ``mean`` and ``min`` over
          protected records, None when there are none. PSNR of None
          (identical images) is left out.
        - ``seconds`` (dict | None): The same of the generation time per
          image (the method's share of its batch; reading, budgeting and
          writing excluded).
    """
    if isinstance(records, Mapping):
        records = records.values()
    records = list(records)
    allowed = dict(
        object=budget_levels(budget.object),
        background=budget_levels(budget.background))
    linf = dict(object=None, background=None)
    over_budget = set()
    for record in records:
        for region in linf:
            value = record.get(f'linf_{region}')
            if value is None:
                continue
            if linf[region] is None or value > linf[region]:
                linf[region] = value
            if value > allowed[region]:
                over_budget.add(record['file'])
    protected = [r for r in records if r.get('status') == 'protected']
    return dict(
        total=len(records),
        counts=dict(Counter(r.get('status') for r in records)),
        failed_reasons=dict(
            sorted(
                Counter(r['reason'] for r in records
                        if r.get('status') == 'failed'
                        and r.get('reason')).items())),
        linf_object=linf['object'],
        linf_background=linf['background'],
        allowed_object=allowed['object'],
        allowed_background=allowed['background'],
        over_budget=sorted(over_budget),
        budget_ok=not over_budget,
        psnr=_stats(
            [r['psnr'] for r in protected if r.get('psnr') is not None]),
        ssim=_stats(
            [r['ssim'] for r in protected if r.get('ssim') is not None]),
        seconds=_stats(
            [r['seconds'] for r in protected if r.get('seconds') is not None]))


def summary_line(summary: dict) -> str:
    """One human-readable line from :func:`summarize`'s result.

    Example:
        ``protected 120/123 images (2 failed: 1 too large, 1 unreadable
        image; 1 empty mask): L-inf object 8/8, background 2/2 grey levels;
        PSNR 38.1 dB (min 36.0), SSIM 0.962 (min 0.930)``

    Args:
        summary (dict): Result of :func:`summarize`.

    Returns:
        str: The line, without a trailing newline.
    """
    counts = summary['counts']
    others = [s for s in _STATUS_WORDS if counts.get(s)]
    others += sorted(
        (s for s in counts if s != 'protected' and s not in _STATUS_WORDS),
        key=str)
    line = (f"protected {counts.get('protected', 0)}/{summary['total']} "
            'images')
    if others:
        parts = []
        reasons = summary.get('failed_reasons') or {}
        for status in others:
            words = _STATUS_WORDS.get(status, str(status).replace('_', ' '))
            part = f'{counts[status]} {words}'
            if status == 'failed' and reasons:
                part += ': ' + ', '.join(f'{count} {reason.replace("_", " ")}'
                                         for reason, count in reasons.items())
            parts.append(part)
        # The reasons are a list of their own: set the statuses apart.
        line += ' ({})'.format(('; ' if reasons else ', ').join(parts))

    def levels(region):
        achieved = summary[f'linf_{region}']
        achieved = '-' if achieved is None else achieved
        return f"{region} {achieved}/{summary[f'allowed_{region}']}"

    line += (f": L-inf {levels('object')}, {levels('background')} "
             'grey levels')
    if not summary['budget_ok']:
        line += f" (OVER BUDGET in {len(summary['over_budget'])} images)"
    psnr, ssim = summary['psnr'], summary['ssim']
    line += '; PSNR ' + ('n/a' if psnr is None else
                         f"{psnr['mean']:.1f} dB (min {psnr['min']:.1f})")
    line += ', SSIM ' + ('n/a' if ssim is None else
                         f"{ssim['mean']:.3f} (min {ssim['min']:.3f})")
    return line


def exit_status(summary: dict) -> int:
    """The exit status a finished protect job reports.

    Args:
        summary (dict): Result of :func:`summarize` over the whole copy.

    Returns:
        int: 0 when every image is written within its budget,
        :data:`EXIT_FAILED` (3) when some images failed,
        :data:`EXIT_OVER_BUDGET` (4) when some exceed their budget and
        :data:`EXIT_FAILED_AND_OVER_BUDGET` (5) for both.
    """
    failed = bool(summary['counts'].get('failed'))
    over = not summary['budget_ok']
    if failed and over:
        return EXIT_FAILED_AND_OVER_BUDGET
    if failed:
        return EXIT_FAILED
    return EXIT_OVER_BUDGET if over else 0
