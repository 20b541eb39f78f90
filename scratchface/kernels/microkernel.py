r"""A register-blocked GEMM micro-kernel for Numba, written in LLVM IR: the inner loop of a convolution (#16).

A matrix product spends its time in one small loop. For a tile of ``TILE_ROWS`` rows of ``A`` and ``W =
tile_width`` columns of ``B``, two vector registers wide, the tile of ``C`` is held in registers while the
loop walks the reduction:

.. math:: C_{r, v} \mathrel{+}= \sum_{e < E} A_{r, e}\, B_{e, v}, \qquad r < R,\ v < W

each step loading one row of ``B``, broadcasting one value of each row of ``A`` and issuing a fused
multiply-add per register of the tile. That is what OpenBLAS's and oneDNN's kernels do in assembly. Numba cannot
say it: its loop vectoriser keeps the tile in memory (a load and a store per multiply-add), and written with
64 scalar accumulators LLVM spills them and multiplies one float at a time (4.2 GFLOP/s, ``vfmadd231ss``; a
timing script, not kept; the SLP vectoriser that could join them is off in Numba,
``NUMBA_SLP_VECTORIZE=0``). So ``tile_fma`` builds the loop itself as an ``@intrinsic``: LLVM IR whose
accumulators are vector values (SSA ``phi`` nodes), inlined into the calling Numba function and compiled
with it (cached with it too).

The tile's shape follows the registers of the CPU Numba compiles for (``VECTOR_BYTES``, read once at import):
with AVX-512 (32 registers of 64 bytes) 12 rows of 32 float32, 24 accumulators; with AVX2 only (16 registers
of 32 bytes) 6 rows of 16, 12 accumulators. A core that starts two multiply-adds a cycle, each ready 4 cycles
later, needs 8 independent accumulators in flight, and at most about one load (a row of ``B``, a value of a
row of ``A``) a multiply-add (two load ports for two multiply-add units). On an Intel Xeon (Emerald Rapids,
two 512-bit multiply-add units a core; tenth #16 pass) the 6 x 16 tile in 6 AVX-512 registers ran ``A @ B`` at
0.67x-0.80x of OpenBLAS (about 100 GFLOP/s against 130-150, one thread); 12 x 16 0.73x-0.86x (a load a
multiply-add), 6 x 32 0.68x-1.0x, 8 x 32 0.87x-1.10x, 12 x 32 0.99x-1.14x (145-153 GFLOP/s; a timing script on
four NN2 shapes, in two runs, 12 x 32 in one): the convolutions on it 1.02x-1.31x forward + backward,
1.10x-1.61x with the ninth pass's packing (``docs/results.md``, tenth pass). On Zen 4, which runs a 512-bit
multiply-add as two 256-bit halves, one a cycle, six accumulators were enough: 6 x 16 in one 64-byte vector a
row was the tile of the ninth pass (the weight gradient's ``tile_fma_gather`` 74-91 % of a core's peak), and 6
x 32 was as fast as 6 x 16 in the seventh; the 12 x 32 tile was not timed there (no Zen 4 machine in the tenth
pass). ``SCRATCHFACE_VECTOR_BYTES`` (32 or 64) picks the other tile: the tests run the kernels with both
(``tests/test_tile_shapes.py``). A tile that is wider than the filters wastes its last columns: P-Net's
16-filter layer runs half-empty tiles with AVX-512.

The rows of ``A`` are not a matrix: row ``r`` is ``rows`` runs of ``length`` consecutive values of a flat
array, starting at ``offsets[r]``, ``a_step`` apart. A convolution's patch (``KH`` kernel rows of
``KW*C`` consecutive values of a padded channels-last input, an image row apart:
:mod:`scratchface.kernels.implicit_conv`) is such a row, so a convolution runs through this loop without
writing im2col's columns (implicit GEMM). ``tile_fma_gather`` takes the rows of ``B`` from anywhere
instead (the patches, for the weight gradient). ``tile_fma_reference`` and ``tile_fma_gather_reference``
are the same contracts in plain loops, to read; the tests hold them equal (float64 1e-13, float32 1e-5)
and the loops equal to a matrix product by hand.

Measured (``python benchmarks/bench_implicit_conv.py``, table 1: one thread, quiet 2-core AMD EPYC
(Zen 1), float32, ``A @ B`` tiled by a plain Numba loop around ``tile_fma`` against NumPy's OpenBLAS 0.3.31
``np.dot`` on the matrix shapes of NN2's and MTCNN's convolutions): 35-37 GFLOP/s against 31-35, 1.00x-1.17x
(``docs/benchmark_tables/zen1/bench_implicit_conv.txt``; on a Zen 4 core, AVX-512 machine, 102-109 GFLOP/s
against OpenBLAS's 90-103, 1.05x-1.14x, ``docs/benchmark_tables/zen4/bench_implicit_conv.txt``; the 12 x 32
tile on the Xeon 0.82x-1.17x in two runs, ``docs/benchmark_tables/bench_implicit_conv.txt``). Tried on Zen 1 (timing
scripts, not kept): tiles of 4 x 16
(8 accumulators) a few % slower than 6 x 16; 4 x 24 the same as 6 x 16, 3 x 32 15 % slower (fewer
broadcasts do not help: the multiply-adds are the limit). Tried in the seventh #16 pass on Zen 4:
AVX-512 vectors (6 x 32 tiles in 12 of its 32 registers): ``A @ B`` 85-110 GFLOP/s against 83-108 with
256-bit vectors (a Zen 4 core runs a 512-bit multiply-add as two 256-bit halves), the layers within this
machine's noise (0.8x-1.2x), R-Net conv2's 48 filters in panels of 32 (a third of them zeros) 0.86x; then
the wide tiles beside these, for the forward kernels' panels where ``F`` is a multiple of 32 only: the
layers 0.95x-1.08x (4d 3x3 1.20x forward), within the noise of this machine: not kept either (two tile
widths in every kernel for nothing measurable; the layers are held by their loads and stores around the
loop, not by the loop).
"""
from __future__ import annotations

import os

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

__all__ = ["TILE_ROWS", "aligned_empty", "tile_fma", "tile_fma_gather", "tile_fma_gather_reference",
           "tile_fma_reference", "tile_fma_runs", "tile_width"]


def _vector_bytes():
    """The width of a vector register on the CPU Numba compiles for: 64 bytes with AVX-512, else 32 (AVX2; also
    for a target named by ``NUMBA_CPU_NAME`` without ``NUMBA_CPU_FEATURES``, whose registers are not known).
    ``SCRATCHFACE_VECTOR_BYTES`` (32 or 64) sets it instead: the tests run the kernels with the other tile too."""
    forced = os.environ.get("SCRATCHFACE_VECTOR_BYTES")
    if forced:
        if forced not in ("32", "64"):
            raise ValueError(f"SCRATCHFACE_VECTOR_BYTES must be 32 or 64, got {forced!r}")
        return int(forced)
    features = numba.config.CPU_FEATURES
    if features is None:
        if numba.config.CPU_NAME not in (None, "host"):   # a named target (NUMBA_CPU_NAME=generic: portable
            return 32                                     # caches) whose registers are not known here
        from llvmlite import binding
        features = binding.get_host_cpu_features().flatten()
    return 64 if "+avx512f" in features else 32


VECTOR_BYTES = _vector_bytes()  # a row of the tile is two vector registers: 16 or 32 float32
TILE_ROWS = 12 if VECTOR_BYTES == 64 else 6   # 24 of AVX-512's 32 registers accumulate, 12 of AVX2's 16


@numba.njit(cache=True)
def tile_width(a):
    """Columns of ``B`` in one tile for arrays like ``a``: two vector registers, ``2 VECTOR_BYTES`` bytes (16
    float32 with AVX2, 32 with AVX-512; 8 or 16 float64)."""
    return 2 * VECTOR_BYTES // a.itemsize


def aligned_empty(size, dtype, align=64):
    """A flat uninitialised array of ``size`` elements whose data starts on an ``align``-byte boundary (a
    cache line): a tile row of 16 float32 then lies in one line instead of two."""
    itemsize = np.dtype(dtype).itemsize
    raw = np.empty(size + align // itemsize, dtype=dtype)
    skip = (-raw.ctypes.data % align) // itemsize
    return raw[skip:skip + size]


@numba.njit(cache=True)
def tile_fma_reference(a, offsets, a_step, b, b_start, b_stride, length, rows, acc):
    """``acc[r, v] += sum_{i < rows} sum_{e < length} a[offsets[r] + i a_step + e] * b[b_start + (i length + e)
    b_stride + v]``: what ``tile_fma`` does."""
    for r in range(acc.shape[0]):
        for v in range(acc.shape[1]):
            total = acc[r, v]
            for i in range(rows):
                for e in range(length):
                    total += a[offsets[r] + i * a_step + e] * b[b_start + (i * length + e) * b_stride + v]
            acc[r, v] = total


@numba.njit(cache=True)
def tile_fma_gather_reference(a, offsets, b, b_start, b_rows, length, acc):
    """``acc[r, v] += sum_e a[offsets[r] + e] * b[b_start + b_rows[e] + v]``: what ``tile_fma_gather`` does."""
    for r in range(acc.shape[0]):
        for v in range(acc.shape[1]):
            total = acc[r, v]
            for e in range(length):
                total += a[offsets[r] + e] * b[b_start + b_rows[e] + v]
            acc[r, v] = total


def _typed(a, b, acc):
    return (isinstance(a, types.Array) and isinstance(b, types.Array) and isinstance(acc, types.Array)
            and a.dtype == b.dtype == acc.dtype and a.dtype in (types.float32, types.float64))


@intrinsic
def tile_fma(typingctx, a, offsets, a_step, b, b_start, b_stride, length, rows, acc):
    """``acc (TILE_ROWS, tile_width) += A @ B`` in vector registers (see the module docstring).

    ``a``, ``b``: flat C-contiguous arrays of one float dtype; row ``r`` of ``A`` is ``rows`` runs of
    ``length`` consecutive values of ``a``, starting at ``offsets[r]`` (``TILE_ROWS`` int64) and ``a_step``
    apart (a convolution: the kernel rows of a patch, an image row apart); row ``e`` of ``B`` (``e <
    rows * length``) starts at ``b_start + e * b_stride``; ``acc``: a C-contiguous ``(TILE_ROWS,
    tile_width)`` array of the same dtype, added to. No bounds are checked: the caller keeps every index
    inside the arrays.
    """
    if not _typed(a, b, acc):
        return None
    sig = types.void(a, offsets, types.intp, b, types.intp, types.intp, types.intp, types.intp, acc)
    return sig, _codegen(gather=False)


@intrinsic
def tile_fma_runs(typingctx, a, offsets, a_step, b, b_start, b_stride, b_run, length, rows, acc):
    """As ``tile_fma``, but run ``i`` of ``B`` starts ``b_run`` rows after run ``i - 1`` (``tile_fma``: ``b_run =
    length``): row ``e`` of run ``i`` at ``b_start + (i b_run + e) b_stride``, part of each kernel row of a
    convolution's weights (its taps inside the input, ``scratchface.kernels.tap_skipping``)."""
    if not _typed(a, b, acc):
        return None
    sig = types.void(a, offsets, types.intp, b, types.intp, types.intp, types.intp, types.intp, types.intp, acc)
    return sig, _codegen(gather=False, runs=True)


@intrinsic
def tile_fma_gather(typingctx, a, offsets, b, b_start, b_rows, length, acc):
    """As ``tile_fma``, but row ``e`` of ``B`` starts at ``b_start + b_rows[e]`` (``b_rows``: int64): the
    rows of ``B`` anywhere, as the patches of the output pixels for a weight gradient."""
    if not _typed(a, b, acc):
        return None
    return types.void(a, offsets, b, types.intp, b_rows, types.intp, acc), _codegen(gather=True)


def _codegen(gather, runs=False):
    """The LLVM IR of the loops; ``gather``: B's row starts read from an array, one run (``tile_fma_gather``);
    ``runs``: B's runs ``b_run`` rows apart (``tile_fma_runs``; else ``length``). Each row of the tile is one
    LLVM vector of ``tile_width`` lanes, ``2 VECTOR_BYTES`` bytes, that LLVM splits into two registers."""
    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        if gather:
            a_arr, off_arr, b_arr, b_start, b_rows, length, acc_arr = args
            a_step, nrows = ir.Constant(i64, 0), ir.Constant(i64, 1)
            b_type, acc_type = signature.args[2], signature.args[6]
            rows_ptr = context.make_array(signature.args[4])(context, builder, b_rows).data
            b_run = length
        elif runs:
            a_arr, off_arr, a_step, b_arr, b_start, b_step, b_run, length, nrows, acc_arr = args
            b_type, acc_type = signature.args[3], signature.args[9]
        else:
            a_arr, off_arr, a_step, b_arr, b_start, b_step, length, nrows, acc_arr = args
            b_run = length
            b_type, acc_type = signature.args[3], signature.args[8]
        scalar = context.get_value_type(signature.args[0].dtype)
        lanes = 2 * VECTOR_BYTES // (4 if signature.args[0].dtype == types.float32 else 8)   # a row of the tile
        vec = ir.VectorType(scalar, lanes)
        vec_ptr = vec.as_pointer()
        a_ptr = context.make_array(signature.args[0])(context, builder, a_arr).data
        off_ptr = context.make_array(signature.args[1])(context, builder, off_arr).data
        b_ptr = context.make_array(b_type)(context, builder, b_arr).data
        acc_ptr = context.make_array(acc_type)(context, builder, acc_arr).data

        def acc_vector(r):                                     # row r of the tile
            return builder.bitcast(builder.gep(acc_ptr, [ir.Constant(i64, lanes * r)]), vec_ptr)

        n_acc = TILE_ROWS
        start = [builder.load(acc_vector(r), align=4) for r in range(n_acc)]
        a_rows = [builder.gep(a_ptr, [builder.load(builder.gep(off_ptr, [ir.Constant(i64, r)]))])
                  for r in range(TILE_ROWS)]
        b_row0 = builder.gep(b_ptr, [b_start])
        entry = builder.block
        outer = builder.append_basic_block("tile_fma.outer")   # one run i (a kernel row)
        inner = builder.append_basic_block("tile_fma.inner")   # one step e of the run
        latch = builder.append_basic_block("tile_fma.next_run")
        done = builder.append_basic_block("tile_fma.done")
        work = builder.and_(builder.icmp_signed(">", length, ir.Constant(i64, 0)),
                            builder.icmp_signed(">", nrows, ir.Constant(i64, 0)))
        builder.cbranch(work, outer, done)

        builder.position_at_end(outer)
        i = builder.phi(i64)
        acc_outer = [builder.phi(vec) for _ in range(n_acc)]
        a_shift = builder.mul(i, a_step)
        b_shift = builder.mul(i, b_run)
        builder.branch(inner)

        builder.position_at_end(inner)
        e = builder.phi(i64)
        acc = [builder.phi(vec) for _ in range(n_acc)]
        if gather:
            b_row = builder.gep(b_row0, [builder.load(builder.gep(rows_ptr, [e]))])
        else:
            b_row = builder.gep(b_row0, [builder.mul(builder.add(b_shift, e), b_step)])
        b_vec = builder.load(builder.bitcast(b_row, vec_ptr), align=4)
        a_at = builder.add(a_shift, e)
        summed = []
        zeros = ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes)
        for r in range(TILE_ROWS):
            value = builder.load(builder.gep(a_rows[r], [a_at]), align=4)
            spread = builder.insert_element(ir.Constant(vec, ir.Undefined), value, ir.Constant(ir.IntType(32), 0))
            spread = builder.shuffle_vector(spread, ir.Constant(vec, ir.Undefined), zeros)   # broadcast
            product = builder.fmul(spread, b_vec, flags=("contract",))      # fused where the CPU has FMA
            summed.append(builder.fadd(acc[r], product, flags=("contract",)))
        e_next = builder.add(e, ir.Constant(i64, 1))
        builder.cbranch(builder.icmp_signed("<", e_next, length), inner, latch)
        _join([e] + acc, [ir.Constant(i64, 0)] + acc_outer, outer, [e_next] + summed, inner)

        builder.position_at_end(latch)
        i_next = builder.add(i, ir.Constant(i64, 1))
        builder.cbranch(builder.icmp_signed("<", i_next, nrows), outer, done)
        _join([i] + acc_outer, [ir.Constant(i64, 0)] + start, entry, [i_next] + summed, latch)

        builder.position_at_end(done)
        final = [builder.phi(vec) for _ in range(n_acc)]
        _join(final, start, entry, summed, latch)
        for j, value in enumerate(final):
            builder.store(value, acc_vector(j), align=4)
        return context.get_dummy_value()

    return codegen


def _join(phis, firsts, first_block, seconds, second_block):
    """Each ``phi`` takes its ``first`` value when control comes from ``first_block``, its ``second`` from
    ``second_block``."""
    for phi, first, second in zip(phis, firsts, seconds):
        phi.add_incoming(first, first_block)
        phi.add_incoming(second, second_block)
