"""CUDA kernels (``numba.cuda``) and their host wrappers, one module per operation.

Each module holds the ``@cuda.jit`` kernels of one operation *and* the host
wrapper that launches them (the ``*_cuda`` functions): it allocates the
outputs, launches the kernels on CuPy's current stream, and does the matrix
products with ``xp.matmul`` (cuBLAS). Every kernel is written once and runs in
two places:

* on an NVIDIA GPU, on CuPy arrays (Numba reads them through
  ``__cuda_array_interface__``, no copy);
* in Numba's CUDA *simulator* (``NUMBA_ENABLE_CUDASIM=1`` set before Numba is
  imported), on NumPy arrays, where every GPU thread is a Python thread. That
  is slow, but it runs the same kernel source line by line, so the index
  arithmetic, the bit masks and the shared-memory reductions are tested on a
  machine without a GPU (``tests/test_cuda_kernels.py``).

Modules (host wrappers -> the public function that calls them with CuPy arrays):

``conv``
    ``conv2d_output_cuda``, ``conv2d_grads_cuda`` -> ``layers.conv.conv2d_forward`` / ``conv2d_backward``
``pooling``
    ``pool2d_output_cuda``, ``pool2d_dx_cuda`` -> the max, average and L2 poolings of ``layers.pooling``
``prelu``
    ``prelu_output_cuda``, ``prelu_grads_cuda`` -> ``layers.activations.prelu_forward`` / ``prelu_backward``
``nms``
    ``nms_cuda`` -> ``detection.nms.nms``
``distances``
    ``pairwise_distances_cuda``, ``nearest_neighbors_cuda`` -> ``distances``
``hog``
    ``hog_cell_histograms_cuda`` -> none yet: ``detection.hog.hog`` is NumPy-only; tested in the
    simulator and on a GPU (``tests/test_cuda_kernels.py``, ``tests/test_gpu_cupy.py``)
``_launch``
    ``array_module``, ``launch``, block counts, device views, the stream: shared by the modules above

The wrappers are the fast paths behind the validated public functions: they
check shapes and dtypes, but not finiteness (that costs a device
synchronisation; the public functions do it once).

Design rules, kept in every kernel:

* one thread per *output* element, gathering what it needs (col2im and the
  pooling backward gather instead of scatter): no atomics, so every result is
  deterministic and bitwise reproducible from run to run;
* no ``fastmath``; sums that cross threads accumulate in float64.

Results agree with the CPU reference to rounding; on a real GPU the compiler
may contract ``a * b + c`` into one fused multiply-add, so the last bits can
differ from the CPU.

Importing this package imports neither Numba nor CuPy; its modules import
``numba.cuda``, so import them lazily (the public functions do).
"""

from ...backend import cupy_available

__all__ = ["gpu_kernels_available"]


def gpu_kernels_available() -> bool:
    """True when the kernels can run: a CUDA GPU with CuPy and ``numba.cuda``, or the simulator."""
    try:
        from numba import cuda  # noqa: PLC0415  (heavy, optional: only when asked)

        from ._launch import simulated  # noqa: PLC0415  (imports numba.cuda)
        if simulated():
            return True
        return cupy_available() and cuda.is_available()
    except Exception:
        return False
