"""The training loop: seeded batches, a run that learns, reproducibility, progress bar, bad input."""
import numpy as np
import pytest

from scratchface import nn


def _blobs(rng, n=60):
    """Two well separated Gaussian blobs in 5-D, labels 0 / 1."""
    y = np.arange(n) % 2
    x = rng.standard_normal((n, 5)) * 0.5 + np.where(y[:, None] == 1, 2.0, -2.0)
    return x.astype(np.float32), y.astype(np.int64)


def _mlp(seed):
    rng = np.random.default_rng(seed)
    return nn.Sequential(nn.Dense(5, 8, rng=rng), nn.ReLU(), nn.Dense(8, 2, rng=rng))


def test_iterate_minibatches_covers_each_sample_once_and_is_seeded():
    batches = list(nn.iterate_minibatches(10, 4, 7))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(np.concatenate(batches).tolist()) == list(range(10))
    again = list(nn.iterate_minibatches(10, 4, np.random.default_rng(7)))
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))
    assert [len(b) for b in nn.iterate_minibatches(10, 4, 0, drop_last=True)] == [4, 4]
    assert np.array_equal(np.concatenate(list(nn.iterate_minibatches(5, 2, shuffle=False))), np.arange(5))


def test_fit_learns_separable_data_and_records_history(rng):
    x, y = _blobs(rng)
    model = _mlp(0)
    opt = nn.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = nn.StepSchedule(opt, step_size=2, gamma=0.5)
    history = nn.fit(model, opt, x[:40], y[:40], epochs=4, batch_size=8, rng=1, x_val=x[40:], y_val=y[40:],
                     schedule=sched, progress=False)
    assert set(history) == {"loss", "accuracy", "lr", "time", "val_loss", "val_accuracy"}
    assert all(len(v) == 4 for v in history.values())
    assert history["lr"] == pytest.approx([0.1, 0.1, 0.05, 0.05])
    assert history["loss"][-1] < history["loss"][0]
    assert history["val_accuracy"][-1] == 1.0
    loss, acc = nn.evaluate(model, x[40:], y[40:])
    assert acc == 1.0 and loss == pytest.approx(history["val_loss"][-1])
    assert not model.training
    assert nn.predict(model, x[:3]).shape == (3, 2)


def test_fit_is_reproducible_with_a_seed(rng):
    x, y = _blobs(rng)
    runs = []
    for _ in range(2):
        model = _mlp(3)
        h = nn.fit(model, nn.Adam(model.parameters(), lr=1e-2), x, y, epochs=2, batch_size=16, rng=5,
                   progress=False)
        runs.append((h["loss"], model[0].weight.data.copy()))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


def test_progress_bar_and_log(rng, capsys):
    x, y = _blobs(rng, 20)
    model = _mlp(0)
    logged = []
    nn.fit(model, nn.AdaGrad(model.parameters(), lr=0.1), x, y, epochs=2, batch_size=5, rng=0, progress=True,
           log=lambda epoch, m: logged.append((epoch, m["loss"])))
    assert "epoch 2/2" in capsys.readouterr().err
    assert [e for e, _ in logged] == [1, 2]
    nn.fit(model, nn.AdaGrad(model.parameters(), lr=0.1), x, y, epochs=1, rng=0, progress=False)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_fit_bad_input(rng):
    x, y = _blobs(rng, 10)
    model = _mlp(0)
    opt = nn.SGD(model.parameters(), lr=0.1)
    with pytest.raises(TypeError, match="model must be a scratchface.nn Module"):
        nn.fit(lambda v: v, opt, x, y, epochs=1)
    with pytest.raises(TypeError, match="optimizer must be a scratchface.nn Optimizer"):
        nn.fit(model, "sgd", x, y, epochs=1)
    with pytest.raises(ValueError, match=r"y must have one label per sample \(10\), got 9"):
        nn.fit(model, opt, x, y[:9], epochs=1)
    with pytest.raises(TypeError, match="y must have a signed integer or unsigned integer dtype"):
        nn.fit(model, opt, x, y.astype(np.float32), epochs=1)
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        nn.fit(model, opt, x, y, epochs=0)
    with pytest.raises(ValueError, match="give both x_val and y_val"):
        nn.fit(model, opt, x, y, epochs=1, x_val=x)
    with pytest.raises(ValueError, match="schedule_per must be 'epoch' or 'batch'"):
        nn.fit(model, opt, x, y, epochs=1, schedule_per="step")
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        list(nn.iterate_minibatches(10, 0))
