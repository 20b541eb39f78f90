"""LMLE quintuplets against brute force; the triple-header hinge against hand values and torch."""
import numpy as np
import pytest

from scratchface.gradcheck import check_layer
from scratchface.losses.lmle import (gradcheck_cases, lmle_loss_backward, lmle_loss_forward, lmle_quintuplets,
                                     mined_lmle_loss_backward, mined_lmle_loss_forward)


def _brute_quintuplets(x, classes, clusters):
    n = len(x)
    d = np.array([[float(((x[i] - x[j]) ** 2).sum()) for j in range(n)] for i in range(n)])
    out = []
    for i in range(n):
        cl = [j for j in range(n) if j != i and clusters[j] == clusters[i]]
        oc = [j for j in range(n) if classes[j] == classes[i] and clusters[j] != clusters[i]]
        sc = [j for j in range(n) if j != i and classes[j] == classes[i]]
        ng = [j for j in range(n) if classes[j] != classes[i]]
        if cl and oc and ng:
            out.append((i, max(cl, key=lambda j: d[i, j]), min(oc, key=lambda j: d[i, j]),
                        max(sc, key=lambda j: d[i, j]), min(ng, key=lambda j: d[i, j])))
    return out


def test_quintuplets_match_brute_force(rng):
    classes = np.array([0] * 7 + [1] * 5 + [2] * 2)
    clusters = np.array([0, 0, 0, 1, 1, 2, 2, 3, 3, 3, 4, 4, 5, 6])   # class 2: two singleton clusters
    x = rng.standard_normal((14, 3))
    got = list(zip(*(q.tolist() for q in lmle_quintuplets(x, classes, clusters))))
    want = _brute_quintuplets(x, classes, clusters)
    assert got == want
    assert 12 <= len(want) < 14   # singletons (no cluster-mate) are skipped


def test_quintuplets_empty_and_bad_nesting(rng):
    x = rng.standard_normal((4, 2))
    q = lmle_quintuplets(x, np.array([0, 0, 1, 1]), np.array([0, 0, 1, 1]))  # one cluster per class
    assert [a.shape for a in q] == [(0,)] * 5 and all(a.dtype == np.int64 for a in q)
    with pytest.raises(ValueError, match="cluster 1 holds samples of classes \\[0, 1\\]"):
        lmle_quintuplets(x, np.array([0, 0, 1, 1]), np.array([0, 1, 1, 2]))
    with pytest.raises(ValueError, match="cluster_labels must have one label per sample"):
        lmle_quintuplets(x, np.array([0, 0, 1, 1]), np.array([0, 1, 1]))


def test_hand_worked_value():
    # 1-D features, no normalisation: D = squared distance to the anchor at 0
    a, pp, pm, pmm, n = (np.array([[v]]) for v in (0.0, 1.0, 1.5, 2.0, 2.2))
    # D = 1, 2.25, 4, 4.84 ; hinges: [0.5 + 1 - 2.25]_+ = 0 ; [2 + 2.25 - 4]_+ = 0.25 ; [1 + 4 - 4.84]_+ = 0.16
    loss, _ = lmle_loss_forward(a, pp, pm, pmm, n, margins=(0.5, 2.0, 1.0), normalize=False)
    assert float(loss) == pytest.approx(0.41, abs=1e-14)


@pytest.mark.parametrize("case", gradcheck_cases(np.random.default_rng(2)), ids=lambda c: c.name)
def test_gradcheck_cases(case):
    assert case.run().passed


def test_gradcheck_raw_sum(rng):
    # no normalisation, hinges 1 and 3 active and 2 inactive on every row
    base = np.array([0.0, 1.0, 1.2, 3.0, 3.1])[:, None, None] + 0.01 * rng.standard_normal((5, 4, 3))
    rows = dict(zip(("a", "pp", "pm", "pmm", "n"), base))
    res = check_layer(lmle_loss_forward, lmle_loss_backward, rows,
                      {"margins": (2.0, 0.5, 1.0), "normalize": False, "reduction": "sum"})
    assert res.passed, res.errors


def test_torch_cross_check(torch, rng):
    F = torch.nn.functional
    x = rng.standard_normal((10, 4))
    classes = np.repeat([0, 1], 5)
    clusters = np.array([0, 0, 1, 1, 1, 2, 2, 2, 3, 3])
    q = lmle_quintuplets(x, classes, clusters)
    g = (0.3, 0.2, 0.4)
    loss, cache = mined_lmle_loss_forward(x, quintuplets=q, margins=g)
    dx = mined_lmle_loss_backward(1.0, cache)
    tx = torch.tensor(x, requires_grad=True)
    f = F.normalize(tx, dim=1, eps=1e-10)
    a, pp, pm, pmm, n = (f[torch.tensor(i)] for i in q)
    D = [((a - y) ** 2).sum(1) for y in (pp, pm, pmm, n)]
    tl = sum(torch.relu(g[k] + D[k] - D[k + 1]) for k in range(3)).mean()
    tl.backward()
    assert abs(float(loss) - tl.item()) < 1e-12
    assert np.allclose(dx, tx.grad.numpy(), rtol=1e-10, atol=1e-13)


def test_bad_input(rng):
    r = rng.standard_normal((2, 3))
    with pytest.raises(ValueError, match="negative must have the shape of anchor"):
        lmle_loss_forward(r, r, r, r, r[:1])
    with pytest.raises(TypeError, match="margins must be three numbers"):
        lmle_loss_forward(r, r, r, r, r, margins=(0.1, 0.1))
    with pytest.raises(ValueError, match="margins\\[1\\] must be a finite positive number"):
        lmle_loss_forward(r, r, r, r, r, margins=(0.1, 0.0, 0.1))
    with pytest.raises(ValueError, match="reduction must be one of"):
        lmle_loss_forward(r, r, r, r, r, reduction="mean_active")
    with pytest.raises(TypeError, match="quintuplets must be a tuple of five"):
        mined_lmle_loss_forward(r, quintuplets=([0], [1]))
    with pytest.raises(ValueError, match="quintuplets\\[4\\] \\(negative\\) must index rows"):
        mined_lmle_loss_forward(r, quintuplets=([0], [1], [1], [1], [2]))
