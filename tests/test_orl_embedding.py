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
    templates = rng.standard_normal((people, 1, size, size)).astype(np.float32)
    x = np.repeat(templates, per_person, axis=0) + 0.3 * rng.standard_normal(
        (people * per_person, 1, size, size)).astype(np.float32)
    return x, np.repeat(np.arange(people), per_person)


@pytest.mark.parametrize("loss", ["arcface", "triplet"])
def test_training_smoke_run_loss_falls(loss):
    """A few seeded steps of the real training loop on a tiny network and toy faces."""
    rng = np.random.default_rng(0)
    x, labels = _toy_faces(rng)
    options = (dict(scale=8.0, margin=0.2, batch_size=24) if loss == "arcface"
               else dict(people_per_batch=4, images_per_person=6))
    losses = []
    for seed in (0, 1):  # same seed, same run
        net = te.build_embedding_net(channels=(4, 4, 8), embedding_dim=8, input_size=(16, 16), rng=seed)
        net, history = te.train_embedding(x, labels, loss=loss, epochs=12, lr=5e-3, rng=0, net=net,
                                          progress=False, **options)
        losses.append(history["loss"])
    assert len(losses[0]) == 12 and np.all(np.isfinite(losses[0]))
    first, last = np.mean(losses[0][:3]), np.mean(losses[0][-3:])
    assert last < 0.8 * first, (first, last)
    if loss == "triplet":
        assert sum(history["triplets"]) > 0
    again, _ = te.train_embedding(x, labels, loss=loss, epochs=1, lr=5e-3, rng=0, progress=False,
                                  net=te.build_embedding_net(channels=(4, 4, 8), embedding_dim=8,
                                                             input_size=(16, 16), rng=0), **options)


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
    assert r["accuracy"] >= 0.95, r
    assert r["rank1"] >= 0.90, r
