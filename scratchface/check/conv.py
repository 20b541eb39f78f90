"""Checkers for assignment 2: ``conv2d_forward`` and ``conv2d_backward``.

The student's functions have the library's signatures (:mod:`scratchface.layers.conv`)::

    conv2d_forward(x, w, b=None, *, stride=1, padding=0) -> (out, cache)
    conv2d_backward(dout, cache) -> (dx, dw, db)

with ``stride`` and ``padding`` an int or a pair ``(rows, cols)``. The expected values come from
the library's readable reference (``conv2d_reference_forward`` / ``_backward``) and, for one case,
from finite differences of the forward. The backward is checked with the student's *own* forward
producing the cache (the cache's contents are the student's choice).
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
from ._library import conv2d_reference_backward, conv2d_reference_forward, numerical_gradient

__all__ = ["CONV_CASES", "conv2d_backward_checker", "conv2d_forward_checker"]

# (x shape, w shape, bias?, stride, padding, dtype): random and edge cases
CONV_CASES = (
    ((2, 3, 5, 5), (4, 3, 3, 3), True, 1, 0, np.float64),
    ((2, 3, 7, 6), (2, 3, 3, 3), True, 1, 1, np.float64),       # padding, non-square image
    ((1, 2, 7, 7), (3, 2, 3, 3), True, 2, 1, np.float64),       # stride 2 and padding
    ((2, 3, 8, 7), (2, 3, 2, 4), True, 2, 0, np.float64),       # non-square kernel, floor in the size
    ((1, 2, 9, 6), (2, 2, 4, 2), True, 1, 1, np.float64),       # non-square the other way (KH > KW)
    ((2, 2, 6, 6), (3, 2, 2, 2), True, 2, 0, np.float64),       # stride = kernel: no overlap
    ((2, 4, 3, 5), (3, 4, 1, 1), True, 1, 0, np.float64),       # 1x1 convolution
    ((1, 2, 4, 4), (2, 2, 3, 3), False, 1, 1, np.float64),      # no bias
    ((1, 2, 6, 7), (2, 2, 3, 3), True, (1, 2), (2, 1), np.float64),  # pairs (rows, cols)
    ((2, 3, 6, 6), (2, 3, 3, 3), True, 1, 1, np.float32),       # float32 stays float32
)
FD_CASE = ((1, 2, 4, 5), (2, 2, 3, 3), True, 2, 1, np.float64)   # checked by finite differences


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _quad(padding):
    ph, pw = _pair(padding)
    return (ph, ph, pw, pw)


def _make_case(rng, spec):
    x_shape, w_shape, bias, stride, padding, dtype = spec
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype) if bias else None
    tags = set()
    if any(_pair(padding)):
        tags.add("pad")
    if _pair(stride) != (1, 1):
        tags.add("stride")
    if any(s < k for s, k in zip(_pair(stride), w_shape[2:])):
        tags.add("overlap")
    if dtype == np.float32:
        tags.add("float32")
    case = describe(x=x, w=w, b=b if bias else None, stride=stride, padding=padding)
    return x, w, b, stride, padding, tags, case


def _ref_forward(x, w, b, stride, padding):
    return conv2d_reference_forward(x, w, b, _pair(stride), _quad(padding))


def _tolerances(dtype):
    return {"rtol": 1e-4, "atol": 1e-4} if dtype == np.float32 else {"rtol": 1e-6, "atol": 1e-9}


def _forward_shape_hint(actual_shape, x, w, stride, padding):
    """Diagnose a wrong output shape from the size formula's usual mistakes."""
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    h, wd = x.shape[2:]
    kh, kw = w.shape[2:]
    shapes = [
        ("forgot the padding: pad x with zeros before sliding the kernel",
         ((h - kh) // sh + 1, (wd - kw) // sw + 1)),
        ("ignored the stride: output pixel (p, q) reads the window starting at (stride*p, stride*q)",
         ((h + 2 * ph - kh) + 1, (wd + 2 * pw - kw) + 1)),
        ("the output size formula misses the + 1: OH = (H + 2P - KH) // S + 1",
         ((h + 2 * ph - kh) // sh, (wd + 2 * pw - kw) // sw)),
        ("padding added on one side only: H + 2*padding is the padded height",
         ((h + ph - kh) // sh + 1, (wd + pw - kw) // sw + 1)),
        ("the stride pair is swapped: stride = (rows, cols), stride[0] moves down the rows",
         ((h + 2 * ph - kh) // sw + 1, (wd + 2 * pw - kw) // sh + 1)),
        ("the padding pair is swapped: padding = (rows, cols), padding[0] pads top and bottom",
         ((h + 2 * pw - kh) // sh + 1, (wd + 2 * ph - kw) // sw + 1)),
        ("the kernel height KH was used for the width too: OW = (W + 2P - KW) // S + 1",
         ((h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kh) // sw + 1)),
        ("the kernel width KW was used for the height too: OH = (H + 2P - KH) // S + 1",
         ((h + 2 * ph - kw) // sh + 1, (wd + 2 * pw - kw) // sw + 1)),
        ("the output size rounds up; it must round down: OH = (H + 2P - KH) // S + 1",
         (-(-(h + 2 * ph - kh) // sh) + 1, -(-(wd + 2 * pw - kw) // sw) + 1)),
    ]
    for words, hw in shapes:
        if tuple(actual_shape[2:]) == hw and tuple(actual_shape[:2]) == (x.shape[0], w.shape[0]):
            return VariantHint(words)  # a coincidence on one case is possible: two cases must agree
    if len(actual_shape) == 4 and actual_shape[1] != w.shape[0]:
        return f"axis 1 of the output must hold the F = {w.shape[0]} filters (NCHW)"
    return ""


@register("conv2d_forward")
@stops_at_stubs
def conv2d_forward_checker(student_fn, namespace, result) -> CheckResult:
    """Check ``conv2d_forward(x, w, b=None, *, stride=1, padding=0) -> (out, cache)``."""
    outputs = Outputs(result)
    rng = np.random.default_rng(20260)
    for spec in CONV_CASES:
        x, w, b, stride, padding, tags, case = _make_case(rng, spec)
        result.n_cases += 1
        got = unpack(result, run_student(result, student_fn, x, w, b, stride=stride, padding=padding,
                                         case=case),
                     ("out", "cache"), fn_name="conv2d_forward", case=case)
        if got is None:
            outputs.record_raise()
            continue
        out = got[0]
        expected = _ref_forward(x, w, b, stride, padding)

        def variants(x=x, w=w, b=b, stride=stride, padding=padding):
            found = [("flipped kernel: this is the mathematical convolution; deep learning 'conv' is "
                      "cross-correlation, w[f, c, i, j] meets x[..., s*p + i, s*q + j] (no flip)",
                      _ref_forward(x, w[:, :, ::-1, ::-1], b, stride, padding)),
                     ("forgot the padding: pad x with zeros before sliding the kernel",
                      _ref_forward(x, w, b, stride, 0)),
                     ("ignored the stride", _ref_forward(x, w, b, 1, padding)),
                     ("the stride pair is swapped: stride = (rows, cols)",
                      _ref_forward(x, w, b, _pair(stride)[::-1], padding)),
                     ("the padding pair is swapped: padding = (rows, cols)",
                      _ref_forward(x, w, b, stride, _pair(padding)[::-1]))]
            if b is not None:
                found.append(("forgot to add the bias b[f]", _ref_forward(x, w, None, stride, padding)))
            return found

        def hint(actual, expected, x=x, w=w, stride=stride, padding=padding, variants=variants):
            words = variant_hint(variants)(actual, expected)
            if not words and np.shape(actual) != expected.shape:
                words = _forward_shape_hint(np.shape(actual), x, w, stride, padding)
            return words

        if outputs.compare("out", out, expected, case=case, tags=tags, hint=hint, **_tolerances(x.dtype)):
            check_dtype(result, out, x.dtype, what="out", case=case)
    outputs.explain("out", "pad", "only the cases with padding fail: pad top and bottom by padding[0], "
                                  "left and right by padding[1], with zeros")
    outputs.explain("out", "stride", "only the cases with stride > 1 fail: window (p, q) starts at "
                                     "(stride*p, stride*q) of the padded input")
    return result


def _fd_gradients(x, w, b, stride, padding, dout):
    """Finite differences of ``sum(forward(x, w, b) * dout)`` (float64): an independent reference."""
    def loss():
        return float(np.sum(_ref_forward(x, w, b, stride, padding) * dout))
    return (numerical_gradient(loss, x), numerical_gradient(loss, w),
            None if b is None else numerical_gradient(loss, b))


@register("conv2d_backward")
@stops_at_stubs
def conv2d_backward_checker(student_fn, namespace, result) -> CheckResult:
    """Check ``conv2d_backward(dout, cache) -> (dx, dw, db)`` with the student's own forward."""
    forward = needs_student_function(result, namespace, "conv2d_forward", for_what="conv2d_backward")
    if forward is None:
        return result
    outputs = Outputs(result)
    rng = np.random.default_rng(20261)
    for number, spec in enumerate((FD_CASE,) + CONV_CASES):
        x, w, b, stride, padding, tags, case = _make_case(rng, spec)
        result.n_cases += 1
        got = unpack(result, run_student(result, forward, x, w, b, stride=stride, padding=padding,
                                         case=case),
                     ("out", "cache"), fn_name="conv2d_forward", case=case)
        if got is None:
            result.add("conv2d_backward cannot be checked on this case: your conv2d_forward failed", case)
            break
        out, cache = got
        expected_out = _ref_forward(x, w, b, stride, padding)
        if np.shape(out) != expected_out.shape:
            result.add(f"conv2d_forward returned an output of shape {np.shape(out)} where "
                       f"{expected_out.shape} was expected, so dout has no sensible shape", case,
                       "fix conv2d_forward first (check(conv2d_forward))")
            break
        forward_wrong = not np.allclose(np.asarray(out, dtype=np.float64), expected_out, rtol=1e-4, atol=1e-4)
        dout = rng.standard_normal(expected_out.shape).astype(x.dtype)
        grads = unpack(result, run_student(result, student_fn, dout, cache, case=case),
                       ("dx", "dw", "db"), fn_name="conv2d_backward", case=case)
        if grads is None:
            outputs.record_raise()
            continue
        if number == 0:  # independent: finite differences of the forward
            case += " (expected gradients from finite differences)"
            expected = _fd_gradients(x, w, b, stride, padding, dout)
        else:
            expected = conv2d_reference_backward(dout, x, w, b is not None, _pair(stride), _quad(padding))
        tol = _tolerances(x.dtype)
        n, (oh, ow) = x.shape[0], expected_out.shape[2:]
        xpad_pad = _quad(padding)

        def dx_variants(x=x, w=w, dout=dout, stride=stride, xpad_pad=xpad_pad):
            top, bottom, left, right = xpad_pad
            xpad = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
            return [("dx still has the padding: cut it off, dx = dxpad[:, :, ph:ph + H, pw:pw + W]",
                     conv2d_reference_backward(dout, xpad, w, False, _pair(stride), (0, 0, 0, 0))[0]),
                    ("dx uses the kernel unflipped: the gradient w.r.t. the input is the *full* "
                     "convolution of dout with the flipped kernel (or scatter dout[n, f, p, q] * "
                     "w[f] back onto the window it came from)",
                     conv2d_reference_backward(dout, x, w[:, :, ::-1, ::-1], False, _pair(stride), xpad_pad)[0])]

        def dw_variants(x=x, w=w, dout=dout, stride=stride, xpad_pad=xpad_pad):
            dw = conv2d_reference_backward(dout, x, w, False, _pair(stride), xpad_pad)[1]
            return [("dw is flipped: dw[f, c, i, j] = sum over n, p, q of dout[n, f, p, q] * "
                     "xpad[n, c, s*p + i, s*q + j] (no flip)", dw[:, :, ::-1, ::-1])]

        batch_factors = {1 / n: "divided by the batch size N: the gradient of a sum over the batch "
                                "is a sum, not a mean"} if n > 1 else {}
        for key, actual, exp, variants in (("dx", grads[0], expected[0], dx_variants),
                                           ("dw", grads[1], expected[1], dw_variants)):
            def hint(actual, exp, variants=variants, key=key, batch_factors=batch_factors,
                     forward_wrong=forward_wrong):
                words = variant_hint(variants, batch_factors)(actual, exp)
                if not words and np.shape(actual) != exp.shape:
                    if 0 in np.shape(actual):
                        words = ("the result is empty: x[p:-p] is empty when p = 0; "
                                 "cut the padding off with dxpad[:, :, ph:ph + H, pw:pw + W]")
                    else:
                        words = f"{key} must have the shape of {key[1:]} ({exp.shape})"
                if words and forward_wrong:
                    words += "; note that your conv2d_forward is wrong on this input too"
                return words
            if outputs.compare(key, actual, exp, case=case, tags=tags, hint=hint, **tol):
                check_dtype(result, actual, x.dtype, what=key, case=case)
        _check_db(result, outputs, grads[2], expected[2], w.shape[0], n * oh * ow, case, tags, tol)
    outputs.explain("dx", "pad", "only the cases with padding fail: accumulate into a padded dxpad, "
                                 "then cut the padding off")
    outputs.explain("dx", "overlap", "only the cases where windows overlap (stride < kernel) fail: a "
                                     "pixel in several windows gets the sum of their gradients (+=, not =)")
    outputs.explain("dx", "stride", "only the cases with stride > 1 fail: dout[n, f, p, q] goes back to "
                                    "the window starting at (stride*p, stride*q)")
    outputs.explain("dw", "stride", "only the cases with stride > 1 fail: dw[f, c, i, j] pairs dout[p, q] "
                                    "with xpad[s*p + i, s*q + j]")
    outputs.explain("dw", "pad", "only the cases with padding fail: dw must use the zero-padded x")
    return result


def _check_db(result, outputs, db, expected_db, n_filters, count, case, tags, tol):
    if expected_db is None:
        if db is not None and not (np.shape(db) == (n_filters,) and not np.any(db)):
            result.add("db must be None when the forward had no bias (b=None)", case)
        return

    def hint(actual, expected):
        shape = np.shape(actual)
        if shape != expected.shape:
            return ("db has one value per filter: sum dout over the batch and both spatial axes, "
                    "dout.sum(axis=(0, 2, 3))")
        return variant_hint(list, {1 / count: "db is a mean: it must be the sum of dout over "
                                                    "N, OH and OW"})(actual, expected)
    if outputs.compare("db", db, expected_db, case=case, tags=tags, hint=hint, **tol):
        check_dtype(result, db, expected_db.dtype, what="db", case=case)
