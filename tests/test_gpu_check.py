"""benchmarks/gpu_check.sh runs every step of the GPU check; --smoke runs
them reduced on the CPU and writes each step's JSON (issue 14, item 3)."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

from tests.utils import REPO_ROOT, data_path

SCRIPT = osp.join(REPO_ROOT, 'benchmarks', 'gpu_check.sh')
EXPECTED = [
    f'generation_speed_tiny_cpu_{precision}_b{batch}.json'
    for precision in ('fp32', 'bf16') for batch in (1, 2)
] + ['train_step_tiny_cpu.json', 'protect_throughput_tiny_cpu.json']


@pytest.mark.slow
def test_smoke_run_writes_every_json(tmp_path):
    data_path('camvid')
    data_path('coco128_objects')
    result = subprocess.run(
        ['bash', SCRIPT, '--smoke', '--out-dir',
         str(tmp_path)],
        env=dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS='1'),
        capture_output=True,
        text=True,
        timeout=900)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert sorted(os.listdir(tmp_path)) == sorted(EXPECTED)
    results = {name: json.load(open(tmp_path / name)) for name in EXPECTED}
    em = results['generation_speed_tiny_cpu_fp32_b1.json']
    assert em['seconds_per_image']['em'] > 0
    assert results['generation_speed_tiny_cpu_bf16_b2.json']['batch_size'] == 2
    assert 'generator' in results['train_step_tiny_cpu.json']['phases']
    throughput = results['protect_throughput_tiny_cpu.json']
    assert throughput['settings']['images'] == 2
    assert set(throughput['targets']) == {
        'end_to_end_w1', 'end_to_end_w2', 'io_ceiling_scaling'
    }


def test_a_failing_step_fails_the_script(tmp_path):
    """A step that fails stops the script with a non-zero status."""
    result = subprocess.run(
        ['bash', SCRIPT, '--smoke', '--out-dir',
         str(tmp_path)],
        env=dict(os.environ, PYTHON='false'),
        capture_output=True,
        text=True,
        timeout=60)
    assert result.returncode != 0
    assert os.listdir(tmp_path) == []
    result = subprocess.run(['bash', SCRIPT, '--bogus'],
                            capture_output=True,
                            text=True,
                            timeout=60)
    assert result.returncode == 2 and 'usage' in result.stderr
