"""CUDA kernels (``numba.cuda``) for the GPU paths, one module per topic.

Every kernel here is written once, as a ``@cuda.jit`` function, and runs in two
places:

* on an NVIDIA GPU, on CuPy arrays (Numba reads them through
  ``__cuda_array_interface__``, no copy), launched by the host-side wrappers in
  :mod:`scratchface.gpu`, which also call cuBLAS through ``cupy.matmul`` for
  the matrix products;
* in Numba's CUDA *simulator* (``NUMBA_ENABLE_CUDASIM=1`` set before Numba is
  imported), on NumPy arrays, where every GPU thread is a Python thread. That
  is slow, but it runs the same kernel source line by line, so the index
  arithmetic, the bit masks and the shared-memory reductions are tested on a
  machine without a GPU (``tests/test_cuda_kernels.py``).

Modules
-------
``im2col``     im2col / col2im for convolution (the GEMM is ``xp.matmul``)
``pooling``    max / average / L2 pooling, forward and backward
``prelu``      PReLU forward and backward (per-channel slope gradient)
``nms``        bitmask non-maximum suppression (64 boxes against 64)
``distances``  finishing the pairwise-distance matrix, and top-k per row
``hog``        HOG cell histograms

Design rules, kept in every kernel:

* one thread per *output* element, gathering what it needs (col2im and the
  pooling backward gather instead of scatter): no atomics, so every result is
  deterministic and bitwise reproducible from run to run;
* no ``fastmath``; sums that cross threads accumulate in float64.

Importing this package does not import Numba; its modules do, so import them
lazily (``scratchface.gpu`` does).
"""
