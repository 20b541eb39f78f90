"""The register-blocked micro-kernel (#16): equal to its three-loop reference, and the weight packing by hand."""
import numpy as np
import pytest

numba = pytest.importorskip("numba")
mk = pytest.importorskip("scratchface.kernels.microkernel")
kimp = pytest.importorskip("scratchface.kernels.implicit_conv")


@numba.njit
def tile_fma(a, offsets, a_step, b, b_start, b_stride, length, rows, acc):     # an intrinsic is called from Numba
    mk.tile_fma(a, offsets, a_step, b, b_start, b_stride, length, rows, acc)


@numba.njit
def tile_fma_runs(a, offsets, a_step, b, b_start, b_stride, b_run, length, rows, acc):
    mk.tile_fma_runs(a, offsets, a_step, b, b_start, b_stride, b_run, length, rows, acc)


@numba.njit
def tile_fma_gather(a, offsets, b, b_start, b_rows, length, acc):
    mk.tile_fma_gather(a, offsets, b, b_start, b_rows, length, acc)


def rel(a, ref):
    return float(np.max(np.abs(np.asarray(a, np.float64) - ref)) / max(np.max(np.abs(ref)), 1e-300))


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-13), (np.float32, 1e-5)])
@pytest.mark.parametrize("length, rows", [(0, 1), (1, 1), (2, 3), (7, 1), (7, 0), (300, 1), (5, 4)])
def test_tile_fma_equals_the_loops(dtype, tol, length, rows, rng):
    """Rows of A anywhere in a flat array (overlapping too), in runs ``a_step`` apart; B rows strided; the
    tile added to."""
    width = mk.tile_width(np.zeros(1, dtype))
    assert width == 2 * mk.VECTOR_BYTES // np.dtype(dtype).itemsize
    a_step = length + 11
    a = rng.standard_normal(4 * length + 50 + rows * a_step).astype(dtype)
    stride = width + 3
    b = rng.standard_normal(5 + stride * max(length * rows, 1) + width).astype(dtype)
    offsets = np.array(([0, 3, 2 * length + 1, 3] + [5] * mk.TILE_ROWS)[:mk.TILE_ROWS], dtype=np.int64)
    start = rng.standard_normal((mk.TILE_ROWS, width)).astype(dtype)
    got, want = start.copy(), start.astype(np.float64)
    tile_fma(a, offsets, a_step, b, 5, stride, length, rows, got)
    mk.tile_fma_reference(a.astype(np.float64), offsets, a_step, b.astype(np.float64), 5, stride, length, rows, want)
    a_rows = np.array([[a[o + i * a_step + e] for i in range(rows) for e in range(length)] for o in offsets],
                      dtype=np.float64).reshape(mk.TILE_ROWS, rows * length)
    b_rows = np.array([b[5 + e * stride:5 + e * stride + width] for e in range(rows * length)],
                      dtype=np.float64).reshape(rows * length, width)
    assert rel(want, start + a_rows @ b_rows) < 1e-13
    assert got.dtype == dtype and rel(got, want) < tol


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-13), (np.float32, 1e-5)])
@pytest.mark.parametrize("length, rows, b_run", [(4, 3, 9), (7, 1, 7), (5, 4, 5), (0, 2, 3)])
def test_tile_fma_runs_takes_part_of_each_run_of_b(dtype, tol, length, rows, b_run, rng):
    """``tile_fma_runs``: run ``i`` of B ``b_run`` rows after run ``i - 1`` (``b_run = length``: ``tile_fma``);
    against the product of the rows picked by hand."""
    width = mk.tile_width(np.zeros(1, dtype))
    a_step, stride = length + 5, width + 2
    a = rng.standard_normal(60 + rows * a_step).astype(dtype)
    b = rng.standard_normal(3 + stride * (rows * b_run + 1) + width).astype(dtype)
    offsets = np.array(([0, 4, 9, 1, 30, 2] * 2)[:mk.TILE_ROWS], dtype=np.int64)
    got = np.ones((mk.TILE_ROWS, width), dtype)
    tile_fma_runs(a, offsets, a_step, b, 3, stride, b_run, length, rows, got)
    a_rows = np.array([[a[o + i * a_step + e] for i in range(rows) for e in range(length)] for o in offsets],
                      dtype=np.float64).reshape(mk.TILE_ROWS, rows * length)
    b_rows = np.array([b[3 + (i * b_run + e) * stride:3 + (i * b_run + e) * stride + width]
                       for i in range(rows) for e in range(length)], dtype=np.float64).reshape(rows * length, width)
    assert got.dtype == dtype and rel(got, 1 + a_rows @ b_rows) < tol
    if b_run == length:                                         # the same bits as tile_fma
        same = np.ones((mk.TILE_ROWS, width), dtype)
        tile_fma(a, offsets, a_step, b, 3, stride, length, rows, same)
        assert np.array_equal(got, same)


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-13), (np.float32, 1e-5)])
def test_tile_fma_gather_equals_the_loops(dtype, tol, rng):
    width = mk.tile_width(np.zeros(1, dtype))
    length = 37
    a = rng.standard_normal(400).astype(dtype)
    b = rng.standard_normal(1000).astype(dtype)
    rows = rng.integers(0, 1000 - width - 7, length).astype(np.int64)          # B's rows anywhere, in any order
    offsets = rng.integers(0, 400 - length, mk.TILE_ROWS).astype(np.int64)
    got = np.zeros((mk.TILE_ROWS, width), dtype)
    want = np.zeros((mk.TILE_ROWS, width))
    tile_fma_gather(a, offsets, b, 7, rows, length, got)
    mk.tile_fma_gather_reference(a.astype(np.float64), offsets, b.astype(np.float64), 7, rows, length, want)
    a_rows = np.stack([a[o:o + length] for o in offsets]).astype(np.float64)
    b_rows = np.stack([b[7 + r:7 + r + width] for r in rows]).astype(np.float64)
    assert rel(want, a_rows @ b_rows) < 1e-13
    assert rel(got, want) < tol


def test_packed_weights_by_hand():
    """Panels of ``tile_width`` filters, rows in (kernel row, kernel column, channel) order, zeros past F."""
    width = mk.tile_width(np.zeros(1, np.float32))
    f, c, kh, kw = width + 3, 2, 3, 2
    w = np.arange(f * c * kh * kw, dtype=np.float32).reshape(f, c, kh, kw)
    pack = kimp.packed_weights(w)
    assert pack.shape == (2, kh * kw * c, width) and pack.ctypes.data % 64 == 0
    for filt in range(f):
        for ch in range(c):
            for i in range(kh):
                for j in range(kw):
                    assert pack[filt // width, (i * kw + j) * c + ch, filt % width] == w[filt, ch, i, j]
    assert not pack[1, :, f - width:].any()                       # the missing filters of the last panel


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("turned", [False, True])
@pytest.mark.parametrize("all_threads", [False, True])
def test_packing_against_numpy(dtype, turned, all_threads, rng, monkeypatch):
    """``packed_weights`` / ``packed_columns`` (blocks of channels / filters, the tile's width a constant in float32)
    against the same layouts by NumPy transposes, on channel and filter counts that leave partial blocks and
    panels, and on a strided view (the kernels turned, as ``dx`` packs them); the weights packed on one thread and
    on all."""
    monkeypatch.setattr(kimp, "PARALLEL_PACK_MIN", 0 if all_threads else 10 ** 9)
    f, c, kh, kw = 2 * 16 + 5, 16 + 21, 3, 2
    w = rng.standard_normal((c, f, kh, kw) if turned else (f, c, kh, kw)).astype(dtype)
    if turned:
        w = w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
    width = mk.tile_width(w)
    k = kh * kw * c
    rows = w.transpose(0, 2, 3, 1).reshape(f, k)                    # W (F, K), K in a patch's order (i, j, c)
    panels = -(-f // width)
    want = np.zeros((k, panels * width), dtype)
    want[:, :f] = rows.T
    np.testing.assert_array_equal(kimp.packed_weights(w), want.reshape(k, panels, width).transpose(1, 0, 2))
    panels = -(-k // width)
    want = np.zeros((f, panels * width), dtype)
    want[:, :k] = rows
    np.testing.assert_array_equal(kimp.packed_columns(w), want.reshape(f, panels, width).transpose(1, 0, 2))


@pytest.mark.parametrize("parts", [1, 3])
def test_kernels_from_patch_rows(parts, rng):
    """The weight gradient's partial sums ``(T, F, KH*KW*C)`` in a patch's column order back to ``(F, C, KH, KW)``:
    the bits of NumPy's sum over ``T`` and transposed copy."""
    f, c, kh, kw = 5, 19, 3, 2
    rows = rng.standard_normal((parts, f, kh * kw * c)).astype(np.float32)
    got = np.empty((f, c, kh, kw), np.float32)
    kimp.kernels_from_patch_rows(rows, got)
    np.testing.assert_array_equal(got, rows.sum(axis=0).reshape(f, kh, kw, c).transpose(0, 3, 1, 2))


def test_aligned_empty():
    for dtype in (np.float32, np.float64):
        for size in (1, 17, 1000):
            a = mk.aligned_empty(size, dtype)
            assert a.shape == (size,) and a.dtype == dtype and a.ctypes.data % 64 == 0 and a.flags.c_contiguous


def test_filter_major_and_bias_gradient(rng):
    dout = rng.standard_normal((3, 4, 2, 5)).astype(np.float32)
    flat, sums = kimp.filter_major(dout)
    np.testing.assert_array_equal(flat, dout.transpose(1, 0, 2, 3).reshape(4, -1))
    np.testing.assert_allclose(sums, dout.astype(np.float64).sum(axis=(0, 2, 3)), rtol=1e-12)
