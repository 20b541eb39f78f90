"""Numba kernels for 2-D convolution, one thread pool, each path chosen by measurement (#16).

Only NumPy arrays; float32 (fast path) and float64 (gradchecks) compile
separately. The validated entry point is :func:`scratchface.layers.conv.conv2d_forward`,
which imports this module lazily (it imports Numba).

Which path computes what (``conv2d_output_numba``, ``conv2d_grads_numba``; figures below, in
``scratchface.kernels.implicit_conv`` and in ``python benchmarks/bench_implicit_conv.py``):

==================================================  ================================================================
forward                                             path
==================================================  ================================================================
< ``CONV_SMALL_WORK`` (64 Ki) im2col elements       one call on one thread (``implicit_conv.small_conv_output``)
3x3, stride 1, C, F >= 64, CF >= 8192, >= 6x6 out   Winograd F(2x2, 3x3) (``scratchface.kernels.winograd``)
1x1, stride 1, >= 128 ch on >= 10x10; < 4 images    pixel tiles, the micro-kernel on NCHW (``pointwise``)
1x1, stride 1, >= 4 images of >= 36 pixels          one matrix product per image (``scratchface.kernels.pointwise``)
1x1, stride 1, >= 4 images of < 36 pixels           the whole batch channel-major, ``W @ X (C, N*H*W)`` (``pointwise``)
3-wide, stride 1, < 16 filters, rows >= 64 wide     the direct kernel (``direct_conv``: P-Net's first layer)
>= 6 images, <= 4x4 out, <= 85 % taps inside        pixels by position, taps on padding skipped (``tap_skipping``)
other 1x1 (stride 1, unpadded)                      the columns path below (channels-last ``x`` is the columns)
fewer output pixels than filters                    the columns path below (``_implicit_pays``)
everything else                                     the micro-kernel (``scratchface.kernels.implicit_conv``)
==================================================  ================================================================

Backward: the per-image products for the 1x1 layers of >= 4 images of >= 64 pixels; the whole batch
channel-major (``pointwise.channel_major_backward``: ``dW = D X^T`` and ``dX = W^T D`` with ``D (F, N*H*W)``,
in tasks of about ``CHANNEL_BLOCK`` input channels) for the other 1x1 layers of >= 4 images (NN2's at 6x6 and
3x3); for stride-1 kernels larger than 1x1 with at least ``DX_BY_FORWARD_MIN_C`` input channels, at most
``DX_MAX_GROWTH`` times as many input as output pixels and at least as many output pixels as filters, and for
the 1x1 layers of fewer than 4 images from ``POINTWISE_IMPLICIT_MIN_PIXELS`` (6x6) per image
(``_implicit_grads_pay``: NN2's 3x3 / 5x5 layers, P-Net, MTCNN's valid 3x3 on crops), ``dW`` by the
micro-kernel over the patches and ``dx`` as the forward convolution of ``dout`` with the kernels turned by 180
degrees (by Winograd, the micro-kernel or the 1x1 paths, as the table says; on outputs of at most 64 pixels
with at most 85 % of the pixel-tap pairs inside the input, ``dW`` over the taps inside only,
``scratchface.kernels.tap_skipping``: NN2's 3x3 / 5x5 layers at 6x6 and 3x3, 5a 3x3 included); strided layers
of at least ``DX_BY_FORWARD_MIN_C`` channels and ``STRIDED_MIN_IMAGES`` images (NN2's 3c / 4e) ``dW`` by the
micro-kernel over the strided patches and ``dx`` by tiles of ``dout_t @ W`` added onto the patches
(``_strided_grads``, eighth pass); the rest (conv1 and other 3-channel inputs, MTCNN's valid 2x2 on 4x4 crops,
tiny 1x1 layers) by the columns path below. The
channel-major 1x1 products against the routes they replaced (sixth pass, Zen 4, 2 threads, batch 32, both in
turn in one process, a timing script): backward 5a 1x1 1024 -> 384 / 128 at 3x3 1.15x / 1.27x (the columns),
640 -> 256 / 128 at 6x6 1.21x / 1.24x and 832 -> 256 at 7x7 1.18x (the micro-kernel); forward at 3x3 1.23x /
1.28x (the columns); at 6x6 one product per image stays faster (0.6x-0.9x for the whole batch, whose every
task packs all of ``X``). Tried with it: the same whole-batch products for 3x3 / 5x5 kernels on 3x3 outputs
(an im2col per block of channels): 5a 3x3 backward 1.18x-2.07x, but forwards 0.6x-1.0x and other small layers
0.75x-1.15x: not kept.

Tried for stride 2 (fifth pass, Zen 1, a timing script): ``dW`` by the micro-kernel
and ``dx`` alone by the columns path (``dout @ W`` and col2im, no im2col): 3c 3x3/2 11.8 + 12.3 ms against
21.3-25.8 for both by the columns; conv1 30.2 + 26.9 against 50.7: no gain, dropped. On Zen 4 (eighth pass)
the micro-kernel's ``dW`` is at oneDNN's speed there, and with ``dx`` by its own tiles the pair wins
(``_strided_grads``).

The columns path (the forward of every layer until the micro-kernel; see ``benchmarks/bench_conv.py``). With
``K = KH*KW*C`` and ``P = OH*OW``, the input is first padded and turned
**channels last**, ``xh (N, Hp, Wp, C)`` (one parallel pass), so that kernel row
``i`` of one output pixel's receptive field is ``KW*C`` consecutive values. The work
is cut into chunks (forward: runs of the ``N*OH`` output rows; backward: runs of
whole images), at least one per thread and about ``COLS_CHUNK`` = 256 Ki column
elements each, so that a chunk's columns stay in L2 / L3 between being written and
being multiplied. One Numba ``prange`` over the chunks; inside it, each thread:

* forward: the columns of its rows, ``cols (pixels, K)``, row ``(b, p, q)`` holding
  ``xh[b, p*sh + i, q*sw : q*sw + KW, :]`` for each ``i`` (``KH`` copies of ``KW*C``
  values; a 1x1, stride-1, unpadded convolution uses ``xh`` itself), one GEMM
  ``cols @ W.T`` for ``W (F, K)`` (``np.dot`` in Numba: BLAS, on this thread; ``W @ cols.T``
  when the chunk has fewer pixels than filters, which BLAS runs faster), the result
  written straight into NCHW with the bias added;
* backward: ``dout`` of its images to ``(pixels, F)`` (the bias gradient summed
  in the same pass, float64), the columns, ``dW_t (K, F) += cols.T @ dout_t`` into
  the thread's own accumulator (summed over threads at the end),
  ``dcols = dout_t @ W``, added back onto channels-last padded planes of its own
  images, whose interior becomes ``dx`` (no two threads write one pixel). When one
  image's columns exceed ``COLS_CHUNK`` (conv2 at 56x56: 7 MB), a chunk is one image
  done in blocks of output rows.

Why channels last. The columns used to be ``(K, pixels)`` from the NCHW input: each
copy was one output row of one ``(c, i, j)``, ``OW`` values (12 on NN2's inception
layers, 9-10 on MTCNN's crops), and the columns cost a third of the forward (3a 5x5:
im2col 3.0 ms, GEMM 4.0 ms, one thread, 0.5 G values/s; a timing script on 4c92194, not kept).
Channels last, a copy is
``KW*C`` values (80 to 576) and the GEMM's ``(pixels, F)`` orientation is as fast or
faster for BLAS. Commit 51c83f6 (this change alone) against 4c92194, called in turn in one process
(``benchmarks/compare_conv_versions.py --threads 1`` run from a checkout of 51c83f6; quiet 2-core
machine), forward + backward, old / new time: 1 thread conv1 1.18x, 3a 5x5
1.42x, 3b 5x5 1.27x, 3a 3x3 1.14x, conv2 1.09x, 3a 1x1 1.01x, 4e 5x5/2 1.17x,
5a 3x3 0.98x, R-Net conv1 / conv2 1.01x / 1.27x, O-Net conv2 / conv3 1.14x / 1.23x;
2 threads within 0.05 of these. (Before that: the backward's columns in NCHW row
blocks of one large image, 16x64x56x56 -> 192, 3x3: 1590 vs 1881 ms with 2 image
chunks, loaded machine.)

Two shapes skipped the columns before the micro-kernel and still do. A **1x1, stride-1, unpadded**
convolution on at least ``POINTWISE_MIN_PIXELS`` pixels per image is one matrix product per image
(``scratchface.kernels.pointwise``). A **3x3, stride-1** convolution with at least 64 input and
output channels on at least 20x20 outputs goes to Winograd F(2x2, 3x3) (``scratchface.kernels.winograd``;
NN2's conv2, and inception 3 at 224x224), and so does its ``dx``, a 3x3 convolution of ``dout`` with the
kernels turned by 180 degrees: conv2 forward 1.69x, backward 1.16x faster than 4c92194's columns, and
still 1.23x-1.29x faster than the micro-kernel (``python benchmarks/bench_winograd.py``).

Few channels on wide rows (MTCNN's P-Net on its large pyramid levels) go to a **direct kernel**
(``scratchface.kernels.direct_conv``, whose docstring has the figures; ``_direct_pays``).

BLAS is held to one thread for the call
(``scratchface.kernels._numba.blas_single_threaded``, threadpoolctl): the
parallelism is Numba's alone.
Below ``CONV_SMALL_WORK`` column elements, one thread does everything (the forward: the micro-kernel in one
Numba call; the backward: ``scratchface.kernels._numba.single_thread_below``).

Why. The previous version (im2col in one Numba parallel loop, one GEMM over the
batch in multi-threaded OpenBLAS, col2im in another Numba loop) ran the GEMMs near
the single-core peak, but with 2 threads it handed the cores back and forth
between two thread pools (Numba's OpenMP and OpenBLAS's pthreads), each spinning
while the other worked. Measured with 1 thread everywhere it was 0.75-0.84x of
torch's time per shape; with 2 threads only 0.16-0.52x (backward worst), and on a
loaded machine the R-Net conv2 backward took 1152 ms with 2 threads vs 95 ms with
1. Same shapes, loaded 2-core machine, fwd + bwd, (old 2 threads, old with BLAS
on 1 thread, old all on 1 thread): 3a 3x3 459 / 216 / 179 ms, R-Net conv2 996 /
244 / 166 ms, 3a 5x5 460 / 88 / 45 ms. The fused kernels keep a single pool.

What was tried and dropped: the zero-copy implicit GEMM (input padded once into
a channels-last ``(N*Hp*Wp, C)`` buffer; each kernel offset one SciPy ``sgemm`` of
a contiguous row slice, accumulating in place with ``beta = 1``; garbage rows at
the borders). Tested equal, but slower on every NN2 / MTCNN shape, 1 thread:
3a 3x3 at 12x12 52 ms forward (vs 39 ms im2col + GEMM), and the weight gradient,
a GEMM with ``K = N*Hp*Wp`` and a small ``C x F`` output, ran at 9 GFLOP/s where
the im2col ``dW`` GEMM runs at 31 (OpenBLAS is slow for that transposed, long-K
shape): fwd + bwd 348 vs 166 ms (3a 3x3), 1621 vs 812 ms (conv2). ``K = C`` per
offset is too short a reduction for OpenBLAS's kernels. Earlier figures (2 threads,
busy machine): im2col reading a padded input vs bounds tests 41 vs 54 ms (conv1);
col2im into a padded plane vs bounds tests 20 vs 28 ms (3x3 at 12x12); one GEMM
over many images vs ``np.matmul`` per image 115 vs 848 ms (conv2), hence chunks
of many images (or rows), not one image per GEMM.
"""
from __future__ import annotations

import numba
import numpy as np
from numba import prange

from . import pointwise as pointwise_module
from ._numba import blas_single_threaded, even_blocks, single_thread_below
from .activations import prelu
from .direct_conv import direct_forward
from . import implicit_conv as implicit_module
from .implicit_conv import (filter_major, forward_chunk, implicit_conv_input_grad, implicit_conv_output,
                            implicit_conv_weight_grad, kernels_from_patch_rows, packed_columns, packed_weights,
                            small_conv_output, weight_grad_blocks)
from .layout import interior_to_nchw, padded_channels_last
from .microkernel import tile_width
from .pointwise import (channel_major_backward, channel_major_forward, per_image_backward, per_image_forward,
                        pixel_tiles_forward)
from .tap_skipping import tap_skipping_output, tap_skipping_pays, tap_skipping_weight_grad
from .tap_skipping import forward_chunk as tap_skipping_chunk
from .winograd import winograd_output_numba, winograd_pays

__all__ = ["columns_output", "conv2d_grads_numba", "conv2d_output_numba"]


# ---------------------------------------------------------------- the columns path, one thread pool
@numba.njit(cache=True)
def _patch_rows(planes, g0, g1, b0, kh, kw, sh, sw, oh, ow, cols, adjoint):
    """im2col and its adjoint over the output rows ``g = b*OH + p`` in ``[g0, g1)``, on channels-last
    planes ``(N, Hp, Wp, C)`` (image ``b`` at ``planes[b - b0]``): kernel row ``i`` of output pixel
    ``(b, p, q)`` is ``KW*C`` consecutive values, ``planes[b - b0, p*sh + i, q*sw : q*sw + KW, :]``,
    column block ``i`` of row ``(g - g0)*OW + q`` of ``cols (pixels, KH*KW*C)``.

    ``adjoint`` False (im2col): copy the patches into ``cols``; True (col2im): add ``cols`` back onto
    the planes, where patches overlap."""
    c, wp = planes.shape[3], planes.shape[2]
    flat = planes.reshape(-1)
    run = kw * c
    hw = planes.shape[1] * wp
    pix = 0
    for g in range(g0, g1):
        b, p = g // oh - b0, g % oh
        for q in range(ow):
            for i in range(kh):
                at = (b * hw + (p * sh + i) * wp + q * sw) * c
                if adjoint:
                    for e in range(run):
                        flat[at + e] += cols[pix, i * run + e]
                else:
                    for e in range(run):
                        cols[pix, i * run + e] = flat[at + e]
            pix += 1


@numba.njit(cache=True)
def _columns(xh, g0, g1, kh, kw, sh, sw, oh, ow):
    """The columns ``(pixels, KH*KW*C)`` of output rows ``[g0, g1)``; for a 1x1, stride-1 convolution
    without padding, a view of the input itself (nothing copied)."""
    n, hp, wp, c = xh.shape
    if kh == 1 and kw == 1 and sh == 1 and sw == 1 and hp == oh and wp == ow:
        return xh.reshape(n * hp * wp, c)[g0 * ow:g1 * ow]
    cols = np.empty(((g1 - g0) * ow, kh * kw * c), dtype=xh.dtype)
    _patch_rows(xh, g0, g1, 0, kh, kw, sh, sw, oh, ow, cols, False)
    return cols


@numba.njit(cache=True, parallel=True)
def _fused_forward(xh, wmat, bias, alpha, has_alpha, kh, kw, sh, sw, oh, ow, nchunks, out):
    """Chunk ``t`` of the ``N*OH`` output rows: its columns, one GEMM ``cols @ W.T`` (``W (F, KH*KW*C)``), the result
    written as NCHW + bias, and through PReLU with slopes ``alpha`` when ``has_alpha`` (the epilogue:
    no second pass). All in the dtype of ``x`` (``bias`` zeros when there is none)."""
    rows = out.shape[0] * oh
    f = wmat.shape[0]
    for t in prange(nchunks):
        g0 = t * rows // nchunks
        g1 = (t + 1) * rows // nchunks
        if g1 == g0:
            continue
        cols = _columns(xh, g0, g1, kh, kw, sh, sw, oh, ow)
        if (g1 - g0) * ow < f:                                  # few pixels: BLAS is faster on (F, pixels)
            res = np.dot(wmat, cols.T).T
        else:
            res = np.dot(cols, wmat.T)                          # (pixels, F), BLAS on this thread
        for g in range(g0, g1):
            b, base, start = g // oh, (g % oh) * ow, (g - g0) * ow
            for k in range(f):
                add = bias[k]
                slope = alpha[k]
                dst = out[b, k]
                for q in range(ow):
                    v = res[start + q, k] + add
                    if has_alpha:
                        v = prelu(v, slope)
                    dst[base + q] = v


@numba.njit(cache=True)
def _backward_rows(dout, xh, wmat, g0, g1, b0, kh, kw, sh, sw, oh, ow, acc, dw_acc, db_acc):
    """Output rows ``[g0, g1)`` (whole images, or a block of one): ``dout`` to ``(pixels, F)`` (the bias
    gradient summed in the same pass, float64), the columns, ``dW_acc (KH*KW*C, F) += cols.T @ dout_t``,
    ``dcols = dout_t @ W``, added back onto the padded channels-last planes ``acc[b - b0]``."""
    f = dout.shape[1]
    m = (g1 - g0) * ow
    dout_t = np.empty((m, f), dtype=dout.dtype)
    for k in range(f):
        total = 0.0
        for g in range(g0, g1):
            src = dout[g // oh, k]
            base, start = (g % oh) * ow, (g - g0) * ow
            for q in range(ow):
                v = src[base + q]
                dout_t[start + q, k] = v
                total += v
        db_acc[k] += total
    cols = _columns(xh, g0, g1, kh, kw, sh, sw, oh, ow)
    dw_acc += np.dot(cols.T, dout_t)
    _patch_rows(acc, g0, g1, b0, kh, kw, sh, sw, oh, ow, np.dot(dout_t, wmat), True)


@numba.njit(cache=True, parallel=True)
def _fused_backward(dout, xh, wmat, kh, kw, sh, sw, top, left, oh, ow, nchunks, rows, dx, dw_parts, db_parts):
    """Part ``t`` of ``T`` takes chunks ``t*nchunks//T .. (t+1)*nchunks//T``; a chunk is a run of whole images
    (``_backward_rows`` once), or, with ``rows < OH`` (one image's columns exceed ``COLS_CHUNK``), one image
    done in blocks of ``rows`` output rows, each block's columns in cache for its two GEMMs. ``dx`` of the
    chunk's images is summed in its own padded channels-last planes: no two threads write one pixel."""
    n = dout.shape[0]
    hp, wp, c = xh.shape[1:]
    parts = dw_parts.shape[0]
    for t in prange(parts):
        dw_acc = dw_parts[t]
        db_acc = db_parts[t]
        for s in range(t * nchunks // parts, (t + 1) * nchunks // parts):
            b0 = s * n // nchunks
            b1 = (s + 1) * n // nchunks
            if b1 == b0:
                continue
            acc = np.zeros((b1 - b0, hp, wp, c), dtype=dx.dtype)
            step = rows if rows < oh else (b1 - b0) * oh
            for g0 in range(b0 * oh, b1 * oh, step):
                _backward_rows(dout, xh, wmat, g0, min(b1 * oh, g0 + step), b0, kh, kw, sh, sw, oh, ow,
                               acc, dw_acc, db_acc)
            interior_to_nchw(acc, b0, top, left, dx)


def conv2d_output_numba(x, w, b, stride, padding, alpha=None):
    """The convolution output ``out (N, F, OH, OW)`` of validated NumPy arrays, through PReLU if ``alpha`` (F,).

    See :func:`scratchface.layers.conv.conv2d_forward` and :func:`scratchface.layers.conv.conv2d_prelu`
    for the arguments and the math.
    """
    n = x.shape[0]
    f, c, kh, kw = w.shape
    top, bottom, left, right = padding
    oh = (x.shape[2] + top + bottom - kh) // stride[0] + 1
    ow = (x.shape[3] + left + right - kw) // stride[1] + 1
    cols_size = n * oh * ow * c * kh * kw
    bias = np.zeros(f, dtype=x.dtype) if b is None else np.ascontiguousarray(b)
    slopes = bias if alpha is None else np.ascontiguousarray(alpha)
    if cols_size < CONV_SMALL_WORK:     # too little work to wake the thread pool for: one call (so the paths
                                        # below run on all threads)
        out = np.empty((n, f, oh, ow), dtype=x.dtype)
        small_conv_output(np.ascontiguousarray(x), w, bias, slopes, alpha is not None, stride[0], stride[1], top,
                          bottom, left, right, out)
        return out
    if winograd_pays(c, f, kh, kw, stride, oh, ow, padding):
        out = np.empty((n, f, oh, ow), dtype=x.dtype)
        with blas_single_threaded():
            return winograd_output_numba(x, w, bias, alpha, padding, out)
    pointwise = _pointwise_path(n, c, oh * ow, tile_width(x)) if _is_pointwise(kh, kw, stride, padding) else None
    if pointwise in ("pixel tiles", "per image", "channel major"):
        out = np.empty((n, f, oh * ow), dtype=x.dtype)
        args = (np.ascontiguousarray(x).reshape(n, c, -1), np.ascontiguousarray(w).reshape(f, c), bias, slopes,
                alpha is not None)
        if pointwise == "pixel tiles":
            pixel_tiles_forward(*args, pointwise_module.PIXEL_CHUNK, out)
        else:
            with blas_single_threaded():
                if pointwise == "per image":
                    per_image_forward(*args, out)
                else:
                    channel_major_forward(*args, even_blocks(min(c, f), CHANNEL_BLOCK), out)
        return out.reshape(n, f, oh, ow)
    if _direct_pays(c, f, kw, stride, ow):
        out = np.empty((n, f, oh, ow), dtype=x.dtype)
        direct_forward(_padded(x, padding), np.ascontiguousarray(w), bias, slopes, alpha is not None, out)
        return out
    if tap_skipping_pays(n, x.shape[2], x.shape[3], kh, kw, stride, padding):
        out = np.empty((n, f, oh, ow), dtype=x.dtype)
        w_pack = packed_weights(w)
        tap_skipping_output(padded_channels_last(x, padding), w_pack, bias, slopes, alpha is not None, kh, kw,
                            stride[0], stride[1], top, left, x.shape[2], x.shape[3],
                            tap_skipping_chunk(w_pack.shape[0], n * oh * ow), out)
        return out
    if pointwise == "columns" or not _implicit_pays(n * oh * ow, f):
        return columns_output(x, w, bias, slopes, alpha is not None, stride, padding)
    out = np.empty((n, f, oh, ow), dtype=x.dtype)
    implicit_conv_output(padded_channels_last(x, padding), packed_weights(w), bias, slopes, alpha is not None, kh, kw,
                         stride[0], stride[1], oh, ow, top, bottom, forward_chunk(n * oh * ow), out)
    return out


def columns_output(x, w, bias, alpha, has_alpha, stride, padding):
    """The forward by the columns path (channels-last im2col + BLAS per chunk), any shape: ``out (N, F, OH, OW)``."""
    n = x.shape[0]
    f, c, kh, kw = w.shape
    oh = (x.shape[2] + padding[0] + padding[1] - kh) // stride[0] + 1
    ow = (x.shape[3] + padding[2] + padding[3] - kw) // stride[1] + 1
    cols_size = n * oh * ow * c * kh * kw
    out = np.empty((n, f, oh * ow), dtype=x.dtype)
    with single_thread_below(cols_size, CONV_SMALL_WORK), blas_single_threaded():
        wmat = np.ascontiguousarray(w.transpose(0, 2, 3, 1)).reshape(f, -1)     # (F, KH*KW*C)
        _fused_forward(padded_channels_last(x, padding), wmat, bias, alpha, has_alpha, kh, kw, stride[0], stride[1],
                       oh, ow, _chunks(n * oh, cols_size), out)
    return out.reshape(n, f, oh, ow)


def _is_pointwise(kh, kw, stride, padding):
    """A 1x1, stride-1, unpadded convolution: the same matrix applied to every pixel's channels."""
    return kh == 1 and kw == 1 and stride == (1, 1) and not any(padding)


def _pointwise_path(n, c, npix, width):
    """Which kernel computes the forward of a 1x1, stride-1, unpadded convolution of ``n`` images of ``c``
    channels and ``npix`` pixels (``width``: ``tile_width``, 16 in float32): ``"pixel tiles"`` (the
    micro-kernel on NCHW as it is, ``scratchface.kernels.pointwise.pixel_tiles_forward``) on at least
    ``width`` pixels per image when there are too few images for one task each, or from
    ``PIXEL_TILES_MIN_PIXELS`` pixels and ``PIXEL_TILES_MIN_C`` channels; else ``"per image"`` (one BLAS
    product per image) from ``POINTWISE_FORWARD_MIN_PIXELS``; on fewer pixels of at least
    ``POINTWISE_MIN_IMAGES`` images ``"channel major"`` (the whole batch as one product,
    ``scratchface.kernels.pointwise.channel_major_forward``: NN2's 1x1 layers at 3x3); else ``"columns"``.

    Measured (2 threads, float32, batch 32 unless said, forward, a timing script, both in turn): P-Net's
    heads on one 108x145 level, 32 -> 2 / 4 filters, 1.07 / 0.63 ms by the columns, 0.22 / 0.15 by pixel
    tiles (torch 0.88 / 0.48); per image / pixel tiles time at 12x12 192 -> 64 1.16x, 256 -> 64 1.24x, at
    24x24 192 -> 64 1.47x, but with 64 or 96 channels 0.95x-0.98x (12x12 and 24x24: the reduction too short
    for the tile's stores); at 6x6 the last block of each image repeats 12 of 36 pixels and one product per
    image wins (640 -> 256: 5.9-6.1 against 6.9 ms; the columns 7.3)."""
    if npix >= width and (n < POINTWISE_MIN_IMAGES or (npix >= PIXEL_TILES_MIN_PIXELS and c >= PIXEL_TILES_MIN_C)):
        return "pixel tiles"
    if n >= POINTWISE_MIN_IMAGES and npix >= POINTWISE_FORWARD_MIN_PIXELS:
        return "per image"
    if n >= POINTWISE_MIN_IMAGES:
        return "channel major"
    return "columns"



def _pointwise_grads_path(n, npix):
    """Which kernel computes the backward of a 1x1, stride-1, unpadded convolution of ``n`` images of ``npix``
    pixels: from ``POINTWISE_MIN_IMAGES`` images, ``"per image"`` (one matrix product per image and task, in
    NCHW as it is: no copies) from ``POINTWISE_MIN_PIXELS`` pixels, ``"channel major"`` (the whole batch as
    one product, ``scratchface.kernels.pointwise.channel_major_backward``) on fewer; None on fewer images
    (the micro-kernel's backward from ``POINTWISE_IMPLICIT_MIN_PIXELS``, else the columns)."""
    if n < POINTWISE_MIN_IMAGES:
        return None
    return "per image" if npix >= POINTWISE_MIN_PIXELS else "channel major"


def _implicit_pays(pixels, f):
    """The micro-kernel for a layer with at least as many output pixels as filters. With fewer (NN2's 5a
    3x3 at 3x3: 288 pixels, 384 filters) every task streams more weights than patches, and the columns
    path's BLAS product ``W @ cols.T`` is faster (forward 7.9 against 9.4 ms, ``python
    benchmarks/bench_winograd.py``)."""
    return pixels >= f


def _implicit_grads_pay(c, f, kh, kw, stride, in_pixels, out_pixels, n, dx_padding, skips_taps=False):
    """The micro-kernel's backward (``_implicit_grads``): stride 1, ``dx`` as a forward convolution with ``C``
    filters only where that is not wasteful: ``C >= DX_BY_FORWARD_MIN_C`` (with 3, R-Net conv1, its tiles of
    16 filters are mostly empty: 0.50x; with 10, P-Net conv2, 2.09x) and at most ``DX_MAX_GROWTH`` times
    as many input pixels as output pixels (the forward of ``dout`` padded by ``K - 1 - padding``
    multiplies the zeros of that padding too: a valid 3x3 on 10x10, O-Net conv3, 1.56 times the work of
    the columns' col2im, was 0.92x, R-Net conv2 0.89x, in the fifth pass; in the seventh, the micro-kernel
    on Zen 4, 1.06x / 1.15x, but the 2x2 layers on 4x4 crops, 1.78 times the work, 0.89x / 0.90x: a
    timing script, ``DX_MAX_GROWTH`` 1.25 against 2). Measured: ``python benchmarks/bench_implicit_conv.py``.

    A 1x1 (unpadded) layer of fewer than ``POINTWISE_MIN_IMAGES`` images (the others take the per-image or
    the channel-major products) comes here from ``POINTWISE_IMPLICIT_MIN_PIXELS`` pixels per image; its
    ``dx`` is the forward of ``dout`` with ``W^T``,
    by the per-image products or the pixel tiles. Against the columns, fwd + bwd, 2 threads, batch 32 (a
    timing script, ``conv2d_grads_numba`` against ``_implicit_grads``): 640 -> 256 / 160 / 96 at 6x6 1.21x /
    1.04x / 1.16x, 832 -> 256 at 7x7 (NN2 at 224) 1.13x, one 100x120 image 32 -> 6 (P-Net's heads) 2.1x;
    at 5x5 0.98x, at 3x3 0.75x; one product per image stays faster at 12x12 (1.27x) and 24x24."""
    if stride != (1, 1) or min(dx_padding) < 0 or not (skips_taps or _implicit_pays(n * out_pixels, f)):
        return False
    if kh * kw == 1:
        return out_pixels >= POINTWISE_IMPLICIT_MIN_PIXELS
    return c >= DX_BY_FORWARD_MIN_C and in_pixels <= DX_MAX_GROWTH * out_pixels


def _strided_grads_pay(c, f, stride, n, out_pixels):
    """``_strided_grads`` for a strided layer of at least ``DX_BY_FORWARD_MIN_C`` input channels, ``STRIDED_MIN_IMAGES``
    images (its tasks are runs of images) and as many output pixels as filters (NN2's 3c / 4e 3x3/2 and 5x5/2;
    conv1, 3 channels, keeps the columns)."""
    return (stride != (1, 1) and c >= DX_BY_FORWARD_MIN_C and n >= STRIDED_MIN_IMAGES
            and _implicit_pays(n * out_pixels, f))


def _direct_pays(c, f, kw, stride, ow):
    """The direct kernel for stride 1, ``KW = 3``, few channels (``C F <= DIRECT_MAX_CF``) on wide rows
    (``OW >= DIRECT_MIN_OW``): MTCNN's P-Net on the large pyramid levels."""
    return stride == (1, 1) and kw == 3 and c * f <= DIRECT_MAX_CF and ow >= DIRECT_MIN_OW and f < DIRECT_MAX_F


def conv2d_grads_numba(dout, x, w, has_bias, stride, padding):
    """``(dx, dw, db)`` for validated NumPy arrays (see ``scratchface.layers.conv.conv2d_backward``)."""
    n = x.shape[0]
    f, c, kh, kw = w.shape
    oh, ow = dout.shape[2:]
    cols_size = n * oh * ow * c * kh * kw
    pointwise = _pointwise_grads_path(n, oh * ow) if _is_pointwise(kh, kw, stride, padding) else None
    if pointwise == "per image":
        args = (np.ascontiguousarray(dout).reshape(n, f, -1), np.ascontiguousarray(x).reshape(n, c, -1),
                np.ascontiguousarray(w).reshape(f, c))
        with single_thread_below(cols_size, CONV_SMALL_WORK), blas_single_threaded():
            parts = min(MAX_PARTS, n)
            dw_parts = np.zeros((parts, f, c), dtype=x.dtype)
            db_parts = np.zeros((parts, f), dtype=np.float64)
            dx = np.empty(x.shape, dtype=x.dtype)
            per_image_backward(*args, dx.reshape(n, c, -1), dw_parts, db_parts)
        return dx, _parts_sum(dw_parts).reshape(w.shape), _bias_grad(db_parts, has_bias, x.dtype)
    if pointwise == "channel major":
        dx = np.empty(x.shape, dtype=x.dtype)
        dw = np.empty((f, c), dtype=x.dtype)
        db = np.empty(f, dtype=np.float64)
        with single_thread_below(cols_size, CONV_SMALL_WORK), blas_single_threaded():
            channel_major_backward(np.ascontiguousarray(dout).reshape(n, f, -1),
                                   np.ascontiguousarray(x).reshape(n, c, -1), np.ascontiguousarray(w).reshape(f, c),
                                   even_blocks(min(c, f), CHANNEL_BLOCK), dx.reshape(n, c, -1), dw, db)
        return dx, dw.reshape(w.shape), (db.astype(x.dtype) if has_bias else None)
    dx_padding = (kh - 1 - padding[0], kh - 1 - padding[1], kw - 1 - padding[2], kw - 1 - padding[3])
    taps = tap_skipping_pays(n, x.shape[2], x.shape[3], kh, kw, stride, padding, weight_grad=True)
    if _implicit_grads_pay(c, f, kh, kw, stride, x.shape[2] * x.shape[3], oh * ow, n, dx_padding, taps):
        return _implicit_grads(dout, x, w, has_bias, padding, dx_padding, tap_skipping=taps)
    if _strided_grads_pay(c, f, stride, n, oh * ow):
        return _strided_grads(dout, x, w, has_bias, stride, padding)
    with single_thread_below(cols_size, CONV_SMALL_WORK), blas_single_threaded():
        rows = max(1, COLS_CHUNK // (c * kh * kw * ow))               # output rows per block of one image
        nchunks = _chunks(n, cols_size, n * oh * ow) if rows >= oh else n   # large images: one chunk each
        parts = min(MAX_PARTS, nchunks)      # one dW / db accumulator per part (not per thread: see _chunks)
        dw_parts = np.zeros((parts, kh * kw * c, f), dtype=x.dtype)
        db_parts = np.zeros((parts, f), dtype=np.float64)
        dx = np.empty(x.shape, dtype=x.dtype)
        wmat = np.ascontiguousarray(w.transpose(0, 2, 3, 1)).reshape(f, -1)     # (F, KH*KW*C)
        _fused_backward(np.ascontiguousarray(dout).reshape(n, f, oh * ow), padded_channels_last(x, padding), wmat,
                        kh, kw, stride[0], stride[1], padding[0], padding[2], oh, ow, nchunks, rows, dx,
                        dw_parts, db_parts)
    dw = np.ascontiguousarray(_parts_sum(dw_parts).reshape(kh, kw, c, f).transpose(3, 2, 0, 1))
    return dx, dw, _bias_grad(db_parts, has_bias, x.dtype)


def _implicit_grads(dout, x, w, has_bias, padding, dx_padding, tap_skipping=False):
    """Stride 1: ``dW`` by the micro-kernel (``_weight_grad``), ``dx`` as the forward convolution of ``dout`` with
    the kernels turned by 180 degrees and ``C <-> F`` swapped, padded by ``K - 1 - padding`` (any forward kernel,
    Winograd included; the turned kernels a view, packed by the kernel that takes them: a copy of 5a 3x3's
    2.6 MB took 0.6-0.8 ms)."""
    dout = np.ascontiguousarray(dout)
    dw, db = _weight_grad(dout, x, w, (1, 1), padding, tap_skipping)
    dx = conv2d_output_numba(dout, w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3), None, (1, 1), dx_padding)
    return dx, dw, (db.astype(x.dtype) if has_bias else None)


def _strided_grads(dout, x, w, has_bias, stride, padding):
    """Any stride (shipped for stride 2, ``_strided_grads_pay``): ``dW`` by the micro-kernel over the strided
    patches (``_weight_grad``) and ``dx`` by ``scratchface.kernels.implicit_conv.implicit_conv_input_grad``
    (tiles of ``dout_t @ W`` added onto the patches at once; no columns either way). Eighth #16 pass, against
    the columns in turn (a timing script): backward 3c 3x3/2 10.0-10.5 -> 9.7 ms, 3c 5x5/2 2.3 -> 2.0-2.1, 4e
    3x3/2 3.6 -> 3.4, 4e 5x5/2 2.35 -> 2.04; ``dW`` alone at 160-187 GFLOP/s (oneDNN's 170-200). What else was
    tried for this ``dx`` (four phase convolutions, the columns without im2col) and where these tiles lose (3
    channels, MTCNN's valid layers): ``docs/results.md``, "Eighth pass"."""
    n = x.shape[0]
    f, c, kh, kw = w.shape
    dout = np.ascontiguousarray(dout)
    dw, db = _weight_grad(dout, x, w, stride, padding)
    dx = np.empty(x.shape, dtype=x.dtype)
    with single_thread_below(n * dout.shape[2] * dout.shape[3] * c * kh * kw, CONV_SMALL_WORK):
        implicit_conv_input_grad(padded_channels_last(dout, (0, 0, 0, 0)), packed_columns(w), kh, kw, stride[0],
                                 stride[1], x.shape[2] + padding[0] + padding[1], x.shape[3] + padding[2] + padding[3],
                                 padding[0], padding[2], min(n, implicit_module.INPUT_GRAD_TASKS),
                                 implicit_module.CHUNK_TILES, dx)
    return dx, dw, (db.astype(x.dtype) if has_bias else None)


def _weight_grad(dout, x, w, stride, padding, tap_skipping=False):
    """``(dW, db)`` by the micro-kernel over the patches where they lie (``tap_skipping``: over the taps inside
    the input only, ``scratchface.kernels.tap_skipping``); ``db`` in float64."""
    n = x.shape[0]
    f, c, kh, kw = w.shape
    oh, ow = dout.shape[2:]
    with single_thread_below(n * oh * ow * c * kh * kw, CONV_SMALL_WORK):
        buffer, xh = padded_channels_last(x, padding, slack=tile_width(x))
        if tap_skipping:
            dout_pm, db = filter_major(dout, by_position=True)
            dw = np.empty(w.shape, dtype=x.dtype)
            tap_skipping_weight_grad(buffer, xh, dout_pm, padding[0], padding[2], x.shape[2], x.shape[3], oh, ow,
                                     stride[0], stride[1], dw)
            return dw, db
        dout_f, db = filter_major(dout)
        blocks, parts = weight_grad_blocks(n * oh * ow)
        dw_parts = np.empty((parts, f, kh * kw * c), dtype=x.dtype)      # each task zeroes its own columns
        implicit_conv_weight_grad(buffer, xh, dout_f, kh, kw, stride[0], stride[1], oh, ow, blocks, dw_parts)
        dw = np.empty(w.shape, dtype=x.dtype)
        kernels_from_patch_rows(dw_parts, dw)
    return dw, db


def _parts_sum(parts):
    """The backward's partial sums added in a fixed order (the same bits on any number of threads)."""
    return parts[0] if len(parts) == 1 else parts.sum(axis=0)


def _bias_grad(db_parts, has_bias, dtype):
    return _parts_sum(db_parts).astype(dtype) if has_bias else None


COLS_CHUNK = 1 << 18      # elements of one im2col block (1 MiB in float32: it stays in L2 / L3 for its GEMM)
CONV_SMALL_WORK = 1 << 16  # im2col elements below which one chunk on one thread does it all (gradchecks)
MIN_CHUNK = 1 << 15        # above CONV_SMALL_WORK, chunks of at least this many elements ...
MIN_CHUNKS = 8             # ... and, work permitting, at least this many (work for up to 8 threads),
MIN_CHUNK_PIXELS = 128     # backward: never under this many output pixels (dW's GEMM depth) per chunk
POINTWISE_MIN_PIXELS = 64  # 1x1 convolutions: one GEMM per image from this many pixels (8x8) per image ...
POINTWISE_MIN_IMAGES = 4   # ... and this many images (one task each)
POINTWISE_FORWARD_MIN_PIXELS = 36   # the forward's per-image products from this many (6x6) ...
PIXEL_TILES_MIN_PIXELS = 100        # ... and the forward's pixel tiles from this many (10x10) ...
PIXEL_TILES_MIN_C = 128             # ... and this many channels (or on fewer than POINTWISE_MIN_IMAGES images)
POINTWISE_IMPLICIT_MIN_PIXELS = 36  # the other 1x1 layers' backward by the micro-kernel from this many (6x6)
CHANNEL_BLOCK = 256                 # channels per task of the channel-major 1x1 products (about)
DIRECT_MAX_CF = 512       # forward: the direct kernel for C * F up to this (P-Net's 3*10, 10*16, 16*32) ...
DIRECT_MIN_OW = 64        # ... on rows at least this wide (R-Net / O-Net's 11 / 23-pixel rows: im2col + GEMM)
DIRECT_MAX_F = 16         # ... and fewer filters than this (P-Net's first layer)
DX_BY_FORWARD_MIN_C = 8    # the micro-kernel's backward from this many input channels ...
DX_MAX_GROWTH = 1.6        # ... where dx's forward convolution has at most this many times the outputs of the layer
MAX_PARTS = 16             # backward: dW / db accumulators, each summing a fixed run of chunks
STRIDED_MIN_IMAGES = 4     # strided layers' backward without columns from this many images (_strided_grads)


def _chunks(units, cols_size, pixels=None):
    """How many chunks of ``units`` (output rows, or images): about ``COLS_CHUNK`` column elements each.

    The backward also gives each chunk at least ``MIN_CHUNK_PIXELS`` of its ``pixels`` output pixels:
    they are the depth of the chunk's weight-gradient GEMM, and every chunk adds a dW accumulator.
    NN2's inception 5a 3x3 at batch 32 has 288 output pixels: its backward took 24.7 ms in 8 chunks
    of 36, 16.9 ms in 2 of 144 (5a 1x1 15.1 -> 10.3, 4e 3x3/2 14.8 -> 10.4; no change on the larger
    layers; the forward, whose GEMMs are deep in ``C KH KW``, is faster in 8: 11.5 against 18 ms).

    The count depends on the shapes only, never on the number of threads, and so do
    the backward's partial sums (``MAX_PARTS``); every GEMM runs with BLAS on one
    thread (OpenBLAS's result bits depend on its thread count): the results are the
    same bits with 1 thread or 16 (a seeded training run gives the same weights on
    any machine, in a worker process or not).
    """
    if cols_size < CONV_SMALL_WORK:
        return 1
    chunks = max(min(MIN_CHUNKS, -(-cols_size // MIN_CHUNK)), -(-cols_size // COLS_CHUNK))
    if pixels is not None:
        chunks = min(chunks, max(1, pixels // MIN_CHUNK_PIXELS))
    return int(min(units, chunks))


def _padded(x, padding):
    x = np.ascontiguousarray(x)
    top, bottom, left, right = padding
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right))) if any(padding) else x
