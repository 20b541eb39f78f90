"""float32 is the fast path: every layer and loss gives the float64 answer to float32 precision.

For every gradcheck case that ``scratchface gradcheck`` runs (collected from
scratchface.layers.* and scratchface.losses.* by
``scratchface.gradcheck.collect_gradcheck_cases``), run the forward pass once on the
float64 inputs and once on the same inputs rounded to float32, and check that

* the float32 output stays float32 (no silent upcast to float64), and
* it agrees with the float64 output:
  ``|out32 - out64| <= 1e-4 |out64| + 1e-5 max|out64|`` elementwise. The
  second term scales an absolute floor by the output's magnitude, for entries
  that are small only because of cancellation (a conv output near 0, a
  centred batch-norm value).

Inputs are rounded once (relative change 6e-8), so the float64 reference sees
exactly the same numbers as the float32 run.
"""
import numpy as np
import pytest

from scratchface.gradcheck import collect_gradcheck_cases


CASES = collect_gradcheck_cases(seed=0)
RTOL, SCALED_ATOL = 1e-4, 1e-5


def _to(value, dtype):
    """Float arrays converted to ``dtype``; anything else (labels, masks, ints, tuples of indices) kept."""
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return value.astype(dtype)
    return value


def test_cases_cover_every_layer_module():
    modules = {case.forward.__module__.rsplit(".", 1)[-1] for case in CASES}
    expected = {"activations", "conv", "dense", "dropout", "locally_connected", "normalization", "pooling",
                "shape", "softmax"}
    assert expected <= modules, f"no gradcheck case from {sorted(expected - modules)}"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_float32_forward_matches_float64(case):
    inputs32 = {k: _to(v, np.float32) for k, v in case.inputs.items()}
    kwargs32 = {k: _to(v, np.float32) for k, v in case.kwargs.items()}
    # the float64 reference on exactly the rounded values
    inputs64 = {k: _to(v, np.float64) for k, v in inputs32.items()}
    kwargs64 = {k: _to(v, np.float64) for k, v in kwargs32.items()}

    out64, _ = case.forward(*inputs64.values(), **kwargs64)
    out32, _ = case.forward(*inputs32.values(), **kwargs32)

    out64 = np.asarray(out64)
    out32_arr = np.asarray(out32)
    assert out32_arr.dtype == np.float32, f"{case.name}: float32 input gave a {out32_arr.dtype} output"
    assert out32_arr.shape == out64.shape
    scale = float(np.max(np.abs(out64))) if out64.size else 0.0
    err = np.abs(out32_arr.astype(np.float64) - out64)
    bound = RTOL * np.abs(out64) + SCALED_ATOL * scale
    assert (err <= bound).all(), (f"{case.name}: float32 differs from float64 by up to {err.max():.3g} "
                                  f"(output scale {scale:.3g})")
