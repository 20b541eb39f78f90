"""Margin losses: values worked from angles, finite differences, torch autograd, numerics at +-1."""
import math

import numpy as np
import pytest

from scratchface.gradcheck import check_layer
from scratchface.losses import margin as M

W2 = np.array([[1.0, 0.0], [0.0, 1.0]])  # two classes, weight columns at angle 0 and pi/2


def _feature(angle, norm=1.0):
    return norm * np.array([math.cos(angle), math.sin(angle)])


def _two_class_loss(target_logit, other_logit):
    """-log softmax of the target among two logits."""
    return math.log1p(math.exp(other_logit - target_logit))


def test_values_worked_from_angles():
    # sample 0 at angle 0.3 from class 0 (norm 2); sample 1 at angle 2.9 from class 0 (norm 0.5)
    x = np.stack([_feature(0.3, 2.0), _feature(2.9, 0.5)])
    y = np.array([0, 0])
    th1 = [math.pi / 2 - 0.3, 2.9 - math.pi / 2]  # angles to the other class
    s, m = 64.0, 0.5
    # ArcFace; sample 1 is past pi - m: fallback cos(theta) - m sin(m)
    want = (_two_class_loss(s * math.cos(0.3 + m), s * math.cos(th1[0]))
            + _two_class_loss(s * (math.cos(2.9) - m * math.sin(m)), s * math.cos(th1[1]))) / 2
    assert float(M.arcface_loss_forward(x, W2, labels=y, scale=s, margin=m)[0]) == pytest.approx(want, rel=1e-12)
    # CosFace
    want = sum(_two_class_loss(s * (math.cos(t) - 0.35), s * math.cos(o)) for t, o in zip((0.3, 2.9), th1)) / 2
    assert float(M.cosface_loss_forward(x, W2, labels=y, scale=s, margin=0.35)[0]) == pytest.approx(want, rel=1e-12)
    # SphereFace m=4, lambda=0, scale = feature norm: 4*0.3 < pi (k=0); 4*2.9 = 11.6 (k=3)
    psi1 = (-1) ** 3 * math.cos(4 * 2.9) - 2 * 3
    want = (_two_class_loss(2.0 * math.cos(1.2), 2.0 * math.cos(th1[0]))
            + _two_class_loss(0.5 * psi1, 0.5 * math.cos(th1[1]))) / 2
    assert float(M.sphereface_loss_forward(x, W2, labels=y, margin=4)[0]) == pytest.approx(want, rel=1e-12)
    # SphereFace with annealing lambda = 5
    lam = 5.0
    t0, t1 = (lam * math.cos(0.3) + math.cos(1.2)) / 6, (lam * math.cos(2.9) + psi1) / 6
    want = (_two_class_loss(2.0 * t0, 2.0 * math.cos(th1[0])) + _two_class_loss(0.5 * t1, 0.5 * math.cos(th1[1]))) / 2
    got = M.sphereface_loss_forward(x, W2, labels=y, margin=4, lambda_=lam)[0]
    assert float(got) == pytest.approx(want, rel=1e-12)
    # modified softmax, feature norm as scale, and a fixed scale
    want = sum(_two_class_loss(n * math.cos(t), n * math.cos(o)) for n, t, o in zip((2.0, 0.5), (0.3, 2.9), th1)) / 2
    assert float(M.normalized_softmax_loss_forward(x, W2, labels=y)[0]) == pytest.approx(want, rel=1e-12)
    # combined (m1, m2, m3) = (1.5, 0.2, 0.1) on sample 0: cos(1.5*0.3 + 0.2) - 0.1
    got = M.combined_margin_loss_forward(x[:1], W2, labels=y[:1], scale=8.0, m1=1.5, m2=0.2, m3=0.1)[0]
    want = _two_class_loss(8 * (math.cos(0.65) - 0.1), 8 * math.cos(th1[0]))
    assert float(got) == pytest.approx(want, rel=1e-12)
    # plain softmax with a bias
    b = np.array([0.1, -0.2])
    logits = x @ W2 + b
    want = sum(_two_class_loss(row[0], row[1]) for row in logits) / 2
    assert float(M.softmax_loss_forward(x, W2, b, labels=y)[0]) == pytest.approx(want, rel=1e-12)


def test_weight_norms_do_not_matter_for_normalised_losses(rng):
    x, w = rng.standard_normal((4, 3)), rng.standard_normal((3, 5))
    y = np.array([0, 4, 2, 2])
    for f, kw in [(M.arcface_loss_forward, {}), (M.cosface_loss_forward, {}), (M.sphereface_loss_forward, {}),
                  (M.normalized_softmax_loss_forward, {"scale": 10.0})]:
        a = float(f(x, w, labels=y, **kw)[0])
        assert float(f(x, w * np.array([3.0, 0.1, 1, 7, 2]), labels=y, **kw)[0]) == pytest.approx(a, rel=1e-12)


def test_special_cases_agree(rng):
    x, w = rng.standard_normal((6, 4)), rng.standard_normal((4, 3))
    y = np.array([0, 1, 2, 0, 1, 2])
    plain = float(M.normalized_softmax_loss_forward(x, w, labels=y)[0])
    assert float(M.sphereface_loss_forward(x, w, labels=y, margin=1)[0]) == pytest.approx(plain, rel=1e-12)
    cos = float(M.cosface_loss_forward(x, w, labels=y, scale=30.0, margin=0.4)[0])
    comb = float(M.combined_margin_loss_forward(x, w, labels=y, scale=30.0, m1=1.0, m2=0.0, m3=0.4)[0])
    assert comb == pytest.approx(cos, rel=1e-12)
    # ArcFace = combined (1, m, 0) when no target angle is past pi - m
    x = M._features_near(w, y, [0.2, 0.9, 1.4, 2.0, 0.5, 1.1], rng)
    arc = float(M.arcface_loss_forward(x, w, labels=y, scale=30.0, margin=0.5)[0])
    comb = float(M.combined_margin_loss_forward(x, w, labels=y, scale=30.0, m1=1.0, m2=0.5, m3=0.0)[0])
    assert comb == pytest.approx(arc, rel=1e-12)


def test_sphereface_psi_monotone_continuous_and_exact():
    theta = np.linspace(0, math.pi, 20001)
    for m in (1, 2, 3, 4):
        psi, dpsi = M.sphereface_psi(np.cos(theta), m)
        k = np.minimum(np.floor(theta * m / math.pi), m - 1)
        assert np.allclose(psi, (-1) ** k * np.cos(m * theta) - 2 * k, atol=1e-12)
        assert np.all(np.diff(psi) <= 1e-12)                   # decreasing in theta
        assert np.max(np.abs(np.diff(psi))) < 1e-2             # no jumps
        assert psi[0] == pytest.approx(1.0) and psi[-1] == pytest.approx(1 - 2 * m)
        assert np.all(np.isfinite(dpsi))
    # derivative in cos theta by central differences, away from the joints k*pi/m
    c = np.cos(np.array([0.3, 1.0, 1.9, 2.5]))
    h = 1e-6
    num = (M.sphereface_psi(c + h, 4)[0] - M.sphereface_psi(c - h, 4)[0]) / (2 * h)
    assert np.allclose(M.sphereface_psi(c, 4)[1], num, rtol=1e-7)


def test_sphereface_lambda_schedule():
    assert M.sphereface_lambda(0) == 1000.0
    assert M.sphereface_lambda(100) == pytest.approx(1000 / 13)
    assert M.sphereface_lambda(10**6) == 5.0
    values = [M.sphereface_lambda(i) for i in range(0, 5000, 100)]
    assert all(a >= b for a, b in zip(values, values[1:]))
    with pytest.raises(ValueError, match="iteration must be in"):
        M.sphereface_lambda(-1)


@pytest.mark.parametrize("case", M.gradcheck_cases(np.random.default_rng(11)), ids=lambda c: c.name)
def test_gradcheck_cases(case):
    assert case.run().passed


@pytest.mark.parametrize("fwd,bwd,kw", [
    (M.arcface_loss_forward, M.arcface_loss_backward, {"scale": 3.0, "margin": 0.7}),
    (M.sphereface_loss_forward, M.sphereface_loss_backward, {"margin": 3, "lambda_": 0.0}),
    (M.combined_margin_loss_forward, M.combined_margin_loss_backward, {"scale": 2.0, "m1": 2.0, "m2": 0.4, "m3": 0.2}),
    (M.normalized_softmax_loss_forward, M.normalized_softmax_loss_backward, {"scale": 5.0}),
], ids=["arcface", "sphereface m3", "combined", "normface"])
def test_gradcheck_more_shapes(fwd, bwd, kw, rng):
    d, c = 7, 3
    w = rng.standard_normal((d, c))
    y = np.array([2, 0, 1, 1, 0])
    # angles on both sides of every joint used (ArcFace pi - 0.7 = 2.44; SphereFace k pi/3; combined)
    x = M._features_near(w, y, [0.25, 1.2, 1.7, 2.2, 2.8], rng) * rng.uniform(0.5, 2, (5, 1))
    assert check_layer(fwd, bwd, {"x": x, "w": w}, {"labels": y, **kw}).passed


def _torch_loss(torch, name, x, w, y, kw):
    """The same losses written directly in torch (arccos of the clamped cosine, cos(m theta) by angle)."""
    F = torch.nn.functional
    xn, wn = F.normalize(x, dim=1, eps=1e-10), F.normalize(w, dim=0, eps=1e-10)
    cos = xn @ wn
    onehot = F.one_hot(y, w.shape[1]).bool()
    c = cos[torch.arange(len(y)), y]
    if name == "softmax":
        return F.cross_entropy(x @ w, y)
    if name in ("normface", "sphereface"):
        s = x.norm(dim=1, keepdim=True) if kw.get("scale") is None else kw["scale"]
        if name == "normface":
            return F.cross_entropy(s * cos, y)
        m, lam = kw["margin"], kw["lambda_"]
        theta = torch.acos(c.clamp(-1, 1))
        k = torch.floor(theta * m / math.pi).clamp(max=m - 1).detach()
        psi = (-1.0) ** k * torch.cos(m * theta) - 2 * k
        t = (lam * c + psi) / (1 + lam)
        return F.cross_entropy(s * torch.where(onehot, t[:, None], cos), y)
    eps = 1e-7
    theta = torch.acos(c.clamp(-1 + eps, 1 - eps))
    if name == "cosface":
        t = c - kw["margin"]
    elif name == "arcface":
        m = kw["margin"]
        t = torch.where(theta + m <= math.pi, torch.cos(theta + m), c - m * math.sin(m))
    else:  # combined
        phase = kw["m1"] * theta + kw["m2"]
        k = torch.floor(phase / math.pi).detach()
        t = (-1.0) ** k * torch.cos(phase) - 2 * k - kw["m3"]
    return F.cross_entropy(kw["scale"] * torch.where(onehot, t[:, None], cos), y)


@pytest.mark.parametrize("name,fwd,bwd,kw", [
    ("softmax", M.softmax_loss_forward, M.softmax_loss_backward, {}),
    ("normface", M.normalized_softmax_loss_forward, M.normalized_softmax_loss_backward, {"scale": 16.0}),
    ("normface", M.normalized_softmax_loss_forward, M.normalized_softmax_loss_backward, {"scale": None}),
    ("sphereface", M.sphereface_loss_forward, M.sphereface_loss_backward, {"margin": 4, "lambda_": 0.0}),
    ("sphereface", M.sphereface_loss_forward, M.sphereface_loss_backward, {"margin": 2, "lambda_": 20.0}),
    ("cosface", M.cosface_loss_forward, M.cosface_loss_backward, {"scale": 64.0, "margin": 0.35}),
    ("arcface", M.arcface_loss_forward, M.arcface_loss_backward, {"scale": 64.0, "margin": 0.5}),
    ("combined", M.combined_margin_loss_forward, M.combined_margin_loss_backward,
     {"scale": 32.0, "m1": 1.35, "m2": 0.25, "m3": 0.15}),
])
def test_torch_cross_check(torch, name, fwd, bwd, kw, rng):
    d, c, n = 6, 9, 12
    w = rng.standard_normal((d, c))
    y = rng.integers(0, c, n)
    x = M._features_near(w, y, rng.uniform(0.1, 3.0, n), rng) * rng.uniform(0.5, 3, (n, 1))
    loss, cache = fwd(x, w, labels=y, **kw)
    dx, dw = bwd(1.0, cache)[:2]
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    tl = _torch_loss(torch, name, tx, tw, torch.tensor(y), kw)
    tl.backward()
    assert abs(float(loss) - tl.item()) <= 1e-10 * max(1.0, abs(tl.item()))
    assert np.allclose(dx, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    assert np.allclose(dw, tw.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("fwd,bwd,kw", [
    (M.arcface_loss_forward, M.arcface_loss_backward, {}),
    (M.cosface_loss_forward, M.cosface_loss_backward, {}),
    (M.sphereface_loss_forward, M.sphereface_loss_backward, {"lambda_": 0.0}),
    (M.combined_margin_loss_forward, M.combined_margin_loss_backward, {"m1": 1.2, "m2": 0.3, "m3": 0.1}),
    (M.normalized_softmax_loss_forward, M.normalized_softmax_loss_backward, {"scale": 64.0}),
], ids=["arcface", "cosface", "sphereface", "combined", "normface"])
def test_no_nan_or_inf_at_cos_plus_minus_one(fwd, bwd, kw, dtype):
    # features exactly on (and exactly opposite to) their class's weight column: cos theta = +-1
    w = np.eye(3, dtype=dtype) * 5
    x = np.array([[2, 0, 0], [0, -3, 0], [0, 0, 1e3], [-1e3, 0, 0]], dtype=dtype)
    y = np.array([0, 1, 2, 0])
    loss, cache = fwd(x, w, labels=y, **kw)
    dx, dw = bwd(dtype(1.0), cache)
    assert np.isfinite(loss) and np.all(np.isfinite(dx)) and np.all(np.isfinite(dw))
    assert dx.dtype == dtype and dw.dtype == dtype


def test_float32_scale_64_matches_float64(rng):
    # s = 64 logits span about 128 nats: a naive log(softmax) underflows to log(0) in float32
    # (e^-128 < 1e-45); the log-sum-exp must be shifted
    w = rng.standard_normal((8, 10))
    y = rng.integers(0, 10, 32)
    x = rng.standard_normal((32, 8)) * 50
    for f, b in ((M.arcface_loss_forward, M.arcface_loss_backward), (M.cosface_loss_forward, M.cosface_loss_backward)):
        l64, c64 = f(x, w, labels=y)
        l32, c32 = f(x.astype(np.float32), w.astype(np.float32), labels=y)
        assert float(l64) > 20  # far from the optimum: target probabilities tiny
        assert np.isfinite(l32) and abs(float(l32) - float(l64)) <= 1e-4 * abs(float(l64))
        g64 = b(1.0, c64)[0]
        g32 = b(np.float32(1.0), c32)[0]
        assert g32.dtype == np.float32
        assert np.allclose(g32, g64, rtol=1e-3, atol=1e-3 * np.abs(g64).max())


def test_bad_input(rng):
    x, w, y = rng.standard_normal((3, 4)), rng.standard_normal((4, 5)), np.array([0, 1, 4])
    with pytest.raises(ValueError, match="labels must be in \\[0, 5\\)"):
        M.arcface_loss_forward(x, w, labels=np.array([0, 1, 5]))
    with pytest.raises(TypeError, match="labels must have a signed integer"):
        M.cosface_loss_forward(x, w, labels=np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="labels must have one label per sample \\(3\\)"):
        M.sphereface_loss_forward(x, w, labels=np.array([0, 1]))
    with pytest.raises(ValueError, match="weights must have shape \\(D, C\\) = \\(4, num_classes\\)"):
        M.arcface_loss_forward(x, w.T, labels=y)
    with pytest.raises(ValueError, match="scale must be a finite positive number"):
        M.arcface_loss_forward(x, w, labels=y, scale=0)
    with pytest.raises(ValueError, match="margin must be in \\(0.0, 1.57"):
        M.arcface_loss_forward(x, w, labels=y, margin=0.0)
    with pytest.raises(ValueError, match="margin must be in \\(0.0, 2.0\\)"):
        M.cosface_loss_forward(x, w, labels=y, margin=-0.1)
    with pytest.raises(TypeError, match="margin must be a positive integer"):
        M.sphereface_loss_forward(x, w, labels=y, margin=1.5)
    with pytest.raises(ValueError, match="margin must be a positive integer"):
        M.sphereface_loss_forward(x, w, labels=y, margin=0)
    with pytest.raises(ValueError, match="lambda_ must be a finite non-negative number"):
        M.sphereface_loss_forward(x, w, labels=y, lambda_=-1.0)
    with pytest.raises(ValueError, match="m1 must be in"):
        M.combined_margin_loss_forward(x, w, labels=y, m1=0.5)
    with pytest.raises(ValueError, match="m2 must be in"):
        M.combined_margin_loss_forward(x, w, labels=y, m2=-0.1)
    with pytest.raises(ValueError, match="bias must have shape \\(5,\\)"):
        M.softmax_loss_forward(x, w, np.zeros(4), labels=y)
    with pytest.raises(ValueError, match="features contains NaN"):
        M.arcface_loss_forward(np.full((3, 4), np.nan), w, labels=y)


def _mean_angle_to_class_mean(features, labels):
    f = features / np.linalg.norm(features, axis=1, keepdims=True)
    out = []
    for c in np.unique(labels):
        m = f[labels == c].mean(0)
        out.append(np.arccos(np.clip(f[labels == c] @ (m / np.linalg.norm(m)), -1, 1)).mean())
    return float(np.mean(out))


def test_toy_eight_orl_identities(data_dir):
    """The lecture's picture in numbers: ArcFace packs each identity into a narrower cone than softmax."""
    import matplotlib

    matplotlib.use("Agg")
    from scratchface.losses.toy import load_orl_people, plot_toy_features, train_toy_features

    x, y = load_orl_people(data_dir / "orl_faces", 8, block=8)
    assert x.shape == (80, 14 * 11) and np.bincount(y).tolist() == [10] * 8
    assert x.min() >= 0 and x.max() <= 1
    results = [train_toy_features(x, y, loss=loss, iterations=300, hidden=32, rng=np.random.default_rng(1))
               for loss in ("softmax", "arcface")]
    assert all(r.accuracy == 1.0 for r in results)
    soft, arc = (_mean_angle_to_class_mean(r.features, y) for r in results)
    assert arc < 0.5 * soft
    fig = plot_toy_features(results)
    assert len(fig.axes) == 2
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_toy_bad_input(rng):
    from scratchface.losses.toy import load_orl_people, train_toy_features

    x, y = rng.uniform(0, 1, (6, 5)), np.array([0, 0, 1, 1, 2, 2])
    with pytest.raises(ValueError, match="loss must be one of"):
        train_toy_features(x, y, loss="triplet", rng=rng)
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        train_toy_features(x, y, loss="arcface", rng=0)
    with pytest.raises(ValueError, match="people must be at most 40"):
        load_orl_people("/nonexistent", 41)
