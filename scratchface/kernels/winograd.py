r"""Winograd F(2x2, 3x3): a 3x3, stride-1 convolution with 16 multiplications per 2x2 outputs instead of 36 (#16).

Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (CVPR 2016), eq. 7-8. The output
is cut into 2x2 tiles; tile :math:`Y` of filter :math:`f` is

.. math:: Y = A^T \Big[\sum_c (G\, g_{f,c}\, G^T) \odot (B^T d_c B)\Big] A

with :math:`d_c` the 4x4 input patch under the tile (channel :math:`c`), :math:`g_{f,c}` the 3x3 kernel and

.. math:: B^T = \begin{pmatrix} 1 & 0 & -1 & 0 \\ 0 & 1 & 1 & 0 \\ 0 & -1 & 1 & 0 \\ 0 & 1 & 0 & -1 \end{pmatrix},\quad
          G = \begin{pmatrix} 1 & 0 & 0 \\ \frac12 & \frac12 & \frac12 \\ \frac12 & -\frac12 & \frac12 \\ 0 & 0 & 1
          \end{pmatrix},\quad
          A^T = \begin{pmatrix} 1 & 1 & 1 & 0 \\ 0 & 1 & -1 & -1 \end{pmatrix}.

The sum over channels is, for each of the 16 positions :math:`e` of the 4x4 transformed tile, one matrix
product ``M[e] (F, tiles) = U[e] (F, C) @ V[e] (C, tiles)``: 16 GEMMs of ``F x C x tiles`` instead of one
of ``F x 9C x 4 tiles``, 2.25 times fewer multiply-adds. The transforms are additions only. Like
``conv.py``, the work is cut into chunks of tile rows, one ``prange`` over them, each thread transforming
its tiles, running its 16 GEMMs with BLAS on the thread and writing its outputs (bias and PReLU in the
same pass). ``scratchface.kernels.conv.conv2d_output_numba`` sends 3x3, stride-1 convolutions here when
they have enough channels and outputs (``winograd_pays``). ``winograd_reference_forward`` is the same
algorithm in NumPy, one einsum per matrix product, to read; the tests compare both to
``scratchface.layers.conv.conv2d_reference_forward`` (float64 1e-12; float32: the transforms' rounding
stays at float32 precision, 1e-6 relative).

Measured (``python benchmarks/bench_winograd.py``: 2 threads, quiet 2-core machine, forward, the columns
path of ``conv.py``, the micro-kernel of ``implicit_conv.py`` and Winograd in turn, one process;
``docs/benchmark_tables/zen1/bench_winograd.txt``; Zen 1), the faster of the other two / Winograd: NN2 conv2 at 24x24
(batch 32) 1.23x, at 56x56 (the 224x224 input) 1.29x, inception 3a 3x3 at 28x28 1.23x; but 3a / 3b 3x3
at 12x12 0.84x / 0.94x, 4a / 4d 3x3 at 6x6 0.64x / 0.69x, 5a at 3x3 0.27x (tiles hanging over), R-Net
conv2 0.70x, O-Net conv2 and conv3 0.87x / 0.61x: the 16 GEMMs reduce over ``C`` only (64 to 128),
where OpenBLAS runs well below its rate on im2col's ``9 C``, and the transforms take a third of the time.
Hence ``winograd_pays`` was >= 64 channels in and out on >= 20x20 outputs. ``dx`` of the same layers goes
here too (``conv2d_grads_numba``). On Zen 4 (AVX-512) the rule still held, by less: conv2 at 24x24 1.04x,
at 56x56 1.17x, 3a 3x3 at 28x28 0.98x (a tie), the others 0.21x-0.79x as before.

Seventh #16 pass: the transforms had been a third to a half of the time, and most of it was not
arithmetic. (1) The 16 planes of ``V`` and ``M`` were a multiple of 4 KiB apart for some chunks (240 tiles
of 192 channels: 45 x 4 KiB), so the 16 stores of every transform went to one cache set: each plane is now
a cache line longer. (2) The input transform reads the padded channels-last input, and (3) both transforms
run ``L`` channels / tiles at once in 256-bit vectors (``_input_vectors``, ``_output_vectors``: LLVM IR, as
the micro-kernel; Numba's own loops stayed scalar). (4) ``U`` in Numba (the einsum took 2.1 ms for conv2).
One thread, a chunk of 240 tiles of conv2 (64 -> 192) / its ``dx`` (192 -> 64), input transform 0.56 /
1.69 ms -> 0.03-0.04 / 0.07-0.09, output transform 0.68 / 0.23 -> 0.16 / 0.05, against 1.0-1.1 ms of
GEMMs (a timing script). conv2 forward 1.22x, backward 1.11x (two threads, against the previous commit in
turn); with that, Winograd now pays on the inception layers too (``winograd_pays``). Tried and dropped:
the 16 products by the micro-kernel (tiles of 6 Winograd tiles by 16 filters, ``U`` packed in panels) in
place of BLAS: 0.80x-0.94x (conv2, 3a / 4d 3x3), 1.04x on conv2's ``dx`` only.
"""
from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.extending import intrinsic

from .activations import prelu
from .layout import padded_channels_last

TRANSFORM_BYTES = 32       # the transforms' vectors: 256 bits, as measured in the seventh #16 pass (the
                           # micro-kernel's tile has its own width: scratchface.kernels.microkernel)

__all__ = ["winograd_output_numba", "winograd_pays", "winograd_reference_forward", "winograd_weights"]

B_T = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=np.float64)
A_T = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)


def winograd_reference_forward(x, w, b, padding):
    """The readable version (NumPy, the three matrices above): ``conv2d(x, w) + b``, 3x3, stride 1.

    Every 4x4 patch ``d`` under a 2x2 output tile (stride 2) is transformed to ``B^T d B``, every kernel
    to ``G g G^T``; their elementwise products summed over the channels, ``M``, give the tile ``A^T M A``.
    """
    xpad, oh, ow = _tiled_input(x.astype(np.float64), padding)
    n, f, c = x.shape[0], w.shape[0], w.shape[1]
    th, tw = (xpad.shape[2] - 2) // 2, (xpad.shape[3] - 2) // 2
    d = np.lib.stride_tricks.sliding_window_view(xpad, (4, 4), axis=(2, 3))[:, :, ::2, ::2]   # (N, C, TH, TW, 4, 4)
    v = np.einsum("ai,nctuij,bj->nctuab", B_T, d, B_T)                                      # B^T d B
    u = winograd_weights(w.astype(np.float64)).reshape(4, 4, f, c)                          # G g G^T
    m = np.einsum("abfc,nctuab->nftuab", u, v)                                              # sum over c
    y = np.einsum("ia,nftuab,jb->nftiuj", A_T, m, A_T).reshape(n, -1, 2 * th, 2 * tw)       # A^T M A
    return (y[:, :, :oh, :ow] + b[None, :, None, None]).astype(x.dtype)


def _tiled_input(x, padding):
    """``x`` zero-padded by ``padding`` and on to cover whole 2x2 output tiles: ``(N, C, 2 TH + 2, 2 TW + 2)``,
    with the output's size ``OH, OW`` (3x3, stride 1)."""
    top, bottom, left, right = padding
    n, c, h, wd = x.shape
    oh, ow = h + top + bottom - 2, wd + left + right - 2
    xpad = np.zeros((n, c, 2 * -(-oh // 2) + 2, 2 * -(-ow // 2) + 2), dtype=x.dtype)
    xpad[:, :, top:top + h, left:left + wd] = x
    return xpad, oh, ow


def winograd_weights(w):
    """``U (16, F, C)``: ``G g G^T`` of every 3x3 kernel ``g = w[f, c]``, flattened row-major over the 4x4."""
    g = G.astype(w.dtype)
    u = np.einsum("ai,fcij,bj->abfc", g, w, g)                    # (4, 4, F, C)
    return np.ascontiguousarray(u.reshape(16, w.shape[0], w.shape[1]))


@numba.njit(cache=True, inline="always")
def _g(a0, a1, a2):
    """``G (a0, a1, a2)``: the kernel transform along one row or column."""
    return a0, (a0 + a1 + a2) / 2, (a0 - a1 + a2) / 2, a2


@numba.njit(cache=True, parallel=True)
def _transformed_weights(w, u_flat, plane):
    """``U[e, f, c] = (G g G^T)[e]`` of ``g = w[f, c]`` at ``u_flat[e*plane + f*C + c]``: the values of
    ``winograd_weights`` (the readable einsum took 2.1 ms for conv2's kernels, a tenth of its forward),
    each of the 16 planes ``plane`` apart."""
    f, c = w.shape[0], w.shape[1]
    for k in prange(f):
        for ci in range(c):
            g = w[k, ci]                                        # in float64, rounded once when stored
            c0 = _g(np.float64(g[0, 0]), np.float64(g[1, 0]), np.float64(g[2, 0]))     # G g, column by column
            c1 = _g(np.float64(g[0, 1]), np.float64(g[1, 1]), np.float64(g[2, 1]))
            c2 = _g(np.float64(g[0, 2]), np.float64(g[1, 2]), np.float64(g[2, 2]))
            for a in range(4):                                  # (G g) G^T, row a
                row = _g(c0[a], c1[a], c2[a])
                for b in range(4):
                    u_flat[(4 * a + b) * plane + k * c + ci] = row[b]


@numba.njit(cache=True, inline="always")
def _bt(a0, a1, a2, a3):
    """``(a0, a1, a2, a3) B`` = ``B^T (a0, a1, a2, a3)``: the input transform along one row or column."""
    return a0 - a2, a1 + a2, a2 - a1, a1 - a3


@intrinsic
def _input_vectors(typingctx, x_flat, at, row, c, v_flat, to, plane):
    """``_input_tiles``' loop body for ``L`` channels at once (``L`` = 8 float32 / 4 float64, one 256-bit
    vector): the 16 values ``d[i, j] = x_flat[at + i*row + j*c :][:L]`` to ``V[e] = v_flat[to + e*plane :][:L]``,
    the same additions in the same order as ``_bt``. Written in LLVM IR because Numba's loop does not
    vectorise: 16 loads and 16 stores through two arrays that might overlap are more than LLVM checks at run
    time, and it leaves the loop scalar (conv2's ``dx``, 192 channels: 0.62 ms a chunk of 240 tiles scalar)."""
    if not (isinstance(x_flat, types.Array) and isinstance(v_flat, types.Array) and x_flat.dtype == v_flat.dtype):
        return None
    sig = types.void(x_flat, types.intp, types.intp, types.intp, v_flat, types.intp, types.intp)

    def codegen(context, builder, signature, args):
        x_arr, at, row, c, v_arr, to, plane = args
        i64 = ir.IntType(64)
        dtype = signature.args[0].dtype
        vec = ir.VectorType(context.get_value_type(dtype), TRANSFORM_BYTES // (4 if dtype == types.float32 else 8))
        x_ptr = context.make_array(signature.args[0])(context, builder, x_arr).data
        v_ptr = context.make_array(signature.args[4])(context, builder, v_arr).data

        def at_offset(ptr, offset):
            return builder.bitcast(builder.gep(ptr, [offset]), vec.as_pointer())

        def bt(a0, a1, a2, a3):
            return builder.fsub(a0, a2), builder.fadd(a1, a2), builder.fsub(a2, a1), builder.fsub(a1, a3)

        rows = []
        for i in range(4):                                      # d B, row by row
            base = builder.add(at, builder.mul(ir.Constant(i64, i), row))
            rows.append(bt(*[builder.load(at_offset(x_ptr, builder.add(base, builder.mul(ir.Constant(i64, j), c))),
                                          align=4) for j in range(4)]))
        for j in range(4):                                      # B^T (d B), column by column
            for a, value in enumerate(bt(rows[0][j], rows[1][j], rows[2][j], rows[3][j])):
                offset = builder.add(to, builder.mul(ir.Constant(i64, 4 * a + j), plane))
                builder.store(value, at_offset(v_ptr, offset), align=4)
        return context.get_dummy_value()

    return sig, codegen


@numba.njit(cache=True)
def _input_tiles(xh, g0, g1, th, tw, v_flat, plane):
    """``V[e, t, c] = (B^T d B)[e]``, at ``v_flat[e*plane + t*C + c]``, for the 4x4 patch ``d`` of channel ``c``
    under tile ``t`` of tile rows ``[g0, g1)`` (tile row ``g = b*TH + ty``; tile ``t = (g - g0)*TW + tx``),
    from the padded channels-last input ``xh (N, 2 TH + 2, 2 TW + 2, C)``: the channels in vectors of ``L``
    (``_input_vectors``), the last ``C mod L`` one at a time."""
    hp, wp, c = xh.shape[1], xh.shape[2], xh.shape[3]
    x_flat = xh.reshape(-1)
    row = wp * c                                            # d[i, j, ci] at at + i*row + j*c + ci
    lanes = TRANSFORM_BYTES // xh.itemsize
    for g in range(g0, g1):
        b, y = g // th, 2 * (g % th)
        for tx in range(tw):
            at, to = ((b * hp + y) * wp + 2 * tx) * c, (g - g0) * tw * c + tx * c
            for ci in range(0, c - lanes + 1, lanes):
                _input_vectors(x_flat, at + ci, row, c, v_flat, to + ci, plane)
            for ci in range(c - c % lanes, c):
                d = at + ci
                r0 = _bt(x_flat[d], x_flat[d + c], x_flat[d + 2 * c], x_flat[d + 3 * c])    # d B, row by row
                d += row
                r1 = _bt(x_flat[d], x_flat[d + c], x_flat[d + 2 * c], x_flat[d + 3 * c])
                d += row
                r2 = _bt(x_flat[d], x_flat[d + c], x_flat[d + 2 * c], x_flat[d + 3 * c])
                d += row
                r3 = _bt(x_flat[d], x_flat[d + c], x_flat[d + 2 * c], x_flat[d + 3 * c])
                for j in range(4):                                                      # B^T (d B)
                    o = to + j * plane + ci
                    col = _bt(r0[j], r1[j], r2[j], r3[j])
                    v_flat[o], v_flat[o + 4 * plane], v_flat[o + 8 * plane], v_flat[o + 12 * plane] = col


@intrinsic
def _output_vectors(typingctx, m_flat, at, plane, out_flat, top, below, add, slope, has_alpha):
    """``_output_tiles``' loop body for ``L`` consecutive tiles of one tile row: ``m[e] = m_flat[at + e*plane
    :][:L]`` to the ``2L`` outputs of their top row at ``out_flat[top:]`` and of their bottom row at
    ``out_flat[below:]`` (``A^T m A`` with ``add``, through PReLU with ``slope`` when ``has_alpha``), the same
    additions in the same order as the scalar loop; the two outputs of each tile interleaved by a shuffle."""
    if not (isinstance(m_flat, types.Array) and isinstance(out_flat, types.Array) and m_flat.dtype == out_flat.dtype):
        return None
    sig = types.void(m_flat, types.intp, types.intp, out_flat, types.intp, types.intp, m_flat.dtype, m_flat.dtype,
                     types.boolean)

    def codegen(context, builder, signature, args):
        m_arr, at, plane, out_arr, top, below, add, slope, has_alpha = args
        i64, i32 = ir.IntType(64), ir.IntType(32)
        dtype = signature.args[0].dtype
        lanes = TRANSFORM_BYTES // (4 if dtype == types.float32 else 8)
        scalar = context.get_value_type(dtype)
        vec, pair = ir.VectorType(scalar, lanes), ir.VectorType(scalar, 2 * lanes)
        m_ptr = context.make_array(signature.args[0])(context, builder, m_arr).data
        out_ptr = context.make_array(signature.args[3])(context, builder, out_arr).data
        m = []
        for e in range(16):                                     # m[e]: L values at m_flat[at + e*plane]
            where = builder.gep(m_ptr, [builder.add(at, builder.mul(ir.Constant(i64, e), plane))])
            m.append(builder.load(builder.bitcast(where, vec.as_pointer()), align=4))

        def splat(value, kind):
            one = builder.insert_element(ir.Constant(kind, ir.Undefined), value, ir.Constant(i32, 0))
            zeros = ir.Constant(ir.VectorType(i32, 2 * lanes), [0] * (2 * lanes))
            return builder.shuffle_vector(one, ir.Constant(kind, ir.Undefined), zeros)
        add_v, slope_v = splat(add, pair), splat(slope, pair)
        interleave = ir.Constant(ir.VectorType(i32, 2 * lanes), [k // 2 + (k % 2) * lanes for k in range(2 * lanes)])
        for first, offset in ((0, top), (4, below)):            # A^T m: row 0 (m0 + m4 + m8) or row 1 (m4 - m8 - m12)
            if first == 0:
                a = [builder.fadd(builder.fadd(m[k], m[4 + k]), m[8 + k]) for k in range(4)]
            else:
                a = [builder.fsub(builder.fsub(m[4 + k], m[8 + k]), m[12 + k]) for k in range(4)]
            left = builder.fadd(builder.fadd(a[0], a[1]), a[2])                      # (A^T m) A
            right = builder.fsub(builder.fsub(a[1], a[2]), a[3])
            values = builder.fadd(builder.shuffle_vector(left, right, interleave), add_v)
            relu = builder.select(builder.fcmp_ordered(">", values, ir.Constant(pair, [0.0] * (2 * lanes))), values,
                                  builder.fmul(slope_v, values))
            values = builder.select(has_alpha, relu, values)
            builder.store(values, builder.bitcast(builder.gep(out_ptr, [offset]), pair.as_pointer()), align=4)
        return context.get_dummy_value()

    return sig, codegen


@numba.njit(cache=True)
def _output_tiles(m_flat, plane, g0, g1, th, tw, bias, alpha, has_alpha, out):
    """``out[b, f, 2ty + i, 2tx + j] = (A^T m A)[i, j] + bias[f]`` (through PReLU when ``has_alpha``), cropped
    to the output's size (the last tile row / column may hang over); ``m[e, f, t]`` at ``m_flat[e*plane + f*T
    + t]`` for the ``T`` tiles of tile rows ``[g0, g1)``. Runs of ``L`` tiles inside the output in vectors
    (``_output_vectors``), the rest one tile at a time."""
    f, oh, ow = out.shape[1], out.shape[2], out.shape[3]
    tiles = (g1 - g0) * tw
    lanes = TRANSFORM_BYTES // out.itemsize
    out_flat = out.reshape(-1)
    inside = min(tw, ow // 2)                           # tiles whose two output columns are both inside
    for k in range(f):
        add, slope = bias[k], alpha[k]
        for g in range(g0, g1):
            b, y = g // th, 2 * (g % th)
            vectors = inside - inside % lanes if y + 1 < oh else 0
            top = ((b * f + k) * oh + y) * ow
            for tx in range(0, vectors, lanes):
                _output_vectors(m_flat, k * tiles + (g - g0) * tw + tx, plane, out_flat, top + 2 * tx,
                                top + ow + 2 * tx, add, slope, has_alpha)
            for tx in range(vectors, tw):
                m = m_flat[k * tiles + (g - g0) * tw + tx:]                          # m[e] at m[e * plane]
                a0 = m[0] + m[4 * plane] + m[8 * plane]                              # A^T m: row 0
                a1 = m[plane] + m[5 * plane] + m[9 * plane]
                a2 = m[2 * plane] + m[6 * plane] + m[10 * plane]
                a3 = m[3 * plane] + m[7 * plane] + m[11 * plane]
                c0 = m[4 * plane] - m[8 * plane] - m[12 * plane]                     # row 1
                c1 = m[5 * plane] - m[9 * plane] - m[13 * plane]
                c2 = m[6 * plane] - m[10 * plane] - m[14 * plane]
                c3 = m[7 * plane] - m[11 * plane] - m[15 * plane]
                x = 2 * tx
                _store_pair(out, b, k, y, x, a0 + a1 + a2 + add, a1 - a2 - a3 + add, has_alpha, slope)
                if y + 1 < oh:                                                         # (A^T m) A
                    _store_pair(out, b, k, y + 1, x, c0 + c1 + c2 + add, c1 - c2 - c3 + add, has_alpha, slope)


@numba.njit(cache=True, inline="always")
def _store_pair(out, b, k, y, x, v0, v1, has_alpha, slope):
    """``out[b, k, y, x : x + 2] = (v0, v1)`` through PReLU when ``has_alpha``, the second one if inside."""
    out[b, k, y, x] = prelu(v0, slope) if has_alpha else v0
    if x + 1 < out.shape[3]:
        out[b, k, y, x + 1] = prelu(v1, slope) if has_alpha else v1


@numba.njit(cache=True, parallel=True)
def _winograd_forward(xh, u, u_plane, bias, alpha, has_alpha, th, tw, nchunks, out):
    """Chunk ``t`` of the ``N*TH`` tile rows: input transform, 16 GEMMs (``U[e] (F, C)`` at ``u[e*u_plane:]``),
    output transform."""
    rows = xh.shape[0] * th
    c, f = xh.shape[3], out.shape[1]
    for t in prange(nchunks):
        g0 = t * rows // nchunks
        g1 = (t + 1) * rows // nchunks
        if g1 == g0:
            continue
        tiles = (g1 - g0) * tw
        v_plane, m_plane = tiles * c + PLANE_SLACK, f * tiles + PLANE_SLACK
        v = np.empty(16 * v_plane, dtype=xh.dtype)
        m = np.empty(16 * m_plane, dtype=xh.dtype)
        _input_tiles(xh, g0, g1, th, tw, v, v_plane)
        for e in range(16):                                     # M[e] = U[e] V[e]^T, BLAS on this thread
            np.dot(u[e * u_plane:e * u_plane + f * c].reshape(f, c),
                   v[e * v_plane:e * v_plane + tiles * c].reshape(tiles, c).T,
                   m[e * m_plane:e * m_plane + f * tiles].reshape(f, tiles))
        _output_tiles(m, m_plane, g0, g1, th, tw, bias, alpha, has_alpha, out)


WINOGRAD_MIN_C = 64         # input and output channels (the GEMMs' depth and rows) ...
WINOGRAD_MIN_CF = 8192      # ... and their product (64 x 128): smaller GEMMs run too slowly for 2.25x ...
WINOGRAD_MIN_OUT = 36       # ... on outputs of at least this many pixels per image (6x6) ...
WINOGRAD_MAX_WASTE = 1.2    # ... whose 2x2 tiles cover at most this many times the output (7x7: 64 / 49)
WINOGRAD_CHUNK = 1 << 20    # elements of V and M per chunk (4 MiB in float32): in L3 for the GEMMs
PLANE_SLACK = 16            # elements after each of the 16 planes of U, V and M: the planes a cache line (or more)
#                             off a multiple of 4 KiB (240 tiles of 192 channels are 45 x 4 KiB: all 16 stores
#                             of a transform went to one cache set)


def winograd_pays(c, f, kh, kw, stride, oh, ow, padding=(0, 0, 0, 0)):
    """Winograd for 3x3, stride-1 kernels with at least ``WINOGRAD_MIN_C`` input and output channels, ``C F
    >= WINOGRAD_MIN_CF``, on outputs of at least ``WINOGRAD_MIN_OUT`` pixels that whole 2x2 tiles cover
    with at most ``WINOGRAD_MAX_WASTE`` times their pixels, padded by at most 2: NN2's conv2, its inception
    3x3 layers at 12x12 and 6x6 (and at 224x224 at 28x28 and 14x14), and their ``dx``.

    Seventh #16 pass (Zen 4, 2 threads, batch 32, float32, against the route each layer took before, in
    turn in one process, a timing script), with the transforms in vectors: forward / backward 3a 3x3 at
    12x12 1.28x / 1.06x, 128 -> 192 at 12x12 1.10x / 1.33x, 64 -> 128 1.13x / 1.05x, 4a 3x3 at 6x6 1.17x /
    1.09x, 4d 1.27x / 1.08x, at 14x14 1.22x-1.44x / 1.14x-1.15x; but 5a at 7x7 0.91x / 0.86x (the tiles
    cover 64 of 49 pixels), 64 -> 64 at 6x6 0.67x / 0.86x, 48 -> 96 0.80x, MTCNN's layers 0.73x-1.04x."""
    if not (kh == 3 and kw == 3 and stride == (1, 1) and min(c, f) >= WINOGRAD_MIN_C and c * f >= WINOGRAD_MIN_CF
            and oh * ow >= WINOGRAD_MIN_OUT and max(padding) <= 2):
        return False
    return 4 * -(-oh // 2) * -(-ow // 2) <= WINOGRAD_MAX_WASTE * oh * ow


def winograd_output_numba(x, w, bias, alpha, padding, out):
    """Write ``conv2d(x, w) + bias`` (through PReLU with slopes ``alpha`` if given) into ``out (N, F, OH, OW)``.

    ``x (N, C, H, W)``, ``w (F, C, 3, 3)``, stride 1, ``padding = (top, bottom, left, right)``;
    ``bias`` an array (zeros for none), ``alpha`` an array or None. Called with the thread settings of
    ``conv2d_output_numba`` in force (BLAS on one thread).
    """
    n, c, h, wd = x.shape
    f, oh, ow = out.shape[1:]
    th, tw = -(-oh // 2), -(-ow // 2)
    top, _, left, _ = padding                                 # padded on to hold whole 2x2 output tiles
    xh = padded_channels_last(x, (top, 2 * th + 2 - h - top, left, 2 * tw + 2 - wd - left))
    per_row = 16 * (c + f) * tw
    nchunks = int(min(n * th, max(1, -(-n * th * per_row // WINOGRAD_CHUNK))))
    slopes = bias if alpha is None else alpha
    u_plane = f * c + PLANE_SLACK
    u = np.empty(16 * u_plane, dtype=x.dtype)
    _transformed_weights(w, u, u_plane)
    _winograd_forward(xh, u, u_plane, bias, slopes, alpha is not None, th, tw, nchunks, out)
    return out
