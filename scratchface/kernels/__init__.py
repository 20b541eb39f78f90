"""The fast kernels: Numba on the CPU (``kernels/*.py``), CUDA in ``kernels/cuda``.

Each sits beside the readable version of its layer (``scratchface/layers``,
``scratchface/detection``...) and is tested equal to it. Importing this package
imports no Numba; each kernel module does, and is itself imported lazily by the
public function that needs it.

Threads: the kernels run Numba ``parallel=True`` loops between BLAS matrix
products. With OpenMP's default wait policy the Numba workers spin after each
loop while OpenBLAS's threads want the same cores (and the other way round):
measured on a 2-core machine, a GEMM followed by a parallel transpose took
7.9 ms instead of 1.35 ms. So, unless the user has chosen otherwise,
``OMP_WAIT_POLICY`` is set to ``PASSIVE`` here, before Numba starts its OpenMP
threads (``os.environ.setdefault``: an explicit setting always wins).
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
