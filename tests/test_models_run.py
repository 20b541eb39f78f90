"""The lectures' networks run: forward + backward at full size, gradchecks of small copies, training, errors.

- Each model runs forward and backward on a batch of 2 at its real input size
  (float32); every parameter receives a gradient.
- A shrunken copy (channels / 8, small input, float64) passes a whole-model
  gradient check: directional derivatives along random directions of the input
  and of 12 parameter tensors drawn at random (an entry-by-entry check of ~10^5
  parameters would take hours).
- A few optimiser steps on a fixed batch reduce the loss.
- The same network built in PyTorch (``benchmarks/bench_models.py: to_torch``)
  gives the same outputs and gradients (float64), when torch is installed.
- A wrong input size or channel count raises a ``ValueError`` naming what the
  model expects.
"""
import importlib.util
import pathlib

import numpy as np
import pytest

from scratchface.gradcheck import rel_error
from scratchface.layers.softmax import softmax_cross_entropy_backward, softmax_cross_entropy_forward
from scratchface.losses.triplet import mined_triplet_loss_backward, mined_triplet_loss_forward
from scratchface.models import (DreamBlock, DreamNetwork, FaceNetwork, build_model, deepface, deepface_descriptor,
                                nn2, nn4, yaw_gate)
from scratchface.nn import Adam

BENCH = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "bench_models.py"


@pytest.fixture
def one_numba_thread():
    """Small models: Numba's thread launches cost more than they save (and much more on a busy machine)."""
    numba = pytest.importorskip("numba")
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(previous)


# ------------------------------------------------------------------ full size, batch of 2
FULL = [
    pytest.param("nn1", 128, marks=pytest.mark.slow),
    pytest.param("nn2", 128),
    pytest.param("nn3", 128),
    pytest.param("nn4", 128),
    pytest.param("nns1", 128),
    pytest.param("nns2", 128),
    pytest.param("vgg_face", 2622, marks=pytest.mark.slow),
    pytest.param("deepface", 4030, marks=pytest.mark.slow),
]


@pytest.mark.parametrize("name, out_dim", FULL)
def test_full_size_forward_backward(name, out_dim):
    net = build_model(name, rng=0)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2,) + net.input_shape).astype(np.float32)
    out = net.forward(x)
    assert out.shape == (2, out_dim) and out.dtype == np.float32 and np.isfinite(out).all()
    if name.startswith("nn"):                                  # FaceNet: unit-length embeddings
        np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)
    dx = net.backward(rng.standard_normal(out.shape).astype(np.float32))
    assert dx.shape == x.shape and np.isfinite(dx).all() and np.abs(dx).max() > 0
    no_grad = [n for n, p in net.named_parameters() if not np.any(p.grad)]
    assert not no_grad, f"parameters without a gradient: {no_grad}"


# ------------------------------------------------------------------ gradchecks of shrunken copies
def directional_gradcheck(net, x, rng, *, n_tensors=12, h=1e-4, call=None):
    r"""``net.backward`` against finite differences along random directions, tensor by tensor.

    For the input and for each of ``n_tensors`` parameter tensors drawn at random
    (all of them when there are fewer), a random unit direction ``v`` over the
    whole tensor: the 4th-order central difference of :math:`L(\theta + t v)` at
    ``t = 0`` must equal :math:`\langle \nabla_\theta L, v \rangle` from
    ``backward``. Every entry of a checked tensor takes part, and the directional
    derivative is not dominated by rounding noise the way a tiny single entry is.

    Returns ``(errors, skipped)``: the relative error per checked tensor, and the
    number skipped because the step crossed a kink (ReLU at 0, a tie in a max
    pool or maxout) in three random directions: there the differences with steps
    ``h`` and ``h/2`` disagree, whatever the analytic gradient says, so this
    validity test does not look at the code under test. (A single tiny entry, by contrast, drowns in the ~1e-14
    rounding noise of a deep network's loss; a directional derivative does not.)
    """
    call = call or net.forward
    out = call(x)
    dout = rng.standard_normal(out.shape)
    net.zero_grad()
    dx = np.array(net.backward(dout), copy=True)

    def loss():
        return float(np.sum(call(x) * dout))

    def difference(array, v, step):
        old, values = array.copy(), []
        for s in (2 * step, step, -step, -2 * step):
            array[...] = old + s * v
            values.append(loss())
        array[...] = old
        return (-values[0] + 8 * values[1] - 8 * values[2] + values[3]) / (12 * step)

    params = list(net.named_parameters())
    chosen = rng.choice(len(params), min(n_tensors, len(params)), replace=False)
    checks = [("x", x, dx)] + [(params[i][0], params[i][1].data, params[i][1].grad.copy()) for i in sorted(chosen)]
    errors, skipped = {}, 0
    for name, array, grad in checks:
        for _ in range(3):                                  # a direction whose step crosses a kink: draw another
            v = rng.standard_normal(array.shape)
            v /= np.linalg.norm(v)
            analytic = float(np.sum(grad * v))
            numeric = difference(array, v, h)
            error = rel_error(analytic, numeric)
            if error < 1e-7 or rel_error(numeric, difference(array, v, h / 2)) < 1e-6:
                errors[name] = error
                break
        else:
            skipped += 1
    return errors, skipped


def randomise_biases(net, rng):
    """Biases start at 0, so a unit whose input is all zero (a dead ReLU map, the padding) sits
    exactly on its ReLU's kink, where no finite difference can agree with a (sub)gradient."""
    for name, p in net.named_parameters():
        if name.endswith("bias"):
            p.data[...] = 0.1 * rng.standard_normal(p.shape)
    return net


# NNS2 already has a quarter (blocks) and a ninth (stem) of NN2's channels: it is checked at full width.
# VGG-Face's first blocks hold the most units (2 x 32 x 32 x channels); at channels / 8 a step along a
# random direction crosses a ReLU kink in most directions, at channels / 16 rarely.
SHRUNKEN = [("nn1", 32, 8, {}), ("nn2", 32, 8, {}), ("nns2", 32, 1, {}), ("vgg_face", 32, 16, {"num_classes": 10}),
            ("deepface", 72, 8, {"num_classes": 10})]


@pytest.mark.parametrize("name, size, divisor, kwargs", SHRUNKEN)
def test_shrunken_model_gradcheck(name, size, divisor, kwargs, one_numba_thread):
    rng = np.random.default_rng(3)
    net = build_model(name, input_size=size, width_divisor=divisor, rng=4, dtype=np.float64, **kwargs).eval()
    randomise_biases(net, rng)
    x = rng.standard_normal((2,) + net.input_shape)
    errors, skipped = directional_gradcheck(net, x, rng)
    assert skipped <= 2, f"{skipped} of {len(errors) + skipped} checks cross kinks: draw other directions"
    worst = max(errors, key=errors.get)
    assert errors[worst] < 1e-7, f"{name}: {worst} has relative error {errors[worst]:.2e}"


def test_dream_network_gradcheck(one_numba_thread):
    rng = np.random.default_rng(5)
    net = DreamNetwork(nn2(input_size=32, width_divisor=8, rng=6, dtype=np.float64), rng=7, dtype=np.float64)
    randomise_biases(net, rng)
    x = rng.standard_normal((3,) + net.input_shape)
    yaw = np.array([10.0, 45.0, -80.0])
    errors, skipped = directional_gradcheck(net, x, rng, call=lambda inp: net.forward(inp, yaw=yaw))
    assert skipped <= 2 and max(errors.values()) < 1e-7, errors


# ------------------------------------------------------------------ training reduces the loss
def _train(net, loss_and_grad, x, steps, lr):
    optimiser = Adam(net.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        net.zero_grad()
        out = net.forward(x)
        loss, dout = loss_and_grad(out)
        net.backward(dout)
        optimiser.step()
        losses.append(float(loss))
    return losses


def test_nn2_triplet_training_reduces_loss(one_numba_thread):
    # two people x three photos (noisy copies of one face each), all anchor-positive pairs; NN2's
    # layout at 48x48 with channels / 8 keeps the test quick
    rng = np.random.default_rng(8)
    faces = rng.standard_normal((2, 3, 48, 48)).astype(np.float32)
    x = np.concatenate([faces[i] + 0.3 * rng.standard_normal((3, 3, 48, 48)).astype(np.float32) for i in (0, 1)])
    anchors, positives, negatives = (np.array(v) for v in ([0, 0, 1, 3, 3, 4], [1, 2, 2, 4, 5, 5], [3, 4, 5, 0, 1, 2]))
    net = nn2(input_size=48, width_divisor=8, rng=9)

    def loss_and_grad(emb):
        loss, cache = mined_triplet_loss_forward(emb, triplets=(anchors, positives, negatives), alpha=0.2)
        return loss, mined_triplet_loss_backward(1.0, cache)

    losses = _train(net, loss_and_grad, x, steps=6, lr=1e-3)
    assert losses[-1] < 0.5 * losses[0], losses


@pytest.mark.parametrize("name, size", [("vgg_face", 32), ("deepface", 72)])
def test_classifier_training_reduces_loss(name, size, one_numba_thread):
    rng = np.random.default_rng(10)
    net = build_model(name, input_size=size, width_divisor=8, num_classes=4, rng=11)
    x = rng.standard_normal((4,) + net.input_shape).astype(np.float32)
    labels = np.array([0, 1, 2, 3])

    def loss_and_grad(logits):
        loss, cache = softmax_cross_entropy_forward(logits, labels=labels)
        return loss, softmax_cross_entropy_backward(1.0, cache)

    losses = _train(net, loss_and_grad, x, steps=8, lr=1e-3)
    assert losses[-1] < 0.5 * losses[0], losses


def test_dream_learns_profile_to_frontal_mapping(one_numba_thread):
    # the stem is frozen; only the DREAM block trains, to map profile features onto frontal ones
    rng = np.random.default_rng(12)
    stem = nn2(input_size=48, width_divisor=8, rng=13)
    net = DreamNetwork(stem, rng=14)
    profiles = rng.standard_normal((4, 3, 48, 48)).astype(np.float32)
    frontal = rng.standard_normal((4, 128)).astype(np.float32)
    frontal /= np.linalg.norm(frontal, axis=1, keepdims=True)
    yaw = np.array([70.0, 80.0, -75.0, 90.0])
    optimiser = Adam(net.dream.parameters(), lr=1e-2)
    stem_before = stem["fc"].weight.data.copy()
    losses = []
    for _ in range(8):
        net.zero_grad()
        out = net.forward(profiles, yaw=yaw)
        losses.append(float(np.sum((out - frontal) ** 2)))
        net.backward(2 * (out - frontal))
        optimiser.step()
    assert losses[-1] < 0.7 * losses[0], losses
    np.testing.assert_array_equal(stem["fc"].weight.data, stem_before)


# ------------------------------------------------------------------ DREAM block details
def test_yaw_gate_values():
    # sigma(10 (4|theta|/pi - 1)) by hand: 0.5 at 45 degrees, 1 / (1 + e^10) at 0, 1 / (1 + e^-10) at 90
    gate = yaw_gate(np.array([0.0, 45.0, -45.0, 90.0, -90.0]))
    np.testing.assert_allclose(gate, [1 / (1 + np.exp(10)), 0.5, 0.5, 1 / (1 + np.exp(-10)), 1 / (1 + np.exp(-10))],
                               rtol=1e-12)
    np.testing.assert_allclose(yaw_gate(np.array([np.pi / 4]), degrees=False), [0.5], rtol=1e-12)
    assert np.all(np.diff(yaw_gate(np.linspace(0, 90, 10))) > 0)


def test_dream_block_frontal_passes_through_and_profile_adds_residual():
    rng = np.random.default_rng(15)
    block = DreamBlock(6, hidden=5, rng=16, dtype=np.float64)
    x = rng.standard_normal((3, 6))
    out = block.forward(x, gate=np.array([0.0, 0.5, 1.0]))
    residual = block.residual.forward(x)
    np.testing.assert_array_equal(out[0], x[0])
    np.testing.assert_allclose(out[1], x[1] + 0.5 * residual[1], rtol=1e-14)
    np.testing.assert_allclose(out[2], x[2] + residual[2], rtol=1e-14)
    # a frontal face (gate 0) gives the residual branch no gradient
    block.forward(x[:1], gate=np.array([0.0]))
    block.zero_grad()
    block.backward(np.ones((1, 6)))
    assert all(not np.any(p.grad) for p in block.parameters())
    assert block.num_params == (6 * 5 + 5) + (5 * 6 + 6)


def test_dream_errors():
    block = DreamBlock(4, rng=0)
    x = np.zeros((2, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="exactly one of yaw= .* or gate="):
        block.forward(x)
    with pytest.raises(ValueError, match="exactly one of yaw="):
        block.forward(x, np.zeros(2), gate=np.zeros(2))
    with pytest.raises(ValueError, match=r"gate must be in \[0, 1\]"):
        block.forward(x, gate=np.array([0.5, 1.5]))
    with pytest.raises(ValueError, match=r"one value per sample \(2\)"):
        block.forward(x, yaw=np.zeros(3))
    with pytest.raises(ValueError, match=r"DreamBlock expects input of shape \(N, 4\)"):
        block.forward(np.zeros((2, 5), dtype=np.float32), gate=np.zeros(2))
    with pytest.raises(TypeError, match="stem must be a scratchface.nn Module"):
        DreamNetwork(lambda v: v)
    with pytest.raises(RuntimeError, match="backward called before forward"):
        DreamBlock(4, rng=0).backward(np.zeros((2, 4), dtype=np.float32))


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("name, bad_shape, expected", [
    ("nn2", (1, 3, 160, 160), r"NN2 expects input of shape \(N, 3, 224, 224\)"),
    ("nn4", (1, 1, 96, 96), r"NN4 expects input of shape \(N, 3, 96, 96\)"),
    ("nns2", (1, 3, 116, 140), r"NNS2 expects input of shape \(N, 3, 140, 116\)"),
    ("vgg_face", (1, 3, 225, 224), r"VGG-Face expects input of shape \(N, 3, 224, 224\)"),
    ("deepface", (1, 4, 152, 152), r"DeepFace expects input of shape \(N, 3, 152, 152\)"),
    ("nn1", (3, 220, 220), r"NN1 expects input of shape \(N, 3, 220, 220\)"),
])
def test_wrong_input_names_expected_size(name, bad_shape, expected):
    net = build_model(name, width_divisor=16, init="zeros", num_classes=3) if name in ("vgg_face", "deepface") \
        else build_model(name, width_divisor=16, init="zeros")
    with pytest.raises(ValueError, match=expected):
        net.forward(np.zeros(bad_shape, dtype=np.float32))


def test_wrong_dtype_is_a_type_error():
    net = nn4(width_divisor=16, init="zeros")
    with pytest.raises(TypeError, match="float32 parameters but x is float64"):
        net.forward(np.zeros((1, 3, 96, 96)))


def test_deepface_descriptor_is_f7():
    net = deepface(input_size=72, width_divisor=8, num_classes=5, rng=0)
    x = np.random.default_rng(1).standard_normal((2, 3, 72, 72)).astype(np.float32)
    feats = deepface_descriptor(net, x)
    assert feats.shape == (2, 4096 // 8) and np.all(feats >= 0)        # after F7's ReLU
    np.testing.assert_allclose(net["f8"].forward(feats), net.forward(x), rtol=1e-5)
    with pytest.raises(TypeError, match="built by deepface"):
        deepface_descriptor(nn4(width_divisor=16, init="zeros"), x)


# ------------------------------------------------------------------ the same network in torch
def _load_bench():
    spec = importlib.util.spec_from_file_location("bench_models", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name, size, kwargs", [("nn2", 64, {}), ("nn1", 32, {}), ("vgg_face", 32, {"num_classes": 7})])
def test_same_as_torch(torch, name, size, kwargs, one_numba_thread):
    to_torch = _load_bench().to_torch
    net = build_model(name, input_size=size, width_divisor=8, rng=20, dtype=np.float64, **kwargs).eval()
    assert isinstance(net, FaceNetwork)
    rng = np.random.default_rng(21)
    x = rng.standard_normal((2,) + net.input_shape)
    out = net.forward(x)
    dout = rng.standard_normal(out.shape)
    net.zero_grad()
    dx = net.backward(dout)
    tnet = to_torch(net)
    xt = torch.tensor(x, requires_grad=True)
    out_t = tnet(xt)
    out_t.backward(torch.tensor(dout))
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-8, atol=1e-12)
    first = net.parameters()[0]
    np.testing.assert_allclose(first.grad, next(tnet.parameters()).grad.numpy(), rtol=1e-8, atol=1e-12)
