r"""Convolution as an implicit GEMM: the micro-kernel reads the patches where they are, no im2col (#16).

With the input padded and channels last, ``xh (N, Hp, Wp, C)``, kernel row ``i`` of output pixel
``(b, p, q)``'s receptive field is ``KW*C`` consecutive values starting at ``xh[b, p*sh + i, q*sw, 0]``:
a row of the im2col matrix, already in memory, and the ``KH`` kernel rows are an image row
(``Wp*C`` values) apart. With the weights packed in panels of ``width = tile_width`` filters (float32: 32
with AVX-512, 16 without; half that in float64), ``W_pack[s, (i, j, c), v] = w[s*width + v, c, i, j]`` (zeros
past ``F``),

.. math:: \mathrm{out}[b, f, p, q] = \mathrm{bias}_f + \sum_{i < KH} \sum_{e < KW C}
          xh[b, p s_h + i, q s_w, 0][e] \; W_{pack}[f / width,\, i\,KW C + e,\, f \bmod width],

computed for a tile of ``TILE_ROWS`` output pixels (12 with AVX-512, 6 without) by ``width`` filters by one
``tile_fma`` (:mod:`scratchface.kernels.microkernel`) over all kernel rows, the tile in registers throughout.
``TILE_ROWS`` consecutive output pixels (in the order ``(b, p, q)``, across rows and images alike: any stride) make a
tile; the last tile is moved back to end on the last pixel (its first pixels are computed twice, the same
bits). Kernel rows that fall on padding rows for all the pixels of a tile are skipped (they would add
zeros; NN2's 5x5 layers at 6x6 skip a fifth of the work). The work is cut into chunks of at most
``CHUNK_TILES`` tiles (at least ``MIN_CHUNKS`` chunks),
one ``prange`` over them; inside a chunk the panels are the outer loop, so a panel stays in L1 / L2
while the chunk's patches stream past it (patch rows longer than ``RUN_BLOCK`` go in blocks, each
multiplied by every tile in turn). Each output is one fixed sum: the bits do not depend on the chunking
or the thread count. The tile is written into NCHW with the bias (and PReLU's slope: the epilogue).

``implicit_conv_weight_grad`` is the weight gradient the same way: ``dW^T (F, KH*KW*C) = dout (F, pixels)
@ patches (pixels, KH*KW*C)``, a tile of ``TILE_ROWS`` filters by ``width`` patch values summed over a block of about
``BLOCK_PIXELS`` output pixels by ``tile_fma_gather`` (the rows of ``B`` are the pixels' patches,
wherever they are), in at most ``WEIGHT_GRAD_PARTS`` partial sums (fixed by the shapes, added in a fixed
order). ``dx`` of a stride-1 layer is the forward convolution of ``dout`` with the kernels turned by 180
degrees (``scratchface.kernels.conv._implicit_grads``); of a strided layer, ``implicit_conv_input_grad``: tiles
of ``TILE_ROWS`` output pixels by ``width`` patch values of ``dout_t @ W`` (reduced over the filters), each
added onto its pixels' patches in padded channels-last planes (the columns' GEMM and col2im in one pass,
without the columns).

Measured (quiet 2-core AMD EPYC Zen 1, 2 threads, float32; ``python benchmarks/bench_implicit_conv.py``, table
2, the columns path and this one in turn in one process; ``docs/benchmark_tables/zen1/bench_implicit_conv.txt``;
on Zen 4 with AVX-512, ``docs/benchmark_tables/zen4/bench_implicit_conv.txt``, the forward is 1.1x-2.4x on the
same layers but 4d 3x3 at 6x6, 0.74x-0.75x in two runs, whose route was not tuned again there; the same code
timed against itself moved by up to 30 % on that machine):
forward 1.0x-1.5x faster than channels-last im2col + OpenBLAS on NN2's 3x3 / 5x5 layers, conv1 and
MTCNN's R-Net / O-Net / P-Net layers (the columns' copy is gone: 3a 5x5's columns were a third of its
forward); backward (dW here, dx by this forward) 1.08x-1.29x on NN2's same-size 3x3 / 5x5 layers, 1.6x-2.1x
on P-Net's wide levels. Where it loses, ``scratchface.kernels.conv`` keeps the columns (its routing
rules cite the figures): fewer output pixels than filters (5a 3x3 at 3x3, 0.93x), 1x1 layers on few
pixels (5a 1x1 0.93x), and the backward of valid convolutions on small crops (O-Net conv3 0.92x: ``dx``'s
forward multiplies the zero padding too; 1.06x on Zen 4 in the seventh pass, where only the 2x2 layers on
4x4 crops stay on the columns) or of 3-channel inputs (0.50x: tiles of 16 filters for 3).

Fifth #16 pass (``python benchmarks/compare_conv_versions.py /tmp/old``, old = 364a740, in turn in one
process, 2 threads, fwd / bwd old / new time): the padding rows skipped, 4a 5x5 (6x6) forward 1.20x, 3b 5x5
(12x12) 1.19x, 4a 3x3 (6x6) 1.10x; the tiles' and weight-gradient blocks' pixel coordinates stepped instead
of divided (``_next_pixel``: four 64-bit divisions a pixel were 40 % of a P-Net level's 90-long tile), O-Net
conv2 backward 1.10x, P-Net conv2 backward 1.20x, conv3 1.10x; the weights packed in one Numba pass
(``_pack``), 4e 5x5/2 forward 1.32x, the 6x6 layers 1.03x-1.06x. Tried and dropped there: skipping the
padding rows in the weight gradient too (runs of each block's pixels per kernel row): 4a 5x5 backward 1.04x,
but P-Net conv2 / conv3 (no padding) 0.92x / 0.95x for the runs' bookkeeping.

How it got there (same table, or timing scripts that were not kept): the weights first packed as one
``(KH*KW*C, F_pad)`` matrix: its rows ``4 F_pad`` bytes apart map to a few cache sets (4K aliasing),
and 3c 3x3/2 (256 filters) ran 15.5 ms against 12.9 for the columns; in panels of 16 filters (each
panel contiguous, as BLAS packs), 10.0 ms. Tasks of one panel by a chunk of pixels instead of all
panels of a chunk: 5a 3x3 6.1 against 9.2 ms but 4d 3x3 18.5 against 13.5 (the chunk's patches re-read
per panel). 64-byte aligned panels and inputs (a 16-float row in one cache line, not two): dW of 3a 3x3
32 -> 28 ms on one thread. Weight-gradient blocks of 64 / 256 / 1024 pixels: 26.9 / 31.9 / 30.5 GFLOP/s
(3a 3x3, one thread; 256 chosen then); in the fifth pass, with the blocks' set-up without divisions, 2
threads, blocks of 256 / 512 / 1024 pixels: 3a 3x3 13.4 / 13.0 / 12.8 ms, 4a 3x3 (6x6) 5.5 / 4.7 / 4.7, 4a
5x5 1.71 / 1.48 / 1.49, O-Net conv2 55.6 / 52.7 / 51.7, P-Net conv3 1.48 / 1.41 / 1.38: 1024 chosen now
(2 partial sums instead of 4, or 8 groups of column blocks instead of 4: the same within 0.03 ms on the
small layers). Dropped: a second micro-kernel layout vectorised along the output row in NCHW (6
filters by 16 consecutive pixels of one row, stored without transposes), for MTCNN's first layers and
P-Net: R-Net conv1 38 -> 35 ms, O-Net conv1 44 -> 34 ms, P-Net 10 -> 16 and 16 -> 32 0.95x-0.87x of the
time, but P-Net's first layer 9.1 -> 10.8 ms against the direct kernel; not worth a fifth path.
"""
from __future__ import annotations

import numba
import numpy as np
from numba import prange

from .activations import prelu
from .layout import interior_to_nchw, padded_channels_last_serial
from .microkernel import TILE_ROWS, aligned_empty, tile_fma, tile_fma_gather, tile_width

__all__ = ["filter_major", "forward_chunk", "implicit_conv_input_grad", "implicit_conv_output",
           "implicit_conv_weight_grad", "kernels_from_patch_rows", "packed_columns", "packed_weights",
           "small_conv_output", "weight_grad_blocks"]

CHUNK_TILES = 32           # tiles of TILE_ROWS output pixels per task, at most ...
MIN_CHUNKS = 8             # ... and at least this many chunks of pixels, work permitting
RUN_BLOCK = 256            # longer patch rows: blocks of this many panel rows (16 / 32 KB in float32), each
                           # multiplied by every tile of a chunk in turn (they stay in L1)
BLOCK_PIXELS = 1024        # weight gradient: output pixels per reduction of one tile ...
WEIGHT_GRAD_PARTS = 4      # ... runs of blocks summed apart (at most) ...
WEIGHT_GRAD_GROUPS = 4     # ... times this many groups of column blocks: the tasks
INPUT_GRAD_TASKS = 8       # input gradient (any stride): at most this many tasks, each a run of whole images
PACK_CHANNELS = 16         # packed_weights: channels of each filter read at a time ...
PACK_FILTERS = 8           # ... packed_columns: filters at a time
PARALLEL_PACK_MIN = 1 << 14  # packed weights of at least this many values: packed on all threads


def packed_weights(w):
    """``W_pack (F_pad / width, KH*KW*C, width)`` for ``w (F, C, KH, KW)``, ``width = tile_width(w)``: panel
    ``s`` holds filters ``s*width`` to ``s*width + width - 1`` (zeros past ``F``), row ``(i, j, c)`` =
    ``w[f, c, i, j]``; 64-byte aligned, so that a panel row is one cache line (float32)."""
    f, c, kh, kw = w.shape
    width = tile_width(w)
    panels = -(-f // width)
    out = aligned_empty(panels * kh * kw * c * width, w.dtype).reshape(panels, kh * kw * c, width)
    if out.size >= PARALLEL_PACK_MIN:       # any strides (a view of the kernels turned, for dx)
        _pack_on_all_threads(w, out)
    else:
        _pack(w, out)
    return out


@numba.njit(cache=True)
def _pack(w, out):
    """``out[s, (i*KW + j)*C + c, v] = w[s*width + v, c, i, j]``, zeros past the last filter, in one pass in Numba
    (4a 3x3's weights 0.15 ms, where the NumPy transposes and copies took 0.25, 5 % of its forward; a timing
    script, not kept). Ninth #16 pass: ``PACK_CHANNELS`` channels at a time (each filter's values of a block
    read in order, its panel rows written in runs) and the tile's width a constant where it is 16 (each panel
    row's 16 values copied unrolled): 5a 3x3's weights (384 x 192 x 3 x 3) 0.41 -> 0.22 ms, the kernels turned
    for its ``dx`` 0.35 -> 0.23, 5x5 layers 1.7x-1.8x, one thread (``/tmp`` timing script; float64, width 8,
    the same speed as before)."""
    for s in range(out.shape[0]):
        _pack_panel(w, s, out)


@numba.njit(cache=True, parallel=True)
def _pack_on_all_threads(w, out):
    """``_pack`` with the panels shared out between the threads. The buffer is most often the one the last
    convolution's panels were in (the allocator hands it back), which both threads read: each line written
    is first taken back from the other core's cache, and on this 2-core machine that costs the pass 5x (4e
    3x3/2's 1.5 MB: 0.13 ms into a buffer one thread touched, 0.67 ms after both read it). On both threads
    the same pass takes half of that, 0.34 ms (ninth #16 pass, a timing script)."""
    for s in prange(out.shape[0]):
        _pack_panel(w, s, out)


@numba.njit(cache=True, inline="always")
def _pack_panel(w, s, out):
    """Panel ``s`` of ``_pack``, the tile's width a constant where it is 16 or 32."""
    if out.shape[2] == 16:
        _pack_panel_rows(w, s, 16, out)
    elif out.shape[2] == 32:
        _pack_panel_rows(w, s, 32, out)
    else:
        _pack_panel_rows(w, s, out.shape[2], out)


@numba.njit(cache=True, inline="always")
def _pack_panel_rows(w, s, width, out):
    f, c, kh, kw = w.shape
    f0 = s * width
    full = f0 + width <= f
    for c0 in range(0, c, PACK_CHANNELS):
        for i in range(kh):
            for j in range(kw):
                for ci in range(c0, min(c, c0 + PACK_CHANNELS)):
                    dst = out[s, (i * kw + j) * c + ci]
                    if full:
                        for v in range(width):
                            dst[v] = w[f0 + v, ci, i, j]
                    else:
                        for v in range(width):
                            dst[v] = w[f0 + v, ci, i, j] if f0 + v < f else 0


@numba.njit(cache=True, parallel=True)
def kernels_from_patch_rows(parts, out):
    """``out (F, C, KH, KW)`` = ``sum_t parts[t]`` for ``parts (T, F, KH*KW*C)``, whose columns are in a patch's
    order ``(i, j, c)`` (the weight gradient's partial sums), added in the order of ``t`` (the bits of
    ``parts.sum(axis=0)``). One task a filter: its rows added, then its ``KH*KW x C`` block turned. Ninth #16
    pass, against NumPy's sum and transposed copy (2 threads, float32, a timing script): 5a 3x3's ``dW``
    (384 x 192 x 3 x 3) 0.35 -> 0.13 ms, 3b 5x5's four parts 0.17 -> 0.06 ms."""
    f, c, kh, kw = out.shape
    kk = kh * kw
    for fi in prange(f):
        dst = out[fi].reshape(-1)
        row = parts[0, fi].copy()
        for t in range(1, parts.shape[0]):
            src = parts[t, fi]
            for e in range(row.size):
                row[e] += src[e]
        for ij in range(kk):
            for ci in range(c):
                dst[ci * kk + ij] = row[ij * c + ci]


@numba.njit(cache=True, inline="always")
def _pixel_coords(pix, oh, ow):
    """``(b, p, q)`` of output pixel ``pix = (b*OH + p)*OW + q``."""
    g, q = pix // ow, pix % ow
    return g // oh, g % oh, q


@numba.njit(cache=True, inline="always")
def _next_pixel(b, p, q, oh, ow):
    """The pixel after ``(b, p, q)`` (in the order of ``pix``), without a division: the tiles' and blocks'
    set-up divided four times a pixel, 40 % of a P-Net level's forward (one panel, 90-long reductions)."""
    q += 1
    if q == ow:
        q, p = 0, p + 1
        if p == oh:
            p, b = 0, b + 1
    return b, p, q


@numba.njit(cache=True, inline="always")
def _patch_start(xh, b, p, q, sh, sw):
    """Where output pixel ``(b, p, q)``'s receptive field starts in ``xh.reshape(-1)``."""
    hp, wp, c = xh.shape[1], xh.shape[2], xh.shape[3]
    return ((b * hp + p * sh) * wp + q * sw) * c


@numba.njit(cache=True, inline="always")
def _tile_first(tile, pixels):
    """The first output pixel of ``tile``: ``tile * TILE_ROWS``, the last tile moved back to end on the last pixel."""
    return max(0, min(tile * TILE_ROWS, pixels - TILE_ROWS))


@numba.njit(cache=True, parallel=True)
def implicit_conv_output(xh, w_pack, bias, alpha, has_alpha, kh, kw, sh, sw, oh, ow, top, bottom, chunk, out):
    """``out (N, F, OH, OW)`` = the convolution of the padded channels-last ``xh`` (padded by ``top`` and
    ``bottom`` rows; see the module docstring), plus ``bias``, through PReLU with slopes ``alpha`` when
    ``has_alpha``; tasks of ``chunk`` tiles (``_output_chunk``). Kernel rows that fall on the padding rows for all
    pixels of a tile are skipped (they would add zeros)."""
    tiles = -(-(out.shape[0] * oh * ow) // TILE_ROWS)
    for t in prange(-(-tiles // chunk)):
        _output_chunk(xh, w_pack, bias, alpha, has_alpha, kh, kw, sh, sw, oh, ow, top, bottom, t * chunk,
                      min(tiles, (t + 1) * chunk), out)


@numba.njit(cache=True)
def small_conv_output(x, w, bias, alpha, has_alpha, sh, sw, top, bottom, left, right, out):
    """The same forward in one call on one thread, the padded channels-last copy and the packed weights made
    inside it (``x`` C-contiguous, ``w`` any strides: the turned kernels of a ``dx``): for convolutions too small to
    wake the thread pool for. Each parallel Numba call costs 5-9 us before any work, and the thread count set and
    reset around it 4 more: on MTCNN's P-Net, whose last five pyramid levels are 25 such convolutions, ours took
    25-85 us a call where torch took 7-45 (eighth #16 pass, a timing script)."""
    f, c, kh, kw = w.shape
    oh, ow = out.shape[2], out.shape[3]
    xh = padded_channels_last_serial(x, top, bottom, left, right)
    width = tile_width(x)
    w_pack = np.empty((-(-f // width), kh * kw * c, width), dtype=x.dtype)
    _pack(w, w_pack)
    tiles = -(-(x.shape[0] * oh * ow) // TILE_ROWS)
    for tile0 in range(0, tiles, CHUNK_TILES):
        _output_chunk(xh, w_pack, bias, alpha, has_alpha, kh, kw, sh, sw, oh, ow, top, bottom, tile0,
                      min(tiles, tile0 + CHUNK_TILES), out)


@numba.njit(cache=True)
def _output_chunk(xh, w_pack, bias, alpha, has_alpha, kh, kw, sh, sw, oh, ow, top, bottom, tile0, tile1, out):
    """Tiles ``[tile0, tile1)`` of ``implicit_conv_output``: their set-up, the panels of ``W`` in turn over all of
    them, each tile written into ``out`` with the bias (and PReLU's slope)."""
    n, f = out.shape[0], out.shape[1]
    c, wp, hp = xh.shape[3], xh.shape[2], xh.shape[1]
    width = tile_width(xh)
    panels, k = w_pack.shape[0], w_pack.shape[1]
    run = kw * c
    pixels = n * oh * ow
    x_flat = xh.reshape(-1)
    w_flat = w_pack.reshape(-1)
    out_flat = out.reshape(n, f, oh * ow)
    out_1d = out.reshape(-1)
    acc = np.empty((tile1 - tile0, TILE_ROWS, width), dtype=xh.dtype)   # one tile of C per tile of pixels
    starts = np.empty((tile1 - tile0, TILE_ROWS), dtype=np.int64)      # where each pixel's first used row starts
    first_row = np.empty(tile1 - tile0, dtype=np.int64)                 # the kernel rows each tile uses ...
    rows = np.empty(tile1 - tile0, dtype=np.int64)                      # ... (the others: padding for all its pixels)
    out_at = np.empty(tile1 - tile0, dtype=np.int64)                    # where its first output goes, -1: two images
    offsets = np.empty(TILE_ROWS, dtype=np.int64)
    for tile in range(tile0, tile1):
        first = _tile_first(tile, pixels)
        b, p, q = _pixel_coords(first, oh, ow)
        out_at[tile - tile0] = b * f * oh * ow + p * ow + q if pixels >= TILE_ROWS else -1
        i0, i1 = kh, 0
        for r in range(TILE_ROWS):
            if 0 < r < pixels - first:
                b, p, q = _next_pixel(b, p, q, oh, ow)
                if p == 0 and q == 0:                       # the tile runs on into the next image
                    out_at[tile - tile0] = -1
            i0 = min(i0, max(0, top - p * sh))                  # rows i with top <= p*sh + i < Hp - bottom
            i1 = max(i1, min(kh, hp - bottom - p * sh))
            starts[tile - tile0, r] = _patch_start(xh, b, p, q, sh, sw)
        i1 = max(i1, i0)
        first_row[tile - tile0], rows[tile - tile0] = i0, i1 - i0
        for r in range(TILE_ROWS):
            starts[tile - tile0, r] += i0 * wp * c
    for s in range(panels):
        f0 = s * width
        acc[:] = 0
        if run <= RUN_BLOCK:                    # all kernel rows in one pass of the registers
            for tile in range(tile1 - tile0):
                tile_fma(x_flat, starts[tile], wp * c, w_flat, (s * k + first_row[tile] * run) * width, width,
                         run, rows[tile], acc[tile])
        else:                                   # long rows in blocks, each multiplied by every tile in turn
            for i in range(kh):
                for e0 in range(0, run, RUN_BLOCK):
                    length = min(RUN_BLOCK, run - e0)
                    for tile in range(tile1 - tile0):
                        if not first_row[tile] <= i < first_row[tile] + rows[tile]:
                            continue
                        for r in range(TILE_ROWS):
                            offsets[r] = starts[tile, r] + (i - first_row[tile]) * wp * c + e0
                        tile_fma(x_flat, offsets, 0, w_flat, (s * k + i * run + e0) * width, width, length, 1,
                                 acc[tile])
        for tile in range(tile0, tile1):
            if out_at[tile - tile0] >= 0:           # the tile's pixels in one image: consecutive values a filter
                at = out_at[tile - tile0] + f0 * oh * ow
                for v in range(min(width, f - f0)):
                    add, slope = bias[f0 + v], alpha[f0 + v]
                    for r in range(TILE_ROWS):
                        value = acc[tile - tile0, r, v] + add
                        if has_alpha:
                            value = prelu(value, slope)
                        out_1d[at + v * oh * ow + r] = value
                continue
            first = _tile_first(tile, pixels)
            for r in range(min(TILE_ROWS, pixels - first)):
                b, pq = (first + r) // (oh * ow), (first + r) % (oh * ow)
                for v in range(min(width, f - f0)):
                    value = acc[tile - tile0, r, v] + bias[f0 + v]
                    if has_alpha:
                        value = prelu(value, alpha[f0 + v])
                    out_flat[b, f0 + v, pq] = value


@numba.njit(cache=True, parallel=True)
def filter_major(dout, by_position=False):
    """``dout (N, F, OH, OW)`` as ``(F, N*OH*OW)`` (each filter's gradient over all output pixels in one row,
    column ``b*OH*OW + p*OW + q``; ``by_position``: column ``(p*OW + q)*N + b``, all images at one position
    together, as ``scratchface.kernels.tap_skipping`` takes them) and the bias gradient ``sum dout`` per
    filter, in float64, in the same pass."""
    n, f = dout.shape[0], dout.shape[1]
    plane = dout.shape[2] * dout.shape[3]
    flat = dout.reshape(n, f, plane)
    out = np.empty((f, n * plane), dtype=dout.dtype)
    image_step, position_step = (1, n) if by_position else (plane, 1)
    db = np.zeros(f)
    for k in prange(f):
        total = 0.0
        row = out[k]
        for b in range(n):
            src = flat[b, k]
            for q in range(plane):
                row[b * image_step + q * position_step] = src[q]
                total += src[q]
        db[k] = total
    return out, db


def forward_chunk(pixels):
    """Tiles per task of ``implicit_conv_output`` for ``pixels`` output pixels: ``CHUNK_TILES``, or fewer
    so that there are ``MIN_CHUNKS`` tasks."""
    return max(1, min(CHUNK_TILES, -(-pixels // TILE_ROWS) // MIN_CHUNKS))


def weight_grad_blocks(pixels):
    """``(blocks, parts)`` for ``implicit_conv_weight_grad`` over ``pixels`` output pixels: blocks of about
    ``BLOCK_PIXELS`` pixels, as many in each of the (at most ``WEIGHT_GRAD_PARTS``) parts."""
    blocks = max(1, (pixels + BLOCK_PIXELS // 2) // BLOCK_PIXELS)
    parts = min(WEIGHT_GRAD_PARTS, blocks)
    return parts * -(-blocks // parts), parts


@numba.njit(cache=True, parallel=True)
def implicit_conv_weight_grad(x_flat, xh, dout_f, kh, kw, sh, sw, oh, ow, blocks, dw_parts):
    r"""The weight gradient without columns: ``dw_parts[t] (F, KH*KW*C)`` = for the output pixels of part ``t``, the
    sum of ``dout_f[f, pix]`` times the patch of ``pix`` (row ``(i, j, c)`` as in the forward's ``W_pack``).

    ``x_flat``: the buffer of the padded channels-last ``xh`` with at least ``tile_width`` elements after it
    (a block of ``tile_width`` patch values may run past a kernel row: those columns are computed and dropped).
    Tile: ``TILE_ROWS`` filters by ``tile_width`` patch values, reduced over a block of about ``BLOCK_PIXELS``
    pixels in one ``tile_fma_gather`` (rows of ``B`` are the pixels' patches, wherever they are). Tasks: the parts
    (runs of pixel blocks, each summing into its own ``dw_parts[t]``) times groups of the column blocks
    (disjoint columns): the sums do not depend on the thread count.
    """
    wp, c = xh.shape[2], xh.shape[3]
    f, pixels = dout_f.shape
    width = tile_width(xh)
    run = kw * c
    run_blocks = -(-run // width)
    col_blocks = kh * run_blocks
    parts = dw_parts.shape[0]
    groups = min(col_blocks, WEIGHT_GRAD_GROUPS)
    a_flat = dout_f.reshape(-1)
    for task in prange(parts * groups):
        t, g = task // groups, task % groups
        part = dw_parts[t]
        acc = np.empty((TILE_ROWS, width), dtype=xh.dtype)
        offsets = np.empty(TILE_ROWS, dtype=np.int64)
        starts = np.empty(pixels // blocks + 1, dtype=np.int64)
        for cb in range(g * col_blocks // groups, (g + 1) * col_blocks // groups):   # the task's columns of its
            at = (cb // run_blocks) * run + (cb % run_blocks) * width                # part, zeroed here (by the
            for fi in range(f):                                                      # thread that adds to them)
                part[fi, at:at + min(width, run - (cb % run_blocks) * width)] = 0
        for blk in range(t * blocks // parts, (t + 1) * blocks // parts):
            p0 = blk * pixels // blocks
            m = (blk + 1) * pixels // blocks - p0
            b, p, q = _pixel_coords(p0, oh, ow)
            for e in range(m):
                starts[e] = _patch_start(xh, b, p, q, sh, sw)
                b, p, q = _next_pixel(b, p, q, oh, ow)
            for cb in range(g * col_blocks // groups, (g + 1) * col_blocks // groups):
                i, e0 = cb // run_blocks, (cb % run_blocks) * width
                for f0 in range(0, f, TILE_ROWS):
                    for r in range(TILE_ROWS):
                        offsets[r] = min(f0 + r, f - 1) * pixels + p0
                    acc[:] = 0
                    tile_fma_gather(a_flat, offsets, x_flat, i * wp * c + e0, starts, m, acc)
                    for r in range(min(TILE_ROWS, f - f0)):
                        for v in range(min(width, run - e0)):
                            part[f0 + r, i * run + e0 + v] += acc[r, v]


def packed_columns(w):
    """``W_cols (K_pad / width, F, width)`` for ``w (F, C, KH, KW)``: panel ``s`` holds columns ``s*width`` to
    ``s*width + width - 1`` of ``W (F, K)``, ``K = KH*KW*C`` in the order ``(i, j, c)`` of a patch (zeros past
    ``K``): ``W_cols[s, f, v] = w[f, c, i, j]`` for ``s*width + v = (i*KW + j)*C + c``."""
    f, c, kh, kw = w.shape
    width = tile_width(w)
    panels = -(-(kh * kw * c) // width)
    out = aligned_empty(panels * f * width, w.dtype).reshape(panels, f, width)
    _pack_columns(np.ascontiguousarray(w).reshape(f, -1), c, kh, kw, out)
    return out


@numba.njit(cache=True, parallel=True)
def _pack_columns(w_rows, c, kh, kw, out):
    """``out[s, f, v] = w_rows[f, (c*KH + i)*KW + j]`` for ``s*width + v = (i*KW + j)*C + c`` (zeros past ``K``),
    written in order (column ``k``'s place in a filter's row looked up, not divided out), ``PACK_FILTERS``
    filters at a time (their rows stay in L1 while every panel takes its ``width`` values of them), the tile's
    width a constant where it is 16 or 32, the blocks of filters shared out between the threads (as
    ``_pack_on_all_threads``):
    4e 3x3/2's columns (256 x 160 x 3 x 3) 0.26 -> 0.16 ms on one thread, 3c 5x5/2's 1.5x (ninth #16 pass, a
    timing script)."""
    k = kh * kw * c
    source = np.empty(k, dtype=np.int64)
    for i in range(kh):
        for j in range(kw):
            for ci in range(c):
                source[(i * kw + j) * c + ci] = (ci * kh + i) * kw + j
    for block in prange(-(-w_rows.shape[0] // PACK_FILTERS)):
        if out.shape[2] == 16:
            _column_block(w_rows, source, block * PACK_FILTERS, 16, out)
        elif out.shape[2] == 32:
            _column_block(w_rows, source, block * PACK_FILTERS, 32, out)
        else:
            _column_block(w_rows, source, block * PACK_FILTERS, out.shape[2], out)


@numba.njit(cache=True, inline="always")
def _column_block(w_rows, source, f0, width, out):
    f, k = w_rows.shape[0], source.size
    for s in range(out.shape[0]):
        full = (s + 1) * width <= k
        for fi in range(f0, min(f, f0 + PACK_FILTERS)):
            row = w_rows[fi]
            dst = out[s, fi]
            if full:
                for v in range(width):
                    dst[v] = row[source[s * width + v]]
            else:
                for v in range(width):
                    dst[v] = row[source[s * width + v]] if s * width + v < k else 0


@numba.njit(cache=True, parallel=True)
def implicit_conv_input_grad(dout_cl, w_cols, kh, kw, sh, sw, hp, wp, top, left, tasks, chunk, dx):
    r"""The input gradient of any stride without columns: ``dcols = dout_t @ W`` (``dout_t (pixels, F)``, ``W (F,
    KH*KW*C)``) a tile of ``TILE_ROWS`` output pixels by ``tile_width`` patch values at a time (``tile_fma``, reduced
    over the ``F`` filters), each tile added at once onto the pixels' patches (col2im fused: no ``dcols``),

    .. math:: dx_{pad}[b, p s_h + i, q s_w + j, c] \mathrel{+}= \sum_f dout[b, f, p, q]\, w[f, c, i, j].

    ``dout_cl (N, OH, OW, F)``: ``dout`` channels last (a pixel's gradients a row of ``A``); ``w_cols``:
    ``packed_columns(w)``; ``hp, wp``: the padded input's size; ``top, left``: its padding. Tasks: runs of whole
    images, each summing into its own padded channels-last planes (no two tasks write one pixel), whose
    interior becomes ``dx``; inside a task, chunks of ``chunk`` tiles, the panels of ``W`` the outer loop
    (a panel stays in L1 while the chunk's tiles pass). The last tile of a task repeats its last pixel, whose
    copies are dropped. Each value of ``dx`` is one fixed sum: the bits do not depend on the thread count.
    Figures and what it replaced: ``scratchface.kernels.conv._strided_grads``."""
    n, c, h, w = dx.shape
    oh, ow, f = dout_cl.shape[1], dout_cl.shape[2], dout_cl.shape[3]
    panels, width = w_cols.shape[0], w_cols.shape[2]
    k, run = kh * kw * c, kw * c
    a_flat = dout_cl.reshape(-1)
    w_flat = w_cols.reshape(-1)
    column_at = np.empty(panels * width, dtype=np.int64)    # column (i, e) of a patch: i image rows below its start
    for col in range(panels * width):
        column_at[col] = (col // run) * wp * c + col % run
    plane = oh * ow
    for t in prange(tasks):
        b0, b1 = t * n // tasks, (t + 1) * n // tasks
        if b1 == b0:
            continue
        planes = np.zeros((b1 - b0, hp, wp, c), dtype=dx.dtype)
        flat = planes.reshape(-1)
        p0, p1 = b0 * plane, b1 * plane
        tiles = -(-(p1 - p0) // TILE_ROWS)
        acc = np.empty((TILE_ROWS, width), dtype=dx.dtype)
        rows_at = np.empty((chunk, TILE_ROWS), dtype=np.int64)     # where each pixel's gradients start
        starts = np.empty((chunk, TILE_ROWS), dtype=np.int64)      # where each pixel's patch starts in planes
        for tile0 in range(0, tiles, chunk):
            tile1 = min(tiles, tile0 + chunk)
            for tile in range(tile0, tile1):
                pix = min(p0 + tile * TILE_ROWS, p1 - 1)
                b, p, q = _pixel_coords(pix, oh, ow)
                for r in range(TILE_ROWS):
                    if r > 0 and pix < p1 - 1:
                        pix += 1
                        b, p, q = _next_pixel(b, p, q, oh, ow)
                    rows_at[tile - tile0, r] = pix * f
                    starts[tile - tile0, r] = (((b - b0) * hp + p * sh) * wp + q * sw) * c
            for s in range(panels):
                e1 = min(width, k - s * width)
                for tile in range(tile0, tile1):
                    acc[:] = 0
                    tile_fma(a_flat, rows_at[tile - tile0], 0, w_flat, s * f * width, width, f, 1, acc)
                    for r in range(min(TILE_ROWS, p1 - p0 - tile * TILE_ROWS)):
                        at = starts[tile - tile0, r]
                        for v in range(e1):
                            flat[at + column_at[s * width + v]] += acc[r, v]
        interior_to_nchw(planes, b0, top, left, dx)
