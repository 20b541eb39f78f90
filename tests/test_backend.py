import numpy as np
import pytest

from scratchface import backend


def test_numpy_default():
    assert backend.get_backend() == "numpy"
    assert backend.get_array_module() is np
    assert backend.get_array_module(np.zeros(2), None) is np
    assert isinstance(backend.asarray([1, 2]), np.ndarray)
    x = np.arange(3)
    assert backend.to_host(x) is not None and np.array_equal(backend.to_host(x), x)


def test_unknown_backend():
    with pytest.raises(ValueError, match="backend must be one of"):
        backend.set_backend("torch")
    assert backend.get_backend() == "numpy"


@pytest.mark.skipif(backend.cupy_available(), reason="CuPy with a GPU is present")
def test_cupy_missing_gives_clear_error():
    with pytest.raises(RuntimeError, match=r"scratchface\[gpu\]"):
        backend.set_backend("cupy")
    assert backend.get_backend() == "numpy"


@pytest.mark.gpu
@pytest.mark.skipif(not backend.cupy_available(), reason="needs CuPy and a CUDA GPU")
def test_cupy_round_trip():  # pragma: no cover - runs on GPU machines only
    x = np.arange(6.0).reshape(2, 3)
    d = backend.to_device(x)
    assert backend.get_array_module(d).__name__ == "cupy"
    with pytest.raises(TypeError, match="mix"):
        backend.get_array_module(d, x)
    with backend.use_backend("cupy"):
        assert backend.get_backend() == "cupy"
    assert backend.get_backend() == "numpy"
    np.testing.assert_array_equal(backend.to_host(d), x)
