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
Hence ``winograd_pays`` (>= 64 channels in and out, >= 20x20 outputs). ``dx`` of the same layers goes
here too (``conv2d_grads_numba``). On Zen 4 (AVX-512, ``docs/benchmark_tables/bench_winograd.txt``) the rule
still holds, by less: conv2 at 24x24 1.04x, at 56x56 1.17x, 3a 3x3 at 28x28 0.98x (a tie), the others
0.21x-0.79x as before.
"""
from __future__ import annotations

import numba
import numpy as np
from numba import prange

from .activations import prelu
from .layout import padded_channels_last

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


@numba.njit(cache=True)
def _input_tiles(xh, g0, g1, th, tw, v_flat, plane):
    """``V[e, t, c] = (B^T d B)[e]``, at ``v_flat[e*plane + t*C + c]``, for the 4x4 patch ``d`` of channel ``c`` under tile ``t`` of tile rows
    ``[g0, g1)`` (tile row ``g = b*TH + ty``; tile ``t = (g - g0)*TW + tx``), from the padded channels-last
    input ``xh (N, 2 TH + 2, 2 TW + 2, C)``: one loop over the channels, each of the 16 values a run of
    ``C`` (vectorised; from NCHW, the 4x4 patches one channel at a time took 56 % of conv2's ``dx``)."""
    hp, wp, c = xh.shape[1], xh.shape[2], xh.shape[3]
    x_flat = xh.reshape(-1)
    row = wp * c                                            # d[i, j, ci] at at + i*row + j*c + ci
    for g in range(g0, g1):
        b, y = g // th, 2 * (g % th)
        for tx in range(tw):
            at, to = ((b * hp + y) * wp + 2 * tx) * c, (g - g0) * tw * c + tx * c
            for ci in range(c):
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


@numba.njit(cache=True)
def _output_tiles(m_flat, plane, g0, g1, th, tw, bias, alpha, has_alpha, out):
    """``out[b, f, 2ty + i, 2tx + j] = (A^T m A)[i, j] + bias[f]`` (through PReLU when ``has_alpha``), cropped
    to the output's size (the last tile row / column may hang over); ``m[e, f, t]`` at ``m_flat[e*plane + f*T
    + t]`` for the ``T`` tiles of tile rows ``[g0, g1)``."""
    f, oh = out.shape[1], out.shape[2]
    tiles = (g1 - g0) * tw
    for k in range(f):
        add, slope = bias[k], alpha[k]
        for g in range(g0, g1):
            b, y = g // th, 2 * (g % th)
            for tx in range(tw):
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
        v_plane, m_plane = tiles * c + 16, f * tiles + 16      # the 16 planes one cache line (or more) off a
        v = np.empty(16 * v_plane, dtype=xh.dtype)              # multiple of 4 KiB: 240 tiles of 192 channels
        m = np.empty(16 * m_plane, dtype=xh.dtype)              # are 45 x 4 KiB (all 16 in one cache set)
        _input_tiles(xh, g0, g1, th, tw, v, v_plane)
        for e in range(16):                                     # M[e] = U[e] V[e]^T, BLAS on this thread
            np.dot(u[e * u_plane:e * u_plane + f * c].reshape(f, c),
                   v[e * v_plane:e * v_plane + tiles * c].reshape(tiles, c).T,
                   m[e * m_plane:e * m_plane + f * tiles].reshape(f, tiles))
        _output_tiles(m, m_plane, g0, g1, th, tw, bias, alpha, has_alpha, out)


WINOGRAD_MIN_C = 64         # input and output channels (the GEMMs' depth and rows): below, too slow for 2.25x
WINOGRAD_MIN_OUT = 400      # output pixels per image (20x20): below, the transforms cost what is saved
WINOGRAD_CHUNK = 1 << 20    # elements of V and M per chunk (4 MiB in float32): in L3 for the GEMMs


def winograd_pays(c, f, kh, kw, stride, oh, ow, padding=(0, 0, 0, 0)):
    """Winograd for 3x3, stride-1 kernels with at least ``WINOGRAD_MIN_C`` input and output channels on
    outputs of at least ``WINOGRAD_MIN_OUT`` pixels, padded by at most 2 (NN2's conv2 and, at 224x224,
    inception 3)."""
    return (kh == 3 and kw == 3 and stride == (1, 1) and min(c, f) >= WINOGRAD_MIN_C
            and oh * ow >= WINOGRAD_MIN_OUT and max(padding) <= 2)


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
    u_plane = f * c + 16
    u = np.empty(16 * u_plane, dtype=x.dtype)
    _transformed_weights(w, u, u_plane)
    _winograd_forward(xh, u, u_plane, bias, slopes, alpha is not None, th, tw, nchunks, out)
    return out
