"""The embedding trained from scratch on ORL: shipped weights on unseen people, and a tiny smoke run."""
import numpy as np
import pytest

from scratchface.recognition import train_embedding as te


def test_preprocess_orl():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(3, 112, 92), dtype=np.uint8)
    x = te.preprocess_orl(images)
    assert x.shape == (3, 1) + te.INPUT_SIZE and x.dtype == np.float32
    # 2x2 block mean of the top-left block, before the per-image standardisation
    block = images[0, :2, :2].mean() / 255
    half = images[0].reshape(56, 2, 46, 2).mean(axis=(1, 3)) / 255
    padded = np.pad(half, ((0, 0), (1, 1)), mode="edge")
    assert x[0, 0, 0, 1] == pytest.approx((block - padded.mean()) / padded.std(), rel=1e-4)
    np.testing.assert_allclose(x.mean(axis=(1, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(x.std(axis=(1, 2, 3)), 1, rtol=1e-4)
    with pytest.raises(ValueError, match="even H and W"):
        te.preprocess_orl(np.zeros((2, 111, 92)))


def test_augment_is_seeded_shift_and_flip():
    x = np.arange(2 * 1 * 6 * 5, dtype=np.float32).reshape(2, 1, 6, 5)
    a = te.augment(x, np.random.default_rng(1))
    b = te.augment(x, np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)
    plain = te.augment(x, np.random.default_rng(2), max_shift=0)
    for i in range(2):  # without shifts, each image is itself or its mirror image
        assert np.array_equal(plain[i], x[i]) or np.array_equal(plain[i], x[i, :, :, ::-1])


def test_build_embedding_net_shapes():
    for head in ("flatten", "avgpool"):
        net = te.build_embedding_net(channels=(2, 2, 4), embedding_dim=5, head=head, rng=0)
        assert net.output_shape((1,) + te.INPUT_SIZE) == (5,)
    with pytest.raises(ValueError, match="divisible by 8"):
        te.build_embedding_net(input_size=(50, 48))
    with pytest.raises(ValueError, match="head must be one of"):
        te.build_embedding_net(head="mean")


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
    options = (dict(scale=8.0, margin=0.2, batch_size=24) if loss == "arcface"
               else dict(people_per_batch=4, images_per_person=6))

    def run(steps):
        net = te.build_embedding_net(channels=(4, 4, 8), embedding_dim=8, input_size=(16, 16), rng=0)
        before = _all_triplets_loss(net, x, labels)
        net, history = te.train_embedding(x, labels, loss=loss, epochs=steps, lr=1e-2, rng=0, net=net,
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
        te.train_embedding(x, labels, loss="contrastive")
    with pytest.raises(TypeError, match="unknown option"):
        te.train_embedding(x, labels, loss="triplet", scale=30.0)
    with pytest.raises(ValueError, match="loss must be one of"):
        te.pretrained_path("softmax")


@pytest.fixture(scope="module")
def orl_test_people(data_dir):
    from scratchface.data.orl import load_orl_faces

    images, labels = load_orl_faces(data_dir / "orl_faces", subjects=te.TEST_PEOPLE)
    return te.preprocess_orl(images), labels


@pytest.mark.parametrize("loss", ["triplet", "arcface"])
def test_shipped_weights_verify_unseen_people(orl_test_people, loss):
    """The shipped networks (trained on people 1-30) on people 31-40: no retraining here."""
    assert te.pretrained_path(loss).is_file(), "the trained weights must ship with the package"
    x, labels = orl_test_people
    net = te.load_pretrained(loss)
    e = te.embed(net, x)
    assert e.shape == (100, 128)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1, rtol=1e-6)
    r = te.evaluate_embedding(e, labels, rng=0)
    # Measured with the shipped float16 weights: triplet 0.921 accuracy / 0.872 rank-1, ArcFace 0.918 /
    # 0.877; eigenfaces on the same split 0.881 / 0.831. The target of 0.95 is NOT reached
    # (see the training module's docstring); this guards the level reached, above eigenfaces.
    assert r["accuracy"] >= 0.91, r
    assert r["rank1"] >= 0.86, r


def test_command_line_errors(tmp_path, data_dir, capsys):
    assert te.main(["--data", str(tmp_path)]) == 2
    assert "ORL faces not found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        te.main(["--data", str(data_dir), "--loss", "arcface", "--option", "alpha=0.2"])
    assert exit_info.value.code == 2
    assert "the settings of --loss arcface are" in capsys.readouterr().err
