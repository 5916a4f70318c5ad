import json
import os

import numpy as np
import pytest

from mmunseg.models.budget import Budget
from mmunseg.protect.manifest import (ManifestWriter, load_manifest,
                                      merge_manifests, summarize, summary_line)

EPS_OBJECT = 8 / 255
EPS_BACKGROUND = 2 / 255


def _record(file, status='protected', linf=(8, 2), psnr=38.0, ssim=0.96):
    protected = status == 'protected'
    return dict(
        file=file,
        source=f'src/{file}',
        status=status,
        linf_object=linf[0] if protected else None,
        linf_background=linf[1] if protected else None,
        psnr=psnr if protected else None,
        ssim=ssim if protected else None,
        error='boom' if status == 'failed' else None,
        eps_object=EPS_OBJECT,
        eps_background=EPS_BACKGROUND)


def _write(path, records):
    with ManifestWriter(path) as writer:
        for record in records:
            writer.write(record)


def test_write_and_load(tmp_path):
    path = tmp_path / 'logs' / 'manifest.jsonl'
    records = [_record('im/a.png'), _record('im/b.png', 'failed')]
    _write(path, records)
    lines = path.read_text(encoding='utf-8').splitlines()
    assert [json.loads(line) for line in lines] == records
    assert load_manifest(path) == {r['file']: r for r in records}


def test_numpy_values_and_infinity(tmp_path):
    path = tmp_path / 'manifest.jsonl'
    with ManifestWriter(path) as writer:
        writer.write(
            _record(
                'a.png',
                linf=(np.int64(3), np.uint8(1)),
                psnr=np.float32(40.5)))
        with pytest.raises(ValueError, match='b.png.*None'):
            writer.write(_record('b.png', psnr=float('inf')))
        with pytest.raises(ValueError, match='str "file"'):
            writer.write(dict(status='protected'))
    record = load_manifest(path)['a.png']
    assert (record['linf_object'], record['psnr']) == (3, 40.5)
    assert list(load_manifest(path)) == ['a.png']


def test_resume_after_kill(tmp_path):
    path = tmp_path / 'manifest.jsonl'
    _write(path, [_record('a.png'), _record('b.png')])
    # A kill in the middle of the second line.
    data = path.read_bytes()
    path.write_bytes(data[:-10])
    assert list(load_manifest(path)) == ['a.png']
    # Resuming drops the partial line before appending; a retried image
    # supersedes its earlier record.
    _write(path, [_record('a.png', 'failed'), _record('b.png')])
    manifest = load_manifest(path)
    assert list(manifest) == ['a.png', 'b.png']
    assert manifest['a.png']['status'] == 'failed'
    assert len(path.read_text(encoding='utf-8').splitlines()) == 3
    # Killed before the first newline: nothing is committed.
    path.write_bytes(data[:5])
    assert load_manifest(path) == {}
    _write(path, [_record('c.png')])
    assert list(load_manifest(path)) == ['c.png']


def test_corrupt_line_in_the_middle(tmp_path):
    path = tmp_path / 'manifest.jsonl'
    _write(path, [_record(f'{i}.png') for i in range(3)])
    lines = path.read_text(encoding='utf-8').splitlines(keepends=True)
    lines[1] = lines[1][:20] + '\n'
    path.write_text(''.join(lines) + '\n', encoding='utf-8')
    with pytest.raises(ValueError, match=r'manifest.jsonl:2: corrupt'):
        load_manifest(path)
    path.write_text('[1, 2]\n', encoding='utf-8')
    with pytest.raises(ValueError, match=r'manifest.jsonl:1: .*"file"'):
        load_manifest(path)


def test_merge_sorts_and_reports_duplicates(tmp_path):
    rank0, rank1 = tmp_path / 'rank0.jsonl', tmp_path / 'rank1.jsonl'
    _write(rank0, [_record('c.png'), _record('a.png', 'failed')])
    _write(rank1, [_record('b.png'), _record('a.png')])
    out = tmp_path / 'manifest.jsonl'
    assert merge_manifests([rank0, rank1], out) == ['a.png']
    lines = out.read_text(encoding='utf-8').splitlines()
    assert [json.loads(line)['file']
            for line in lines] == ['a.png', 'b.png', 'c.png']
    assert load_manifest(out)['a.png']['status'] == 'protected'
    # Re-merging into one of the inputs is safe, and retries within one
    # manifest are not duplicates.
    _write(rank0, [_record('c.png', 'failed')])
    assert merge_manifests([rank0], rank0) == []
    assert load_manifest(rank0)['c.png']['status'] == 'failed'
    assert sorted(os.listdir(tmp_path)) == [
        'manifest.jsonl', 'rank0.jsonl', 'rank1.jsonl'
    ]


def test_summary():
    records = [
        _record('a.png', linf=(8, 2), psnr=38.0, ssim=0.97),
        _record('b.png', linf=(7, 1), psnr=36.0, ssim=0.93),
        _record('c.png', linf=(6, 0), psnr=None, ssim=1.0),
        _record('d.png', 'failed'),
        _record('e.png', 'failed'),
        _record('f.png', 'skipped_empty_mask'),
    ]
    summary = summarize(records, Budget(EPS_OBJECT, EPS_BACKGROUND))
    assert summary['total'] == 6
    assert summary['counts'] == dict(
        protected=3, failed=2, skipped_empty_mask=1)
    assert (summary['linf_object'], summary['linf_background']) == (8, 2)
    assert (summary['allowed_object'], summary['allowed_background']) == (8, 2)
    assert summary['budget_ok'] and summary['over_budget'] == []
    assert summary['psnr'] == dict(mean=37.0, min=36.0)
    assert summary['ssim'] == pytest.approx(
        dict(mean=0.9667, min=0.93), abs=1e-4)
    assert summary_line(summary) == (
        'protected 3/6 images (2 failed, 1 empty mask): L-inf object 8/8, '
        'background 2/2 grey levels; PSNR 37.0 dB (min 36.0), '
        'SSIM 0.967 (min 0.930)')


def test_summary_over_budget_and_empty():
    records = {
        'a.png': _record('a.png', linf=(8, 3)),
        'b.png': _record('b.png', 'copied'),
        'c.png': _record('c.png', 'unreadable'),
    }
    summary = summarize(records, Budget(EPS_OBJECT, 2.5 / 255))
    assert not summary['budget_ok'] and summary['over_budget'] == ['a.png']
    assert summary_line(summary) == (
        'protected 1/3 images (1 copied, 1 unreadable): L-inf object 8/8, '
        'background 3/2 grey levels (OVER BUDGET in 1 images); '
        'PSNR 38.0 dB (min 38.0), SSIM 0.960 (min 0.960)')
    empty = summarize([], Budget(EPS_OBJECT, EPS_BACKGROUND))
    assert empty['budget_ok'] and empty['total'] == 0
    assert summary_line(empty) == (
        'protected 0/0 images: L-inf object -/8, background -/2 grey levels; '
        'PSNR n/a, SSIM n/a')
