"""Checkers for assignment 3: max pooling and L2 pooling, forward and backward.

The student's functions have the library's signatures (:mod:`scratchface.layers.pooling`)::

    max_pool2d_forward(x, *, kernel_size, stride=None, padding=0) -> (out, cache)
    max_pool2d_backward(dout, cache) -> dx
    l2_pool2d_forward(x, *, kernel_size, stride=None, padding=0) -> (out, cache)
    l2_pool2d_backward(dout, cache) -> dx

``kernel_size``, ``stride`` and ``padding`` are an int or a pair ``(rows, cols)``; ``stride=None``
means ``stride = kernel_size``. Max pooling pads with ``-inf`` and sends a window's gradient to its
*first* maximum (row-major order) on ties, as PyTorch does; L2 pooling pads with zeros and its
gradient is 0 on an all-zero window. The expected values are the library's readable reference
and, for the backward, finite differences on one input without ties.
"""
from __future__ import annotations

import numpy as np

from ._core import CheckResult, VariantHint, register
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
    avg_pool2d_forward,
    l2_pool2d_backward,
    l2_pool2d_forward,
    max_pool2d_backward,
    max_pool2d_forward,
    numerical_gradient,
)

__all__ = [
    "POOL_CASES",
    "l2_pool2d_backward_checker",
    "l2_pool2d_forward_checker",
    "max_pool2d_backward_checker",
    "max_pool2d_forward_checker",
]

# (x shape, kernel_size, stride, padding, how x is drawn, dtype)
POOL_CASES = (
    ((2, 3, 6, 6), 2, None, 0, "normal", np.float64),            # the default stride = kernel
    ((2, 2, 7, 7), 3, 2, 0, "normal", np.float64),               # overlapping windows, odd size
    ((1, 2, 7, 6), 3, 2, 1, "negative", np.float64),             # padding on an all-negative input
    ((2, 2, 6, 6), 2, 2, 1, "normal", np.float64),               # padding without overlapping windows
    ((2, 2, 5, 8), (2, 3), (1, 2), 0, "normal", np.float64),     # pairs, non-square everything
    ((2, 2, 5, 5), 2, 1, 0, "ties", np.float64),                 # ties inside overlapping windows
    ((1, 3, 5, 4), 1, 2, 0, "normal", np.float64),               # 1x1 kernel (sub-sampling)
    ((2, 3, 4, 5), (4, 5), None, 0, "normal", np.float64),       # global pooling: one window
    ((1, 2, 6, 6), 2, 2, 0, "zero windows", np.float64),         # all-zero windows (L2's 0/0)
    ((2, 3, 6, 6), 3, 1, 1, "normal", np.float32),               # float32 stays float32
)
FD_CASE = ((1, 2, 5, 6), 3, 2, 1, "distinct", np.float64)        # backward vs finite differences

_LIBRARY = {"max": (max_pool2d_forward, max_pool2d_backward), "l2": (l2_pool2d_forward, l2_pool2d_backward)}


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _draw(rng, shape, how, dtype):
    if how == "negative":
        x = -np.abs(rng.standard_normal(shape)) - 0.1
    elif how == "ties":
        x = rng.integers(0, 3, shape).astype(np.float64)
    elif how == "zero windows":
        x = rng.standard_normal(shape)
        x[:, :, :2, :2] = 0.0          # the first 2x2 window of every plane is all zeros
        x[:, :, 2:4, 4:6] = 0.0
    elif how == "distinct":             # no ties and no near-ties: max pooling is differentiable
        x = (rng.permutation(int(np.prod(shape))) * 0.1 + 0.05).reshape(shape) - 1.0
    else:
        x = rng.standard_normal(shape)
    return x.astype(dtype)


def _make_case(rng, spec):
    shape, kernel, stride, padding, how, dtype = spec
    x = _draw(rng, shape, how, dtype)
    tags = {how}
    s = _pair(kernel if stride is None else stride)
    if any(_pair(padding)):
        tags.add("pad")
    if s != (1, 1):
        tags.add("stride")
    if any(si < ki for si, ki in zip(s, _pair(kernel))):
        tags.add("overlap")
    if dtype == np.float32:
        tags.add("float32")
    if len(set(_pair(kernel))) == 2:
        tags.add("non-square kernel")
    kwargs = {"kernel_size": kernel, "stride": stride, "padding": padding}
    case = describe(x=x, **kwargs) + ("" if how in ("normal", "distinct") else f" ({how})")
    return x, kwargs, tags, case


def _ref(mode, x, kwargs):
    return _LIBRARY[mode][0](x, **kwargs, impl="reference")


def _tolerances(dtype):
    return {"rtol": 1e-4, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-6, "atol": 1e-9}


def _zero_padded(x, padding):
    ph, pw = _pair(padding)
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


# ---------------------------------------------------------------- known wrong variants
def _forward_variants(mode, x, kwargs):
    kernel, stride, padding = kwargs["kernel_size"], kwargs["stride"], kwargs["padding"]
    found = []
    if mode == "max":
        if any(_pair(padding)):
            found.append(("padded with zeros: pad with -inf (np.pad(..., constant_values=-np.inf)) so "
                          "that the padding is never the maximum (try an all-negative input)",
                          max_pool2d_forward(_zero_padded(x, padding), kernel_size=kernel, stride=stride,
                                             impl="reference")[0]))
        found.append(("took the mean of the window: max pooling takes its largest value",
                      avg_pool2d_forward(x, **kwargs, impl="reference")[0]))
    else:
        out = _ref("l2", x, kwargs)[0]
        found.append(("forgot the square root: out = sqrt(sum of x**2 over the window)", out ** 2))
        found.append(("took the max of |x| (or another pooling): L2 pooling is sqrt(sum of squares)",
                      max_pool2d_forward(np.abs(x), **kwargs, impl="reference")[0]))
    if stride is None:
        found.append(("stride=None must mean stride = kernel_size (non-overlapping windows)",
                      _ref(mode, x, dict(kwargs, stride=1))[0]))
    return found


def _forward_factors(mode, kwargs):
    if mode != "l2":
        return {}
    kh, kw = _pair(kwargs["kernel_size"])
    return {1 / np.sqrt(kh * kw): "the square root of the *mean* of squares; L2 pooling is the square "
                                  "root of the *sum* (no division by the window size)"}


def _max_backward_by_rule(x, dout, kwargs, rule):
    """Max pool backward where a window's gradient goes to its 'last' maximum or to 'all' tied maxima."""
    (kh, kw), (ph, pw) = _pair(kwargs["kernel_size"]), _pair(kwargs["padding"])
    sh, sw = _pair(kwargs["kernel_size"] if kwargs["stride"] is None else kwargs["stride"])
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
    dxpad = np.zeros_like(xpad)
    oh, ow = dout.shape[2:]
    for p in range(oh):
        for q in range(ow):
            window = xpad[:, :, p * sh:p * sh + kh, q * sw:q * sw + kw]
            top = window.max(axis=(2, 3), keepdims=True)
            mask = window == top
            if rule == "last":      # keep only the last True in row-major order
                flat = mask.reshape(mask.shape[:2] + (-1,))
                last = flat.shape[2] - 1 - np.argmax(flat[:, :, ::-1], axis=2)
                mask = (np.arange(flat.shape[2]) == last[:, :, None]).reshape(mask.shape)
            dxpad[:, :, p * sh:p * sh + kh, q * sw:q * sw + kw] += mask * dout[:, :, p:p + 1, q:q + 1]
    return dxpad[:, :, ph:ph + x.shape[2], pw:pw + x.shape[3]]


def _backward_variants(mode, x, dout, kwargs):
    padding = kwargs["padding"]
    found = []
    if mode == "max":
        found.append(("the gradient went to every tied maximum of a window: send it to one pixel only, "
                      "the first maximum (np.argmax order), as the forward's max is one pixel",
                      _max_backward_by_rule(x, dout, kwargs, "all")))
        found.append(("on ties the gradient went to the last maximum: use the first (np.argmax's), as "
                      "PyTorch does", _max_backward_by_rule(x, dout, kwargs, "last")))
        if any(_pair(padding)):
            xz = _zero_padded(x, padding)
            _, cache = max_pool2d_forward(xz, kernel_size=kwargs["kernel_size"], stride=kwargs["stride"],
                                          impl="reference")
            dxz = max_pool2d_backward(dout, cache)
            ph, pw = _pair(padding)
            found.append(("the forward padded with zeros, so gradients went to the padding: pad with -inf",
                          dxz[:, :, ph:ph + x.shape[2], pw:pw + x.shape[3]]))
    if mode == "l2":
        out, cache = _ref(mode, x, kwargs)
        safe = np.where(out > 0, out, 1.0)
        # dx without the division by the window's output: sum over windows of dout * x
        ones = _LIBRARY["l2"][1](dout * safe, cache)
        found.append(("forgot to divide by the output: d sqrt(s)/dx = x / sqrt(s), so dx = dout * x / out "
                      "summed over the windows containing x", ones))
    if any(_pair(padding)):
        ph, pw = _pair(padding)
        _, cache_padded = _ref(mode, _zero_padded(x, padding) if mode == "l2" else
                               np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=np.finfo(x.dtype).min),
                               dict(kwargs, padding=0))
        found.append(("dx still has the padding: cut it off, dx = dxpad[:, :, ph:ph + H, pw:pw + W]",
                      _LIBRARY[mode][1](dout, cache_padded)))
    return found


def _backward_factors(mode):
    if mode != "l2":
        return {}
    return {0.5: "half the gradient: d sqrt(s)/ds = 1 / (2 sqrt(s)) and ds/dx = 2x, the 2s cancel: "
                 "dx = dout * x / out",
            2.0: "twice the gradient: d sqrt(s)/ds = 1 / (2 sqrt(s)) and ds/dx = 2x, the 2s cancel: "
                 "dx = dout * x / out"}


def _nan_hint(actual, expected, mode):
    a = np.asarray(actual, dtype=np.float64)
    if a.shape != np.shape(expected) or np.isfinite(a).all() or not np.isfinite(expected).all():
        return ""
    if np.isinf(a).any():
        return ("infinity in the result: " + ("L2 pooling pads with zeros (-inf squared is inf)" if mode == "l2"
                                             else "the -inf padding must never be a window's result"))
    if mode == "l2":
        return ("NaN where a window is all zeros (0 / 0): the square root has no derivative at 0; "
                "use 0 there (np.where(out > 0, dout / out, 0))")
    return "NaN in the result: did the -inf padding reach an arithmetic operation (-inf * 0)?"


# ---------------------------------------------------------------- the checkers
def _forward_checker(mode, student_fn, result):
    name = f"{mode}_pool2d_forward"
    outputs = Outputs(result)
    rng = np.random.default_rng(20262)
    for spec in POOL_CASES:
        x, kwargs, tags, case = _make_case(rng, spec)
        result.n_cases += 1
        got = unpack(result, run_student(result, student_fn, x, case=case, **kwargs), ("out", "cache"),
                     fn_name=name, case=case)
        if got is None:
            outputs.record_raise()
            continue
        expected = _ref(mode, x, kwargs)[0]

        def hint(actual, expected, x=x, kwargs=kwargs):
            return (_nan_hint(actual, expected, mode)
                    or variant_hint(lambda: _forward_variants(mode, x, kwargs),
                                    _forward_factors(mode, kwargs))(actual, expected)
                    or (_shape_hint(np.shape(actual), x, kwargs) if np.shape(actual) != expected.shape else ""))

        if outputs.compare("out", got[0], expected, case=case, tags=tags, hint=hint, **_tolerances(x.dtype)):
            check_dtype(result, got[0], x.dtype, what="out", case=case)
    outputs.explain("out", "pad", "only the cases with padding fail: pad top/bottom by padding[0] and "
                                  "left/right by padding[1]" + (" with -inf" if mode == "max" else " with zeros"))
    outputs.explain("out", "stride", "only the cases with stride > 1 fail: window (p, q) starts at "
                                     "(stride*p, stride*q)")
    outputs.explain("out", "non-square kernel", "only the non-square kernel fails: rows and columns "
                                                "(KH and KW) mixed up somewhere")
    return result


def _shape_hint(shape, x, kwargs):
    (kh, kw), (ph, pw) = _pair(kwargs["kernel_size"]), _pair(kwargs["padding"])
    sh, sw = _pair(kwargs["kernel_size"] if kwargs["stride"] is None else kwargs["stride"])
    h, w = x.shape[2:]
    if len(shape) != 4 or tuple(shape[:2]) != x.shape[:2]:
        return "pooling keeps N and C: the output has shape (N, C, OH, OW)"
    if tuple(shape[2:]) == ((h - kh) // sh + 1, (w - kw) // sw + 1):
        return VariantHint("forgot the padding in the output size: OH = (H + 2P - KH) // S + 1")
    if tuple(shape[2:]) == ((h + 2 * ph - kh) // sh, (w + 2 * pw - kw) // sw):
        return VariantHint("the output size formula misses the + 1: OH = (H + 2P - KH) // S + 1")
    if tuple(shape[2:]) == (-(-(h + 2 * ph - kh) // sh) + 1, -(-(w + 2 * pw - kw) // sw) + 1):
        return VariantHint("the output size rounds up; it must round down (a window must fit inside the padded input)")
    return ""


def _fd_dx(mode, x, kwargs, dout):
    """Finite differences of ``sum(pool(x) * dout)``: the independent reference for one case."""
    return numerical_gradient(lambda: float(np.sum(_ref(mode, x, kwargs)[0] * dout)), x)


def _backward_checker(mode, student_fn, namespace, result):
    name, forward_name = f"{mode}_pool2d_backward", f"{mode}_pool2d_forward"
    forward = needs_student_function(result, namespace, forward_name, for_what=name)
    if forward is None:
        return result
    outputs = Outputs(result)
    rng = np.random.default_rng(20263)
    for number, spec in enumerate((FD_CASE,) + POOL_CASES):
        x, kwargs, tags, case = _make_case(rng, spec)
        result.n_cases += 1
        got = unpack(result, run_student(result, forward, x, case=case, **kwargs), ("out", "cache"),
                     fn_name=forward_name, case=case)
        if got is None:
            result.add(f"{name} cannot be checked on this case: your {forward_name} failed", case)
            break
        out, cache = got
        expected_out = _ref(mode, x, kwargs)[0]
        if np.shape(out) != expected_out.shape:
            result.add(f"{forward_name} returned an output of shape {np.shape(out)} where "
                       f"{expected_out.shape} was expected, so dout has no sensible shape", case,
                       f"fix {forward_name} first (check({forward_name}))")
            break
        dout = rng.standard_normal(expected_out.shape).astype(x.dtype)
        dx = run_student(result, student_fn, dout, cache, case=case)
        if dx is None:
            outputs.record_raise()
            continue
        if isinstance(dx, tuple) and len(dx) == 1:
            dx = dx[0]
        if number == 0:
            case += " (expected dx from finite differences)"
            expected = _fd_dx(mode, x, kwargs, dout)
        else:
            expected = _LIBRARY[mode][1](dout, _ref(mode, x, kwargs)[1])

        def hint(actual, expected, x=x, kwargs=kwargs, dout=dout):
            words = (_nan_hint(actual, expected, mode)
                     or variant_hint(lambda: _backward_variants(mode, x, dout, kwargs),
                                     _backward_factors(mode))(actual, expected))
            if not words and np.shape(actual) != expected.shape:
                words = f"dx must have the shape of x {expected.shape}"
            return words

        if outputs.compare("dx", dx, expected, case=case, tags=tags, hint=hint, **_tolerances(x.dtype)):
            check_dtype(result, dx, x.dtype, what="dx", case=case)
    outputs.explain("dx", "overlap", "only the cases where windows overlap fail: a pixel in several "
                                     "windows gets the sum of their gradients (+=, not =)")
    outputs.explain("dx", "pad", "only the cases with padding fail: scatter into a padded dxpad, then cut "
                                 "the padding off")
    outputs.explain("dx", "stride", "only the cases with stride > 1 fail: window (p, q) starts at "
                                    "(stride*p, stride*q) of dxpad too")
    outputs.explain("dx", "non-square kernel", "only the non-square kernel fails: rows and columns "
                                               "(KH and KW) mixed up somewhere")
    outputs.explain("dx", "ties", "only the input with ties fails: send a window's gradient to its first "
                                  "maximum only (np.argmax), as PyTorch does")
    outputs.explain("dx", "zero windows", "only the input with all-zero windows fails: the gradient is 0 "
                                          "there (no 0 / 0)")
    return result


@register("max_pool2d_forward")
@stops_at_stubs
def max_pool2d_forward_checker(student_fn, namespace, result) -> CheckResult:
    """Check ``max_pool2d_forward(x, *, kernel_size, stride=None, padding=0) -> (out, cache)``."""
    return _forward_checker("max", student_fn, result)


@register("max_pool2d_backward")
@stops_at_stubs
def max_pool2d_backward_checker(student_fn, namespace, result) -> CheckResult:
    """Check ``max_pool2d_backward(dout, cache) -> dx`` with the student's own forward."""
    return _backward_checker("max", student_fn, namespace, result)


@register("l2_pool2d_forward")
@stops_at_stubs
def l2_pool2d_forward_checker(student_fn, namespace, result) -> CheckResult:
    """Check ``l2_pool2d_forward(x, *, kernel_size, stride=None, padding=0) -> (out, cache)``."""
    return _forward_checker("l2", student_fn, result)


@register("l2_pool2d_backward")
@stops_at_stubs
def l2_pool2d_backward_checker(student_fn, namespace, result) -> CheckResult:
    """Check ``l2_pool2d_backward(dout, cache) -> dx`` with the student's own forward."""
    return _backward_checker("l2", student_fn, namespace, result)
