"""The finite-difference assertion shared by the layer tests (float64, fourth-order central differences)."""
import numpy as np

from scratchface.gradcheck import numerical_gradient, rel_error


def assert_gradients(forward, backward, inputs, kwargs=None, seed=0):
    """backward(dout) against fourth-order central differences of sum(forward * dout), float64.

    Pass: |analytic - numeric| <= 1e-7 (|analytic| + |numeric|) + 1e-10 elementwise (the relative
    error of scratchface.gradcheck, with a floor of 1e-10 so that an exactly-zero gradient, e.g. a
    dropped unit or an unchosen maxout piece, is not failed by 1e-13 of rounding in the differences).
    """
    kwargs = kwargs or {}
    arrays = {k: np.array(v, dtype=np.float64) for k, v in inputs.items()}
    out, cache = forward(*arrays.values(), **kwargs)
    dout = np.random.default_rng(seed).standard_normal(np.shape(out))
    grads = backward(dout if np.ndim(out) else float(dout), cache)
    grads = grads if isinstance(grads, tuple) else (grads,)
    assert len(grads) == len(arrays)

    def loss():
        return float(np.sum(forward(*arrays.values(), **kwargs)[0] * dout))

    for (name, x), g in zip(arrays.items(), grads):
        numeric = numerical_gradient(loss, x)
        assert g.shape == x.shape
        ok = np.abs(g - numeric) <= 1e-7 * (np.abs(g) + np.abs(numeric)) + 1e-10
        assert ok.all(), f"gradient of {name}: max relative error {rel_error(g, numeric):.2e}"
