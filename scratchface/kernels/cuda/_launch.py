"""Launch helpers shared by the CUDA kernels: block counts and device views."""
from __future__ import annotations

import warnings

from numba import cuda

# Some launches are small on purpose (NMS's single reducing block, one block per channel for the
# PReLU slope gradient, small images): do not warn about under-used GPUs for those.
warnings.filterwarnings("ignore", message=r"Grid size .* will likely result in GPU under-utilization",
                        category=Warning)  # NumbaPerformanceWarning (numba or numba-cuda)

__all__ = ["THREADS", "blocks_for", "device_view", "simulated", "stream", "smaller", "larger"]

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
