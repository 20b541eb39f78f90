"""The fused conv2d kernels (#16): equal to the readable reference on odd shapes, in every chunking, by hypothesis."""
import contextlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scratchface.layers.conv import conv2d_backward, conv2d_forward, conv2d_reference_backward, conv2d_reference_forward

kconv = pytest.importorskip("scratchface.kernels.conv")
kwino = pytest.importorskip("scratchface.kernels.winograd")
kimp = pytest.importorskip("scratchface.kernels.implicit_conv")
kpoint = pytest.importorskip("scratchface.kernels.pointwise")
ktap = pytest.importorskip("scratchface.kernels.tap_skipping")

TOL = {np.float64: 1e-12, np.float32: 1e-5}

# (N, C, H, W, F, KH, KW, stride, padding): the odd cases the issue names
ODD_SHAPES = [
    (1, 1, 5, 7, 1, 3, 3, (1, 1), (1, 1, 1, 1)),          # N = 1, C = 1, F = 1, non-square
    (2, 3, 6, 9, 5, 2, 3, (1, 1), (0, 1, 2, 0)),          # 2x3 kernel, odd F, asymmetric padding
    (1, 3, 14, 70, 10, 3, 3, (1, 1), (0, 0, 0, 0)),       # P-Net conv1 on a wide row: the direct kernel
    (3, 2, 9, 6, 4, 3, 2, (2, 1), (1, 0, 2, 1)),          # stride (2, 1), asymmetric padding, 3x2 kernel
    (2, 5, 4, 4, 3, 1, 1, (1, 1), (0, 0, 0, 0)),          # 1x1
    (2, 3, 7, 5, 2, 1, 1, (2, 2), (0, 1, 1, 0)),          # 1x1 with stride and padding
    (1, 4, 3, 3, 6, 5, 5, (1, 1), (2, 2, 2, 2)),          # kernel larger than the input (padding makes it fit)
    (5, 2, 11, 11, 3, 7, 7, (2, 2), (3, 3, 3, 3)),        # conv1-like
    (4, 6, 1, 8, 2, 1, 3, (1, 3), (0, 0, 1, 1)),          # one row
    (2, 3, 6, 9, 4, 3, 3, (1, 1), (0, 2, 1, 0)),          # 3x3, asymmetric padding, odd output (Winograd tiles hang over)
    (1, 2, 3, 4, 3, 3, 3, (1, 1), (2, 2, 0, 1)),          # 3x3 with padding 2 (Winograd's dx: no padding)
    (3, 17, 5, 6, 19, 3, 3, (1, 1), (1, 0, 2, 1)),        # 17 -> 19 channels: a part-filled tile of 16 filters,
    (2, 21, 4, 5, 7, 5, 5, (1, 1), (2, 2, 2, 2)),         # patch rows of 5*17, 5*21 values (not whole tiles)
    (2, 7, 5, 9, 11, 1, 1, (1, 1), (0, 0, 0, 0)),         # 1x1 by pixel tiles: 45 pixels (the last block moved
                                                          # back), 11 filters (a part-filled tile of 6)
    (5, 9, 3, 2, 7, 1, 1, (1, 1), (0, 0, 0, 0)),          # 1x1 on 6 pixels of 5 images: the whole batch
                                                          # channel-major (2 tasks of 4 / 5 channels)
    (7, 18, 3, 3, 17, 3, 3, (1, 1), (1, 1, 1, 1)),        # NN2's 5a 3x3 in small: the taps on padding skipped
    (6, 5, 2, 3, 4, 5, 5, (1, 1), (2, 2, 2, 2)),          # (5a 5x5: most taps on padding; 6 images: 1 tile a
                                                          # position; 18 channels: 3x18 = 54-value kernel rows)
    (2, 11, 10, 37, 6, 3, 3, (1, 1), (1, 0, 1, 1)),       # Winograd: 19 tiles a row, 16 in vectors (float32; 4 x 4
]                                                         # in float64), the last hanging over; 11 channels: 8 + 3


def rel(a, ref, scale=None):
    """``max |a - ref|`` over ``max |scale|`` (default ``ref``). With ``scale`` the same sums taken over the
    absolute values of their terms, the error is measured against what rounding can reach: a sum of
    terms that cancel (one bias gradient of 8 values, -0.005 from terms near 1) is not held to the
    precision of its small result, which the float32 inputs alone do not carry."""
    scale = ref if scale is None else scale
    return float(np.max(np.abs(np.asarray(a, np.float64) - ref)) / max(np.max(np.abs(scale)), 1e-300))


def check_equal(shape, dtype, rng):
    n, c, h, wd, f, kh, kw, stride, padding = shape
    x = rng.standard_normal((n, c, h, wd))
    w = rng.standard_normal((f, c, kh, kw))
    b = rng.standard_normal(f)
    ref = conv2d_reference_forward(x, w, b, stride, padding)                       # float64 expectation
    dout = rng.standard_normal(ref.shape)
    refs = (ref,) + conv2d_reference_backward(dout, x, w, True, stride, padding)
    x_abs, w_abs, dout_abs = np.abs(x), np.abs(w), np.abs(dout)                    # the sums of |terms|
    scales = ((conv2d_reference_forward(x_abs, w_abs, np.abs(b), stride, padding),)
              + conv2d_reference_backward(dout_abs, x_abs, w_abs, True, stride, padding))
    out, cache = conv2d_forward(x.astype(dtype), w.astype(dtype), b.astype(dtype), stride=stride, padding=padding,
                                impl="numba")
    grads = conv2d_backward(dout.astype(dtype), cache)
    for got, want, scale in zip((out,) + grads, refs, scales):
        assert got.dtype == dtype and got.shape == want.shape
        assert rel(got, want, scale) < TOL[dtype]


# what each fixture param sets (each but the default also runs small problems on all threads: CONV_SMALL_WORK = 0)
FORCED = {
    "default": [],
    "many chunks, threads": [(kconv, "COLS_CHUNK", 7), (kconv, "MIN_CHUNK_PIXELS", 1)],
    "direct kernel": [(kconv, "DIRECT_MIN_OW", 1), (kconv, "DIRECT_MAX_CF", 10 ** 9)],
    "winograd": [(kwino, "WINOGRAD_MIN_C", 1), (kwino, "WINOGRAD_MIN_CF", 1), (kwino, "WINOGRAD_MIN_OUT", 1),
                 (kwino, "WINOGRAD_MAX_WASTE", 10.0), (kwino, "WINOGRAD_CHUNK", 1)],
    "implicit": [(kconv, "DX_BY_FORWARD_MIN_C", 1), (kconv, "DX_MAX_GROWTH", 1e9),
                 (kconv, "POINTWISE_MIN_IMAGES", 10 ** 9), (kconv, "POINTWISE_IMPLICIT_MIN_PIXELS", 1),
                 (kimp, "CHUNK_TILES", 1),
                 (kimp, "BLOCK_PIXELS", 3), (kimp, "WEIGHT_GRAD_PARTS", 3)],
    "pointwise": [(kconv, "POINTWISE_MIN_PIXELS", 1), (kconv, "POINTWISE_MIN_IMAGES", 1),
                  (kconv, "POINTWISE_FORWARD_MIN_PIXELS", 1), (kconv, "PIXEL_TILES_MIN_PIXELS", 10 ** 9)],
    "pixel tiles": [(kconv, "PIXEL_TILES_MIN_PIXELS", 1), (kconv, "PIXEL_TILES_MIN_C", 1), (kpoint, "PIXEL_CHUNK", 1)],
    "channel major": [(kconv, "POINTWISE_MIN_IMAGES", 1), (kconv, "POINTWISE_MIN_PIXELS", 10 ** 9),
                      (kconv, "POINTWISE_FORWARD_MIN_PIXELS", 10 ** 9), (kconv, "PIXEL_TILES_MIN_PIXELS", 10 ** 9),
                      (kconv, "CHANNEL_BLOCK", 1)],
    "tap skipping": [(ktap, "MAX_INSIDE", 1.0), (ktap, "FORWARD_MAX_PIXELS", 10 ** 9), (ktap, "MIN_IMAGES", 1),
                     (ktap, "WEIGHT_GRAD_MAX_PIXELS", 10 ** 9), (ktap, "CHUNK_TILES", 1),
                     (kconv, "DX_BY_FORWARD_MIN_C", 1), (kconv, "DX_MAX_GROWTH", 1e9)],
    "strided": [(kconv, "DX_BY_FORWARD_MIN_C", 1), (kconv, "STRIDED_MIN_IMAGES", 1), (kimp, "CHUNK_TILES", 1),
                (kimp, "INPUT_GRAD_TASKS", 2)],
}


@pytest.fixture(params=list(FORCED))
def chunking(request, monkeypatch):
    """As shipped, with tiny chunks on all threads (rows of one image split between chunks), with
    the direct kernel taking every stride-1, 3-wide kernel (as shipped, only wide rows of few channels),
    with Winograd taking every 3x3, stride-1 forward and dx (as shipped, >= 64 channels on >= 20x20),
    in chunks of one tile row, with one GEMM per image for every 1x1, stride-1, unpadded convolution
    (as shipped, from 4 images of 64 pixels; the forward from 36), with the pixel tiles for every such
    forward on at least 16 pixels (8 in float64) per image, one block per task (as shipped, from 100 pixels
    of 128 channels, or on fewer than 4 images), and with the micro-kernel's backward (dW over the patches, dx as a
    forward convolution) for every stride-1 kernel (as shipped, from 8 input channels on 'same' convolutions,
    1x1 from 6x6 on fewer than 4 images), its forward in tasks of one tile and its weight gradient in blocks
    of 3 pixels, 3 partial sums, and with the whole batch channel-major for every 1x1 forward and backward
    (as shipped, from 4 images on fewer than 36 / 64 pixels), one channel per task, and with the taps on
    padding skipped for every forward and stride-1 weight gradient, one tile per task (as shipped, from 6
    images where at most 85 % of the pixel-tap pairs lie inside the input, on outputs of at most 16 / 64
    pixels), and with every strided layer's backward without columns (dW by the micro-kernel, dx by tiles of
    ``dout_t @ W`` added onto the patches), in tasks of one tile, two runs of images (as shipped, from 8
    channels and 4 images)."""
    for module, name, value in FORCED[request.param]:
        monkeypatch.setattr(module, name, value)
    if FORCED[request.param]:
        monkeypatch.setattr(kconv, "CONV_SMALL_WORK", 0)
    return request.param


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", ODD_SHAPES)
def test_fused_equals_reference_on_odd_shapes(shape, dtype, chunking):
    check_equal(shape, dtype, np.random.default_rng(3))


def test_chunks_cover_rows_and_images():
    assert kconv._chunks(1, 10 ** 7) == 1                                       # never more chunks than units
    assert kconv._chunks(100, kconv.CONV_SMALL_WORK - 1) == 1                   # small work: one chunk
    assert kconv._chunks(100, kconv.CONV_SMALL_WORK) == kconv.CONV_SMALL_WORK // kconv.MIN_CHUNK
    assert kconv._chunks(100, 2 * kconv.MIN_CHUNKS * kconv.MIN_CHUNK) == kconv.MIN_CHUNKS
    assert kconv._chunks(1000, 100 * kconv.COLS_CHUNK) == 100                   # large work: COLS_CHUNK each
    assert kconv._chunks(32, 10 ** 7, 288) == 288 // kconv.MIN_CHUNK_PIXELS     # backward, few pixels: wider chunks
    assert kconv._chunks(32, 10 ** 7, 5) == 1
    assert kconv._chunks(1000, 100 * kconv.COLS_CHUNK, 10 ** 9) == 100          # many pixels: not the limit


@pytest.mark.parametrize("channels", [3, 24])      # the columns' backward; the micro-kernel's
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("stride", [1, 2])       # stride 2 with 24 channels: _strided_grads
def test_same_bits_on_one_thread_and_on_all(dtype, channels, stride, rng, monkeypatch):
    # the chunks and the backward's partial sums depend on the shapes only, and BLAS runs on one thread
    # inside: a seeded training run must give the same weights whatever the number of Numba or BLAS threads
    import numba
    from threadpoolctl import threadpool_limits
    x = rng.standard_normal((6, channels, 17, 13)).astype(dtype)
    w = rng.standard_normal((5, channels, 3, 3)).astype(dtype)
    b = rng.standard_normal(5).astype(dtype)
    dout = rng.standard_normal((6, 5, (17 - 1) // stride + 1, (13 - 1) // stride + 1)).astype(dtype)
    runs = []
    previous = numba.get_num_threads()
    shipped = (kconv.COLS_CHUNK, kconv.CONV_SMALL_WORK, kconv.MIN_CHUNK_PIXELS)
    for chunk, small, pixels in ((500, 0, 1), shipped):                          # many chunks; as shipped
        monkeypatch.setattr(kconv, "COLS_CHUNK", chunk)
        monkeypatch.setattr(kconv, "CONV_SMALL_WORK", small)
        monkeypatch.setattr(kconv, "MIN_CHUNK_PIXELS", pixels)
        for threads, blas in ((1, 1), (previous, None)):
            numba.set_num_threads(threads)
            try:
                with threadpool_limits(blas, user_api="blas"):
                    out, cache = conv2d_forward(x, w, b, stride=stride, padding=1, impl="numba")
                    runs.append((out,) + conv2d_backward(dout, cache))
            finally:
                numba.set_num_threads(previous)
        for a, c in zip(runs[-2], runs[-1]):
            np.testing.assert_array_equal(a, c)


def test_blas_threads_restored_after_a_call(rng):
    import threadpoolctl
    before = [d["num_threads"] for d in threadpoolctl.threadpool_info() if d["user_api"] == "blas"]
    x = rng.standard_normal((4, 3, 40, 40)).astype(np.float32)
    out, cache = conv2d_forward(x, rng.standard_normal((8, 3, 3, 3)).astype(np.float32), padding=1, impl="numba")
    conv2d_backward(out, cache)
    after = [d["num_threads"] for d in threadpoolctl.threadpool_info() if d["user_api"] == "blas"]
    assert after[:len(before)] == before


@contextlib.contextmanager
def forced(overrides):
    """``(module, name, value)`` settings in force for the block, the shipped values back after it (a hypothesis
    test cannot use pytest's ``monkeypatch``: one fixture would serve every example)."""
    shipped = [(module, name, getattr(module, name)) for module, name, _ in overrides]
    try:
        for module, name, value in overrides:
            setattr(module, name, value)
        yield
    finally:
        for module, name, value in reversed(shipped):
            setattr(module, name, value)


@st.composite
def conv_shapes(draw):
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = tuple(draw(st.integers(0, 3)) for _ in range(4))
    h = draw(st.integers(max(1, kh - padding[0] - padding[1]), 12))
    wd = draw(st.integers(max(1, kw - padding[2] - padding[3]), 12))
    return (draw(st.integers(1, 4)), draw(st.integers(1, 5)), h, wd, draw(st.integers(1, 5)), kh, kw, stride, padding)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=conv_shapes(), dtype=st.sampled_from([np.float64, np.float32]), small=st.booleans(),
       direct=st.booleans(), implicit=st.booleans(), channel_major=st.booleans(), taps=st.booleans(),
       strided=st.booleans())
def test_fused_equals_reference_hypothesis(shape, dtype, small, direct, implicit, channel_major, taps, strided):
    """Random shapes, strides, paddings: equal to the reference (no out-of-bounds read would stay equal);
    ``direct``: the direct kernel wherever it applies (stride 1, 3-wide kernels); ``implicit``: the
    micro-kernel's backward wherever it applies (stride 1), in tasks of one tile and blocks of 2 pixels, and
    its pixel tiles for every 1x1 forward on at least a tile of pixels, one block per task;
    ``channel_major``: the whole batch channel-major for every 1x1 forward and backward, one channel per task;
    ``taps``: the taps on padding skipped for every forward and stride-1 weight gradient; ``strided``: every
    strided layer's backward without columns."""
    overrides = []
    if small:
        overrides += [(kconv, "COLS_CHUNK", 5), (kconv, "CONV_SMALL_WORK", 0), (kconv, "MIN_CHUNK_PIXELS", 1)]
    if direct:
        overrides += FORCED["direct kernel"]
    if implicit:
        overrides += [(kconv, "DX_BY_FORWARD_MIN_C", 1), (kconv, "DX_MAX_GROWTH", 1e9), (kimp, "CHUNK_TILES", 1),
                     (kimp, "BLOCK_PIXELS", 2), (kconv, "PIXEL_TILES_MIN_PIXELS", 1), (kconv, "PIXEL_TILES_MIN_C", 1),
                     (kpoint, "PIXEL_CHUNK", 1), (kconv, "POINTWISE_IMPLICIT_MIN_PIXELS", 1)]
    if channel_major:
        overrides += FORCED["channel major"]
    if taps:
        overrides += FORCED["tap skipping"]
    if strided:
        overrides += FORCED["strided"]
    with forced(overrides):
        check_equal(shape, dtype, np.random.default_rng(0))


def test_one_gemm_per_image_for_nn2s_1x1_layers():
    """As shipped: NN2's 1x1 layers at 24x24 and 12x12 (batch 32): the backward as one GEMM per image; not at
    6x6, not one image (P-Net's heads), not with stride or padding. The forward: pixel tiles from 10x10 and
    on one image (P-Net's heads: tasks of pixel blocks on all threads), per image at 6x6, the whole batch
    channel-major at 3x3 and 5x5 (its backward also at 6x6: ``conv2d_grads_numba``), the columns on fewer
    pixels than a tile of fewer than 4 images, or with stride or padding."""
    path = kconv._pointwise_path
    assert path(32, 192, 24 * 24, 16) == path(32, 256, 12 * 12, 16) == path(32, 128, 10 * 10, 16) == "pixel tiles"
    assert path(1, 32, 108 * 145, 16) == path(3, 5, 16, 16) == path(3, 5, 8, 8) == "pixel tiles"   # few images
    assert path(32, 64, 24 * 24, 16) == path(32, 96, 12 * 12, 16) == "per image"    # 64, 96 channels
    assert path(32, 640, 6 * 6, 16) == path(4, 640, 6 * 6, 16) == "per image"
    assert path(32, 1024, 3 * 3, 16) == path(4, 7, 15, 16) == path(32, 512, 5 * 5, 16) == "channel major"
    assert path(1, 32, 15, 16) == path(3, 32, 9, 16) == "columns"          # fewer pixels than a tile, < 4 images
    assert kconv._is_pointwise(1, 1, (1, 1), (0, 0, 0, 0))
    assert not kconv._is_pointwise(1, 1, (2, 2), (0, 0, 0, 0))
    assert not kconv._is_pointwise(1, 1, (1, 1), (0, 1, 0, 0))
    assert not kconv._is_pointwise(3, 3, (1, 1), (0, 0, 0, 0))
    grads = kconv._pointwise_grads_path
    assert grads(32, 24 * 24) == grads(32, 12 * 12) == grads(4, 8 * 8) == "per image"
    assert grads(32, 7 * 7) == grads(32, 6 * 6) == grads(32, 3 * 3) == grads(4, 1) == "channel major"
    assert grads(1, 590 * 400) is None and grads(3, 6 * 6) is None         # P-Net's heads: the micro-kernel


def test_the_direct_kernel_takes_pnets_first_layer_only():
    """As shipped: P-Net's first convolution (10 filters) on a wide level goes to the direct kernel; its
    16- and 32-filter layers and R-Net's go to the micro-kernel (a tile of 16 filters is full)."""
    assert kconv._direct_pays(3, 10, 3, (1, 1), 1190)
    assert not kconv._direct_pays(10, 16, 3, (1, 1), 590) and not kconv._direct_pays(16, 32, 3, (1, 1), 590)
    assert not kconv._direct_pays(28, 48, 3, (1, 1), 9)          # R-Net conv2 on 11x11 crops
    assert not kconv._direct_pays(3, 10, 3, (2, 2), 1190)        # stride 2
    assert not kconv._direct_pays(64, 192, 3, (1, 1), 96)        # NN2 conv2: too many channels


def test_the_micro_kernel_takes_layers_with_more_pixels_than_filters():
    """As shipped: NN2's 5a 3x3 (288 output pixels at batch 32, 384 filters) stays on the columns path."""
    assert not kconv._implicit_pays(32 * 3 * 3, 384)
    assert kconv._implicit_pays(32 * 3 * 3, 128) and kconv._implicit_pays(32 * 12 * 12, 128)


def test_the_micro_kernels_backward_takes_nn2s_same_convolutions():
    """As shipped: NN2's stride-1 3x3 / 5x5 layers (same size in and out, >= 8 channels), its 1x1 layers from
    6x6, P-Net's wide levels and heads and MTCNN's valid 3x3 on crops (up to 1.6 times the work in dx's
    forward) take the micro-kernel's backward; the valid 2x2 on 4x4 crops (1.78 times), 3-channel inputs,
    stride 2, 1x1 at 3x3 or padded, and layers with fewer pixels than filters keep the columns."""
    pays = kconv._implicit_grads_pay
    assert pays(96, 128, 3, 3, (1, 1), 144, 144, 32, (1, 1, 1, 1))                 # 3a 3x3
    assert pays(16, 32, 5, 5, (1, 1), 144, 144, 32, (2, 2, 2, 2))                  # 3a 5x5
    assert pays(16, 32, 3, 3, (1, 1), 149 * 149, 147 * 147, 1, (2, 2, 2, 2))       # P-Net conv3, a wide level
    assert pays(64, 64, 3, 3, (1, 1), 100, 64, 256, (2, 2, 2, 2))                  # O-Net conv3: 1.56x the work
    assert not pays(48, 64, 2, 2, (1, 1), 16, 9, 256, (1, 1, 1, 1))                # R-Net conv3: 1.78x
    assert not pays(3, 28, 3, 3, (1, 1), 576, 484, 256, (2, 2, 2, 2))              # R-Net conv1: 3 channels
    assert pays(10, 16, 3, 3, (1, 1), 149 * 149, 147 * 147, 1, (2, 2, 2, 2))       # P-Net conv2, a wide level
    assert not pays(128, 256, 3, 3, (2, 2), 144, 36, 32, (1, 1, 1, 1))             # 3c 3x3/2 (_strided_grads)
    assert pays(640, 256, 1, 1, (1, 1), 36, 36, 32, (0, 0, 0, 0))                  # 4a 1x1 at 6x6
    assert pays(32, 6, 1, 1, (1, 1), 100 * 120, 100 * 120, 1, (0, 0, 0, 0))        # P-Net's heads, one image
    assert not pays(1024, 384, 1, 1, (1, 1), 9, 9, 32, (0, 0, 0, 0))               # 5a 1x1 at 3x3
    assert not pays(64, 64, 1, 1, (1, 1), 49, 49, 32, (-1, -1, -1, -1))            # 1x1 padded by 1
    assert not pays(192, 384, 3, 3, (1, 1), 9, 9, 32, (1, 1, 1, 1))                # 5a 3x3: fewer pixels than filters
    assert pays(192, 384, 3, 3, (1, 1), 9, 9, 32, (1, 1, 1, 1), True)         # ... unless its dW skips the padding


def test_tiny_convolutions_in_one_call_with_the_same_bits(monkeypatch):
    """Below ``CONV_SMALL_WORK`` im2col elements (P-Net's small pyramid levels) the forward is one call on one
    thread (``small_conv_output``: no thread pool woken), through PReLU too; the same tiles as the parallel
    micro-kernel give the same bits; larger layers do not go there."""
    calls = []
    small = kconv.small_conv_output
    monkeypatch.setattr(kconv, "small_conv_output", lambda *args: calls.append(1) or small(*args))
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 16, 7, 9)).astype(np.float32)
    w = rng.standard_normal((32, 16, 3, 3)).astype(np.float32)
    b, alpha = rng.standard_normal(32).astype(np.float32), rng.standard_normal(32).astype(np.float32)
    out = kconv.conv2d_output_numba(x, w, b, (1, 1), (0, 1, 2, 0), alpha)
    assert len(calls) == 1
    monkeypatch.setattr(kconv, "CONV_SMALL_WORK", 0)                               # the thread pool's micro-kernel
    assert np.array_equal(out, kconv.conv2d_output_numba(x, w, b, (1, 1), (0, 1, 2, 0), alpha)) and len(calls) == 1
    monkeypatch.undo()
    monkeypatch.setattr(kconv, "small_conv_output", lambda *args: calls.append(1) or small(*args))
    kconv.conv2d_output_numba(rng.standard_normal((32, 96, 12, 12)).astype(np.float32),
                              rng.standard_normal((128, 96, 3, 3)).astype(np.float32), None, (1, 1), (1, 1, 1, 1))
    assert len(calls) == 1                                                          # 3a 3x3: not small


def test_strided_layers_backward_without_columns():
    """As shipped: NN2's stride-2 layers (3c / 4e, 3x3 and 5x5, 32 images) take ``_strided_grads``; conv1 (3
    channels), fewer than 4 images, fewer output pixels than filters and stride 1 do not."""
    pays = kconv._strided_grads_pay
    assert pays(128, 256, (2, 2), 32, 36) and pays(64, 128, (2, 2), 32, 9)         # 3c 3x3/2, 4e 5x5/2
    assert pays(160, 256, (2, 2), 32, 9)                                           # 4e 3x3/2: 288 pixels, 256 filters
    assert not pays(3, 64, (2, 2), 32, 48 * 48)                                    # conv1
    assert not pays(128, 256, (2, 2), 2, 36) and not pays(160, 512, (2, 2), 32, 9)
    assert not pays(96, 128, (1, 1), 32, 144)


def test_input_grad_tiles_by_hand():
    """``implicit_conv_input_grad`` on one image, one filter, one channel, a 2x2 kernel of stride 2: each output
    pixel's gradient times the kernel lands on its own 2x2 block of ``dx`` (no overlap), written out by hand;
    the packed columns are ``w``'s values in the patch order ``(i, j, c)``."""
    w = np.array([[[[1.0, 2.0], [3.0, 4.0]]]], dtype=np.float32)                    # (F, C, KH, KW) = (1, 1, 2, 2)
    dout = np.array([[[[1.0, -2.0], [0.5, 3.0]]]], dtype=np.float32)                # (N, F, OH, OW) = (1, 1, 2, 2)
    cols = kimp.packed_columns(w)
    width = kimp.tile_width(w)
    assert cols.shape == (1, 1, width) and list(cols[0, 0, :4]) == [1, 2, 3, 4] and not cols[0, 0, 4:].any()
    dx = np.empty((1, 1, 4, 4), dtype=np.float32)
    kimp.implicit_conv_input_grad(np.ascontiguousarray(dout.transpose(0, 2, 3, 1)), cols, 2, 2, 2, 2, 4, 4, 0, 0,
                                  1, 1, dx)
    want = [[1, 2, -2, -4], [3, 4, -6, -8], [0.5, 1, 3, 6], [1.5, 2, 9, 12]]
    assert np.array_equal(dx[0, 0], np.array(want, dtype=np.float32))


LAYOUTS = {  # padded_channels_last's transposes, each forced on every shape
    "rows": [("SHORT_ROW", 1), ("BLOCKED_MIN_C", 10 ** 9)],
    "rows, channel blocks": [("SHORT_ROW", 1), ("BLOCKED_MIN_C", 1), ("BLOCKED_MIN_W", 1)],
    "whole images": [("SHORT_ROW", 10 ** 9), ("IMAGE_TASKS", 1)],
    "blocks of rows": [("SHORT_ROW", 10 ** 9), ("IMAGE_TASKS", 10 ** 9)],
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("shape, padding", [((2, 19, 5, 17), (1, 2, 0, 3)), ((1, 3, 4, 4), (0, 0, 0, 0)),
                                            ((3, 33, 2, 16), (2, 0, 1, 1)), ((1, 2, 9, 3), (3, 1, 0, 2))])
def test_padded_channels_last_by_numpy(shape, padding, layout, monkeypatch):
    """``xh[b, y + top, x + left, c] = x[b, c, y, x]``, zeros around (``np.pad`` and a transpose), row by row one
    channel at a time or in blocks of 16 (as shipped from 128 channels on rows of 16; 19 and 33: a part block),
    or channel after channel per image or per block of rows (as shipped on rows shorter than 32; blocks of
    rows on fewer than 8 images, one image of 13 rows in blocks of 1: padding rows alone in a task), with the
    slack buffer's tail zero; and ``interior_to_nchw`` takes the interior back."""
    klayout = pytest.importorskip("scratchface.kernels.layout")
    for name, value in LAYOUTS[layout]:
        monkeypatch.setattr(klayout, name, value)
    x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    top, bottom, left, right = padding
    want = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right))).transpose(0, 2, 3, 1)
    buffer, xh = klayout.padded_channels_last(x, padding, slack=7)
    assert xh.shape == want.shape and np.array_equal(xh, want)
    assert buffer.size == xh.size + 7 and not buffer[xh.size:].any()
    back = np.full((shape[0] + 1,) + shape[1:], np.nan, dtype=np.float32)
    klayout.interior_to_nchw(xh, 1, top, left, back)
    assert np.isnan(back[0]).all() and np.array_equal(back[1:], x)


def test_inside_fraction_by_hand():
    """The pixel-tap pairs inside the input, counted by hand: a 3x3 kernel padded by 1 on a 3x3 output has
    2 + 3 + 2 rows and as many columns inside, 49 of 81 pairs; a 5x5 padded by 2, 3 + 3 + 3 of 5 a side, 81 of
    225; unpadded, all; stride 2 on 6x6 padded by 1 (outputs 0, 1, 2 at rows -1, 1, 3): 2 + 3 + 3 of 9."""
    assert ktap.inside_fraction(3, 3, 3, 3, (1, 1), (1, 1, 1, 1)) == pytest.approx(49 / 81)
    assert ktap.inside_fraction(3, 3, 5, 5, (1, 1), (2, 2, 2, 2)) == pytest.approx(81 / 225)
    assert ktap.inside_fraction(12, 12, 3, 3, (1, 1), (0, 0, 0, 0)) == 1.0
    assert ktap.inside_fraction(6, 6, 3, 3, (2, 2), (1, 1, 1, 1)) == pytest.approx((8 / 9) ** 2)
    assert ktap.inside_fraction(1, 1, 3, 3, (1, 1), (1, 1, 1, 1)) == pytest.approx(1 / 9)


def test_taps_on_padding_skipped_for_nn2s_smallest_layers():
    """As shipped (batch 32): the forward of NN2's 3x3 and 5x5 layers at 3x3 output, and the weight gradient
    also at 6x6; not the forward at 6x6, not 12x12, not unpadded layers, not fewer than 6 images."""
    pays = ktap.tap_skipping_pays
    for grads in (False, True):
        assert pays(32, 3, 3, 3, 3, (1, 1), (1, 1, 1, 1), grads)                # 5a 3x3
        assert pays(32, 3, 3, 5, 5, (1, 1), (2, 2, 2, 2), grads)                # 5a 5x5
        assert not pays(5, 3, 3, 3, 3, (1, 1), (1, 1, 1, 1), grads)             # 5 images
        assert not pays(32, 12, 12, 5, 5, (1, 1), (2, 2, 2, 2), grads)          # 3b 5x5
        assert not pays(32, 3, 3, 1, 1, (1, 1), (0, 0, 0, 0), grads)            # 5a 1x1: nothing to skip
    assert not pays(32, 6, 6, 3, 3, (1, 1), (1, 1, 1, 1)) and pays(32, 6, 6, 3, 3, (1, 1), (1, 1, 1, 1), True)
    assert not pays(32, 6, 6, 5, 5, (1, 1), (2, 2, 2, 2)) and pays(32, 6, 6, 5, 5, (1, 1), (2, 2, 2, 2), True)
    assert ktap.forward_chunk(24, 288) == 24 and ktap.forward_chunk(4, 1152) == 32    # 5a 3x3; 4a 5x5: 6 chunks


def test_chunk_and_block_counts():
    """The micro-kernel's tasks depend on the shapes only; every part of the weight gradient gets as many
    pixel blocks."""
    assert kimp.forward_chunk(1) == 1
    assert kimp.forward_chunk(32 * 12 * 12) == kimp.CHUNK_TILES                 # many pixels: full chunks
    tiles = -(-288 // kimp.TILE_ROWS)
    assert kimp.forward_chunk(288) == tiles // kimp.MIN_CHUNKS                   # NN2 5a: MIN_CHUNKS tasks
    # (blocks, parts) counted by hand for the shipped 1024-pixel blocks and at most 4 parts: round(pixels /
    # 1024) blocks (at least one), rounded up to a multiple of the parts
    assert (kimp.BLOCK_PIXELS, kimp.WEIGHT_GRAD_PARTS) == (1024, 4)
    by_hand = {1: (1, 1), 288: (1, 1), 1152: (1, 1),                     # NN2 at 6x6: 1.125 -> 1
               2048: (2, 2), 3000: (3, 3),                               # 2.9 -> 3 blocks, 3 parts
               4608: (8, 4),                                             # NN2 at 12x12: 4.5 -> 5 -> 8 of 576
               256 * 81: (20, 4)}                                        # R-Net conv2, 256 crops: 20.25 -> 20
    for pixels, expected in by_hand.items():
        assert kimp.weight_grad_blocks(pixels) == expected


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", ODD_SHAPES)
def test_conv_prelu_in_one_pass_equals_the_two_layers(shape, dtype, chunking):
    """The PReLU epilogue: the same numbers as the reference conv then ``where(z > 0, z, alpha z)``, and
    the same bits as the two fast layers called one after the other."""
    from scratchface.layers.activations import prelu_forward
    from scratchface.layers.conv import conv2d_prelu
    rng = np.random.default_rng(5)
    n, c, h, wd, f, kh, kw, stride, padding = shape
    x, w, b = rng.standard_normal((n, c, h, wd)), rng.standard_normal((f, c, kh, kw)), rng.standard_normal(f)
    alpha = np.linspace(-0.5, 1.5, f)                                   # negative, small and > 1 slopes
    z = conv2d_reference_forward(x, w, b, stride, padding)
    expected = np.where(z > 0, z, alpha[None, :, None, None] * z)       # by hand, float64
    args = [a.astype(dtype) for a in (x, w, b, alpha)]
    got = conv2d_prelu(*args, stride=stride, padding=padding, impl="numba")
    assert got.dtype == dtype and got.shape == z.shape and rel(got, expected) < TOL[dtype]
    two_layers = prelu_forward(conv2d_forward(*args[:3], stride=stride, padding=padding)[0], args[3])[0]
    np.testing.assert_array_equal(got, two_layers)
    reference = conv2d_prelu(*args, stride=stride, padding=padding, impl="reference")
    assert rel(reference, expected) < TOL[dtype]


def test_conv_prelu_bad_input():
    from scratchface.layers.conv import conv2d_prelu
    x, w, b = np.zeros((1, 2, 5, 5)), np.zeros((3, 2, 3, 3)), np.zeros(3)
    with pytest.raises(ValueError, match=r"alpha must have shape \(C,\) = \(3,\)"):
        conv2d_prelu(x, w, b, np.zeros(2))
    with pytest.raises(TypeError, match="alpha must have the dtype of x"):
        conv2d_prelu(x, w, b, np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="alpha contains NaN"):
        conv2d_prelu(x, w, b, np.array([0.1, np.nan, 0.2]))
    with pytest.raises(ValueError, match="larger than the padded input"):
        conv2d_prelu(np.zeros((1, 2, 2, 2)), w, b, np.zeros(3))
    with pytest.raises(ValueError, match="input channels"):
        conv2d_prelu(np.zeros((1, 4, 5, 5)), w, b, np.zeros(3))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 3), c=st.integers(1, 4), f=st.integers(1, 4), h=st.integers(1, 9), wd=st.integers(1, 9),
       padding=st.tuples(*[st.integers(0, 3)] * 4), chunk=st.sampled_from([1, 300, 1 << 20]),
       dtype=st.sampled_from([np.float64, np.float32]))
def test_winograd_equals_reference_hypothesis(n, c, f, h, wd, padding, chunk, dtype):
    """3x3, stride 1 through Winograd F(2x2, 3x3) (forward and dx; padding 3: im2col), any size the padding
    lets the kernel fit, tiles hanging over odd outputs, chunks of one tile row up to all."""
    if h + padding[0] + padding[1] < 3 or wd + padding[2] + padding[3] < 3:
        return
    with forced(FORCED["winograd"][:-1] + [(kwino, "WINOGRAD_CHUNK", chunk)]):
        check_equal((n, c, h, wd, f, 3, 3, (1, 1), padding), dtype, np.random.default_rng(1))


def test_winograd_kernel_transform_by_hand():
    """``U = G g G^T`` (Lavin & Gray eq. 7): for ``g`` = the 3x3 ramp 0..8, rows of ``G g`` are
    ``g_0``, ``(g_0 + g_1 + g_2)/2``, ``(g_0 - g_1 + g_2)/2``, ``g_2``; the same on the columns."""
    g = np.arange(9.0).reshape(3, 3)
    gg = np.array([g[0], (g[0] + g[1] + g[2]) / 2, (g[0] - g[1] + g[2]) / 2, g[2]])          # G g
    expected = np.stack([gg[:, 0], (gg[:, 0] + gg[:, 1] + gg[:, 2]) / 2,
                         (gg[:, 0] - gg[:, 1] + gg[:, 2]) / 2, gg[:, 2]], axis=1)         # (G g) G^T
    u = kwino.winograd_weights(g[None, None])
    assert u.shape == (16, 1, 1)
    np.testing.assert_allclose(u[:, 0, 0].reshape(4, 4), expected, rtol=0, atol=1e-15)


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-15), (np.float32, 1e-6)])
def test_winograd_kernel_transform_of_the_fast_path_equals_the_readable_one(dtype, tol, rng):
    """The Numba transform (planes a cache line longer than ``F C``, a view of turned kernels as ``dx`` passes
    them) against ``winograd_weights``' einsum."""
    w = rng.standard_normal((5, 7, 3, 3)).astype(dtype)
    for kernels in (w, w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)):
        f, c = kernels.shape[:2]
        plane = f * c + 16
        flat = np.full(16 * plane, np.nan, dtype)
        kwino._transformed_weights(kernels, flat, plane)
        got = np.stack([flat[e * plane:e * plane + f * c].reshape(f, c) for e in range(16)])
        want = kwino.winograd_weights(kernels.astype(np.float64))
        assert got.dtype == dtype and np.max(np.abs(got - want)) < tol * np.max(np.abs(want))


def test_winograd_takes_nn2s_3x3_layers_and_leaves_the_rest():
    """As shipped: 3x3 stride 1, >= 64 channels in and out and C F >= 64 x 128, on >= 6x6 outputs that whole
    2x2 tiles cover with at most 1.2 times their pixels: NN2's conv2, its 3x3 inception layers at 12x12 and
    6x6 (and their dx); not 5a at 3x3 (the taps on padding skipped) or at 7x7 (64 tile pixels for 49), not
    MTCNN's few channels, stride 2, 5x5, padding 3."""
    pays = kwino.winograd_pays
    assert pays(64, 192, 3, 3, (1, 1), 24, 24, (1, 1, 1, 1)) and pays(192, 64, 3, 3, (1, 1), 24, 24, (1, 1, 1, 1))
    assert pays(96, 128, 3, 3, (1, 1), 12, 12, (1, 1, 1, 1)) and pays(128, 96, 3, 3, (1, 1), 12, 12, (1, 1, 1, 1))
    assert pays(144, 288, 3, 3, (1, 1), 6, 6, (1, 1, 1, 1))                      # 4d at 6x6
    assert pays(96, 128, 3, 3, (1, 1), 28, 28, (1, 1, 1, 1))                     # 3a 3x3 at 224x224
    assert not pays(192, 384, 3, 3, (1, 1), 3, 3, (1, 1, 1, 1))                  # 5a at 3x3: 9 pixels
    assert not pays(192, 384, 3, 3, (1, 1), 7, 7, (1, 1, 1, 1))                  # 5a at 7x7: tiles 1.31x
    assert pays(192, 384, 3, 3, (1, 1), 13, 13, (1, 1, 1, 1))                    # 13x13: 196 / 169 = 1.16
    assert not pays(64, 64, 3, 3, (1, 1), 6, 6, (1, 1, 1, 1))                    # C F = 64 x 64
    assert not pays(32, 64, 3, 3, (1, 1), 21, 21)                                # O-Net conv2: few channels
    assert not pays(64, 32, 3, 3, (1, 1), 23, 23, (2, 2, 2, 2))                  # ... its dx: 32 out
    assert not pays(64, 192, 3, 3, (2, 2), 24, 24)                               # stride 2
    assert not pays(64, 192, 5, 5, (1, 1), 24, 24)                               # 5x5
    assert not pays(64, 192, 3, 3, (1, 1), 24, 24, (3, 3, 3, 3))                 # padding 3: dx would crop


@pytest.mark.parametrize("shape", [(2, 3, 7, 9, 4, (1, 1, 1, 1)), (1, 5, 6, 5, 2, (0, 2, 1, 0)), (3, 1, 3, 3, 1, (0, 0, 0, 0))])
def test_winograd_reference_and_kernel_equal_the_convolution(shape):
    """The readable NumPy Winograd (B^T d B, G g G^T, A^T M A by einsum) and the Numba kernel both equal the
    reference convolution, float64 to 1e-12."""
    n, c, h, wd, f, padding = shape
    rng = np.random.default_rng(4)
    x, w, b = rng.standard_normal((n, c, h, wd)), rng.standard_normal((f, c, 3, 3)), rng.standard_normal(f)
    want = conv2d_reference_forward(x, w, b, (1, 1), padding)
    assert rel(kwino.winograd_reference_forward(x, w, b, padding), want) < 1e-12
    got = kwino.winograd_output_numba(x, w, b, None, padding, np.empty_like(want))
    assert rel(got, want) < 1e-12


def test_blas_warmed_once_and_threads_restored(rng):
    import numba

    from scratchface.kernels import _numba
    before = numba.get_num_threads()
    x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
    conv2d_forward(x, rng.standard_normal((4, 3, 3, 3)).astype(np.float32), padding=1, impl="numba")
    assert _numba._BLAS_WARM == [True] and numba.get_num_threads() == before
