import numpy as np
import pytest

from mmunseg.models.budget import Budget, budget_levels, quantize_within_budget
from mmunseg.protect.quality import (BudgetViolation, check_budget,
                                     linf_by_region, psnr, ssim)


def _image(seed, shape=(24, 32, 3)):
    return np.random.default_rng(seed).integers(0, 256, shape, np.uint8)


def _object_mask(shape=(24, 32)):
    mask = np.zeros(shape, bool)
    mask[4:16, 8:24] = True
    return mask


def test_budget_levels():
    assert budget_levels(8 / 255) == 8
    assert budget_levels(2 / 255) == 2
    assert budget_levels(2.5 / 255) == 2
    assert budget_levels(0) == 0
    assert budget_levels(1) == 255
    # In budget maps built in float32, as models.budget.budget_map does,
    # 255 * eps can fall a little below k (k = 24 here).
    eps_background = np.float32(8 / 255)
    for k in range(256):
        eps = eps_background + (np.float32(k / 255) - eps_background)
        assert budget_levels(float(eps)) == k


@pytest.mark.parametrize('seed', range(4))
@pytest.mark.parametrize('eps_object, eps_background', [(8 / 255, 2 / 255),
                                                        (2.5 / 255, 1.5 / 255),
                                                        (16 / 255, 0)])
def test_quantized_image_keeps_budget(seed, eps_object, eps_background):
    rng = np.random.default_rng(seed)
    original = _image(seed)
    # Include saturated pixels so clamping at 0 and 255 is exercised.
    original[0] = 0
    original[-1] = 255
    mask = _object_mask()
    budget = np.where(mask, eps_object, eps_background).astype(np.float32)
    # Noise at and beyond the budget edge: sign * budget plus a bit.
    delta = rng.uniform(-1.2, 1.2, original.shape) * budget[..., None]
    protected_float = (original + 255 * delta).astype(np.float32)
    protected = quantize_within_budget(original, protected_float, budget)
    assert protected.dtype == np.uint8 and protected.shape == original.shape
    linf = check_budget(original, protected, mask,
                        Budget(eps_object, eps_background))
    assert linf['object'] == budget_levels(eps_object)
    assert linf['background'] == budget_levels(eps_background)
    # Within budget, the result is plain rounding (clamped to [0, 255]).
    allowed = np.floor(255 * budget.astype(np.float64) + 1e-3)[..., None]
    rounded = np.clip(np.rint(protected_float), 0, 255)
    inside = np.abs(rounded - original) <= allowed
    np.testing.assert_array_equal(protected[inside], rounded[inside])


def test_quantize_whole_level_budget_is_plain_rounding():
    original = _image(0)
    budget = np.full(original.shape[:2], 8 / 255, np.float32)
    delta = np.random.default_rng(1).uniform(-8, 8, original.shape)
    protected_float = (original + delta).astype(np.float32)
    expected = np.clip(np.rint(protected_float), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(
        quantize_within_budget(original, protected_float, budget), expected)


def test_quantize_rejects_bad_input():
    original = _image(0)
    budget = np.full(original.shape[:2], 8 / 255, np.float32)
    protected = original.astype(np.float32)
    with pytest.raises(ValueError, match='budget map'):
        quantize_within_budget(original, protected, budget[1:])
    with pytest.raises(ValueError, match='budgets must be in'):
        quantize_within_budget(original, protected, budget - 1)
    protected[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match='NaN'):
        quantize_within_budget(original, protected, budget)


def test_linf_by_region_and_empty_regions():
    original = _image(0)
    protected = original.copy()
    mask = _object_mask()
    protected[5, 9, 1] = original[5, 9, 1] ^ 4  # 4 levels inside
    background = np.argwhere(~mask)[0]
    protected[tuple(background)] = original[tuple(background)] ^ 1
    assert linf_by_region(original, protected, mask) == dict(
        object=4, background=1)
    full = np.ones(mask.shape, bool)
    assert linf_by_region(original, protected, full) == dict(
        object=4, background=None)
    assert linf_by_region(original, original, ~full) == dict(
        object=None, background=0)
    with pytest.raises(ValueError, match='object mask'):
        linf_by_region(original, protected, mask[1:])


def test_check_budget_names_the_region():
    original = np.full((4, 4, 3), 100, np.uint8)
    mask = np.zeros((4, 4), bool)
    mask[:2] = True
    protected = original.copy()
    protected[0, 0] = 108
    protected[3, 3] = 97
    assert check_budget(original, protected, mask, Budget(8 / 255,
                                                          3 / 255)) == dict(
                                                              object=8,
                                                              background=3)
    with pytest.raises(BudgetViolation) as info:
        check_budget(original, protected, mask, Budget(8 / 255, 2.5 / 255))
    message = str(info.value)
    assert 'background L-inf is 3 grey levels' in message
    assert '2 allowed' in message and 'object' not in message
    with pytest.raises(BudgetViolation, match='object.*background'):
        check_budget(original, protected, mask, Budget(7 / 255, 2 / 255))
    assert issubclass(BudgetViolation, RuntimeError)


def test_psnr():
    a = np.full((8, 8, 3), 100, np.uint8)
    assert psnr(a, a) == float('inf')
    b = a + np.uint8(5)
    assert psnr(a, b) == pytest.approx(10 * np.log10(255**2 / 25))
    with pytest.raises(ValueError, match='same shape'):
        psnr(a, a[1:])


def _gaussian_window():
    x = np.arange(-5, 6)
    g = np.exp(-x**2 / (2 * 1.5**2))
    window = np.outer(g, g)
    return window / window.sum()


def _ssim_reference(a, b):
    """Wang et al. 2004 by brute force over the windows inside the image,
    which are the ones scikit-image averages."""
    window = _gaussian_window()
    height, width, channels = a.shape
    values = []
    for c in range(channels):
        for i in range(5, height - 5):
            for j in range(5, width - 5):
                x = a[i - 5:i + 6, j - 5:j + 6, c].astype(np.float64)
                y = b[i - 5:i + 6, j - 5:j + 6, c].astype(np.float64)
                mx, my = (window * x).sum(), (window * y).sum()
                vx = (window * (x - mx)**2).sum()
                vy = (window * (y - my)**2).sum()
                cxy = (window * (x - mx) * (y - my)).sum()
                c1, c2 = (0.01 * 255)**2, (0.03 * 255)**2
                values.append((2 * mx * my + c1) * (2 * cxy + c2) /
                              ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    return np.mean(values)


def test_ssim_matches_definition():
    a = _image(0, (20, 22, 3))
    noise = np.random.default_rng(1).integers(-20, 21, a.shape)
    b = np.clip(a.astype(int) + noise, 0, 255).astype(np.uint8)
    assert ssim(a, b) == pytest.approx(_ssim_reference(a, b), abs=1e-9)


def test_ssim_properties():
    rows, cols = np.mgrid[:64, :48]
    a = np.dstack([rows * 3, cols * 5,
                   np.full_like(rows, 90)]).astype(np.uint8)
    assert ssim(a, a) == 1.0
    rng = np.random.default_rng(0)
    weak = np.clip(a + rng.integers(-2, 3, a.shape), 0, 255).astype(np.uint8)
    strong = np.clip(a + rng.integers(-40, 41, a.shape), 0,
                     255).astype(np.uint8)
    assert 1 > ssim(a, weak) > ssim(a, strong)
    assert ssim(a, strong) == pytest.approx(ssim(strong, a), abs=1e-12)
    # A constant shift only changes the luminance term, which for constant
    # images of 100 and 110 is (2 * 100 * 110 + C1) / (100^2 + 110^2 + C1).
    flat = np.full((16, 16, 3), 100, np.uint8)
    c1 = (0.01 * 255)**2
    expected = (2 * 100 * 110 + c1) / (100**2 + 110**2 + c1)
    assert ssim(flat, flat + np.uint8(10)) == pytest.approx(expected)
    assert 0.99 < expected < 1
    # Images smaller than the window are averaged without cropping.
    assert ssim(flat[:6, :6],
                flat[:6, :6] + np.uint8(10)) == pytest.approx(expected)
