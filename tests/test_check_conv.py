"""Assignment 2 checker (conv forward / backward): passes the solution, flags planted student bugs.

Each mutant is a full replacement of one student function with a mistake students make; it runs in
the solution's namespace (so a backward is checked with the solution's forward, a forward mutant is
seen by the backward that uses it). The issue's acceptance: at least 90% flagged; we require all.
"""
import pathlib

import numpy as np
import pytest

from check_mutation_helpers import assert_planted_bug_flagged
from scratchface.check import check
from scratchface.check.assignments import solution_namespace, with_replaced
from scratchface.check.assignments import strip_solutions

SOLUTION = pathlib.Path(__file__).resolve().parents[1] / "notebooks/assignments/solutions/02_conv.py"

FORWARD_HEAD = '''
def conv2d_forward(x, w, b=None, *, stride=1, padding=0):
    sh, sw = pair(stride)
    ph, pw = pair(padding)
    n, _, h, wd = x.shape
    f, _, kh, kw = w.shape
'''
FORWARD_LOOP = '''
    oh = (h + 2 * ph - kh) // sh + 1
    ow = (wd + 2 * pw - kw) // sw + 1
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    out = np.zeros((n, f, oh, ow), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            patch = xpad[:, :, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw]
            out += np.einsum("nchw,fc->nfhw", patch, w[:, :, i, j])
'''
FORWARD_TAIL = '''
    if b is not None:
        out += b.reshape(1, f, 1, 1)
    return out, (x, w, b is not None, (sh, sw), (ph, pw))
'''


def forward(loop=FORWARD_LOOP, tail=FORWARD_TAIL, head=FORWARD_HEAD):
    return head + loop + tail


BACKWARD = '''
def conv2d_backward(dout, cache):
    x, w, has_bias, (sh, sw), (ph, pw) = cache
    _, _, h, wd = x.shape
    n, _, kh, kw = w.shape
    oh, ow = dout.shape[2:]
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    dxpad = np.zeros_like(xpad)
    dw = np.zeros_like(w)
    for i in range(kh):
        for j in range(kw):
            rows = slice(i, i + sh * (oh - 1) + 1, sh)
            cols = slice(j, j + sw * (ow - 1) + 1, sw)
            DW_LINE
            DX_LINE
    dx = DX_CUT
    db = DB_LINE
    return dx, dw, db
'''
DW = 'dw[:, :, i, j] = np.einsum("nfhw,nchw->fc", dout, xpad[:, :, rows, cols])'
DX = 'dxpad[:, :, rows, cols] += np.einsum("nfhw,fc->nchw", dout, w[:, :, i, j])'
CUT = "dxpad[:, :, ph:ph + h, pw:pw + wd]"
DB = "dout.sum(axis=(0, 2, 3)) if has_bias else None"


def backward(dw=DW, dx=DX, cut=CUT, db=DB):
    return (BACKWARD.replace("DW_LINE", dw).replace("DX_LINE", dx).replace("DX_CUT", cut)
            .replace("DB_LINE", db))


# name -> (function checked, replacement source, words expected in the report's diagnosis or None)
KH_FOR_KW = FORWARD_HEAD + '''
    oh = (h + 2 * ph - kh) // sh + 1
    ow = (wd + 2 * pw - kh) // sw + 1
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    out = np.zeros((n, f, oh, ow), dtype=x.dtype)
    for p in range(oh):
        for q in range(ow):
            window = xpad[:, :, p * sh:p * sh + kh, q * sw:q * sw + kw]
            if window.shape[3] < kw:
                window = np.pad(window, ((0, 0), (0, 0), (0, 0), (0, kw - window.shape[3])))
            out[:, :, p, q] = np.einsum("nchw,fchw->nf", window, w)
''' + FORWARD_TAIL

MUTANTS = {
    # one non-square case alone coincides with "the output size rounds up"; two agree on KH for KW
    "KH used for KW": ("conv2d_forward", KH_FOR_KW, "KH was used for the width"),
    "flipped kernel": ("conv2d_forward", forward(loop=FORWARD_LOOP.replace(
        "w[:, :, i, j]", "w[:, :, kh - 1 - i, kw - 1 - j]")), "flipped kernel"),
    "forgot padding": ("conv2d_forward", forward(loop=FORWARD_LOOP.replace("(ph, ph), (pw, pw)", "(0, 0), (0, 0)")
                                                 .replace("2 * ph", "0").replace("2 * pw", "0")),
                       "forgot the padding"),
    "ignores stride": ("conv2d_forward", forward(loop=FORWARD_LOOP.replace(") // sh", ") // 1")
                                                 .replace(") // sw", ") // 1")
                                                 .replace("sh * (oh - 1) + 1:sh", "oh")
                                                 .replace("sw * (ow - 1) + 1:sw", "ow")), "stride"),
    "no bias": ("conv2d_forward", forward(tail="\n    return out, (x, w, b is not None, (sh, sw), (ph, pw))\n"),
                "bias"),
    "size without +1": ("conv2d_forward", forward(loop=FORWARD_LOOP.replace("// sh + 1", "// sh")
                                                  .replace("// sw + 1", "// sw")), "+ 1"),
    "float64 output": ("conv2d_forward", forward(loop=FORWARD_LOOP.replace(", dtype=x.dtype", "")), "dtype"),
    "stride pair swapped": ("conv2d_forward", forward(head=FORWARD_HEAD.replace(
        "sh, sw = pair(stride)", "sw, sh = pair(stride)")), "swapped"),
    "bias on the last axis": ("conv2d_forward", forward(tail=FORWARD_TAIL.replace("b.reshape(1, f, 1, 1)", "b")),
                              None),
    "padded dx returned": ("conv2d_backward", backward(cut="dxpad"), "padding"),
    "dx cut with p:-p": ("conv2d_backward", backward(cut="dxpad[:, :, ph:-ph, pw:-pw]"), "empty"),
    "dx = instead of +=": ("conv2d_backward", backward(dx=DX.replace("+=", "=")), "overlap"),
    "dx unflipped (full conv) kernel": ("conv2d_backward",
                                        backward(dx=DX.replace("w[:, :, i, j]", "w[:, :, kh - 1 - i, kw - 1 - j]")),
                                        "unflipped"),
    "dw flipped": ("conv2d_backward", backward(dw=DW.replace("dw[:, :, i, j]", "dw[:, :, kh - 1 - i, kw - 1 - j]")),
                   "flipped"),
    "dw divided by N": ("conv2d_backward", backward(dw=DW + " / x.shape[0]"), "batch size"),
    "db over the batch only": ("conv2d_backward", backward(db="dout.sum(axis=0) if has_bias else None"),
                               "axis=(0, 2, 3)"),
    "db a mean": ("conv2d_backward", backward(db="dout.mean(axis=(0, 2, 3)) if has_bias else None"), "mean"),
    "db from the wrong axes": ("conv2d_backward", backward(db="dout.sum(axis=(0, 1, 2)) if has_bias else None"),
                               None),
}


@pytest.fixture(scope="module")
def solution():
    return solution_namespace(SOLUTION)


def test_solution_passes(solution):
    for name in ("conv2d_forward", "conv2d_backward"):
        result = check(solution[name], namespace=solution, verbose=False)
        assert result.passed, str(result)
        assert result.n_cases >= 9


def test_mutants_in_the_solution_namespace_reproduce_it(solution):
    """The templates the mutants are cut from are the solution itself (so a flag is the bug's)."""
    for name, source in (("conv2d_forward", forward()), ("conv2d_backward", backward())):
        namespace = with_replaced(solution, source)
        assert check(namespace[name], namespace=namespace, verbose=False).passed


@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_planted_bug_is_flagged(solution, mutant):
    assert_planted_bug_flagged(solution, MUTANTS[mutant])


def test_at_least_ten_mutants_per_assignment():
    assert len(MUTANTS) >= 10


def test_backward_with_a_forward_stub_says_so(solution):
    stubbed = with_replaced(solution, strip_solutions(
        "def conv2d_forward(x, w, b=None, *, stride=1, padding=0):\n"
        "    ### BEGIN SOLUTION\n    pass\n    ### END SOLUTION\n"))
    result = check(solution["conv2d_backward"], namespace=stubbed, verbose=False)
    assert not result.passed
    text = str(result)
    assert "not implemented yet" in text and "implement it first (check(conv2d_forward))" in text


def test_backward_without_a_forward_in_the_namespace(solution):
    result = check(solution["conv2d_backward"], namespace={}, verbose=False)
    assert not result.passed and "conv2d_forward, which was not found" in str(result)


def test_report_names_the_element_and_case(solution):
    namespace = with_replaced(solution, MUTANTS["no bias"][1])
    text = str(check(namespace["conv2d_forward"], namespace=namespace, verbose=False))
    assert "out differs in" in text and "worst at [" in text and "stride=" in text


def test_forward_that_edits_its_input_is_flagged(solution):
    namespace = with_replaced(solution, '''
        _solution_forward = conv2d_forward
        def conv2d_forward(x, w, b=None, *, stride=1, padding=0):
            out, cache = _solution_forward(x, w, b, stride=stride, padding=padding)
            x *= 1.5
            return out, cache
        ''')
    text = str(check(namespace["conv2d_forward"], namespace=namespace, verbose=False))
    assert "changed its input argument 1 in place" in text


def test_the_independent_case_uses_finite_differences(solution, rng):
    """The first backward case's expectation is finite differences, not the library's backward."""
    from scratchface.check.conv import FD_CASE, _fd_gradients
    from scratchface.layers.conv import conv2d_backward as lib_backward
    from scratchface.layers.conv import conv2d_forward as lib_forward
    x_shape, w_shape, _, stride, padding, _ = FD_CASE
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    out, cache = lib_forward(x, w, b, stride=stride, padding=padding, impl="reference")
    dout = rng.standard_normal(out.shape)
    for numeric, analytic in zip(_fd_gradients(x, w, b, stride, padding, dout), lib_backward(dout, cache)):
        np.testing.assert_allclose(numeric, analytic, rtol=1e-7, atol=1e-9)


def test_a_variant_is_named_only_when_two_cases_agree(solution):
    """KH used for KW: on one case the shape equals "rounds up"; the two non-square cases agree on KH."""
    namespace = with_replaced(solution, KH_FOR_KW)
    text = str(check(namespace["conv2d_forward"], namespace=namespace, verbose=False))
    assert "rounds up" not in text and text.count("KH was used for the width") == 2
