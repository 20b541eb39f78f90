"""The finite-difference assertion shared by the layer tests: scratchface.gradcheck's engine, asserted."""
from scratchface.gradcheck import check_layer


def assert_gradients(forward, backward, inputs, kwargs=None, seed=0):
    """backward(dout) against fourth-order central differences of sum(forward * dout), float64.

    Pass: |analytic - numeric| <= 1e-7 (|analytic| + |numeric|) + 1e-10 elementwise (the relative
    error of scratchface.gradcheck with ``atol=1e-10``, so that an exactly-zero gradient, e.g. a
    dropped unit or an unchosen maxout piece, is not failed by 1e-13 of rounding in the differences).
    A ``None`` gradient for a given input fails.
    """
    result = check_layer(forward, backward, inputs, kwargs, seed=seed, atol=1e-10)
    assert result.passed, result.report()
