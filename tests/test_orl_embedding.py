"""The embedding trained from scratch on ORL: shipped weights on unseen people, and a tiny smoke run."""
import numpy as np
import pytest

import experiments.orl_embedding as xoe
from scratchface.data import orl
from scratchface.models import orl_nets
from scratchface.recognition import orl_embedding as oe
from scratchface.recognition import orl_preprocessing
from scratchface.recognition.augment import augment
from scratchface.recognition.verification import evaluate_embedding

#: (10-fold accuracy, rank-1) floors on ORL people 31-40 for the shipped weights, a margin below the measured values
#: (measured: triplet 0.921 / 0.872, ArcFace 0.918 / 0.877; eigenfaces 0.881 / 0.831). The issue's target of
#: 0.95 is NOT reached (docs/results.md, Recognition): this guards the level reached, above eigenfaces.
#: docs/weights.md / docs/results.md: 92.1% / 91.8% 10-fold accuracy, rank-1 87.2% / 87.7% on people 31-40
QUOTED = {"triplet": (0.921, 0.872), "arcface": (0.918, 0.877)}


def test_preprocess_orl():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(3, 112, 92), dtype=np.uint8)
    x = orl_preprocessing.preprocess_orl(images)
    assert x.shape == (3, 1) + orl.INPUT_SIZE and x.dtype == np.float32
    # 2x2 block mean of the top-left block, before the per-image standardisation
    block = images[0, :2, :2].mean() / 255
    half = images[0].reshape(56, 2, 46, 2).mean(axis=(1, 3)) / 255
    padded = np.pad(half, ((0, 0), (1, 1)), mode="edge")
    assert x[0, 0, 0, 1] == pytest.approx((block - padded.mean()) / padded.std(), rel=1e-4)
    np.testing.assert_allclose(x.mean(axis=(1, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(x.std(axis=(1, 2, 3)), 1, rtol=1e-4)
    with pytest.raises(ValueError, match="even H and W"):
        orl_preprocessing.preprocess_orl(np.zeros((2, 111, 92)))


def test_preprocess_orl_aligned_on_the_template_is_a_centred_copy():
    """Landmarks already where the template wants them (2 px narrower image): no warp, edges repeated."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(2, 112, 92), dtype=np.uint8)
    landmarks = np.stack([orl.ORL_TEMPLATE - [2.0, 0.0], np.full((5, 2), np.nan)])  # 2nd: no face found
    x = orl_preprocessing.preprocess_orl(images, landmarks)
    assert x.shape == (2, 1) + orl.INPUT_SIZE
    for k in range(2):
        wide = np.pad(images[k] / 255, ((0, 0), (2, 2)), mode="edge").reshape(56, 2, 48, 2).mean(axis=(1, 3))
        np.testing.assert_allclose(x[k, 0], (wide - wide.mean()) / wide.std(), atol=2e-5)
    with pytest.raises(ValueError, match=r"landmarks must have shape \(N, 5, 2\)"):
        orl_preprocessing.preprocess_orl(images, landmarks[:1])


def test_preprocess_orl_alignment_undoes_a_shift_and_a_zoom():
    """A smooth image and a copy zoomed 1.25x about a point: after alignment on the moved landmarks they agree."""
    from scratchface.detection.align import warp_affine

    yy, xx = np.mgrid[0:112, 0:92]
    image = 128 + 60 * np.sin(xx / 9.0) * np.cos(yy / 13.0)
    zoom = np.array([[1.25, 0, -10.0], [0, 1.25, -8.0], [0, 0, 1]])
    zoomed = warp_affine(image, zoom, (112, 92))
    points = orl.ORL_TEMPLATE - [2.0, 0.0]
    moved = points * 1.25 + [-10.0, -8.0]
    x = orl_preprocessing.preprocess_orl(np.stack([image, zoomed]) / 255, np.stack([points, moved]))
    inner = (slice(12, 44), slice(12, 36))            # away from the borders the zoom pushed out

    def standardised(a):  # the borders differ, hence the whole-image standardisation: redo it inside
        return (a[inner] - a[inner].mean()) / a[inner].std()

    np.testing.assert_allclose(standardised(x[1, 0]), standardised(x[0, 0]), atol=0.02)
    unaligned = orl_preprocessing.preprocess_orl(np.stack([image, zoomed]) / 255)
    assert np.abs(standardised(unaligned[1, 0]) - standardised(unaligned[0, 0])).max() > 0.5


def test_augment_is_seeded_shift_and_flip():
    x = np.arange(2 * 1 * 6 * 5, dtype=np.float32).reshape(2, 1, 6, 5)
    a = augment(x, np.random.default_rng(1))
    b = augment(x, np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)
    plain = augment(x, np.random.default_rng(2), max_shift=0)
    for i in range(2):  # without shifts, each image is itself or its mirror image
        assert np.array_equal(plain[i], x[i]) or np.array_equal(plain[i], x[i, :, :, ::-1])


def test_augment_affine_path_and_erasing():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 1, 16, 12)).astype(np.float32)
    shifted = augment(x, np.random.default_rng(3), max_shift=2)
    # the warp with (almost) no rotation and zoom draws the same shifts and flips: the same images
    warped = augment(x, np.random.default_rng(3), max_shift=2, max_rotation=1e-9, max_scale=1e-9)
    np.testing.assert_allclose(warped, shifted, atol=1e-5)
    # a round blob centred in the image: rotations leave it (nearly) as it is, zooms do not
    yy, xx = np.mgrid[0:15, 0:15]
    blob = np.exp(-((yy - 7) ** 2 + (xx - 7) ** 2) / 12.0)[None, None].repeat(4, axis=0).astype(np.float32)
    turned = augment(blob, np.random.default_rng(0), max_shift=0, max_rotation=45, flip=False)
    np.testing.assert_allclose(turned, blob, atol=0.04)          # bilinear smoothing at the peak
    zoomed = augment(blob, np.random.default_rng(0), max_shift=0, max_scale=0.3, flip=False)
    assert np.abs(zoomed - blob).max() > 0.1
    erased = augment(x, np.random.default_rng(4), max_shift=0, flip=False, erase=1.0)
    zeros = (erased == 0).mean(axis=(1, 2, 3))
    assert np.all(zeros >= (2 * 1) / (16 * 12)) and np.all(zeros <= 0.25 + 1e-9)
    np.testing.assert_array_equal(erased[erased != 0], x[erased != 0])


def test_build_embedding_net_shapes():
    for head in ("flatten", "avgpool"):
        net = orl_nets.build_embedding_net(channels=(2, 2, 4), embedding_dim=5, head=head, rng=0)
        assert net.output_shape((1,) + orl.INPUT_SIZE) == (5,)
    with pytest.raises(ValueError, match="divisible by 8"):
        orl_nets.build_embedding_net(input_size=(50, 48))
    with pytest.raises(ValueError, match="head must be one of"):
        orl_nets.build_embedding_net(head="mean")


def _toy_faces(rng, people=4, per_person=6, size=16):
    """Smooth, mirror-symmetric random "faces" (so that shifts and flips keep the identity), plus noise."""
    coarse = rng.standard_normal((people, 1, size // 4, size // 4))
    coarse = coarse + coarse[..., ::-1]
    templates = np.kron(coarse, np.ones((4, 4)))
    x = np.repeat(templates, per_person, axis=0) + 0.7 * rng.standard_normal((people * per_person, 1, size, size))
    return x.astype(np.float32), np.repeat(np.arange(people), per_person)


def _all_triplets_loss(net, x, labels):
    """FaceNet's loss over every valid triplet of the set (no mining), on batch-statistics features."""
    from scratchface.losses.mining import batch_all_triplets
    from scratchface.losses.triplet import triplet_loss

    net.train()
    e = net.forward(x).astype(np.float64)
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    a, p, n = batch_all_triplets(e, labels)
    return triplet_loss(e[a], e[p], e[n], alpha=0.2)


@pytest.mark.parametrize("loss", ["arcface", "triplet"])
def test_training_smoke_run_loss_falls(loss):
    """A few seeded steps of the real training loop on a tiny network and toy faces."""
    rng = np.random.default_rng(0)
    x, labels = _toy_faces(rng)
    options = ({"scale": 8.0, "margin": 0.2, "batch_size": 24} if loss == "arcface"
               else {"people_per_batch": 4, "images_per_person": 6})

    def run(steps):
        net = orl_nets.build_embedding_net(channels=(4, 4, 8), embedding_dim=8, input_size=(16, 16), rng=0)
        before = _all_triplets_loss(net, x, labels)
        net, history = xoe.train_embedding(x, labels, loss=loss, epochs=steps, lr=1e-2, rng=0, net=net,
                                          progress=False, **options)
        return before, _all_triplets_loss(net, x, labels), history

    before, after, history = run(8)
    losses = history["loss"]
    assert len(losses) == 8 and np.all(np.isfinite(losses))
    # the mined loss is averaged over changing triplets; the loss over all triplets must fall
    assert after < 0.8 * before, (before, after)
    if loss == "arcface":
        assert np.mean(losses[-2:]) < np.mean(losses[:2]), losses
    else:
        assert sum(history["triplets"]) > 0
    assert run(2)[2]["loss"] == run(2)[2]["loss"]  # seeded: the same run twice


def test_training_errors():
    x, labels = _toy_faces(np.random.default_rng(0))
    with pytest.raises(ValueError, match="loss must be one of"):
        xoe.train_embedding(x, labels, loss="contrastive")
    with pytest.raises(TypeError, match="unknown option"):
        xoe.train_embedding(x, labels, loss="triplet", scale=30.0)
    with pytest.raises(ValueError, match="loss must be one of"):
        oe.pretrained_path("softmax")


@pytest.fixture(scope="module")
def orl_test_people(data_dir):
    from scratchface.data.orl import load_orl_faces

    images, labels = load_orl_faces(data_dir / "orl_faces", subjects=orl.TEST_PEOPLE)
    landmarks = orl_preprocessing.orl_landmarks(images) if any(oe.PRETRAINED[k]["aligned"] for k in oe.LOSSES) else None
    return images, landmarks, labels


def test_orl_landmarks_are_plausible(orl_test_people):
    images = orl_test_people[0][::5]                  # 20 images of the 10 people (MTCNN: ~0.1 s each)
    landmarks = orl_preprocessing.orl_landmarks(images)
    assert landmarks.shape == (20, 5, 2) and not np.isnan(landmarks).any()    # MTCNN finds every face
    eyes, mouth = landmarks[:, :2], landmarks[:, 3:]
    assert np.all(eyes[:, 0, 0] < eyes[:, 1, 0]) and np.all(mouth[:, 0, 0] < mouth[:, 1, 0])   # left < right
    assert np.all(eyes[..., 1].max(axis=1) < mouth[..., 1].min(axis=1))                         # eyes above mouth
    assert np.all((landmarks[..., 0] > -2) & (landmarks[..., 0] < 94) & (landmarks[..., 1] > 20)
                  & (landmarks[..., 1] < 112))       # inside the 92 x 112 image (a cheek may touch its edge)


@pytest.mark.readme_figure("ORL: 92.1% / 91.8% (single triplet / ArcFace)")
@pytest.mark.parametrize("loss", ["triplet", "arcface"])
def test_shipped_weights_verify_unseen_people(orl_test_people, loss):
    """The shipped networks (trained on people 1-30) on people 31-40: no retraining here."""
    assert oe.pretrained_path(loss).is_file(), "the trained weights must ship with the package"
    images, landmarks, labels = orl_test_people
    e = oe.embed_orl(images, loss, landmarks=landmarks)
    assert e.shape == (100, oe.PRETRAINED[loss]["net"].get("embedding_dim", 128))
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1, rtol=1e-6)
    r = evaluate_embedding(e, labels, rng=0)
    accuracy, rank1 = QUOTED[loss]  # deterministic: the figures docs/weights.md quotes, at their precision (0.1 %)
    assert round(float(r["accuracy"]), 3) == accuracy, r
    assert round(float(r["rank1"]), 3) == rank1, r


def test_shipped_weights_are_checked(tmp_path):
    """The SHA-256 of the shipped files is recorded; a modified copy is refused, an unchecked one loads."""
    from scratchface.data.weights import sha256_of_file

    for loss in ("triplet", "arcface"):
        assert sha256_of_file(oe.pretrained_path(loss)) == oe.PRETRAINED[loss]["sha256"]
        for seed, digest in oe.PRETRAINED[loss]["ensemble"].items():
            assert sha256_of_file(oe.pretrained_path(loss, seed)) == digest, (loss, seed)
    raw = bytearray(oe.pretrained_path("arcface").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    bad = tmp_path / "bad.npz"
    bad.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="corrupt or modified"):
        oe.load_pretrained("arcface", bad, sha256=oe.PRETRAINED["arcface"]["sha256"])
    with pytest.raises(FileNotFoundError, match="not found"):
        oe.load_pretrained("arcface", tmp_path / "missing.npz")
    # a retrained file of the same architecture (here: the shipped one re-saved) loads without a checksum
    net = oe.load_pretrained("triplet")
    again = oe.load_pretrained("triplet", oe.save_weights(net, tmp_path / "mine.npz"))
    for (name, a), b in zip(net.state_dict().items(), again.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    first = sha256_of_file(tmp_path / "mine.npz")
    oe.save_weights(net, tmp_path / "again.npz")
    assert sha256_of_file(tmp_path / "again.npz") == first    # byte for byte: the file depends on the weights only


def test_command_line_errors(tmp_path, data_dir, capsys):
    assert xoe.main(["--data", str(tmp_path)]) == 2
    assert "ORL faces not found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        xoe.main(["--data", str(data_dir), "--loss", "arcface", "--option", "alpha=0.2"])
    assert exit_info.value.code == 2
    assert "the settings of --loss arcface are" in capsys.readouterr().err


# ----------------------------------------------------------------------------- ensembles

def _tiny_net(seed):
    return orl_nets.build_embedding_net(channels=(2, 2, 4), embedding_dim=6, input_size=(16, 16), rng=seed).eval()


def test_embed_ensemble_distance_is_the_mean_of_the_members():
    """||e - e'||^2 of the ensemble = mean over members of their own squared distances (unit embeddings)."""
    x = np.random.default_rng(0).standard_normal((5, 1, 16, 16)).astype(np.float32)
    nets = [_tiny_net(0), _tiny_net(1), _tiny_net(2)]
    e = oe.embed_ensemble(nets, x)
    assert e.shape == (5, 18)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1, rtol=1e-12)
    members = [oe.embed_with_net(net, x) for net in nets]
    for i, j in [(0, 1), (2, 4), (3, 0)]:
        expected = np.mean([np.sum((m[i] - m[j]) ** 2) for m in members])
        assert np.sum((e[i] - e[j]) ** 2) == pytest.approx(expected, rel=1e-10)
    # each block is the member's own embedding scaled by 1/sqrt(K): the members are never added
    np.testing.assert_allclose(e[:, 6:12] * np.sqrt(3), members[1], rtol=1e-10)
    np.testing.assert_allclose(oe.embed_ensemble(nets[:1], x), members[0], rtol=1e-12)
    with pytest.raises(TypeError, match="non-empty sequence"):
        oe.embed_ensemble([], x)
    with pytest.raises(TypeError, match="non-empty sequence"):
        oe.embed_ensemble(nets[0], x)
    with pytest.raises(TypeError, match=r"nets\[1\] must be a scratchface.nn.Module"):
        oe.embed_ensemble([nets[0], "net"], x)


def test_train_ensemble_members_are_the_seeded_single_runs():
    x, labels = _toy_faces(np.random.default_rng(0))
    options = {"max_steps": 2, "lr": 1e-2}           # 'both': loss-specific options are refused
    tiny = {"channels": (2, 2, 4), "embedding_dim": 6, "input_size": (16, 16)}
    nets, histories = xoe.train_ensemble(x, labels, loss="both", seeds=(3, 0), architecture=tiny,
                                        progress=False, **options)
    assert [(h["loss_name"], h["seed"]) for h in histories] == [("triplet", 3), ("triplet", 0),
                                                               ("arcface", 3), ("arcface", 0)]
    single, _ = xoe.train_embedding(x, labels, loss="triplet", rng=0, progress=False,
                                   net=orl_nets.build_embedding_net(rng=0, **tiny), **options)
    for (name, a), b in zip(single.state_dict().items(), nets[1].state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    first = nets[0].state_dict()
    assert any(not np.array_equal(first[k], v) for k, v in nets[1].state_dict().items())   # seeds differ
    with pytest.raises(ValueError, match="seeds must be distinct"):
        xoe.train_ensemble(x, labels, seeds=(1, 1))
    with pytest.raises(ValueError, match="loss must be one of"):
        xoe.train_ensemble(x, labels, loss="all")


def test_ensemble_paths_and_loading_errors():
    assert oe.pretrained_path("arcface", 0).name == "orl_embedding_arcface.npz"
    assert oe.pretrained_path("triplet", 3).name == "orl_embedding_triplet_seed3.npz"
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        oe.pretrained_path("triplet", -1)
    with pytest.raises(ValueError, match="shipped ensemble member"):
        oe.load_pretrained("triplet", seed=99)
    with pytest.raises(ValueError, match="loss must be one of"):
        oe.embed_orl(np.zeros((1, 112, 92), np.uint8), "both")       # 'both' only with ensemble=True


#: (10-fold accuracy, rank-1) floors on people 31-40 for the shipped ensemble (seeds 0-4, chosen on people 21-30),
#: measured 0.923 / 0.902: the rank-1 floor is above the single network's 0.872. Still below the issue's 0.95.
ENSEMBLE_FLOORS = {"triplet": (0.915, 0.89)}


@pytest.mark.readme_figure("ORL: 92.3% (triplet ensemble)")
@pytest.mark.parametrize("loss", sorted(ENSEMBLE_FLOORS))
def test_shipped_ensemble_verifies_unseen_people(orl_test_people, loss):
    images, landmarks, labels = orl_test_people
    assert oe.PRETRAINED[loss]["ensemble"], "the ensemble's members must ship"
    e = oe.embed_orl(images, loss, landmarks=landmarks, ensemble=True)
    assert e.shape == (100, 128 * (1 + len(oe.PRETRAINED[loss]["ensemble"])))
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1, rtol=1e-6)
    r = evaluate_embedding(e, labels, rng=0)
    accuracy, rank1 = ENSEMBLE_FLOORS[loss]
    assert r["accuracy"] >= accuracy, r
    assert r["rank1"] >= rank1, r
    assert round(float(r["accuracy"]), 3) == 0.923, r  # deterministic: docs/weights.md 92.3%, at its precision


def test_command_line_ensemble_errors(data_dir, capsys):
    for argv, message in [(["--loss", "both"], "--loss both needs --ensemble"),
                          (["--ensemble", "2", "--seeds", "0,1"], "not both"),
                          (["--ensemble", "0"], "--ensemble must be"),
                          (["--seeds", "0,0"], "distinct non-negative"),
                          (["--loss", "both", "--ensemble", "2", "--option", "margin=0.3"],
                           "the settings of --loss both are")]:
        with pytest.raises(SystemExit) as exit_info:
            xoe.main(["--data", str(data_dir)] + argv)
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err, argv


def test_shift_images_moves_by_whole_pixels_repeating_the_border():
    from scratchface.recognition.augment import shift_images

    x = np.arange(12, dtype=np.float32).reshape(1, 1, 3, 4)
    down = shift_images(x, 1, 0)                 # down one row: the first row repeated on top
    np.testing.assert_array_equal(down[0, 0], [[0, 1, 2, 3], [0, 1, 2, 3], [4, 5, 6, 7]])
    left = shift_images(x, 0, -2)                # left two columns: the last column repeated on the right
    np.testing.assert_array_equal(left[0, 0], [[2, 3, 3, 3], [6, 7, 7, 7], [10, 11, 11, 11]])


def test_normalize_rows_gives_unit_rows_and_leaves_zero_rows():
    from scratchface.distances import normalize_rows

    out = normalize_rows(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])
