import json
import math
import os
import os.path as osp
import subprocess
import sys

from tests.utils import REPO_ROOT, data_path


def test_learnability_benchmark_trains_the_surrogate_and_writes_its_table(
        tmp_path):
    data_path('coco128_objects')
    out = tmp_path / 'learnability.json'
    result = subprocess.run([
        sys.executable,
        osp.join(REPO_ROOT, 'benchmarks',
                 'surrogate_learnability.py'), '--steps', '3', '--window', '2',
        '--variants', 'recipe', 'no crafting augmentation', '--work-dir',
        str(tmp_path / 'work'), '--out',
        str(out)
    ],
                            env=dict(os.environ, OMP_NUM_THREADS='1'),
                            capture_output=True,
                            text=True,
                            timeout=600)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert '| recipe |' in result.stdout
    record = json.load(open(out))
    assert record['chance'] == math.log(17)
    assert [row['variant'] for row in record['rows']
            ] == ['recipe', 'no crafting augmentation']
    for row in record['rows']:
        # Windows of 2 steps over 3: two means, each a finite loss.
        assert len(row['window_means']) == 2
        assert all(0 < loss < 10 for loss in row['window_means'])
    assert record['rows'][1]['overrides'] == {'model.augmentation': None}
