"""Checkers for assignment 4: PReLU (one slope per channel) and maxout, forward and backward.

The student's functions have the library's signatures (:mod:`scratchface.layers.activations`)::

    prelu_forward(x, alpha) -> (out, cache)        # x (N, C) or (N, C, H, W), alpha (C,)
    prelu_backward(dout, cache) -> (dx, dalpha)
    maxout_forward(x, *, pieces) -> (out, cache)   # x (N, M*pieces[, H, W]) -> (N, M[, H, W])
    maxout_backward(dout, cache) -> dx

PReLU's slope for ``x <= 0`` is ``alpha[c]`` of the channel (axis 1); maxout takes the max over
groups of ``pieces`` *consecutive* channels and sends the gradient to the first maximum on ties.
Expected values: the library's functions and, for one backward case each, finite differences.
"""
from __future__ import annotations

import numpy as np

from ._core import CheckResult, register
from ._layer_checks import (
    Outputs,
    check_dtype,
    describe,
    needs_student_function,
    run_student,
    stops_at_stubs,
    unpack,
    variant_hint,
)
from ._library import (
    maxout_backward,
    maxout_forward,
    numerical_gradient,
    prelu_backward,
    prelu_forward,
)

__all__ = [
    "MAXOUT_CASES",
    "PRELU_CASES",
    "maxout_backward_checker",
    "maxout_forward_checker",
    "prelu_backward_checker",
    "prelu_forward_checker",
]

# (x shape, alpha: 'small' in (0.05, 0.3) or explicit values, how x is drawn, dtype)
PRELU_CASES = (
    ((2, 3, 4, 5), "small", "normal", np.float64),
    ((4, 6), "small", "normal", np.float64),                          # dense (N, C)
    ((2, 4, 3, 4), (-0.5, 0.25, 1.5, 0.0), "normal", np.float64),     # W = C; slopes < 0, > 1 and 0
    ((3, 2, 2, 3), (0.2, -0.3), "negative", np.float64),              # every input negative
    ((2, 3, 4, 4), "small", "normal", np.float32),                    # float32 stays float32
)
PRELU_FORWARD_ONLY = (((2, 3, 3, 3), (0.1, 0.2, 0.3), "zeros", np.float64),)   # exact zeros: out = 0
# x == 0 takes the negative branch (as PyTorch's PReLU): dx = alpha * dout there, dalpha gets dout * 0.
PRELU_BACKWARD_ONLY = (((2, 3, 3, 3), (0.1, 0.2, 0.3), "zeros", np.float64),
                       ((3, 2, 4), (0.4, -0.3), "zeros", np.float64))
PRELU_FD_CASE = ((2, 3, 2, 3), (0.1, -0.2, 1.3), "normal", np.float64)

# (x shape, pieces, how x is drawn, dtype)
MAXOUT_CASES = (
    ((3, 8), 2, "normal", np.float64),                  # FaceNet NN1's fc layers: p = 2
    ((2, 6, 3, 3), 3, "normal", np.float64),            # (N, C, H, W): max over channels at each pixel
    ((3, 12), 3, "ties", np.float64),                   # ties inside a group
    ((2, 5), 1, "normal", np.float64),                  # one piece: the identity
    ((2, 5), 5, "normal", np.float64),                  # one group: the max over all
    ((2, 8, 2, 2), 4, "normal", np.float32),            # float32 stays float32
)
MAXOUT_FD_CASE = ((2, 6, 2, 2), 2, "distinct", np.float64)


def _draw(rng, shape, how, dtype):
    if how == "negative":
        x = -np.abs(rng.standard_normal(shape)) - 0.1
    elif how == "zeros":
        x = rng.standard_normal(shape)
        x[rng.random(shape) < 0.3] = 0.0
    elif how == "ties":
        x = rng.integers(0, 3, shape).astype(np.float64)
    elif how == "distinct":
        x = (rng.permutation(int(np.prod(shape))) * 0.1 + 0.05).reshape(shape) - 1.0
    else:                                   # normal, pushed at least 0.05 away from PReLU's kink
        x = rng.standard_normal(shape)
        x += 0.05 * np.sign(x)
    return x.astype(dtype)


def _tolerances(dtype):
    return {"rtol": 1e-4, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-6, "atol": 1e-9}


def _prelu_case(rng, spec):
    shape, alpha, how, dtype = spec
    x = _draw(rng, shape, how, dtype)
    alpha = (rng.uniform(0.05, 0.3, shape[1]) if alpha == "small" else np.array(alpha)).astype(dtype)
    tags = {how, f"rank {len(shape)}"}
    if len(shape) == 4 and shape[3] == shape[1]:
        tags.add("W = C")
    return x, alpha, tags, describe(x=x, alpha=alpha) + f", alpha={np.round(alpha, 3).tolist()}" + (
        f" ({'all negative' if how == 'negative' else 'some exact zeros'})" if how in ("negative", "zeros") else "")


def _per_channel(v, ndim):
    return v.reshape((1, -1) + (1,) * (ndim - 2))


# ---------------------------------------------------------------- PReLU: known wrong variants
def _prelu_forward_variants(x, alpha):
    a = _per_channel(alpha, x.ndim)
    found = [("one slope for every channel: alpha has one slope per channel (axis 1), reshape it to "
              "(1, C, 1, 1)", np.where(x > 0, x, alpha[0] * x)),
             ("one slope (the mean) for every channel: alpha[c] is the slope of channel c",
              np.where(x > 0, x, alpha.mean() * x)),
             ("np.maximum(x, alpha * x) equals PReLU only for alpha <= 1 (negative slopes included); for "
              "alpha > 1 it takes the wrong branch on both sides: use np.where(x > 0, x, alpha * x)",
              np.maximum(x, a * x)),
             ("alpha was ignored: this is ReLU; negative inputs are multiplied by their channel's alpha",
              np.maximum(x, 0)),
             ("negative inputs got alpha itself: out = alpha * x for x <= 0",
              np.where(x > 0, x, a + 0 * x))]
    if x.shape[-1] == alpha.shape[0] and x.ndim > 2:
        found.insert(0, ("alpha broadcast along the last axis (W): reshape it to (1, C, 1, 1) so that it "
                         "runs along the channels (axis 1)", np.where(x > 0, x, alpha * x)))
    return found


def _prelu_dx_variants(x, alpha, dout):
    a = _per_channel(alpha, x.ndim)
    found = [("dx forgot dout on the negative side: dx = dout * alpha there",
              np.where(x > 0, dout, a + 0 * x)),
             ("dx = dout everywhere: on the negative side the slope is alpha, dx = alpha * dout",
              dout),
             ("dx is the gradient of np.maximum(x, alpha * x): use the slope of the branch np.where "
              "chose (alpha for x <= 0)", np.where(x > a * x, dout, a * dout)),
             ("at x == 0 dx took the positive branch (slope 1): the convention, as in PyTorch's PReLU, is "
              "slope 1 for x > 0 only, so dx = alpha * dout where x <= 0", np.where(x >= 0, dout, a * dout)),
             ("one slope for every channel in dx: alpha[c] per channel",
              np.where(x > 0, dout, alpha[0] * dout))]
    if x.shape[-1] == alpha.shape[0] and x.ndim > 2:
        found.insert(0, ("alpha broadcast along the last axis (W) in dx: reshape it to (1, C, 1, 1)",
                         np.where(x > 0, dout, alpha * dout)))
    return found


def _prelu_dalpha_variants(x, dout):
    axes = (0,) + tuple(range(2, x.ndim))
    neg = x <= 0
    return [("dalpha summed dout * x over every input: only the negative ones (x <= 0) used alpha",
             (dout * x).sum(axis=axes)),
            ("dalpha forgot the factor x: d(alpha * x)/d alpha = x, so dalpha[c] = sum of dout * x "
             "over the negative inputs of channel c", (dout * neg).sum(axis=axes)),
            ("dalpha summed over the positive inputs: alpha acts where x <= 0",
             (dout * x * ~neg).sum(axis=axes))]


def _prelu_dalpha_shape_hint(shape, x):
    if shape == ():
        return "dalpha must have one value per channel (shape (C,)), not one number: sum over all axes but 1"
    if len(shape) > 1:
        return ("dalpha must have shape (C,): sum dout * x * (x <= 0) over every axis except the channel "
                "axis 1, e.g. axis=(0, 2, 3)")
    return "dalpha must have shape (C,), one value per channel (axis 1 of x)"


@register("prelu_forward")
@stops_at_stubs
def prelu_forward_checker(student_fn, namespace, result) -> CheckResult:
    """Check ``prelu_forward(x, alpha) -> (out, cache)``."""
    outputs = Outputs(result)
    rng = np.random.default_rng(20264)
    for spec in PRELU_CASES + PRELU_FORWARD_ONLY:
        x, alpha, tags, case = _prelu_case(rng, spec)
        result.n_cases += 1
        got = unpack(result, run_student(result, student_fn, x, alpha, case=case), ("out", "cache"),
                     fn_name="prelu_forward", case=case)
        if got is None:
            outputs.record_raise()
            continue
        expected = prelu_forward(x, alpha)[0]
        hint = variant_hint(lambda x=x, alpha=alpha: _prelu_forward_variants(x, alpha))
        if outputs.compare("out", got[0], expected, case=case, tags=tags, hint=hint, **_tolerances(x.dtype)):
            check_dtype(result, got[0], x.dtype, what="out", case=case)
    outputs.explain("out", "rank 4", "only the (N, C, H, W) inputs fail: alpha must broadcast along "
                                     "axis 1, alpha.reshape(1, C, 1, 1)")
    return result


@register("prelu_backward")
@stops_at_stubs
def prelu_backward_checker(student_fn, namespace, result) -> CheckResult:
    """Check ``prelu_backward(dout, cache) -> (dx, dalpha)`` with the student's own forward."""
    forward = needs_student_function(result, namespace, "prelu_forward", for_what="prelu_backward")
    if forward is None:
        return result
    outputs = Outputs(result)
    rng = np.random.default_rng(20265)
    for number, spec in enumerate((PRELU_FD_CASE,) + PRELU_CASES + PRELU_BACKWARD_ONLY):
        x, alpha, tags, case = _prelu_case(rng, spec)
        result.n_cases += 1
        got = unpack(result, run_student(result, forward, x, alpha, case=case), ("out", "cache"),
                     fn_name="prelu_forward", case=case)
        if got is None:
            result.add("prelu_backward cannot be checked on this case: your prelu_forward failed", case)
            break
        dout = rng.standard_normal(x.shape).astype(x.dtype)
        grads = unpack(result, run_student(result, student_fn, dout, got[1], case=case), ("dx", "dalpha"),
                       fn_name="prelu_backward", case=case)
        if grads is None:
            outputs.record_raise()
            continue
        if number == 0:
            case += " (expected gradients from finite differences)"

            def loss(x=x, alpha=alpha, dout=dout):
                return float(np.sum(prelu_forward(x, alpha)[0] * dout))
            expected = (numerical_gradient(loss, x), numerical_gradient(loss, alpha))
        else:
            expected = prelu_backward(dout, prelu_forward(x, alpha)[1])
        tol = _tolerances(x.dtype)
        hint_dx = variant_hint(lambda x=x, alpha=alpha, dout=dout: _prelu_dx_variants(x, alpha, dout))
        if outputs.compare("dx", grads[0], expected[0], case=case, tags=tags, hint=hint_dx, **tol):
            check_dtype(result, grads[0], x.dtype, what="dx", case=case)

        def hint_dalpha(actual, expected, x=x, dout=dout):
            if np.shape(actual) != expected.shape:
                return _prelu_dalpha_shape_hint(np.shape(actual), x)
            n_other = x.size // x.shape[1]
            return variant_hint(lambda: _prelu_dalpha_variants(x, dout),
                                {1 / n_other: "dalpha is a mean: it must be the sum over the batch "
                                              "and the pixels"})(actual, expected)
        if outputs.compare("dalpha", grads[1], expected[1], case=case, tags=tags, hint=hint_dalpha, **tol):
            check_dtype(result, grads[1], x.dtype, what="dalpha", case=case)
    for key in ("dx", "dalpha"):
        outputs.explain(key, "rank 4", "only the (N, C, H, W) inputs fail: alpha runs along axis 1 "
                                       "(reshape to (1, C, 1, 1)) and dalpha sums over axes 0, 2 and 3")
    return result


# ---------------------------------------------------------------- maxout
def _maxout_case(rng, spec):
    shape, pieces, how, dtype = spec
    x = _draw(rng, shape, how, dtype)
    tags = {how, f"rank {len(shape)}"}
    return x, pieces, tags, describe(x=x, pieces=pieces) + (" (ties)" if how == "ties" else "")


def _strided_groups(x, pieces):
    """The wrong grouping: output j takes channels j, j + M, j + 2M, ... (reshape (N, p, M))."""
    n, d = x.shape[:2]
    return x.reshape((n, pieces, d // pieces) + x.shape[2:])


def _maxout_forward_variants(x, pieces):
    n, d = x.shape[:2]
    grouped = x.reshape((n, d // pieces, pieces) + x.shape[2:])
    return [("grouped channels j, j + M, j + 2M, ...: maxout groups *consecutive* channels, "
             "x.reshape(N, M, pieces, ...).max(axis=2)", _strided_groups(x, pieces).max(axis=1)),
            ("took the mean of each group: maxout takes the max", grouped.mean(axis=2)),
            ("took the min of each group: maxout takes the max", grouped.min(axis=2))]


def _maxout_backward_variants(x, pieces, dout):
    n, d = x.shape[:2]
    grouped = x.reshape((n, d // pieces, pieces) + x.shape[2:])
    d_expanded = np.expand_dims(dout, 2)
    all_ties = (grouped == grouped.max(axis=2, keepdims=True)) * d_expanded
    strided = _strided_groups(x, pieces)
    s_mask = strided == strided.max(axis=1, keepdims=True)
    return [("the gradient went to every tied maximum of a group: send it to the first one only "
             "(np.argmax), the one the forward chose", all_ties.reshape(x.shape)),
            ("dout was copied to every piece of the group: only the maximum gets it",
             np.broadcast_to(d_expanded, grouped.shape).reshape(x.shape)),
            ("grouped channels j, j + M, ... in backward: groups are consecutive channels",
             (s_mask * np.expand_dims(dout, 1)).reshape(x.shape))]


@register("maxout_forward")
@stops_at_stubs
def maxout_forward_checker(student_fn, namespace, result) -> CheckResult:
    """Check ``maxout_forward(x, *, pieces) -> (out, cache)``."""
    outputs = Outputs(result)
    rng = np.random.default_rng(20266)
    for spec in MAXOUT_CASES:
        x, pieces, tags, case = _maxout_case(rng, spec)
        result.n_cases += 1
        got = unpack(result, run_student(result, student_fn, x, pieces=pieces, case=case), ("out", "cache"),
                     fn_name="maxout_forward", case=case)
        if got is None:
            outputs.record_raise()
            continue
        expected = maxout_forward(x, pieces=pieces)[0]

        def hint(actual, expected, x=x, pieces=pieces):
            if np.shape(actual) != expected.shape:
                return (f"the output has shape (N, D // pieces, ...) = {expected.shape}: one value per "
                        "group of pieces consecutive channels")
            return variant_hint(lambda: _maxout_forward_variants(x, pieces))(actual, expected)
        if outputs.compare("out", got[0], expected, case=case, tags=tags, hint=hint, **_tolerances(x.dtype)):
            check_dtype(result, got[0], x.dtype, what="out", case=case)
    outputs.explain("out", "rank 4", "only the (N, C, H, W) inputs fail: group along axis 1 at every pixel, "
                                     "x.reshape(N, C // pieces, pieces, H, W)")
    return result


@register("maxout_backward")
@stops_at_stubs
def maxout_backward_checker(student_fn, namespace, result) -> CheckResult:
    """Check ``maxout_backward(dout, cache) -> dx`` with the student's own forward."""
    forward = needs_student_function(result, namespace, "maxout_forward", for_what="maxout_backward")
    if forward is None:
        return result
    outputs = Outputs(result)
    rng = np.random.default_rng(20267)
    for number, spec in enumerate((MAXOUT_FD_CASE,) + MAXOUT_CASES):
        x, pieces, tags, case = _maxout_case(rng, spec)
        result.n_cases += 1
        got = unpack(result, run_student(result, forward, x, pieces=pieces, case=case), ("out", "cache"),
                     fn_name="maxout_forward", case=case)
        if got is None:
            result.add("maxout_backward cannot be checked on this case: your maxout_forward failed", case)
            break
        expected_out, cache = maxout_forward(x, pieces=pieces)
        if np.shape(got[0]) != expected_out.shape:
            result.add(f"maxout_forward returned an output of shape {np.shape(got[0])} where "
                       f"{expected_out.shape} was expected, so dout has no sensible shape", case,
                       "fix maxout_forward first (check(maxout_forward))")
            break
        dout = rng.standard_normal(expected_out.shape).astype(x.dtype)
        dx = run_student(result, student_fn, dout, got[1], case=case)
        if dx is None:
            outputs.record_raise()
            continue
        if number == 0:
            case += " (expected dx from finite differences)"
            expected = numerical_gradient(
                lambda x=x, pieces=pieces, dout=dout: float(np.sum(maxout_forward(x, pieces=pieces)[0] * dout)), x)
        else:
            expected = maxout_backward(dout, cache)

        def hint(actual, expected, x=x, pieces=pieces, dout=dout):
            if np.shape(actual) != expected.shape:
                return f"dx must have the shape of x {expected.shape}"
            return variant_hint(lambda: _maxout_backward_variants(x, pieces, dout))(actual, expected)
        if outputs.compare("dx", dx, expected, case=case, tags=tags, hint=hint, **_tolerances(x.dtype)):
            check_dtype(result, dx, x.dtype, what="dx", case=case)
    outputs.explain("dx", "ties", "only the input with ties fails: the gradient goes to the first maximum "
                                  "of a group only")
    outputs.explain("dx", "rank 4", "only the (N, C, H, W) inputs fail: group along axis 1 at every pixel")
    return result
