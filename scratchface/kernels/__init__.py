"""The fast path, in one place: Numba kernels for the CPU, CUDA kernels and their host wrappers for the GPU.

Grouped by operation; the same operation has the same module name on both sides::

    kernels/
        _numba.py             single_thread_below: small problems on one thread;
                              blas_single_threaded: one pool (Numba's) around BLAS calls
        conv.py               conv2d_output_numba, conv2d_grads_numba      (picks a path per shape; the
                              columns_output                               channels-last im2col + GEMM
                                                                           per thread; PReLU in the epilogue)
        microkernel.py        tile_fma, tile_fma_runs, tile_fma_gather     (a register tile in LLVM IR: 12 x 32
                                                                           with AVX-512, 6 x 16 with AVX2)
        implicit_conv.py      implicit_conv_output,                        (convolution on the micro-kernel,
                              implicit_conv_weight_grad                    no im2col; its weight gradient)
        tap_skipping.py       tap_skipping_output,                         (small padded outputs: pixels by
                              tap_skipping_weight_grad                     position, taps on padding skipped)
        pointwise.py          per_image_forward, per_image_backward,       (1x1 on NCHW as it is: one GEMM per
                              pixel_tiles_forward,                         image, or the micro-kernel's tiles;
                              channel_major_forward, _backward             the whole batch on few pixels)
        direct_conv.py        direct_forward                               (few channels on wide rows: P-Net)
        winograd.py           winograd_output_numba                        (F(2x2, 3x3) for NN2's conv2)
        pooling.py            pool2d_output_numba, pool2d_dx_numba         (max / avg / L2);
                              max_pool2d_values_numba                      (inference: no argmax)
        dense.py              dense_output_numba, dense_grads_numba        (blocks of rows / columns, BLAS on
                                                                           one thread each: no spinning BLAS)
        locally_connected.py  locally_connected2d_output_numba, ..._grads_numba
        roi.py                roi_max_pool_output_numba, roi_max_pool_dx_numba,
                              roi_align_output_numba, roi_align_dx_numba
        nms.py                greedy_nms                                   (kept indices)
        distances.py          finish_sq_euclidean, finish_cosine, knn_candidates, refine_topk
        activations.py        prelu_output_numba, relu_output_numba, relu_grad_numba
        resize.py             area_resize_regions_numba                    (MTCNN crops, levels);
                              summed_area_table_numba
        hog.py                hog_cell_histograms_numba, hog_normalize_blocks_numba
        cuda/                 the @cuda.jit kernels AND their host wrappers, one module per operation:
            _launch.py        array_module, launch, block counts, device views, the stream
            conv.py           im2col, col2im kernels; conv2d_output_cuda, conv2d_grads_cuda
            pooling.py        pool2d_output_kernel, pool2d_dx_kernel; pool2d_output_cuda, pool2d_dx_cuda
            prelu.py          prelu_*_kernel; prelu_output_cuda, prelu_grads_cuda
            nms.py            overlap_mask, reduce_mask; nms_cuda
            distances.py      finish_*, topk_rows; pairwise_distances_cuda, nearest_neighbors_cuda
            hog.py            cell_histograms_kernel; hog_cell_histograms_cuda

Names say what a function returns: ``*_output_*`` the forward output,
``*_grads_*`` all the gradients, ``*_dx_*`` the input gradient alone, with the
suffix ``_numba`` or ``_cuda`` for where it runs (``*_kernel`` for a raw
``@cuda.jit`` kernel). None of them validates like the public functions or
returns a cache: the validated ``*_forward -> (out, cache)`` /
``*_backward(dout, cache)`` pairs are in ``scratchface/layers`` (and
``detection.nms``, ``distances``, ``detection.hog``), which pick a
kernel with ``impl='auto' | 'reference' | 'numba' | 'cuda'`` and are tested
equal to their readable references.

Dependencies point one way: the layers import the kernels (lazily); kernels
never import ``scratchface.layers`` (a kernel that needs geometry, as ROI
pooling's bins, gets it as an argument) and use only ``scratchface._validation``
and ``scratchface.backend``. Importing this package, or
``scratchface.kernels.cuda``, imports neither Numba nor CuPy; each kernel
module does, and is imported lazily by the public function that needs it.

Threads: the kernels run Numba ``parallel=True`` loops between BLAS matrix
products. With OpenMP's default wait policy the Numba workers spin after each
loop while OpenBLAS's threads want the same cores (and the other way round):
measured on a 2-core machine, a GEMM followed by a parallel transpose took
7.9 ms instead of 1.35 ms. So, unless the user has chosen otherwise,
``OMP_WAIT_POLICY`` is set to ``PASSIVE`` here, before Numba starts its OpenMP
threads (``os.environ.setdefault``: an explicit setting always wins).

Compiled code: Numba's ``cache=True`` checks only the file that defines a
function, so a kernel that inlines a helper from another module (``tile_fma``
from ``microkernel.py``, ``prelu`` from ``activations.py``) would keep machine
code built against the old helper after that module changed: a silent wrong
answer (seen in the seventh #16 pass, when the tile width changed in
``microkernel.py`` and ``implicit_conv.py``'s cached kernels did not). So the
cache files beside these sources are deleted whenever a source here has changed
since they were written (``drop_stale_numba_cache``, at import).
"""
import hashlib
import os
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def drop_stale_numba_cache(folders=(Path(__file__).parent, Path(__file__).parent / "cuda")):
    """Delete Numba's cache files (``__pycache__/*.nbi``, ``*.nbc``) of ``folders`` when their ``*.py`` sources
    differ from those the cache was built from (a SHA-256 of them all, kept in ``kernels/__pycache__``);
    True if it deleted. A read-only install is left alone (Numba then caches in its own folder, keyed on each
    file's stamp, and an upgrade replaces every file)."""
    sources = sorted(path for folder in folders for path in Path(folder).glob("*.py"))
    digest = hashlib.sha256(b"".join(path.name.encode() + path.read_bytes() for path in sources)).hexdigest()
    stamp = Path(folders[0]) / "__pycache__" / "kernel-sources.sha256"
    try:
        if stamp.read_text() == digest:
            return False
    except OSError:
        pass
    try:
        for folder in folders:
            for cached in (Path(folder) / "__pycache__").glob("*.nb[ic]"):
                cached.unlink()
        stamp.parent.mkdir(exist_ok=True)
        partial = stamp.with_name(f"{stamp.name}.{os.getpid()}.tmp")
        partial.write_text(digest)
        os.replace(partial, stamp)                      # atomic: another process sees the old stamp or this one
    except OSError:
        return False
    return True


drop_stale_numba_cache()
