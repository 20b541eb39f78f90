"""What every host wrapper of :mod:`scratchface.kernels.cuda` shares: array module, launches, block counts.

The wrappers take CuPy arrays on a GPU, or NumPy arrays under Numba's CUDA
simulator (``NUMBA_ENABLE_CUDASIM=1`` set before Numba is imported): ``xp`` is
then NumPy and every GPU thread a Python thread. :func:`array_module` enforces
that rule; :func:`launch` runs ``kernel[blocks, threads, stream](*args)`` on
CuPy's current stream with the arrays as device views.
"""
from __future__ import annotations

import warnings

import numpy as np
from numba import cuda

from ...backend import get_array_module, is_cupy_array

# Some launches are small on purpose (NMS's single reducing block, one block per channel for the
# PReLU slope gradient, small images): do not warn about under-used GPUs for those.
warnings.filterwarnings("ignore", message=r"Grid size .* will likely result in GPU under-utilization",
                        category=Warning)  # NumbaPerformanceWarning (numba or numba-cuda)

__all__ = ["THREADS", "array_module", "blocks_for", "check_same_dtype", "device_view", "launch", "simulated",
           "stream", "smaller", "larger"]

THREADS = 256  # threads per block for the one-thread-per-element kernels


@cuda.jit(device=True)
def smaller(a, b):
    """``min(a, b)`` for the kernels (the builtin's generic overload does not compile for every
    CUDA target; a conditional always does)."""
    return a if a < b else b


@cuda.jit(device=True)
def larger(a, b):
    """``max(a, b)`` for the kernels."""
    return a if a > b else b


def simulated() -> bool:
    """True when Numba runs kernels in its CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``)."""
    from numba.core import config  # noqa: PLC0415

    return bool(config.ENABLE_CUDASIM)


def blocks_for(n: int, threads: int = THREADS) -> int:
    """Blocks of ``threads`` threads needed to give each of ``n`` elements a thread (at least 1)."""
    return max(1, (int(n) + threads - 1) // threads)


def device_view(x):
    """What a kernel is launched with: a Numba view of a CuPy array, or the NumPy array itself.

    CuPy arrays are wrapped with ``sync=False``: the kernels are launched on
    CuPy's current stream (:func:`stream`), so their work is already ordered
    after CuPy's and the stream synchronisation Numba would otherwise do
    before each launch is not needed. NumPy arrays are only accepted under the simulator.
    """
    if hasattr(x, "__cuda_array_interface__"):
        return cuda.as_cuda_array(x, sync=False)
    if not simulated():
        raise TypeError("the CUDA kernels need CuPy arrays on a GPU (NumPy arrays only under "
                        "Numba's CUDA simulator, NUMBA_ENABLE_CUDASIM=1)")
    return x


def stream():
    """The stream to launch on: CuPy's current stream on a GPU (so that kernels and CuPy's
    own work stay in order even inside ``with cupy.cuda.Stream():``); 0 under the simulator."""
    if simulated():
        return 0
    import cupy  # noqa: PLC0415

    ptr = cupy.cuda.get_current_stream().ptr
    return cuda.default_stream() if ptr == 0 else cuda.external_stream(ptr)


def array_module(*arrays):
    """``xp`` of the arrays: CuPy on a GPU; NumPy only under the CUDA simulator."""
    xp = get_array_module(*arrays)
    if xp is np and not simulated():
        raise TypeError("scratchface.kernels.cuda functions take CuPy arrays (scratchface.backend.to_device); "
                        "NumPy arrays only under Numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1)")
    return xp


def launch(kernel, blocks, threads, *args):
    """``kernel[blocks, threads, stream](*args)`` with array arguments as device views (``threads``
    None: :data:`THREADS`)."""
    threads = THREADS if threads is None else threads
    views = [device_view(a) if (isinstance(a, np.ndarray) or is_cupy_array(a)) else a for a in args]
    kernel[blocks, threads, stream()](*views)


def check_same_dtype(a, b, name_a, name_b):
    """``b`` must have the dtype of ``a`` (TypeError naming both)."""
    if a.dtype != b.dtype:
        raise TypeError(f"{name_b} must have the dtype of {name_a} ({a.dtype}), got {b.dtype}")
