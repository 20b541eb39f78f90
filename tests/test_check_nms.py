"""Assignment 5 (IoU and NMS): the checker passes the solution and flags planted student bugs."""
import inspect
import textwrap

import numpy as np
import pytest
from check_mutation_helpers import (
    ASSIGNMENTS,
    SOLUTIONS,
    Mutant,
    assert_mutants_flagged,
    assert_solution_passes,
    assert_student_version_generated,
    run_notebook_file,
)

from scratchface.check import check
from scratchface.check.__main__ import main as cli_main
from scratchface.check.nms import greedy_nms_variant, iou_variant
from scratchface.detection.nms import iou as ref_iou
from scratchface.detection.nms import nms as ref_nms

SOLUTION = SOLUTIONS / "05_iou_nms.py"


@pytest.fixture(scope="module")
def solution():
    namespace, printed = run_notebook_file(SOLUTION)
    return namespace, printed


def test_solution_runs_and_passes(solution):
    assert_solution_passes(solution, ("iou", "nms"))


def test_plain_variants_equal_the_library(rng):
    """The checker's own loops, with no mistake planted, agree with scratchface.detection.nms."""
    for _ in range(20):
        n = int(rng.integers(1, 25))
        xy = rng.integers(0, 30, size=(n, 2))
        boxes = np.column_stack([xy, xy + rng.integers(0, 12, size=(n, 2))]).astype(float)
        scores = np.round(rng.random(n), 1)
        for offset in (0, 1):
            np.testing.assert_allclose(iou_variant(boxes, boxes[::-1], offset), ref_iou(boxes, boxes[::-1],
                                                                                        offset=offset))
            for mode in ("union", "min"):
                expected = ref_nms(boxes, scores, 0.4, mode, offset=offset, impl="reference")
                np.testing.assert_array_equal(greedy_nms_variant(boxes, scores, 0.4, mode, offset), expected)


def test_iou_worked_by_hand():
    a, b = np.array([[0, 0, 10, 10]]), np.array([[5, 0, 15, 10]])
    assert iou_variant(a, b)[0, 0] == pytest.approx(50 / 150)
    assert iou_variant(a, b, 1)[0, 0] == pytest.approx(66 / (121 + 121 - 66))
    assert iou_variant(a, b, union="sum")[0, 0] == pytest.approx(50 / 200)


IOU_MUTANTS = [
    Mutant("offset ignored", "iou", """
        def iou(boxes_a, boxes_b, *, offset=0):
            a, b = np.asarray(boxes_a, float), np.asarray(boxes_b, float)
            A, B = a[:, None, :], b[None, :, :]
            iw = np.maximum(np.minimum(A[..., 2], B[..., 2]) - np.maximum(A[..., 0], B[..., 0]), 0)
            ih = np.maximum(np.minimum(A[..., 3], B[..., 3]) - np.maximum(A[..., 1], B[..., 1]), 0)
            inter = iw * ih
            area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
            area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
            union = area_a[:, None] + area_b[None, :] - inter
            return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        """, "+1 of inclusive pixels is missing"),
    Mutant("union = sum of areas", "iou", """
        def iou(boxes_a, boxes_b, *, offset=0):
            a, b = np.asarray(boxes_a, float), np.asarray(boxes_b, float)
            A, B = a[:, None, :], b[None, :, :]
            iw = np.maximum(np.minimum(A[..., 2], B[..., 2]) - np.maximum(A[..., 0], B[..., 0]) + offset, 0)
            ih = np.maximum(np.minimum(A[..., 3], B[..., 3]) - np.maximum(A[..., 1], B[..., 1]) + offset, 0)
            area_a = (a[:, 2] - a[:, 0] + offset) * (a[:, 3] - a[:, 1] + offset)
            area_b = (b[:, 2] - b[:, 0] + offset) * (b[:, 3] - b[:, 1] + offset)
            union = area_a[:, None] + area_b[None, :]
            return np.divide(iw * ih, union, out=np.zeros_like(iw), where=union > 0)
        """, "sum of the two areas"),
    Mutant("no clip at 0", "iou", """
        def iou(boxes_a, boxes_b, *, offset=0):
            a, b = np.asarray(boxes_a, float), np.asarray(boxes_b, float)
            A, B = a[:, None, :], b[None, :, :]
            iw = np.minimum(A[..., 2], B[..., 2]) - np.maximum(A[..., 0], B[..., 0]) + offset
            ih = np.minimum(A[..., 3], B[..., 3]) - np.maximum(A[..., 1], B[..., 1]) + offset
            inter = iw * ih
            area_a = (a[:, 2] - a[:, 0] + offset) * (a[:, 3] - a[:, 1] + offset)
            area_b = (b[:, 2] - b[:, 0] + offset) * (b[:, 3] - b[:, 1] + offset)
            union = area_a[:, None] + area_b[None, :] - inter
            return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        """, "not clipped at 0"),
    Mutant("0/0 gives NaN", "iou", """
        def iou(boxes_a, boxes_b, *, offset=0):
            a, b = np.asarray(boxes_a, float), np.asarray(boxes_b, float)
            A, B = a[:, None, :], b[None, :, :]
            iw = np.maximum(np.minimum(A[..., 2], B[..., 2]) - np.maximum(A[..., 0], B[..., 0]) + offset, 0)
            ih = np.maximum(np.minimum(A[..., 3], B[..., 3]) - np.maximum(A[..., 1], B[..., 1]) + offset, 0)
            inter = iw * ih
            area_a = (a[:, 2] - a[:, 0] + offset) * (a[:, 3] - a[:, 1] + offset)
            area_b = (b[:, 2] - b[:, 0] + offset) * (b[:, 3] - b[:, 1] + offset)
            with np.errstate(invalid="ignore"):
                return inter / (area_a[:, None] + area_b[None, :] - inter)
        """, "0 / 0"),
    Mutant("over the smaller area", "iou", """
        def iou(boxes_a, boxes_b, *, offset=0):
            a, b = np.asarray(boxes_a, float), np.asarray(boxes_b, float)
            A, B = a[:, None, :], b[None, :, :]
            iw = np.maximum(np.minimum(A[..., 2], B[..., 2]) - np.maximum(A[..., 0], B[..., 0]) + offset, 0)
            ih = np.maximum(np.minimum(A[..., 3], B[..., 3]) - np.maximum(A[..., 1], B[..., 1]) + offset, 0)
            area_a = (a[:, 2] - a[:, 0] + offset) * (a[:, 3] - a[:, 1] + offset)
            area_b = (b[:, 2] - b[:, 0] + offset) * (b[:, 3] - b[:, 1] + offset)
            denom = np.minimum(area_a[:, None], area_b[None, :])
            return np.divide(iw * ih, denom, out=np.zeros_like(iw), where=denom > 0)
        """, "smaller area"),
    Mutant("transposed (loops over b then a)", "iou", """
        def iou(boxes_a, boxes_b, *, offset=0):
            out = np.zeros((len(boxes_b), len(boxes_a)))
            for j, b in enumerate(boxes_b):
                for i, a in enumerate(boxes_a):
                    iw = max(0, min(a[2], b[2]) - max(a[0], b[0]) + offset)
                    ih = max(0, min(a[3], b[3]) - max(a[1], b[1]) + offset)
                    union = ((a[2] - a[0] + offset) * (a[3] - a[1] + offset)
                             + (b[2] - b[0] + offset) * (b[3] - b[1] + offset) - iw * ih)
                    out[j, i] = iw * ih / union if union > 0 else 0.0
            return out
        """, "transposed"),
    Mutant("+1 in the areas but not in the intersection", "iou", """
        def iou(boxes_a, boxes_b, *, offset=0):
            a, b = np.asarray(boxes_a, float), np.asarray(boxes_b, float)
            A, B = a[:, None, :], b[None, :, :]
            iw = np.maximum(np.minimum(A[..., 2], B[..., 2]) - np.maximum(A[..., 0], B[..., 0]), 0)
            ih = np.maximum(np.minimum(A[..., 3], B[..., 3]) - np.maximum(A[..., 1], B[..., 1]), 0)
            inter = iw * ih
            area_a = (a[:, 2] - a[:, 0] + offset) * (a[:, 3] - a[:, 1] + offset)
            area_b = (b[:, 2] - b[:, 0] + offset) * (b[:, 3] - b[:, 1] + offset)
            union = area_a[:, None] + area_b[None, :] - inter
            return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        """, "in the areas but not in the intersection"),
    Mutant("min and max swapped in the intersection", "iou", """
        def iou(boxes_a, boxes_b, *, offset=0):
            a, b = np.asarray(boxes_a, float), np.asarray(boxes_b, float)
            A, B = a[:, None, :], b[None, :, :]
            iw = np.maximum(np.maximum(A[..., 2], B[..., 2]) - np.minimum(A[..., 0], B[..., 0]) + offset, 0)
            ih = np.maximum(np.maximum(A[..., 3], B[..., 3]) - np.minimum(A[..., 1], B[..., 1]) + offset, 0)
            inter = iw * ih
            area_a = (a[:, 2] - a[:, 0] + offset) * (a[:, 3] - a[:, 1] + offset)
            area_b = (b[:, 2] - b[:, 0] + offset) * (b[:, 3] - b[:, 1] + offset)
            union = area_a[:, None] + area_b[None, :] - inter
            return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        """, "min and max swapped"),
    Mutant("result in the boxes' dtype (integers truncate)", "iou", """
        def iou(boxes_a, boxes_b, *, offset=0):
            a, b = np.asarray(boxes_a).reshape(-1, 4), np.asarray(boxes_b).reshape(-1, 4)
            A, B = a[:, None, :], b[None, :, :]
            iw = np.maximum(np.minimum(A[..., 2], B[..., 2]) - np.maximum(A[..., 0], B[..., 0]) + offset, 0)
            ih = np.maximum(np.minimum(A[..., 3], B[..., 3]) - np.maximum(A[..., 1], B[..., 1]) + offset, 0)
            inter = iw * ih
            area_a = (a[:, 2] - a[:, 0] + offset) * (a[:, 3] - a[:, 1] + offset)
            area_b = (b[:, 2] - b[:, 0] + offset) * (b[:, 3] - b[:, 1] + offset)
            union = area_a[:, None] + area_b[None, :] - inter
            return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0, casting="unsafe")
        """, "the boxes' integer dtype"),
    Mutant("right values, cast back to the boxes' dtype at the end", "iou", """
        def iou(boxes_a, boxes_b, *, offset=0):
            a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
            b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
            A, B = a[:, None, :], b[None, :, :]
            iw = np.maximum(np.minimum(A[..., 2], B[..., 2]) - np.maximum(A[..., 0], B[..., 0]) + offset, 0)
            ih = np.maximum(np.minimum(A[..., 3], B[..., 3]) - np.maximum(A[..., 1], B[..., 1]) + offset, 0)
            inter = iw * ih
            area_a = (a[:, 2] - a[:, 0] + offset) * (a[:, 3] - a[:, 1] + offset)
            area_b = (b[:, 2] - b[:, 0] + offset) * (b[:, 3] - b[:, 1] + offset)
            union = area_a[:, None] + area_b[None, :] - inter
            out = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
            return out.astype(np.asarray(boxes_a).dtype)
        """, "the boxes' integer dtype"),
]

# The NMS mutants call the solution's (correct) iou where a student would.
_OVERLAP = """
def _overlap(boxes, i, rest, mode, offset):
    if mode == "min":
        x1, y1, x2, y2 = boxes.T
        iw = np.maximum(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + offset, 0)
        ih = np.maximum(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + offset, 0)
        area = (x2 - x1 + offset) * (y2 - y1 + offset)
        denom = np.minimum(area[i], area[rest])
        return np.divide(iw * ih, denom, out=np.zeros_like(iw), where=denom > 0)
    return iou(boxes[[i]], boxes[rest], offset=offset)[0]
"""

NMS_MUTANTS = [
    Mutant("not sorted by score", "nms", _OVERLAP + """
def nms(boxes, scores, iou_threshold=0.5, mode="union", *, offset=0):
    boxes = np.asarray(boxes, float)
    order = np.arange(len(boxes))
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        order = rest[_overlap(boxes, i, rest, mode, offset) <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)
""", "not processed by decreasing score"),
    Mutant("sorted ascending", "nms", _OVERLAP + """
def nms(boxes, scores, iou_threshold=0.5, mode="union", *, offset=0):
    boxes = np.asarray(boxes, float)
    order = np.argsort(scores, kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        order = rest[_overlap(boxes, i, rest, mode, offset) <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)
""", "increasing score"),
    Mutant(">= instead of >", "nms", _OVERLAP + """
def nms(boxes, scores, iou_threshold=0.5, mode="union", *, offset=0):
    boxes = np.asarray(boxes, float)
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        order = rest[_overlap(boxes, i, rest, mode, offset) < iou_threshold]
    return np.asarray(keep, dtype=np.int64)
""", ">= instead of >"),
    Mutant("suppressed boxes still suppress", "nms", _OVERLAP + """
def nms(boxes, scores, iou_threshold=0.5, mode="union", *, offset=0):
    boxes = np.asarray(boxes, float)
    order = np.argsort(-np.asarray(scores), kind="stable")
    suppressed = np.zeros(len(boxes), dtype=bool)
    for k, i in enumerate(order):
        rest = order[k + 1:]
        suppressed[rest[_overlap(boxes, i, rest, mode, offset) > iou_threshold]] = True
    return np.asarray([i for i in order if not suppressed[i]], dtype=np.int64)
""", "suppressed boxes still suppress"),
    Mutant("indices returned in index order", "nms", _OVERLAP + """
def nms(boxes, scores, iou_threshold=0.5, mode="union", *, offset=0):
    boxes = np.asarray(boxes, float)
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep = np.zeros(len(boxes), dtype=bool)
    while order.size:
        i, rest = order[0], order[1:]
        keep[i] = True
        order = rest[_overlap(boxes, i, rest, mode, offset) <= iou_threshold]
    return np.flatnonzero(keep)
""", "index order"),
    Mutant("mode ignored", "nms", """
def nms(boxes, scores, iou_threshold=0.5, mode="union", *, offset=0):
    boxes = np.asarray(boxes, float)
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        order = rest[iou(boxes[[i]], boxes[rest], offset=offset)[0] <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)
""", "mode='min' ignored"),
    Mutant("float64 empty result", "nms", _OVERLAP + """
def nms(boxes, scores, iou_threshold=0.5, mode="union", *, offset=0):
    boxes = np.asarray(boxes, float)
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        order = rest[_overlap(boxes, i, rest, mode, offset) <= iou_threshold]
    return np.array(keep)
""", "float64"),
    Mutant("ties: higher index first", "nms", _OVERLAP + """
def nms(boxes, scores, iou_threshold=0.5, mode="union", *, offset=0):
    boxes = np.asarray(boxes, float)
    order = np.argsort(scores, kind="stable")[::-1]
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        order = rest[_overlap(boxes, i, rest, mode, offset) <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)
""", "ties broken toward the higher index"),
    Mutant("offset not passed on", "nms", _OVERLAP + """
def nms(boxes, scores, iou_threshold=0.5, mode="union", *, offset=0):
    boxes = np.asarray(boxes, float)
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        order = rest[_overlap(boxes, i, rest, mode, 0) <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)
""", "offset ignored"),
    Mutant("compared with the last kept box only", "nms", _OVERLAP + """
def nms(boxes, scores, iou_threshold=0.5, mode="union", *, offset=0):
    boxes = np.asarray(boxes, float)
    keep = []
    for i in np.argsort(-np.asarray(scores), kind="stable"):
        if not keep or _overlap(boxes, keep[-1], np.array([i]), mode, offset)[0] <= iou_threshold:
            keep.append(i)
    return np.asarray(keep, dtype=np.int64)
""", "last kept box only"),
    Mutant("kept when ANY kept box overlaps little (any instead of all)", "nms", _OVERLAP + """
def nms(boxes, scores, iou_threshold=0.5, mode="union", *, offset=0):
    boxes = np.asarray(boxes, float)
    keep = []
    for i in np.argsort(-np.asarray(scores), kind="stable"):
        if not keep or np.any(_overlap(boxes, i, np.array(keep), mode, offset) <= iou_threshold):
            keep.append(i)
    return np.asarray(keep, dtype=np.int64)
""", "ANY kept box"),
    Mutant("boolean mask returned", "nms", _OVERLAP + """
def nms(boxes, scores, iou_threshold=0.5, mode="union", *, offset=0):
    boxes = np.asarray(boxes, float)
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep = np.zeros(len(boxes), dtype=bool)
    while order.size:
        i, rest = order[0], order[1:]
        keep[i] = True
        order = rest[_overlap(boxes, i, rest, mode, offset) <= iou_threshold]
    return keep
"""),
    Mutant("only the top box suppresses", "nms", _OVERLAP + """
def nms(boxes, scores, iou_threshold=0.5, mode="union", *, offset=0):
    boxes = np.asarray(boxes, float)
    order = np.argsort(-np.asarray(scores), kind="stable")
    if order.size == 0:
        return np.zeros(0, dtype=np.int64)
    i, rest = order[0], order[1:]
    return np.concatenate([[i], rest[_overlap(boxes, i, rest, mode, offset) <= iou_threshold]]).astype(np.int64)
""", "only the first box suppresses"),
]


def test_iou_mutants_flagged(solution):
    assert_mutants_flagged(solution[0], IOU_MUTANTS)


def test_nms_mutants_flagged(solution):
    assert_mutants_flagged(solution[0], NMS_MUTANTS)


def test_report_names_element_and_mistake(solution):
    planted = dict(solution[0])
    exec(textwrap.dedent(IOU_MUTANTS[1].source), planted)
    result = check(planted["iou"], verbose=False)
    text = str(result)
    assert not result and "IoU differs in" in text and "worst at [" in text
    assert "likely mistake: the union is the sum of the two areas" in text


def test_student_stub_reports_not_implemented(tmp_path):
    """The generated student version runs top to bottom and its stubs give a clear report."""
    from scratchface.check.__main__ import load_student_file

    module = load_student_file(ASSIGNMENTS / "05_iou_nms.py")
    result = check(module.nms, verbose=False)
    assert not result and len(result.problems) == 1
    assert "nms is not implemented yet (it raised NotImplementedError)" in str(result)


def test_cli_exit_codes(tmp_path, capsys, solution):
    good = tmp_path / "good.py"
    good.write_text("import numpy as np\n\n" + inspect.getsource(solution[0]["iou"]))
    borrowed = tmp_path / "borrowed.py"
    borrowed.write_text("from scratchface.detection.nms import iou as library_iou\n\n"
                        "def iou(boxes_a, boxes_b, *, offset=0):\n"
                        "    return library_iou(boxes_a, boxes_b, offset=offset)\n")
    assert cli_main(["iou", str(borrowed)]) == 1      # the library's answer is not the student's
    assert "scratchface's own implementation" in capsys.readouterr().out
    bad = tmp_path / "bad.py"
    bad.write_text("import numpy as np\n" + textwrap.dedent(IOU_MUTANTS[2].source))
    assert cli_main(["iou", str(good)]) == 0
    assert cli_main(["iou", str(bad)]) == 1
    assert "not clipped at 0" in capsys.readouterr().out
    assert cli_main(["nms", str(good)]) == 2          # no such function in the file
    assert cli_main(["iou", str(tmp_path / "missing.py")]) == 2
    assert "defines no function 'nms'" in capsys.readouterr().err



def test_student_version_is_generated_from_the_solution():
    assert_student_version_generated(SOLUTION)
