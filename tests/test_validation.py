import numpy as np
import pytest

from scratchface import _validation as v


def test_check_array():
    x = np.zeros((2, 3))
    assert v.check_array(x, "x", ndim=2, dtype_kind="f") is x
    with pytest.raises(TypeError, match="x must be an array"):
        v.check_array([1, 2], "x")
    with pytest.raises(ValueError, match=r"x must be a 4-D array, got shape \(2, 3\)"):
        v.check_array(x, "x", ndim=4)
    with pytest.raises(TypeError, match="floating point dtype, got int64"):
        v.check_float_array(np.zeros(3, np.int64), "x")
    with pytest.raises(ValueError, match="NaN or infinity"):
        v.check_float_array(np.array([1.0, np.inf]), "x")


def test_scalars():
    assert v.check_positive_int(np.int32(3), "k") == 3
    for bad, exc in [(0, ValueError), (-1, ValueError), (1.5, TypeError), (True, TypeError)]:
        with pytest.raises(exc, match="k must be a positive integer"):
            v.check_positive_int(bad, "k")
    assert v.check_int_pair(3, "s") == (3, 3)
    assert v.check_int_pair((1, 2), "s") == (1, 2)
    with pytest.raises(TypeError, match="pair"):
        v.check_int_pair((1, 2, 3), "s")
    assert v.check_padding(1) == (1, 1, 1, 1)
    assert v.check_padding((1, 2)) == (1, 1, 2, 2)
    assert v.check_padding((0, 1, 2, 3)) == (0, 1, 2, 3)
    with pytest.raises(ValueError, match="non-negative"):
        v.check_padding(-1)
    assert v.check_in_range(0.5, "t", 0, 1, inclusive=(False, False)) == 0.5
    with pytest.raises(ValueError, match=r"t must be in \(0, 1\)"):
        v.check_in_range(1.0, "t", 0, 1, inclusive=(False, False))
    with pytest.raises(ValueError, match="mode must be one of"):
        v.check_choice("avg", "mode", ("max", "l2"))
    with pytest.raises(ValueError, match="finite positive"):
        v.check_positive_float(0.0, "lr")


def test_labels():
    y = np.array([0, 2, 1])
    assert v.check_labels(y, "labels", 3, num_classes=3) is y
    with pytest.raises(ValueError, match=r"in \[0, 2\)"):
        v.check_labels(y, "labels", 3, num_classes=2)
    with pytest.raises(ValueError, match="one label per sample"):
        v.check_labels(y, "labels", 4)
    with pytest.raises(TypeError, match="integer"):
        v.check_labels(y.astype(float), "labels", 3)
