"""Shared thread helpers: small problems on the calling thread, one thread pool around BLAS.

A ``parallel=True`` kernel wakes Numba's worker threads and waits for all of
them at the end. For a small array that synchronisation costs more than the
work, and on a busy machine (a worker not scheduled for a while) it costs
far more: measured on a shared 2-core machine under load, one 2x3x7x9 conv2d
forward took 49 ms with 2 threads and 0.16 ms with 1, a 3x3 max pool 15.6 ms
and 0.13 ms. Gradient checks call the kernels thousands of times on such arrays.
The threshold is 2M elements written: with it, MTCNN's P-Net over a 500x375
photo's pyramid took 0.50 s instead of 2.07 s on 2 cores (9 dlib photos), while
the large FaceNet layers (10M-element im2col) still run in parallel.

This module imports Numba; import it lazily (from the kernels only).
"""
from __future__ import annotations

import contextlib

import numba
import numpy as np

__all__ = ["MEMORY_BOUND_WORK", "SMALL_WORK", "blas_single_threaded", "even_blocks", "single_thread_below"]

SMALL_WORK = 1 << 21   # elements written; below it the kernels run on the calling thread
MEMORY_BOUND_WORK = 1 << 18   # the training kernels of a pass or two over memory (ReLU, pooling, LRN): on all
#                               threads from this many elements (sixth #16 pass: NN2's 0.3-1.5 M-element ReLUs,
#                               pools and first LRN ran on one thread under SMALL_WORK; inference keeps SMALL_WORK)


def even_blocks(size, per_block):
    """Tasks for ``size`` units (rows, columns, channels) of about ``per_block`` each: an even number (two
    threads share them evenly), never more than ``size``, at least one; from the shapes only, so that the
    results are the same bits on any number of threads."""
    return max(1, min(size, 2 * max(1, size // per_block)))


@contextlib.contextmanager
def single_thread_below(work: int, threshold: int = SMALL_WORK):
    """Within the block, Numba parallel loops use one thread when ``work < threshold``."""
    if work >= threshold:
        yield
        return
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(previous)


_BLAS_LIBRARIES = []


@contextlib.contextmanager
def blas_single_threaded():
    """Within the block, BLAS libraries run on the calling thread only (threadpoolctl).

    For Numba ``parallel=True`` kernels that call BLAS (``np.dot``) inside the
    parallel loop (the fused convolution, the blocked neighbour search) and for
    pipelines made of them (``detect_faces``): every Numba worker then runs its
    own single-threaded GEMM, and no second thread pool (OpenBLAS's) competes
    with Numba's for the cores or spins while Numba works. SciPy's BLAS, the one
    Numba's ``np.dot`` calls, is loaded first: threadpoolctl only finds the
    libraries already loaded. Yields ``True`` (the limit is in force).

    The libraries are found once; each call reads and sets their thread counts directly (13 us for
    both OpenBLAS copies here, where ``ThreadpoolController.limit`` re-reads every library's info: 50 us
    a call, a fifth of a small P-Net level's convolution; a timing script, not kept).
    """
    if not _BLAS_LIBRARIES:
        import scipy.linalg.cython_blas  # noqa: F401  the BLAS that Numba's np.dot calls, loaded first
        from threadpoolctl import ThreadpoolController
        _BLAS_LIBRARIES.append([lib for lib in ThreadpoolController().lib_controllers if lib.user_api == "blas"])
    libraries = _BLAS_LIBRARIES[0]
    before = [lib.get_num_threads() for lib in libraries]
    try:
        for lib, threads in zip(libraries, before):
            if threads != 1:
                lib.set_num_threads(1)
        if not _BLAS_WARM:
            _warm_sgemm_on_every_thread()
        yield True
    finally:
        for lib, threads in zip(libraries, before):
            if threads != 1:
                lib.set_num_threads(threads)


_BLAS_WARM = []
WARM_SGEMM = (512, 16, 512)    # (M, K, N) of the one float32 product each thread runs first


@numba.njit(cache=True, parallel=True)
def _sgemm_per_thread(a, b, threads):
    for _ in numba.prange(threads):          # static schedule: one iteration per thread
        np.dot(a, b)


def _warm_sgemm_on_every_thread():
    """One ``(512, 16) @ (16, 512)`` float32 product on every Numba thread, once per process.

    Measured with OpenBLAS 0.3.31 (NumPy's and SciPy's wheels) on this project's AMD EPYC machines
    (``python benchmarks/bench_blas_warmup.py``): on a fresh thread, NN2 conv2's chunk product
    ``(432, 576) @ (576, 192)`` in float32 takes 7.0 ms; after this one small product, 2.2 ms (3.2x),
    for the life of the thread; float64 is not affected (4.7 ms both). A large enough float64
    product also ends the slow state, so the convolutions' backward does; their float32 forward
    products (N = filters <= 384) do not, and inference ran slow: ``detect_faces`` on the nine dlib
    photos and bald_guys.jpg, 2 threads, 1.80 against 1.66 s (a timing script, not kept). The cause
    is inside OpenBLAS and was not found (no page faults; the same output buffer). Cost: 8 MFLOP per
    thread, once.
    """
    m, k, n = WARM_SGEMM
    threads = numba.config.NUMBA_NUM_THREADS
    previous = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        _sgemm_per_thread(np.ones((m, k), np.float32), np.ones((k, n), np.float32), threads)
    finally:
        numba.set_num_threads(previous)
    _BLAS_WARM.append(True)
