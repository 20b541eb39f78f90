"""The GPU paths: host-side wrappers that launch the CUDA kernels and call cuBLAS.

Each function takes CuPy arrays on a GPU and returns CuPy arrays; it allocates
the outputs, launches the ``numba.cuda`` kernels of
:mod:`scratchface.kernels.cuda` on CuPy's current stream, and does the matrix
products with ``xp.matmul`` (cuBLAS). Under Numba's CUDA simulator
(``NUMBA_ENABLE_CUDASIM=1`` set before Numba is imported) the same functions
take NumPy arrays and ``xp`` is NumPy: that is how the kernels' logic is
tested on machines without a GPU.

==============================  ==========================================  ===============================
function                        what                                        readable CPU version
==============================  ==========================================  ===============================
``conv2d_forward_gpu``          im2col kernel + one GEMM (1x1: GEMM only)   ``layers.conv.conv2d_forward``
``conv2d_backward_gpu``         two GEMMs + col2im kernel                   ``layers.conv.conv2d_backward``
``pool2d_forward_gpu``          max / avg / L2 pooling kernel               ``layers.pooling``
``pool2d_backward_gpu``         gathering backward kernel                   ``layers.pooling``
``prelu_forward_gpu``           elementwise kernel                          ``layers.activations``
``prelu_backward_gpu``          elementwise + per-channel tree reduction    ``layers.activations``
``nms_gpu``                     bitmask NMS (64 x 64 blocks) + reduction    ``detection.nms.nms``
``pairwise_distances_gpu``      one GEMM + a finishing kernel               ``recognition.distances``
``nearest_neighbors_gpu``       GEMM per block of rows + top-k kernel       ``recognition.distances``
``hog_cell_histograms_gpu``     one thread per cell                         ``detection.hog``
==============================  ==========================================  ===============================

These are the fast paths behind the validated public functions: they check
shapes and dtypes, but not finiteness (that costs a device synchronisation;
the public ``*_forward`` functions do it once). Importing this module imports
neither Numba nor CuPy; the first call does.

Every kernel is deterministic (no atomics), so two runs give bitwise the same
result. Results agree with the CPU reference to rounding; on a real GPU the
compiler may contract ``a * b + c`` into one fused multiply-add, so the last
bits can differ from the CPU.
"""
from __future__ import annotations

import numpy as np

from ._validation import check_array, check_choice, check_in_range, check_int_pair, check_padding, \
    check_positive_int
from .backend import get_array_module, is_cupy_array

__all__ = [
    "conv2d_forward_gpu", "conv2d_backward_gpu", "pool2d_forward_gpu", "pool2d_backward_gpu",
    "max_pool2d_forward_gpu", "max_pool2d_backward_gpu", "l2_pool2d_forward_gpu", "l2_pool2d_backward_gpu",
    "prelu_forward_gpu", "prelu_backward_gpu", "nms_gpu", "pairwise_distances_gpu",
    "nearest_neighbors_gpu", "hog_cell_histograms_gpu", "gpu_kernels_available",
]


# ----------------------------------------------------------------------------- plumbing

def gpu_kernels_available() -> bool:
    """True when the kernels can run: a CUDA GPU with CuPy and ``numba.cuda``, or the simulator."""
    try:
        from numba import cuda  # noqa: PLC0415

        from .kernels.cuda._launch import simulated  # noqa: PLC0415
        if simulated():
            return True
        from .backend import cupy_available  # noqa: PLC0415
        return cupy_available() and cuda.is_available()
    except Exception:
        return False


def _module(*arrays):
    """``xp`` of the arrays: CuPy on a GPU; NumPy only under the CUDA simulator."""
    xp = get_array_module(*arrays)
    if xp is np:
        from numba.core import config  # noqa: PLC0415  (numba, but not numba.cuda)
        if not config.ENABLE_CUDASIM:
            raise TypeError("scratchface.gpu functions take CuPy arrays (scratchface.backend.to_device); "
                            "NumPy arrays only under Numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1)")
    return xp


def _launch(kernel, blocks, threads, *args):
    """``kernel[blocks, threads, stream](*args)`` with array arguments as device views."""
    from .kernels.cuda._launch import THREADS, device_view, stream  # noqa: PLC0415

    threads = THREADS if threads is None else threads
    views = [device_view(a) if (isinstance(a, np.ndarray) or is_cupy_array(a)) else a for a in args]
    kernel[blocks, threads, stream()](*views)


def _blocks(n, threads=None):
    from .kernels.cuda._launch import THREADS, blocks_for  # noqa: PLC0415

    return blocks_for(n, threads or THREADS)


def _check_same_dtype(a, b, name_a, name_b):
    if a.dtype != b.dtype:
        raise TypeError(f"{name_b} must have the dtype of {name_a} ({a.dtype}), got {b.dtype}")


# ----------------------------------------------------------------------------- convolution

def _conv_geometry(x, w, stride, padding):
    from .layers.conv import conv_output_size  # noqa: PLC0415

    stride = check_int_pair(stride, "stride")
    padding = check_padding(padding, "padding")
    h, wd = x.shape[2:]
    kh, kw = w.shape[2:]
    oh = conv_output_size(h, kh, stride[0], padding[0], padding[1])
    ow = conv_output_size(wd, kw, stride[1], padding[2], padding[3])
    pointwise = kh == kw == 1 and stride == (1, 1) and not any(padding)
    return stride, padding, oh, ow, pointwise


def _im2col(x, kh, kw, stride, padding, oh, ow):
    from .kernels.cuda import im2col as _k  # noqa: PLC0415

    xp = get_array_module(x)
    n, c = x.shape[:2]
    cols = xp.empty((c * kh * kw, n * oh * ow), dtype=x.dtype)
    _launch(_k.im2col, _blocks(cols.size), None, x, kh, kw, stride[0], stride[1], padding[0], padding[2],
            oh, ow, cols)
    return cols


def conv2d_forward_gpu(x, w, b=None, stride=1, padding=0):
    """Convolution on the GPU: im2col kernel, then ``W (F, C*KH*KW) @ cols`` in cuBLAS.

    Parameters
    ----------
    x : CuPy array, shape (N, C, H, W), float32 or float64
    w : CuPy array, shape (F, C, KH, KW), dtype of ``x``
    b : CuPy array, shape (F,), optional
    stride : int or (sh, sw)
    padding : int, (ph, pw) or (top, bottom, left, right)

    Returns
    -------
    out : CuPy array, shape (N, F, OH, OW)

    Notes
    -----
    ``cols`` has shape ``(C*KH*KW, N*OH*OW)`` (one GEMM for the whole batch);
    the product ``(F, N*OH*OW)`` is transposed to NCHW in the same pass that
    adds the bias. A 1x1 convolution with stride 1 and no padding needs no
    im2col: the input already is the column matrix of each image, and the
    batched product ``W @ x[n]`` writes NCHW directly.
    """
    check_array(x, "x", ndim=4, dtype_kind="f")
    check_array(w, "w", ndim=4, dtype_kind="f")
    _check_same_dtype(x, w, "x", "w")
    if w.shape[1] != x.shape[1]:
        raise ValueError(f"w has {w.shape[1]} input channels but x has {x.shape[1]} (axis 1 of NCHW)")
    xp = _module(x, w) if b is None else _module(x, w, b)
    stride, padding, oh, ow, pointwise = _conv_geometry(x, w, stride, padding)
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    w2 = w.reshape(f, c * kh * kw)
    if pointwise:
        out = xp.matmul(w2, x.reshape(n, c, h * wd))                      # (N, F, H*W), batched GEMM
        if b is not None:
            out += b.reshape(1, f, 1)
    else:
        cols = _im2col(x, kh, kw, stride, padding, oh, ow)
        prod = xp.matmul(w2, cols).reshape(f, n, oh * ow)                 # (F, N, P)
        out = xp.empty((n, f, oh * ow), dtype=x.dtype)
        if b is None:
            out[...] = prod.transpose(1, 0, 2)
        else:
            xp.add(prod.transpose(1, 0, 2), b.reshape(1, f, 1), out=out)
    return out.reshape(n, f, oh, ow)


def conv2d_backward_gpu(dout, x, w, has_bias, stride, padding):
    """Gradients ``(dx, dw, db)`` of :func:`conv2d_forward_gpu` (``db`` is None without bias).

    Same arguments as the Numba CPU kernel ``scratchface.kernels.conv.conv2d_backward``.

    Notes
    -----
    With ``dout`` as ``(F, N*OH*OW)``: ``dW = dout @ cols.T`` and
    ``dcols = W.T @ dout`` (cuBLAS), then the col2im kernel adds each column
    back onto the pixels it came from. ``cols`` is recomputed from ``x``
    (cheaper than keeping it between the passes).
    """
    check_array(dout, "dout", ndim=4, dtype_kind="f")
    check_array(x, "x", ndim=4, dtype_kind="f")
    check_array(w, "w", ndim=4, dtype_kind="f")
    _check_same_dtype(x, dout, "x", "dout")
    _check_same_dtype(x, w, "x", "w")
    xp = _module(dout, x, w)
    stride, padding, oh, ow, pointwise = _conv_geometry(x, w, stride, padding)
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    if tuple(dout.shape) != (n, f, oh, ow):
        raise ValueError(f"dout must have the shape of the forward output {(n, f, oh, ow)}, got {tuple(dout.shape)}")
    db = dout.sum(axis=(0, 2, 3)) if has_bias else None
    w2 = w.reshape(f, c * kh * kw)
    if pointwise:
        d3 = dout.reshape(n, f, h * wd)
        dw = xp.tensordot(d3, x.reshape(n, c, h * wd), axes=([0, 2], [0, 2])).reshape(w.shape)
        dx = xp.matmul(w2.T, d3).reshape(x.shape)
        return dx, dw, db
    from .kernels.cuda import im2col as _k  # noqa: PLC0415

    dout_t = xp.ascontiguousarray(dout.reshape(n, f, oh * ow).transpose(1, 0, 2)).reshape(f, n * oh * ow)
    cols = _im2col(x, kh, kw, stride, padding, oh, ow)
    dw = xp.matmul(dout_t, cols.T).reshape(w.shape)
    dcols = xp.matmul(w2.T, dout_t)                                       # (C*KH*KW, N*P)
    dx = xp.empty(x.shape, dtype=x.dtype)
    _launch(_k.col2im, _blocks(dx.size), None, dcols, kh, kw, stride[0], stride[1], padding[0], padding[2],
            oh, ow, dx)
    return dx, dw, db


# ----------------------------------------------------------------------------- pooling

def pool2d_forward_gpu(x, mode, kernel, stride, padding, out_hw, count_include_pad=True):
    """Pooling on the GPU: ``(out, argmax)``; ``argmax`` (max pool only, else None) indexes the H*W plane.

    Same arguments and results as the Numba CPU kernel
    ``scratchface.kernels.pooling.pool2d_forward``: ``mode`` in
    ``{'max', 'avg', 'l2'}``, validated ``kernel``/``stride`` pairs, ``padding``
    ``(top, bottom, left, right)`` and the output size ``out_hw`` computed by
    ``scratchface.layers.pooling.pool_output_size``.
    """
    from .kernels.cuda import pooling as _k  # noqa: PLC0415

    check_array(x, "x", ndim=4, dtype_kind="f")
    check_choice(mode, "mode", tuple(_k.MODES))
    xp = _module(x)
    n, c = x.shape[:2]
    out = xp.empty((n, c) + tuple(out_hw), dtype=x.dtype)
    argmax = xp.empty(out.shape if mode == "max" else (1, 1, 1, 1), dtype=np.int64)
    _launch(_k.pool2d_forward, _blocks(out.size), None, x, _k.MODES[mode], kernel[0], kernel[1], stride[0],
            stride[1], *padding, bool(count_include_pad), out, argmax)
    return out, (argmax if mode == "max" else None)


def pool2d_backward_gpu(dout, cache):
    """``dx`` of the pooling, from a ``PoolCache`` whose forward ran :func:`pool2d_forward_gpu`.

    Reads ``cache.mode``, ``x``, ``out`` (L2), ``argmax`` (max), ``kernel_size``,
    ``stride``, ``padding`` and ``count_include_pad``.
    """
    from .kernels.cuda import pooling as _k  # noqa: PLC0415

    x = cache.x
    check_array(dout, "dout", ndim=4, dtype_kind="f")
    _check_same_dtype(x, dout, "x", "dout")
    xp = _module(dout, x)
    out = cache.out if cache.out is not None else xp.empty((1, 1, 1, 1), dtype=x.dtype)
    argmax = cache.argmax if cache.argmax is not None else xp.empty((1, 1, 1, 1), dtype=np.int64)
    dx = xp.empty(x.shape, dtype=x.dtype)
    _launch(_k.pool2d_backward, _blocks(dx.size), None, dout, x, out, argmax, _k.MODES[cache.mode],
            *cache.kernel_size, *cache.stride, *cache.padding, bool(cache.count_include_pad), dx)
    return dx


def _pool_geometry(x, kernel_size, stride, padding, ceil_mode):
    from .layers.pooling import pool_output_size  # noqa: PLC0415

    kernel = check_int_pair(kernel_size, "kernel_size")
    stride = kernel if stride is None else check_int_pair(stride, "stride")
    padding = check_padding(padding, "padding")
    out_hw = tuple(pool_output_size(x.shape[2 + a], kernel[a], stride[a], padding[2 * a], padding[2 * a + 1],
                                    bool(ceil_mode)) for a in range(2))
    return kernel, stride, padding, out_hw


class _Saved:
    """The fields of a ``PoolCache`` that :func:`pool2d_backward_gpu` reads."""

    def __init__(self, mode, x, out, argmax, kernel_size, stride, padding, count_include_pad=True):
        self.mode, self.x, self.out, self.argmax = mode, x, out, argmax
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.count_include_pad = count_include_pad


def max_pool2d_forward_gpu(x, *, kernel_size, stride=None, padding=0, ceil_mode=False):
    """Max pooling on the GPU: ``(out, argmax)``, as ``torch.nn.MaxPool2d``; see ``pool2d_forward_gpu``."""
    kernel, stride, padding, out_hw = _pool_geometry(x, kernel_size, stride, padding, ceil_mode)
    return pool2d_forward_gpu(x, "max", kernel, stride, padding, out_hw)


def max_pool2d_backward_gpu(dout, x, argmax, *, kernel_size, stride=None, padding=0):
    """``dx`` of :func:`max_pool2d_forward_gpu` (give the same hyper-parameters)."""
    kernel = check_int_pair(kernel_size, "kernel_size")
    stride = kernel if stride is None else check_int_pair(stride, "stride")
    return pool2d_backward_gpu(dout, _Saved("max", x, None, argmax, kernel, stride, check_padding(padding)))


def l2_pool2d_forward_gpu(x, *, kernel_size, stride=None, padding=0, ceil_mode=False):
    """L2 pooling (FaceNet NN2) on the GPU: ``sqrt(sum of squares)`` of each zero-padded window."""
    kernel, stride, padding, out_hw = _pool_geometry(x, kernel_size, stride, padding, ceil_mode)
    return pool2d_forward_gpu(x, "l2", kernel, stride, padding, out_hw)[0]


def l2_pool2d_backward_gpu(dout, x, out, *, kernel_size, stride=None, padding=0):
    """``dx`` of :func:`l2_pool2d_forward_gpu`: ``sum over windows of dout * x / out`` (0 where out is 0)."""
    kernel = check_int_pair(kernel_size, "kernel_size")
    stride = kernel if stride is None else check_int_pair(stride, "stride")
    return pool2d_backward_gpu(dout, _Saved("l2", x, out, None, kernel, stride, check_padding(padding)))


# ----------------------------------------------------------------------------- PReLU

def _prelu_shapes(x, alpha):
    check_array(x, "x", dtype_kind="f")
    check_array(alpha, "alpha", ndim=1, dtype_kind="f")
    _check_same_dtype(x, alpha, "x", "alpha")
    if x.ndim < 2 or alpha.shape[0] != x.shape[1]:
        raise ValueError(f"alpha must have shape (C,) with C = x.shape[1]; got x {tuple(x.shape)}, "
                         f"alpha {tuple(alpha.shape)}")
    inner = int(np.prod(x.shape[2:], dtype=np.int64))
    return x.shape[0], x.shape[1], inner


def prelu_forward_gpu(x, alpha):
    """PReLU on the GPU: ``x`` where ``x > 0``, else ``alpha[c] * x``; ``x`` of shape (N, C, ...)."""
    from .kernels.cuda import prelu as _k  # noqa: PLC0415

    _, channels, inner = _prelu_shapes(x, alpha)
    xp = _module(x, alpha)
    flat = xp.ascontiguousarray(x).reshape(-1)
    out = xp.empty_like(flat)
    _launch(_k.prelu_forward, _blocks(flat.size), None, flat, alpha, channels, inner, out)
    return out.reshape(x.shape)


def prelu_backward_gpu(dout, x, alpha):
    """Gradients ``(dx, dalpha)`` of :func:`prelu_forward_gpu`; ``dalpha`` summed in float64."""
    from .kernels.cuda import prelu as _k  # noqa: PLC0415

    batch, channels, inner = _prelu_shapes(x, alpha)
    check_array(dout, "dout", dtype_kind="f")
    if tuple(dout.shape) != tuple(x.shape):
        raise ValueError(f"dout must have the shape of x {tuple(x.shape)}, got {tuple(dout.shape)}")
    xp = _module(dout, x, alpha)
    flat_x = xp.ascontiguousarray(x).reshape(-1)
    flat_d = xp.ascontiguousarray(dout, dtype=x.dtype).reshape(-1)
    dx = xp.empty_like(flat_x)
    _launch(_k.prelu_backward_x, _blocks(flat_x.size), None, flat_d, flat_x, alpha, channels, inner, dx)
    dalpha = xp.empty(channels, dtype=np.float64)
    _launch(_k.prelu_backward_alpha, channels, _k.REDUCE_THREADS, flat_d, flat_x, batch, channels, inner, dalpha)
    return dx.reshape(x.shape), dalpha.astype(x.dtype)


# ----------------------------------------------------------------------------- NMS

def _reduce_mask_on_host(mask, n):
    """Step 2 of the bitmask NMS on the CPU (torchvision's way): indices into the sorted order."""
    col_blocks = mask.shape[1]
    removed = np.zeros(col_blocks, dtype=np.uint64)
    kept = []
    for block in range(col_blocks):
        word = int(removed[block])
        for bit in range(min(n - 64 * block, 64)):
            if (word >> bit) & 1:
                continue
            i = 64 * block + bit
            kept.append(i)
            word |= int(mask[i, block])
            removed[block + 1:] |= mask[i, block + 1:]
    return np.asarray(kept, dtype=np.int64)


def nms_gpu(boxes, scores, iou_threshold=0.5, mode="union", *, reduce="device"):
    """Greedy non-maximum suppression on the GPU, by the bitmask algorithm.

    Same result as :func:`scratchface.detection.nms.nms` (kept indices by
    decreasing score, ties in score to the lower index).

    Parameters
    ----------
    boxes : CuPy array, shape (n, 4)
        Rows ``(x1, y1, x2, y2)`` with ``x2 >= x1``, ``y2 >= y1`` (not checked here).
    scores : CuPy array, shape (n,)
    iou_threshold : float in [0, 1]
    mode : {'union', 'min'}
        Intersection over union, or over the smaller area (MTCNN).
    reduce : {'device', 'host'}
        Where step 2 runs: one CUDA block on the GPU (default), or a loop on the
        CPU after copying the ``n x ceil(n/64)`` mask back (torchvision's
        classic way; slow for many boxes, kept for comparison and teaching).

    Returns
    -------
    keep : int64 CuPy array, shape (k,)

    Notes
    -----
    See :mod:`scratchface.kernels.cuda.nms`. The mask takes ``8 n ceil(n/64)``
    bytes of GPU memory (1.25 GB for 100,000 boxes), as in torchvision.
    """
    from .kernels.cuda import nms as _k  # noqa: PLC0415

    check_array(boxes, "boxes", ndim=2, dtype_kind="fiu")
    check_array(scores, "scores", ndim=1, dtype_kind="fiu")
    if boxes.shape[1] != 4:
        raise ValueError(f"boxes must have shape (n, 4) with rows (x1, y1, x2, y2), got {tuple(boxes.shape)}")
    if scores.shape[0] != boxes.shape[0]:
        raise ValueError(f"scores must have one score per box ({boxes.shape[0]}), got {scores.shape[0]}")
    threshold = check_in_range(iou_threshold, "iou_threshold", 0.0, 1.0)
    check_choice(mode, "mode", ("union", "min"))
    check_choice(reduce, "reduce", ("device", "host"))
    xp = _module(boxes, scores)
    n = boxes.shape[0]
    if n == 0:
        return xp.empty(0, dtype=np.int64)
    order = xp.argsort(-scores.astype(np.float64), kind="stable")
    ordered = xp.ascontiguousarray(boxes[order], dtype=np.float64)
    col_blocks = (n + _k.BLOCK - 1) // _k.BLOCK
    mask = xp.empty((n, col_blocks), dtype=np.uint64)
    _launch(_k.overlap_mask, (col_blocks, col_blocks), _k.BLOCK, ordered, threshold, int(mode == "min"), mask)
    if reduce == "host":
        from .backend import to_host  # noqa: PLC0415

        kept = xp.asarray(_reduce_mask_on_host(to_host(mask), n))
    else:
        removed = xp.empty(col_blocks, dtype=np.uint64)
        keep = xp.empty(n, dtype=np.uint8)
        _launch(_k.reduce_mask, 1, _k.REDUCE_THREADS, mask, n, removed, keep)
        kept = xp.flatnonzero(keep)
    return order[kept].astype(np.int64)


# ----------------------------------------------------------------------------- distances

def _distance_inputs(a, b, metric, eps):
    check_array(a, "a", ndim=2, dtype_kind="f")
    same = b is None or b is a
    if not same:
        check_array(b, "b", ndim=2, dtype_kind="f")
        if b.shape[1] != a.shape[1]:
            raise ValueError(f"a and b must have the same number of columns (the embedding size), "
                             f"got {a.shape[1]} and {b.shape[1]}")
    check_choice(metric, "metric", ("sqeuclidean", "cosine"))
    xp = _module(a) if same else _module(a, b)
    dtype = np.result_type(a.dtype, a.dtype if same else b.dtype, np.float32)
    a = a.astype(dtype, copy=False)
    b = a if same else b.astype(dtype, copy=False)
    if metric == "cosine":                       # unit rows; a row of norm < eps is divided by eps
        a = a / xp.maximum(xp.sqrt((a * a).sum(axis=1)), dtype.type(eps))[:, None]
        b = a if same else b / xp.maximum(xp.sqrt((b * b).sum(axis=1)), dtype.type(eps))[:, None]
    return xp, a, b, same


def _finish(d, a2, b2, metric, row_offset, same):
    """Turn the products in ``d`` into distances in place (the finishing kernel)."""
    from .kernels.cuda import distances as _k  # noqa: PLC0415

    if d.size == 0:
        return d
    if metric == "sqeuclidean":
        _launch(_k.finish_sq_euclidean, _blocks(d.size), None, d, a2, b2, row_offset, bool(same))
    else:
        _launch(_k.finish_cosine, _blocks(d.size), None, d, row_offset, bool(same))
    return d


def pairwise_distances_gpu(a, b=None, *, metric="sqeuclidean", eps=1e-12):
    """Matrix of distances between the rows of ``a (n, d)`` and ``b (m, d)`` on the GPU, shape (n, m).

    ``metric='sqeuclidean'``: ``max(|a_i|^2 + |b_j|^2 - 2 a_i.b_j, 0)``;
    ``'cosine'``: ``clip(1 - cos, 0, 2)``. ``b`` omitted (or ``b is a``): an
    exactly zero diagonal. Same values as
    :func:`scratchface.recognition.distances.pairwise_distances`.
    The product is one ``xp.matmul`` (cuBLAS); a kernel adds the norms and clamps.
    """
    xp, a, b, same = _distance_inputs(a, b, metric, eps)
    d = xp.matmul(a, b.T)
    a2 = (a * a).sum(axis=1)
    b2 = a2 if same else (b * b).sum(axis=1)
    return _finish(d, a2, b2, metric, 0, same)


def nearest_neighbors_gpu(queries, gallery=None, *, k=1, metric="sqeuclidean", exclude_self=False,
                          block_size=8192):
    """The ``k`` nearest gallery rows of every query on the GPU, one block of queries at a time.

    Same results as :func:`scratchface.recognition.distances.nearest_neighbors`
    (nearest first, equal distances to the lower index). ``k <= 32`` uses the
    top-k kernel (one warp per row); a larger ``k`` sorts each row (``xp.argsort``,
    stable).

    Returns
    -------
    indices : int64 CuPy array, shape (n, k)
    distances : CuPy array, shape (n, k)
    """
    from .kernels.cuda import distances as _k  # noqa: PLC0415

    xp, a, b, same = _distance_inputs(queries, gallery, metric, 1e-12)
    k = check_positive_int(k, "k")
    block_size = check_positive_int(block_size, "block_size")
    if exclude_self and not same:
        raise ValueError("exclude_self=True needs gallery=None (the queries searched among themselves)")
    n, m = a.shape[0], b.shape[0]
    candidates = m - 1 if exclude_self else m
    if k > candidates:
        raise ValueError(f"k must be at most the number of gallery rows to choose from ({candidates}), got {k}")
    indices = xp.empty((n, k), dtype=np.int64)
    distances = xp.empty((n, k), dtype=a.dtype)
    a2 = (a * a).sum(axis=1)
    b2 = a2 if same else (b * b).sum(axis=1)
    bt = b.T
    for start in range(0, n, block_size):
        stop = min(start + block_size, n)
        d = _finish(xp.matmul(a[start:stop], bt), a2[start:stop], b2, metric, start, same)
        if exclude_self:
            r = xp.arange(stop - start)
            d[r, r + start] = xp.inf
        if k <= _k.KMAX:
            _launch(_k.topk_rows, stop - start, _k.WARP, d, k, indices[start:stop], distances[start:stop])
        else:
            order = xp.argsort(d, axis=1, kind="stable")[:, :k]
            indices[start:stop] = order
            distances[start:stop] = xp.take_along_axis(d, order, axis=1)
    return indices, distances


# ----------------------------------------------------------------------------- HOG

def hog_cell_histograms_gpu(image, *, orientations=9, pixels_per_cell=(8, 8), binning="hard"):
    """HOG cell histograms of a grey ``(H, W)`` or colour ``(H, W, C)`` float image, on the GPU.

    Gradients, orientations and votes fused in one kernel (one thread per
    cell); the same values as the readable steps ``image_gradients`` /
    ``dominant_channel_gradients`` -> ``magnitude_orientation`` ->
    ``cell_histograms`` of :mod:`scratchface.detection.hog`.

    Returns
    -------
    histograms : float64 CuPy array, shape (H // rows, W // cols, orientations)
        The mean vote per pixel of each cell (as scikit-image).
    """
    from .detection.hog import BINNINGS, orientation_bin_edges  # noqa: PLC0415
    from .kernels.cuda import hog as _k  # noqa: PLC0415

    check_array(image, "image", ndim=(2, 3), dtype_kind="f")
    orientations = check_positive_int(orientations, "orientations")
    c_row, c_col = check_int_pair(pixels_per_cell, "pixels_per_cell")
    check_choice(binning, "binning", BINNINGS)
    xp = _module(image)
    if image.ndim == 2:
        image = image[:, :, None]
    n_rows, n_cols = image.shape[0] // c_row, image.shape[1] // c_col
    hist = xp.empty((n_rows, n_cols, orientations), dtype=np.float64)
    if hist.size == 0:
        return hist
    edges = xp.asarray(orientation_bin_edges(orientations))
    _launch(_k.cell_histograms, _blocks(n_rows * n_cols, 64), 64, image, c_row, c_col, edges,
            BINNINGS.index(binning), hist)
    return hist
