"""AP by face size (WIDER FACE style): cases worked by hand, a brute-force per-band loop, the full pipeline."""
import math

import numpy as np
import pytest

import experiments.evaluation_by_size as ebs
from experiments.evaluation_by_size import compare_detectors_by_size, format_size_table
from scratchface.detection import synthetic
from scratchface.detection.evaluation import DEFAULT_BANDS, evaluate_by_size, evaluate_detections, face_heights


def box(x, y, w, h):
    return [x, y, x + w, y + h]


# ----------------------------------------------------------------------------- worked by hand
SMALL_FACE, LARGE_FACE = box(0, 0, 20, 20), box(100, 100, 150, 150)


def hand_case(unmatched_score=0.7):
    faces = np.array([SMALL_FACE, LARGE_FACE], float)
    dets = np.array([box(101, 101, 150, 150),      # 0.9: the large face (IoU ~0.99)
                     box(1, 0, 20, 20),            # 0.8: the small face (IoU 0.9)
                     box(40, 0, 50, 50),           # unmatched, 50 px high: medium
                     box(102, 100, 150, 150),      # 0.6: a duplicate of the large face
                     box(60, 200, 15, 15)], float)  # 0.5: unmatched, 15 px high: small
    scores = np.array([0.9, 0.8, unmatched_score, 0.6, 0.5])
    return [(dets, scores)], [faces]


def test_hand_worked_own_band_rule():
    result = evaluate_by_size(*hand_case())
    small, medium, large = result["small"], result["medium"], result["large"]
    # small: the 0.8 hit (TP) then the 15-px stray (FP); the large-face hits are ignored
    assert (small.n_faces, small.n_detections, small.n_true_positives) == (1, 2, 1)
    assert small.average_precision == 1.0 and small.recall == 1.0 and small.precision == 0.5
    # medium: no face, one stray detection
    assert medium.n_faces == 0 and math.isnan(medium.average_precision) and math.isnan(medium.recall)
    assert (medium.n_detections, medium.n_false_positives, medium.precision) == (1, 1, 0.0)
    # large: hit then duplicate
    assert (large.n_faces, large.n_detections, large.n_true_positives, large.n_false_positives) == (1, 2, 1, 1)
    assert large.average_precision == 1.0


def test_hand_worked_every_band_rule_differs():
    # the 50-px stray detection now scores 0.95, above both hits
    own = evaluate_by_size(*hand_case(0.95))
    every = evaluate_by_size(*hand_case(0.95), unmatched="every_band")
    assert own["small"].average_precision == 1.0          # the stray counts in medium only
    # every_band: small sees FP (0.95), TP (0.8), FP (0.5): precision 1/2 at recall 1
    assert every["small"].average_precision == 0.5 and every["small"].n_detections == 3
    # large sees FP (0.95), TP (0.9), dup FP (0.6), FP (0.5): AP = 1/2
    assert every["large"].average_precision == 0.5 and every["large"].n_false_positives == 3


def test_hand_worked_ap_two_faces():
    faces = [np.array([box(0, 0, 40, 40), box(100, 0, 40, 40)], float)]
    dets = [(np.array([box(0, 0, 40, 40), box(200, 200, 40, 40), box(100, 0, 40, 40)], float),
             np.array([0.9, 0.8, 0.7]))]
    medium = evaluate_by_size(dets, faces)["medium"]
    # precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1: AP = 1/2 * 1 + 1/2 * 2/3
    assert medium.average_precision == pytest.approx(0.5 + 1 / 3, abs=1e-15)
    assert medium.recall == 1.0 and medium.precision == pytest.approx(2 / 3)


def test_ignored_faces_count_nowhere():
    faces = [np.array([box(0, 0, 40, 40), box(100, 0, 40, 40)], float)]
    dets = [(np.array([box(0, 0, 40, 40), box(100, 0, 40, 40)], float), np.array([0.5, 0.9]))]
    medium = evaluate_by_size(dets, faces, ignore=[np.array([False, True])])["medium"]
    assert (medium.n_faces, medium.n_detections, medium.n_true_positives) == (1, 1, 1)
    assert medium.average_precision == 1.0


def test_faces_outside_every_band_are_ignored():
    faces = [np.array([box(0, 0, 5, 5)], float)]              # 5 px: below the small band
    dets = [(np.array([box(0, 0, 5, 5), box(50, 50, 6, 6)], float), np.array([0.9, 0.8]))]
    result = evaluate_by_size(dets, faces)
    assert all(r.n_faces == 0 and r.n_detections == 0 for r in result.values())


def test_one_band_is_plain_voc(rng):
    detections, truths = random_set(rng, 12)
    everything = evaluate_by_size(detections, truths, bands=(("all", 0, math.inf),))["all"]
    voc = evaluate_detections(detections, truths)
    assert everything.average_precision == pytest.approx(voc.average_precision, abs=1e-12)
    assert everything.recall == pytest.approx(voc.recall, abs=1e-12)
    assert (everything.n_true_positives, everything.n_false_positives) == (voc.n_true_positives,
                                                                          voc.n_false_positives)


# ----------------------------------------------------------------------------- brute force
def random_set(rng, n_images):
    """Faces of all sizes; detections near faces (hits, duplicates, misses) and strays; distinct scores."""
    detections, truths = [], []
    for _ in range(n_images):
        m = int(rng.integers(0, 6))
        sizes = np.exp(rng.uniform(np.log(6), np.log(200), m))
        xy = rng.uniform(0, 400, (m, 2))
        faces = np.column_stack([xy, xy + sizes[:, None] * [0.8, 1.0]])
        dets = []
        for f in faces:
            for _ in range(int(rng.integers(0, 3))):                     # 0, 1 or 2 (a duplicate) near it
                jitter = rng.normal(0, 0.15, 4) * (f[3] - f[1])
                dets.append(f + jitter)
        for _ in range(int(rng.integers(0, 4))):                           # strays of all sizes
            s = np.exp(rng.uniform(np.log(6), np.log(200)))
            x, y = rng.uniform(0, 400, 2)
            dets.append([x, y, x + s, y + s])
        dets = np.asarray(dets, float).reshape(-1, 4)
        dets[:, 2:] = np.maximum(dets[:, 2:], dets[:, :2] + 1)
        detections.append((dets, rng.random(len(dets))))
        truths.append(faces)
    return detections, truths


def brute_iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def brute_band(detections, truths, low, high, thr, every_band=False):
    """The rule, one band at a time: ignore detections whose best face is outside the band."""
    inside = lambda b: low <= b[3] - b[1] < high
    n_faces = sum(inside(f) for faces in truths for f in faces)
    flat = [(s, i, d) for i, (dets, scores) in enumerate(detections) for d, s in zip(dets, scores)]
    flat.sort(key=lambda t: -t[0])
    taken, outcome = set(), []
    for _, i, d in flat:
        ious = [brute_iou(d, f) for f in truths[i]]
        best = int(np.argmax(ious)) if ious else -1
        if best >= 0 and ious[best] >= thr:
            if not inside(truths[i][best]):
                continue                                                  # a face of another band: ignored
            outcome.append((i, best) not in taken)
            taken.add((i, best))
        elif every_band or inside(d):
            outcome.append(False)                                         # a stray of this band
    tp_ranks = [k for k, ok in enumerate(outcome) if ok]
    precision = [sum(outcome[:k + 1]) / (k + 1) for k in range(len(outcome))]
    ap = sum(max(precision[k:]) for k in tp_ranks) / n_faces if n_faces else math.nan
    return ap, len(tp_ranks), len(outcome), n_faces


@pytest.mark.parametrize("thr, every_band", [(0.5, False), (0.3, False), (0.5, True)])
def test_matches_brute_force(rng, thr, every_band):
    detections, truths = random_set(rng, 25)
    bands = DEFAULT_BANDS + (("mid-overlap", 20, 60),)
    result = evaluate_by_size(detections, truths, bands=bands, iou_threshold=thr,
                              unmatched="every_band" if every_band else "own_band")
    assert sum(r.n_faces for name, r in result.items() if name != "mid-overlap") > 20
    for name, low, high in bands:
        ap, n_tp, n_det, n_faces = brute_band(detections, truths, low, high, thr, every_band)
        got = result[name]
        assert (got.n_true_positives, got.n_detections, got.n_faces) == (n_tp, n_det, n_faces), name
        if n_faces:
            assert got.average_precision == pytest.approx(ap, abs=1e-12), name


def test_empty_inputs_have_stable_results():
    result = evaluate_by_size([(np.zeros((0, 4)), np.zeros(0))], [np.zeros((0, 4))])
    assert list(result) == ["small", "medium", "large"]
    assert all(r.n_faces == 0 and r.n_detections == 0 and math.isnan(r.precision) for r in result.values())
    assert evaluate_by_size([], [])["small"].n_faces == 0
    missed = evaluate_by_size([(np.zeros((0, 4)), np.zeros(0))], [np.array([box(0, 0, 50, 50)], float)])
    assert missed["medium"].average_precision == 0.0 and missed["medium"].recall == 0.0


def test_face_heights():
    np.testing.assert_array_equal(face_heights([[0, 2, 5, 9], [1, 1, 2, 31]]), [7, 30])
    assert face_heights(np.zeros((0, 4))).shape == (0,)


def test_errors():
    dets, faces = hand_case()
    with pytest.raises(TypeError, match="bands must be a non-empty sequence"):
        evaluate_by_size(dets, faces, bands=())
    with pytest.raises(TypeError, match=r"each band must be \(name, low, high\)"):
        evaluate_by_size(dets, faces, bands=((10, 30),))
    with pytest.raises(ValueError, match="band 'x' needs 0 <= low < high"):
        evaluate_by_size(dets, faces, bands=(("x", 30, 10),))
    with pytest.raises(ValueError, match="band names must differ"):
        evaluate_by_size(dets, faces, bands=(("x", 0, 10), ("x", 10, 20)))
    with pytest.raises(ValueError, match=r"iou_threshold must be in \[0.0, 1.0\]"):
        evaluate_by_size(dets, faces, iou_threshold=1.5)
    with pytest.raises(ValueError, match="unmatched must be one of"):
        evaluate_by_size(dets, faces, unmatched="all")
    with pytest.raises(ValueError, match="one entry per image, got 1 and 2"):
        evaluate_by_size(dets, faces * 2)
    with pytest.raises(ValueError, match=r"ground_truths\[0\] boxes must have shape \(n, 4\)"):
        evaluate_by_size(dets, [np.zeros((2, 3))])
    with pytest.raises(ValueError, match="scores must have one score per box"):
        evaluate_by_size([(dets[0][0], dets[0][1][:2])], faces)
    with pytest.raises(TypeError, match=r"detections\[0\] must be a Detections or a pair"):
        evaluate_by_size([dets[0][0]], faces)
    with pytest.raises(ValueError, match=r"ignore\[0\] must have one flag per face \(2\), got 1"):
        evaluate_by_size(dets, faces, ignore=[np.array([True])])
    with pytest.raises(ValueError, match="ignore must have one entry per image"):
        evaluate_by_size(dets, faces, ignore=[])
    with pytest.raises(TypeError, match="detectors must be a non-empty dict"):
        compare_detectors_by_size({})


# ----------------------------------------------------------------------------- the comparison pipeline
MAGENTA = np.array([255, 0, 255], np.uint8)


def magenta_detector(image):
    """An oracle for the fake scenes below: the bounding box of each connected magenta region."""
    from scipy import ndimage
    mask = np.all(image == MAGENTA, axis=2)
    labels, n = ndimage.label(mask)
    boxes = [[s[1].start, s[0].start, s[1].stop, s[0].stop] for s in ndimage.find_objects(labels)]
    return np.asarray(boxes, float).reshape(-1, 4), np.ones(n)


@pytest.fixture
def fake_sources(monkeypatch):
    """Magenta faces (the whole patch is the face) on black photos: no data, no MTCNN."""
    class Library:
        def __len__(self):
            return 1

        def get(self, index):
            return synthetic.FaceSource(np.tile(MAGENTA, (50, 40, 1)), np.array([0.0, 0.0, 40.0, 50.0]))
    monkeypatch.setattr(synthetic, "_face_library", lambda data_dir: Library())
    monkeypatch.setattr(synthetic, "_backgrounds", lambda data_dir: [np.zeros((300, 300, 3), np.uint8)])


def test_compare_pipeline_with_an_oracle_and_a_blind_detector(fake_sources):
    detectors = {"oracle": magenta_detector, "blind": lambda image: (np.zeros((0, 4)), np.zeros(0))}
    # faces_per_image=(1, 1): one face per scene, so magenta regions never touch
    results = compare_detectors_by_size(detectors, n_images=6, rng=3, include_dlib=False, faces_per_image=(1, 1))
    assert list(results) == ["synthetic"] and list(results["synthetic"]) == ["oracle", "blind"]
    oracle, blind = results["synthetic"]["oracle"]["bands"], results["synthetic"]["blind"]["bands"]
    assert oracle["all"].n_faces == 6 and sum(oracle[b].n_faces for b in ("small", "medium", "large")) == 6
    for name in ("small", "medium", "large", "all"):
        if oracle[name].n_faces:
            assert oracle[name].average_precision == 1.0 and oracle[name].recall == 1.0
        assert oracle[name].n_false_positives == 0
        assert blind[name].n_detections == 0 and blind[name].recall in (0.0,) + ((math.nan,) if False else ())
        assert blind[name].n_faces == oracle[name].n_faces
    table = format_size_table(results)
    assert "small 10-30" in table and "large 120-inf" in table and "oracle" in table and "blind" in table
    assert len(table.splitlines()) == 3 + 2


def test_command_line_reports_missing_data(tmp_path, capsys):
    assert ebs.main(["--data", str(tmp_path), "--n-images", "1"]) == 2
    assert "error:" in capsys.readouterr().err
