"""Protection with a generator that paints object codes, DC-free."""
import numpy as np
import pytest

from mmunseg.protect.methods import Prompt, UnSegGenerator
from tests.utils import save_micro_generator


@pytest.fixture(scope='module')
def coded(tmp_path_factory):
    path = tmp_path_factory.mktemp('gen') / 'coded.pth'
    save_micro_generator(
        path, num_codes=4, texture_period=4, dc_free=True, token_slice='fixed')
    return UnSegGenerator(str(path))


def image_and_masks():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)
    road = np.zeros((90, 120), bool)
    road[50:] = True
    car = np.zeros((90, 120), bool)
    car[10:40, 20:70] = True
    return image, road, car


def region_mean(noise, mask):
    return noise[mask].mean(0)


def test_each_class_gets_its_code_and_no_mean(coded):
    image, road, car = image_and_masks()
    union = road | car
    whole, on_road, on_car, road_again = coded.generate([image] * 4, [
        Prompt(mask=union),
        Prompt(mask=road, class_id=3),
        Prompt(mask=car, class_id=8),
        Prompt(mask=road, class_id=7),
    ])
    for noise in (whole, on_road, on_car, road_again):
        assert noise.shape == (90, 120, 3)
        assert np.abs(noise).max() <= 1 + 1e-6
    # DC-free: zero mean per channel inside the prompt's mask and outside.
    for noise, mask in ((whole, union), (on_road, road), (on_car, car)):
        assert np.abs(region_mean(noise, mask)).max() < 1e-4
        assert np.abs(region_mean(noise, ~mask)).max() < 1e-4
        assert noise[mask].std(0).min() > 1e-3
    # Class 3 and class 7 share code 4 (1 + id % 4); class 8 has code 1, as
    # a whole-image prompt's objects.
    assert np.allclose(on_road[road], road_again[road], atol=1e-5)
    assert not np.allclose(on_road[road], on_car[road], atol=1e-2)
    # The whole-image prompt paints the background with code 0.
    background_only = coded.generate([image], [Prompt(mask=~union)])[0]
    assert not np.allclose(whole[~union], background_only[~union], atol=1e-2)
