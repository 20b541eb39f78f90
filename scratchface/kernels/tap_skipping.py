r"""Convolution on small outputs without the padding: pixels grouped by position across the batch (#16).

On NN2's last layers the output is 6x6 or 3x3 and the padding is a large part of every receptive field:
a 3x3 kernel padded by 1 on a 3x3 output has 49 of its 81 pixel-tap pairs inside the image, a 5x5 padded
by 2 on 3x3 only 81 of 225. The micro-kernel of :mod:`scratchface.kernels.implicit_conv` takes
``TILE_ROWS`` consecutive output pixels of one row for a tile and multiplies the zeros of the padding with the rest.

Here the output pixels are taken **position-major**: all ``N`` images at output position ``(p, q)``,
then the next position. The kernel taps ``(i, j)`` that fall inside the image are the same for every
pixel of one position,

.. math:: i \in [\max(0,\ t - p s_h),\ \min(K_H,\ t + H - p s_h)), \qquad
          j \in [\max(0,\ l - q s_w),\ \min(K_W,\ l + W - q s_w))

(``t``, ``l``: the padding above and to the left; ``H``, ``W``: the input's size), so a tile of
consecutive pixels in this order runs its reduction over those taps only (a tile that runs on into the next
position takes the taps of both; the zeros of the padding keep the sums right). On a padded, channels-last
input ``xh (N, Hp, Wp, C)`` the taps of one kernel row are ``(j_1 - j_0) C`` consecutive values, and the
kernel rows an image row apart: one ``tile_fma_runs`` per tile (:mod:`scratchface.kernels.microkernel`),
the weights in the forward's panels of ``tile_width`` filters (longer rows in blocks of ``RUN_BLOCK`` weight rows,
each multiplied by every tile of a task in turn). Past the last pixel the last tile repeats the last pixel
(computed twice, the same bits).

The weight gradient is the same sum the other way round: for each block of ``tile_width`` patch values
(kernel row ``i``, values ``e_0 .. e_0 + tile_width - 1`` of it), ``dW^T[f, (i, e)] = sum over pixels of dout[f, pixel]
patch[pixel][i, e]``; in position-major order the pixels where that tap lies inside the image are, for
each output row ``p`` where row ``i`` is inside, one run ``q_0 .. q_1`` of positions times all images:
consecutive in ``dout``'s position-major copy, one ``tile_fma_gather`` per output row. Every column block
is one task's (no partial sums): the bits do not depend on the thread count.

``dx`` of a stride-1 layer is the forward convolution of ``dout`` with the kernels turned by 180 degrees
(``scratchface.kernels.conv._implicit_grads``), which comes here by the same rule.
"""
from __future__ import annotations

import numba
import numpy as np
from numba import prange

from .activations import prelu
from .microkernel import TILE_ROWS, tile_fma, tile_fma_gather, tile_fma_runs, tile_width

__all__ = ["forward_chunk", "inside_fraction", "tap_skipping_output", "tap_skipping_pays", "tap_skipping_weight_grad"]

MAX_INSIDE = 0.85          # this path where at most this fraction of the pixel-tap pairs lies inside the input ...
FORWARD_MAX_PIXELS = 16    # ... the forward on outputs of at most this many pixels (per image) ...
WEIGHT_GRAD_MAX_PIXELS = 64     # ... the weight gradient on at most this many ...
MIN_IMAGES = 6             # ... both for at least this many images (a tile at one position)
MIN_TASKS = 8              # the forward's tasks: panels of filters times runs of tiles, at least this many ...
CHUNK_TILES = 32           # ... of at most this many tiles
RUN_BLOCK = 256            # weight rows multiplied by every tile of a task in turn (16 / 32 KB in float32: in L1)


def _inside(p, s, before, size, k):
    """``[k0, k1)``: the kernel offsets that land inside the input (``before`` padding, ``size`` long) for
    output index ``p`` with stride ``s``; empty when ``k1 <= k0``."""
    return max(0, before - p * s), min(k, before + size - p * s)


inside_taps = numba.njit(cache=True, inline="always")(_inside)


def inside_fraction(h, w, kh, kw, stride, padding):
    """The fraction of the output's pixel-tap pairs that lie inside the ``h x w`` input (not on padding)."""
    top, bottom, left, right = padding
    oh = (h + top + bottom - kh) // stride[0] + 1
    ow = (w + left + right - kw) // stride[1] + 1
    rows = sum(max(0, i1 - i0) for i0, i1 in (_inside(p, stride[0], top, h, kh) for p in range(oh)))
    cols = sum(max(0, j1 - j0) for j0, j1 in (_inside(q, stride[1], left, w, kw) for q in range(ow)))
    return rows * cols / (oh * ow * kh * kw)


def tap_skipping_pays(n, h, w, kh, kw, stride, padding, weight_grad=False):
    """This path for at least ``MIN_IMAGES`` images of ``h x w`` pixels where at most ``MAX_INSIDE`` of the
    output's pixel-tap pairs lie inside the input, on outputs of at most ``FORWARD_MAX_PIXELS`` pixels (NN2's
    3x3 and 5x5 layers at 3x3); ``weight_grad``: the weight gradient, on outputs of at most
    ``WEIGHT_GRAD_MAX_PIXELS`` (also NN2's 3x3 and 5x5 layers at 6x6).

    Measured (seventh #16 pass; one thread, batch 32, float32, both routes in turn in one process, a timing
    script; this machine's speed drifts too much for two threads to tell 10 %): forward + backward of 5a
    3x3 at 3x3 (60 % of the pairs inside) 16.8 -> 11.6 ms, 5a 5x5 (36 %) 3.13 -> 1.95, 4a 5x5 at 6x6 (64 %)
    backward 2.59 -> 2.17, 4a / 4d 3x3 at 6x6 (79 %) backward 8.80 -> 8.58 / 22.6 -> 21.8. Not taken: the
    forward at 6x6 (4a 5x5 1.11 -> 1.18-1.27 ms, 4a / 4d 3x3 0.90x / 0.95x: a tile's six images lie
    apart, where the micro-kernel's six pixels of one row share most of their patches and each chunk of
    them meets every panel of weights in cache), the weight gradient at 12x12 (3b 5x5, 81 %: backward 10.8
    -> 11.1 ms)."""
    top, bottom, left, right = padding
    oh = (h + top + bottom - kh) // stride[0] + 1
    ow = (w + left + right - kw) // stride[1] + 1
    most = WEIGHT_GRAD_MAX_PIXELS if weight_grad else FORWARD_MAX_PIXELS
    return n >= MIN_IMAGES and oh * ow <= most and inside_fraction(h, w, kh, kw, stride, padding) <= MAX_INSIDE


@numba.njit(cache=True, inline="always")
def _pixel(tile, r, pixels, n):
    """``(p*OW + q, b)`` of row ``r`` of ``tile`` in position-major order; past the last pixel, the last pixel
    again (computed twice, the same bits)."""
    pixel = min(tile * TILE_ROWS + r, pixels - 1)
    return pixel // n, pixel % n


@numba.njit(cache=True)
def _tile_taps(n, oh, ow, shape, kh, kw, sh, sw, top, left, h, w):
    """For every tile of six pixels in position-major order: where each pixel's patch starts in the padded
    channels-last input of ``shape`` (``starts (tiles, 6)``), and the kernel rows ``[i0, i1)`` and the values
    ``[e0, e1)`` of each kernel row that are inside the input for one of its pixels (``taps (tiles, 4)``)."""
    hp, wp, c = shape[1], shape[2], shape[3]
    pixels = oh * ow * n
    tiles = -(-pixels // TILE_ROWS)
    starts = np.empty((tiles, TILE_ROWS), dtype=np.int64)
    taps = np.empty((tiles, 4), dtype=np.int64)
    for tile in range(tiles):
        i0, i1, j0, j1 = kh, 0, kw, 0
        for r in range(TILE_ROWS):
            pq, b = _pixel(tile, r, pixels, n)
            p, q = pq // ow, pq % ow
            starts[tile, r] = ((b * hp + p * sh) * wp + q * sw) * c
            a0, a1 = inside_taps(p, sh, top, h, kh)
            c0, c1 = inside_taps(q, sw, left, w, kw)
            if a1 > a0 and c1 > c0:
                i0, i1, j0, j1 = min(i0, a0), max(i1, a1), min(j0, c0), max(j1, c1)
        taps[tile] = (i0, i1, j0 * c, j1 * c)
    return starts, taps


@numba.njit(cache=True, parallel=True)
def tap_skipping_output(xh, w_pack, bias, alpha, has_alpha, kh, kw, sh, sw, top, left, h, w, chunk, out):
    """``out (N, F, OH, OW)`` = the convolution of the padded channels-last ``xh`` (``top`` rows and ``left``
    columns of padding before the ``h x w`` input) with the packed weights ``w_pack`` (see
    :func:`scratchface.kernels.implicit_conv.packed_weights`), plus ``bias``, through PReLU with slopes
    ``alpha`` when ``has_alpha``; tiles of six pixels in position-major order, over the taps inside the
    input only (``_tile_taps``, once for all tasks). Tasks: each panel of 16 filters times runs of ``chunk``
    tiles."""
    n, f, oh, ow = out.shape
    wp, c = xh.shape[2], xh.shape[3]
    width = tile_width(xh)
    panels, k = w_pack.shape[0], w_pack.shape[1]
    run = kw * c
    pixels = oh * ow * n
    tiles = -(-pixels // TILE_ROWS)
    chunks = -(-tiles // chunk)
    x_flat = xh.reshape(-1)
    w_flat = w_pack.reshape(-1)
    starts, taps = _tile_taps(n, oh, ow, xh.shape, kh, kw, sh, sw, top, left, h, w)
    for task in prange(panels * chunks):
        t, s = task // panels, task % panels
        f0 = s * width
        tile0, tile1 = t * chunk, min(tiles, (t + 1) * chunk)
        acc = np.zeros((tile1 - tile0, TILE_ROWS, width), dtype=xh.dtype)
        offsets = np.empty(TILE_ROWS, dtype=np.int64)
        if run <= RUN_BLOCK:                        # the tile's kernel rows in one pass of the registers
            for tile in range(tile0, tile1):
                i0, i1, lo, hi = taps[tile, 0], taps[tile, 1], taps[tile, 2], taps[tile, 3]
                if i1 > i0 and hi > lo:
                    for r in range(TILE_ROWS):
                        offsets[r] = starts[tile, r] + i0 * wp * c + lo
                    tile_fma_runs(x_flat, offsets, wp * c, w_flat, (s * k + i0 * run + lo) * width, width, run,
                                  hi - lo, i1 - i0, acc[tile - tile0])
        else:                                       # long rows: blocks of RUN_BLOCK weight rows, each
            for i in range(kh):                     # multiplied by every tile in turn (they stay in L1)
                for e0 in range(0, run, RUN_BLOCK):
                    for tile in range(tile0, tile1):
                        lo, hi = max(e0, taps[tile, 2]), min(e0 + RUN_BLOCK, taps[tile, 3])
                        if hi <= lo or not taps[tile, 0] <= i < taps[tile, 1]:
                            continue
                        for r in range(TILE_ROWS):
                            offsets[r] = starts[tile, r] + i * wp * c + lo
                        tile_fma(x_flat, offsets, 0, w_flat, (s * k + i * run + lo) * width, width, hi - lo, 1,
                                 acc[tile - tile0])
        for tile in range(tile0, tile1):            # the six pixels of each tile, in NCHW
            for r in range(TILE_ROWS):
                pq, b = _pixel(tile, r, pixels, n)
                for v in range(min(width, f - f0)):
                    value = acc[tile - tile0, r, v] + bias[f0 + v]
                    if has_alpha:
                        value = prelu(value, alpha[f0 + v])
                    out[b, f0 + v, pq // ow, pq % ow] = value


@numba.njit(cache=True, parallel=True)
def tap_skipping_weight_grad(x_flat, xh, dout_pm, top, left, h, w, oh, ow, sh, sw, dw):
    r"""``dw (F, C, KH, KW)`` (every value written) = ``dout_pm (F, OH*OW*N)`` (from ``filter_major(dout,
    by_position=True)``) times the patches of the padded channels-last ``xh``, over the pixels where each tap
    lies inside the ``h x w`` input.

    ``x_flat``: the buffer of ``xh`` with at least ``tile_width`` zeros after it (a block of 16 patch values
    may run past a kernel row: those columns are computed and dropped). Tasks: the column blocks (16 values
    of one kernel row), each written by one task; consecutive output rows whose taps are all inside make one
    run of pixels (position-major: the same for every image)."""
    hp, wp, c = xh.shape[1], xh.shape[2], xh.shape[3]
    n = xh.shape[0]
    f, kh, kw = dw.shape[0], dw.shape[2], dw.shape[3]
    pixels = dout_pm.shape[1]
    width = tile_width(xh)
    run = kw * c
    run_blocks = -(-run // width)
    starts = np.empty(pixels, dtype=np.int64)               # each pixel's patch, position-major
    for pq in range(oh * ow):
        for b in range(n):
            starts[pq * n + b] = ((b * hp + (pq // ow) * sh) * wp + (pq % ow) * sw) * c
    a_flat = dout_pm.reshape(-1)
    for cb in prange(kh * run_blocks):
        i, e0 = cb // run_blocks, (cb % run_blocks) * width
        j_first, j_last = e0 // c, (min(e0 + width, run) - 1) // c
        q0, q1 = ow, 0                                      # the positions where one of the block's taps is inside
        for q in range(ow):
            j0, j1 = inside_taps(q, sw, left, w, kw)
            if j0 <= j_last and j_first < j1:
                q0, q1 = min(q0, q), max(q1, q + 1)
        p0, p1 = oh, 0                                      # the output rows where kernel row i is inside
        for p in range(oh):
            i0, i1 = inside_taps(p, sh, top, h, kh)
            if i0 <= i < i1:
                p0, p1 = min(p0, p), max(p1, p + 1)
        if q1 <= q0:
            p1 = p0                                         # no pixel: no run below, the tiles stay zero
        whole = q0 == 0 and q1 == ow                        # whole output rows: one run over rows p0 .. p1
        acc = np.empty((TILE_ROWS, width), dtype=xh.dtype)
        offsets = np.empty(TILE_ROWS, dtype=np.int64)
        for f0 in range(0, f, TILE_ROWS):
            acc[:] = 0                                      # (all on padding: the zeros are written)
            for p in range(p0, p0 + 1 if whole else p1):
                at = (p * ow + q0) * n
                for r in range(TILE_ROWS):
                    offsets[r] = min(f0 + r, f - 1) * pixels + at
                length = (p1 - p0) * ow * n if whole else (q1 - q0) * n
                tile_fma_gather(a_flat, offsets, x_flat, i * wp * c + e0, starts[at:], length, acc)
            for r in range(min(TILE_ROWS, f - f0)):
                for v in range(min(width, run - e0)):
                    dw[f0 + r, (e0 + v) % c, i, (e0 + v) // c] = acc[r, v]


def forward_chunk(panels, pixels):
    """Tiles per task for ``panels`` panels of filters and ``pixels`` output pixels: at most ``CHUNK_TILES``,
    and at least ``MIN_TASKS`` tasks (work permitting)."""
    tiles = -(-pixels // TILE_ROWS)
    chunks = max(-(-tiles // CHUNK_TILES), -(-MIN_TASKS // panels))
    return max(1, -(-tiles // chunks))
