"""Assignment 3 checker (max and L2 pooling): passes the solution, flags planted student bugs.

Each mutant is a full replacement of one student function (written with the mistake), run in the
solution's namespace; the checker must flag every one (the issue asks for at least 90%).
"""
import pathlib

import numpy as np
import pytest

from check_mutation_helpers import assert_planted_bug_flagged, assert_templates_pass
from scratchface.check import check
from scratchface.check.assignments import solution_namespace, with_replaced
from scratchface.check.pooling import _max_backward_by_rule

SOLUTION = pathlib.Path(__file__).resolve().parents[1] / "notebooks/assignments/solutions/03_pooling.py"

MAX_FORWARD = '''
def max_pool2d_forward(x, *, kernel_size, stride=None, padding=0):
    (kh, kw), (sh, sw), (ph, pw), (oh, ow) = pool_geometry(x, kernel_size, stride, padding)
    GEOMETRY
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
    n, c = x.shape[:2]
    out = np.zeros((n, c, oh, ow), dtype=x.dtype)
    argmax = np.zeros((n, c, oh, ow), dtype=np.int64)
    for p in range(oh):
        for q in range(ow):
            window = xpad[:, :, p * sh:p * sh + kh, q * sw:q * sw + kw].reshape(n, c, -1)
            argmax[:, :, p, q] = window.argmax(axis=2)
            out[:, :, p, q] = window.max(axis=2)
    return out, (x.shape, argmax, (kh, kw), (sh, sw), (ph, pw))
'''

MAX_BACKWARD = '''
def max_pool2d_backward(dout, cache):
    x_shape, argmax, (kh, kw), (sh, sw), (ph, pw) = cache
    n, c, h, w = x_shape
    oh, ow = dout.shape[2:]
    dxpad = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=dout.dtype)
    planes_n, planes_c = np.meshgrid(np.arange(n), np.arange(c), indexing="ij")
    for p in range(oh):
        for q in range(ow):
            i, j = np.divmod(argmax[:, :, p, q], kw)
            dxpad[planes_n, planes_c, p * sh + i, q * sw + j] += dout[:, :, p, q]
    return dxpad[:, :, ph:ph + h, pw:pw + w]
'''

MAX_BACKWARD_BY_MASK = '''
def max_pool2d_backward(dout, cache):
    x, (kh, kw), (sh, sw), (ph, pw) = cache
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
    dxpad = np.zeros_like(xpad)
    oh, ow = dout.shape[2:]
    for p in range(oh):
        for q in range(ow):
            window = xpad[:, :, p * sh:p * sh + kh, q * sw:q * sw + kw]
            mask = window == window.max(axis=(2, 3), keepdims=True)
            dxpad[:, :, p * sh:p * sh + kh, q * sw:q * sw + kw] += mask * dout[:, :, p:p + 1, q:q + 1]
    return dxpad[:, :, ph:ph + x.shape[2], pw:pw + x.shape[3]]

_solution_forward = max_pool2d_forward
def max_pool2d_forward(x, *, kernel_size, stride=None, padding=0):
    out, _ = _solution_forward(x, kernel_size=kernel_size, stride=stride, padding=padding)
    (kh, kw), (sh, sw), (ph, pw), _ = pool_geometry(x, kernel_size, stride, padding)
    return out, (x, (kh, kw), (sh, sw), (ph, pw))
'''

L2_FORWARD = '''
def l2_pool2d_forward(x, *, kernel_size, stride=None, padding=0):
    (kh, kw), (sh, sw), (ph, pw), (oh, ow) = pool_geometry(x, kernel_size, stride, padding)
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    out = np.zeros(x.shape[:2] + (oh, ow), dtype=x.dtype)
    for p in range(oh):
        for q in range(ow):
            window = xpad[:, :, p * sh:p * sh + kh, q * sw:q * sw + kw]
            out[:, :, p, q] = np.sqrt(np.sum(window ** 2, axis=(2, 3)))
    return out, (x, out, (kh, kw), (sh, sw), (ph, pw))
'''

L2_BACKWARD = '''
def l2_pool2d_backward(dout, cache):
    x, out, (kh, kw), (sh, sw), (ph, pw) = cache
    h, w = x.shape[2:]
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    dxpad = np.zeros_like(xpad)
    scale = np.where(out > 0, dout / np.where(out > 0, out, 1), 0)
    oh, ow = dout.shape[2:]
    for p in range(oh):
        for q in range(ow):
            rows, cols = slice(p * sh, p * sh + kh), slice(q * sw, q * sw + kw)
            dxpad[:, :, rows, cols] += xpad[:, :, rows, cols] * scale[:, :, p:p + 1, q:q + 1]
    return dxpad[:, :, ph:ph + h, pw:pw + w]
'''


def edit(template, old, new):
    assert old in template, old
    return template.replace(old, new)


MAX_FORWARD_OK = edit(MAX_FORWARD, "    GEOMETRY\n", "")

# name -> (function checked, replacement source, words expected in the diagnosis or None)
MUTANTS = {
    # the padding cut off one row too low: every padded case fails, and all but one of them also has
    # overlapping windows; "use +=" would mislead (padding without overlap tells the two apart)
    "max backward: crop shifted by one row": ("max_pool2d_backward", edit(
        MAX_BACKWARD, "return dxpad[:, :, ph:ph + h, pw:pw + w]",
        "return dxpad[:, :, ph + 1:ph + 1 + h, pw:pw + w] if ph else dxpad[:, :, :h, :w]"),
        "only the cases with padding fail"),
    "max: zero padding": ("max_pool2d_forward", edit(MAX_FORWARD_OK, ", constant_values=-np.inf", ""), "-inf"),
    "max: stride None taken as 1": ("max_pool2d_forward", edit(
        MAX_FORWARD, "GEOMETRY", "sh, sw = pair(1 if stride is None else stride)\n"
        "    oh, ow = (x.shape[2] + 2 * ph - kh) // sh + 1, (x.shape[3] + 2 * pw - kw) // sw + 1"),
        "stride=None"),
    "max: the mean": ("max_pool2d_forward", edit(
        edit(MAX_FORWARD_OK, "window.max(axis=2)", "window.mean(axis=2)"),
        "constant_values=-np.inf", "constant_values=0"), "mean"),
    "max: size without + 1": ("max_pool2d_forward", edit(MAX_FORWARD, "GEOMETRY", "oh, ow = oh - 1, ow - 1"),
                              "+ 1"),
    "max: float64 output": ("max_pool2d_forward", edit(MAX_FORWARD_OK, ", dtype=x.dtype", ""), "dtype"),
    "max: gradient to every tied maximum": ("max_pool2d_backward", MAX_BACKWARD_BY_MASK, "every tied maximum"),
    "max: gradient to the last tied maximum": ("max_pool2d_backward", edit(
        MAX_BACKWARD_BY_MASK, "mask = window == window.max(axis=(2, 3), keepdims=True)",
        "flat = (window == window.max(axis=(2, 3), keepdims=True)).reshape(*window.shape[:2], -1)\n"
        "            last = flat.shape[2] - 1 - flat[:, :, ::-1].argmax(axis=2)\n"
        "            mask = (np.arange(flat.shape[2]) == last[:, :, None]).reshape(window.shape)"),
        "last maximum"),
    "max: = instead of +=": ("max_pool2d_backward", edit(MAX_BACKWARD, "] += dout", "] = dout"), "overlap"),
    "max: padded dx returned": ("max_pool2d_backward", edit(MAX_BACKWARD, "dxpad[:, :, ph:ph + h, pw:pw + w]",
                                                            "dxpad"), "padding"),
    "max: window index divided by kh": ("max_pool2d_backward", edit(MAX_BACKWARD, "divmod(argmax[:, :, p, q], kw)",
                                                                    "divmod(argmax[:, :, p, q], kh)"), None),
    "max: stride ignored in backward": ("max_pool2d_backward", edit(
        MAX_BACKWARD, "p * sh + i, q * sw + j", "p + i, q + j"), None),
    "l2: no square root": ("l2_pool2d_forward", edit(L2_FORWARD, "np.sqrt(np.sum(window ** 2, axis=(2, 3)))",
                                                     "np.sum(window ** 2, axis=(2, 3))"), "square root"),
    "l2: root of the mean": ("l2_pool2d_forward", edit(L2_FORWARD, "np.sum(window ** 2", "np.mean(window ** 2"),
                             "mean"),
    "l2: -inf padding copied from max": ("l2_pool2d_forward", edit(
        L2_FORWARD, "(pw, pw)))", "(pw, pw)), constant_values=-np.inf)"), None),
    "l2: 0 / 0 on zero windows": ("l2_pool2d_backward", edit(
        L2_BACKWARD, "np.where(out > 0, dout / np.where(out > 0, out, 1), 0)", "dout / out"), "all zeros"),
    "l2: half the gradient": ("l2_pool2d_backward", edit(L2_BACKWARD, "dout / np.where", "dout / 2 / np.where"),
                              "2s cancel"),
    "l2: forgot to divide by out": ("l2_pool2d_backward", edit(
        L2_BACKWARD, "np.where(out > 0, dout / np.where(out > 0, out, 1), 0)", "dout"), "divide by the output"),
}


@pytest.fixture(scope="module")
def solution():
    return solution_namespace(SOLUTION)


def test_solution_passes(solution):
    for name in ("max_pool2d_forward", "max_pool2d_backward", "l2_pool2d_forward", "l2_pool2d_backward"):
        result = check(solution[name], namespace=solution, verbose=False)
        assert result.passed, str(result)


def test_templates_reproduce_the_solution(solution):
    assert_templates_pass(solution, (("max_pool2d_forward", MAX_FORWARD_OK), ("max_pool2d_backward", MAX_BACKWARD),
                         ("l2_pool2d_forward", L2_FORWARD), ("l2_pool2d_backward", L2_BACKWARD)))


@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_planted_bug_is_flagged(solution, mutant):
    assert_planted_bug_flagged(solution, MUTANTS[mutant])


def test_at_least_ten_mutants_per_assignment():
    assert len(MUTANTS) >= 10


def test_tie_variant_by_hand():
    """The 'every tied maximum' variant the diagnosis uses, on a window worked by hand."""
    x = np.array([[[[1.0, 3.0], [3.0, 2.0]]]])
    dout = np.array([[[[5.0]]]])
    kwargs = {"kernel_size": 2, "stride": None, "padding": 0}
    np.testing.assert_array_equal(_max_backward_by_rule(x, dout, kwargs, "all")[0, 0], [[0, 5], [5, 0]])
    np.testing.assert_array_equal(_max_backward_by_rule(x, dout, kwargs, "last")[0, 0], [[0, 0], [5, 0]])


def test_checker_expects_the_first_maximum(solution):
    """On a tie the library (and PyTorch) send the gradient to the first maximum: the checker agrees."""
    out, cache = solution["max_pool2d_forward"](np.ones((1, 1, 2, 2)), kernel_size=2)
    np.testing.assert_array_equal(solution["max_pool2d_backward"](np.ones_like(out), cache)[0, 0],
                                  [[1, 0], [0, 0]])


def test_a_shifted_crop_is_not_called_an_overlap_mistake(solution):
    name, source, _ = MUTANTS["max backward: crop shifted by one row"]
    namespace = with_replaced(solution, source)
    text = str(check(namespace[name], namespace=namespace, verbose=False))
    assert "+=" not in text and "only the cases with padding fail" in text
