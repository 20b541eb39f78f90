"""Seeded initialisers: reproducible, the right variance and bounds, the right fans."""
import math

import numpy as np
import pytest

from scratchface.nn import init


def test_compute_fans_for_each_layout():
    assert init.compute_fans((10, 7)) == (10, 7)                       # dense (D, M)
    assert init.compute_fans((64, 3, 7, 7)) == (3 * 49, 64 * 49)       # conv (F, C, KH, KW)
    assert init.compute_fans((5, 5, 16, 3, 9, 9)) == (3 * 81, 16 * 81)  # locally connected


@pytest.mark.parametrize("fn", [init.he_normal, init.he_uniform, init.xavier_normal, init.xavier_uniform])
def test_same_seed_same_weights_and_float32(fn):
    a = fn((8, 4, 3, 3), np.random.default_rng(3))
    b = fn((8, 4, 3, 3), 3)
    c = fn((8, 4, 3, 3), 4)
    assert a.dtype == np.float32 and a.shape == (8, 4, 3, 3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert fn((3, 2), 0, dtype=np.float64).dtype == np.float64


def test_he_and_xavier_variances():
    shape = (256, 64, 3, 3)                      # fan_in 576, fan_out 2304; 147k samples
    fan_in, fan_out = 64 * 9, 256 * 9
    he = 2.0 / fan_in
    xavier = 2.0 / (fan_in + fan_out)
    for fn, var in [(init.he_normal, he), (init.he_uniform, he), (init.xavier_normal, xavier),
                    (init.xavier_uniform, xavier)]:
        w = fn(shape, 0, dtype=np.float64)
        assert abs(w.mean()) < 4 * math.sqrt(var / w.size)
        assert w.var() == pytest.approx(var, rel=0.02), fn.__name__


def test_uniform_bounds():
    w = init.he_uniform((100, 50), 1, dtype=np.float64)
    bound = math.sqrt(2) * math.sqrt(3 / 100)
    assert w.max() <= bound and w.min() >= -bound and w.max() > 0.95 * bound
    w = init.xavier_uniform((100, 50), 1, dtype=np.float64)
    bound = math.sqrt(6 / 150)
    assert w.max() <= bound and w.min() >= -bound and w.max() > 0.95 * bound


def test_explicit_fans_and_zeros():
    w = init.he_normal((1000, 10), 0, fan_in=4, dtype=np.float64)
    assert w.std() == pytest.approx(math.sqrt(2 / 4), rel=0.05)
    z = init.zeros((3, 4))
    assert z.dtype == np.float32 and not z.any()


def test_bad_input():
    with pytest.raises(ValueError, match="shape must be a non-empty tuple of positive ints"):
        init.he_normal((3, 0), 0)
    with pytest.raises(ValueError, match="cannot infer fan_in"):
        init.xavier_normal((2, 3, 4), 0)
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        init.he_normal((3, 3), "seed")
    with pytest.raises(ValueError, match="init must be one of"):
        init.get_initialiser("glorot")
