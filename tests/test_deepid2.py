"""DeepID2's joint identification + verification loss and its training loop."""
import numpy as np
import pytest

import experiments.deepid2 as xd2
from scratchface.gradcheck import check_layer, numerical_gradient, rel_error
from scratchface.layers.dense import dense_backward, dense_forward
from scratchface.layers.softmax import (
    softmax_cross_entropy_backward,
    softmax_cross_entropy_forward,
)
from scratchface.losses import deepid2 as d2
from scratchface.models import orl_nets


def _batch(rng, people=3, per_person=3, dim=5):
    labels = np.repeat(np.arange(people), per_person)
    return (rng.standard_normal((labels.size, dim)), rng.standard_normal((dim, people)),
            rng.standard_normal(people), labels)


def _naive_verif(features, labels, margin, normalize):
    """Mean contrastive loss over all pairs i < j, by a double loop (DeepID2 eq. 2)."""
    f = features / np.linalg.norm(features, axis=1, keepdims=True) if normalize else features
    total, count = 0.0, 0
    for i in range(len(f)):
        for j in range(i + 1, len(f)):
            dist = np.sqrt(np.sum((f[i] - f[j]) ** 2))
            total += 0.5 * dist ** 2 if labels[i] == labels[j] else 0.5 * max(0.0, margin - dist) ** 2
            count += 1
    return total / count


def test_batch_pairs_by_hand():
    first, second, same = d2.batch_pairs(np.array([4, 9, 4, 9]))
    assert first.tolist() == [0, 0, 0, 1, 1, 2]
    assert second.tolist() == [1, 2, 3, 2, 3, 3]
    assert same.tolist() == [False, True, False, False, True, False]


@pytest.mark.parametrize("lam, ident_weight, normalize", [(0.7, 1.0, True), (0.0, 1.0, True), (1.0, 0.0, True),
                                                          (2.0, 0.5, False)])
def test_joint_loss_gradcheck(rng, lam, ident_weight, normalize):
    features, w, b, labels = _batch(rng)
    result = check_layer(d2.deepid2_loss_forward, d2.deepid2_loss_backward,
                         {"features": features, "weight": w, "bias": b},
                         {"labels": labels, "lam": lam, "ident_weight": ident_weight, "margin": 1.5,
                          "normalize": normalize})
    assert result.passed, result.errors


def test_gradcheck_cases_pass(rng):
    for case in d2.gradcheck_cases(rng):
        result = check_layer(case.forward, case.backward, case.inputs, case.kwargs)
        assert result.passed, (case.name, result.errors)


def test_loss_value_is_ident_plus_lambda_verif_by_naive_loops(rng):
    features, w, b, labels = _batch(rng)
    logits = features @ w + b
    log_p = logits - logits.max(1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(1, keepdims=True))
    ident = -np.mean(log_p[np.arange(len(labels)), labels])
    for normalize in (True, False):
        verif = _naive_verif(features, labels, 1.5, normalize)
        loss, _ = d2.deepid2_loss_forward(features, w, b, labels=labels, lam=0.3, margin=1.5, normalize=normalize)
        assert loss == pytest.approx(ident + 0.3 * verif, rel=1e-12)


def test_joint_gradient_is_the_sum_of_the_two_signals(rng):
    """d(Ident + lam Verif) = d Ident + lam d Verif, each part checked against finite differences."""
    features, w, b, labels = _batch(rng)
    lam, margin = 0.4, 1.5

    def grads(lam_, ident_weight):
        _, cache = d2.deepid2_loss_forward(features, w, b, labels=labels, lam=lam_, margin=margin,
                                           ident_weight=ident_weight)
        return d2.deepid2_loss_backward(1.0, cache)

    joint, ident, verif = grads(lam, 1.0), grads(0.0, 1.0), grads(1.0, 0.0)
    for g_joint, g_ident, g_verif in zip(joint, ident, verif):
        np.testing.assert_allclose(g_joint, g_ident + lam * g_verif, rtol=1e-12, atol=1e-15)
    # the verification part against finite differences of the naive double loop
    f = features.copy()
    numeric = numerical_gradient(lambda: _naive_verif(f, labels, margin, True), f)
    assert rel_error(verif[0], numeric) < 1e-7
    assert np.all(verif[1] == 0) and np.all(verif[2] == 0)   # Verif does not touch the softmax layer


def test_against_torch_autograd(rng, torch):
    features, w, b, labels = _batch(rng, people=4, per_person=2)
    ft, wt, bt = (torch.tensor(a, requires_grad=True) for a in (features, w, b))
    f = torch.nn.functional.normalize(ft, dim=1)
    i, j = np.triu_indices(len(labels), 1)
    dist = (f[i] - f[j]).pow(2).sum(1).sqrt()
    same = torch.tensor(labels[i] == labels[j])
    verif = torch.where(same, 0.5 * dist ** 2, 0.5 * torch.clamp(1.5 - dist, min=0) ** 2).mean()
    loss = torch.nn.functional.cross_entropy(ft @ wt + bt, torch.tensor(labels)) + 0.6 * verif
    loss.backward()
    value, cache = d2.deepid2_loss_forward(features, w, b, labels=labels, lam=0.6, margin=1.5)
    assert float(value) == pytest.approx(loss.item(), rel=1e-10)
    for mine, ref in zip(d2.deepid2_loss_backward(1.0, cache), (ft.grad, wt.grad, bt.grad)):
        np.testing.assert_allclose(mine, ref.numpy(), rtol=1e-10, atol=1e-12)


def test_lambda_zero_is_softmax_training(rng):
    """With lam = 0 the gradient is exactly that of a dense layer + softmax cross-entropy."""
    features, w, b, labels = _batch(rng)
    logits, dense_cache = dense_forward(features, w, b)
    ce, ce_cache = softmax_cross_entropy_forward(logits, labels=labels)
    expected = dense_backward(softmax_cross_entropy_backward(1.0, ce_cache), dense_cache)
    value, cache = d2.deepid2_loss_forward(features, w, b, labels=labels, lam=0.0, margin=0.3)
    assert float(value) == float(ce)
    for mine, ref in zip(d2.deepid2_loss_backward(1.0, cache), expected):
        np.testing.assert_array_equal(mine, ref)


def _toy_faces(rng, people=4, per_person=6, size=16):
    """Smooth mirror-symmetric random "faces" plus noise (shifts and flips keep the identity)."""
    coarse = rng.standard_normal((people, 1, size // 4, size // 4))
    coarse = coarse + coarse[..., ::-1]
    x = np.repeat(np.kron(coarse, np.ones((4, 4))), per_person, axis=0)
    x = x + 0.7 * rng.standard_normal((people * per_person, 1, size, size))
    return x.astype(np.float32), np.repeat(np.arange(10, 10 + people), per_person)


def _tiny_net():
    return orl_nets.build_deepid2_net(feature_dim=8, channels=(4, 4, 8), input_size=(16, 16), rng=0)


def _whole_set_verif(net, x, labels):
    net.train()
    f = net.forward(x).astype(np.float64)
    return _naive_verif(f, labels, 1.0, True)


def test_training_with_lambda_zero_ignores_the_margin():
    x, labels = _toy_faces(np.random.default_rng(0))
    options = {"epochs": 3, "lr": 1e-2, "progress": False, "people_per_batch": 2, "images_per_person": 6}
    a, ha = xd2.train_deepid2(x, labels, lam=0.0, margin=0.5, net=_tiny_net(), **options)
    b, hb = xd2.train_deepid2(x, labels, lam=0.0, margin=3.0, net=_tiny_net(), **options)
    assert ha["loss"] == hb["loss"] and ha["verif"] == [0.0] * len(ha["loss"])
    for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(pa.data, pb.data, err_msg=name)
    c, _ = xd2.train_deepid2(x, labels, lam=1.0, margin=3.0, net=_tiny_net(), **options)
    assert any(not np.array_equal(pa.data, pc.data) for pa, pc in zip(a.parameters(), c.parameters()))


@pytest.mark.parametrize("lam, ident_weight", [(1.0, 1.0), (1.0, 0.0)])
def test_short_run_lowers_the_loss(lam, ident_weight):
    x, labels = _toy_faces(np.random.default_rng(1))
    net = _tiny_net()
    before = _whole_set_verif(net, x, labels)
    net, history = xd2.train_deepid2(x, labels, lam=lam, ident_weight=ident_weight, epochs=8, lr=1e-2,
                                    progress=False, net=net, people_per_batch=4, images_per_person=6)
    losses = history["loss"]
    assert len(losses) == 8 and np.all(np.isfinite(losses))
    assert np.mean(losses[-2:]) < np.mean(losses[:2]), losses
    assert _whole_set_verif(net, x, labels) < 0.8 * before
    if ident_weight:
        assert np.mean(history["ident"][-2:]) < np.mean(history["ident"][:2])


def test_errors(rng):
    features, w, b, labels = _batch(rng)
    with pytest.raises(ValueError, match="lam must be"):
        d2.deepid2_loss_forward(features, w, b, labels=labels, lam=-1.0)
    with pytest.raises(ValueError, match="no training signal"):
        d2.deepid2_loss_forward(features, w, b, labels=labels, lam=0.0, ident_weight=0.0)
    with pytest.raises(ValueError, match="margin must be"):
        d2.deepid2_loss_forward(features, w, b, labels=labels, margin=0.0)
    with pytest.raises(ValueError, match="labels must"):
        d2.deepid2_loss_forward(features, w, b, labels=labels[:-1])
    x, toy_labels = _toy_faces(rng)
    with pytest.raises(TypeError, match="unknown option"):
        xd2.train_deepid2(x, toy_labels, alpha=0.2)
    with pytest.raises(ValueError, match="no training signal"):
        xd2.train_deepid2(x, toy_labels, lam=0.0, ident_weight=0.0)
    with pytest.raises(ValueError, match="labels must have one entry per image"):
        xd2.train_deepid2(x, toy_labels[:-1])


def test_command_line_errors(tmp_path, capsys):
    with pytest.raises(SystemExit):
        xd2.main(["--lambdas", "one"])
    with pytest.raises(SystemExit):
        xd2.main(["--lambdas", "0"])
    assert xd2.main(["--data", str(tmp_path)]) == 2
    assert "ORL faces not found" in capsys.readouterr().err


def test_table_format():
    row = {"signal": "joint", "lam": 0.5, "accuracy": 0.9, "accuracy_std": 0.01, "auc": 0.95, "eer": 0.1,
           "rank1": 0.8, "seconds": 3.0}
    text = xd2.format_table([row, dict(row, signal="ident", lam=0.0)])
    assert "both, lambda=0.5" in text and "identification only" in text and "90.00% +- 1.00" in text
