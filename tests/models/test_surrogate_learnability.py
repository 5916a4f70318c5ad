import json
import math

from tests.utils import data_path, run_benchmark


def test_learnability_benchmark_trains_the_surrogate_and_writes_its_table(
        tmp_path):
    data_path('coco128_objects')
    out = tmp_path / 'learnability.json'
    result = run_benchmark('surrogate_learnability.py', '--steps', 3,
                           '--window', 2, '--variants', 'recipe',
                           'no crafting augmentation', '--work-dir',
                           tmp_path / 'work', '--out', out)
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
