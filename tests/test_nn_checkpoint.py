"""Training resumes: a seeded run killed (SIGKILL) after epoch k and resumed ends with the same weights.

The reference is the same run, uninterrupted, in its own process. The tiny network has Dropout
(a generator held by a module), Adam (per-parameter moments) and a step schedule, so that every
piece of state the checkpoint must carry changes the result if it is lost.
"""
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from scratchface import nn

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EPOCHS = 6
TRAIN = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    from scratchface import nn
    out, checkpoint, kill_after, resume = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
    data = np.random.default_rng(0)
    x = data.standard_normal((96, 10)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    net = nn.Sequential(nn.Dense(10, 16, rng=1), nn.ReLU(), nn.Dropout(0.3, rng=2), nn.Dense(16, 2, rng=3))
    opt = nn.Adam(net.parameters(), lr=1e-2)
    schedule = nn.StepSchedule(opt, step_size=2, gamma=0.5)

    def log(epoch, metrics):
        if epoch == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)  # after epoch k's update, before its checkpoint

    history = nn.fit(net, opt, x, y, epochs=%d, batch_size=16, rng=7, x_val=x[:32], y_val=y[:32],
                     schedule=schedule, progress=False, log=log, checkpoint=checkpoint or None, resume=resume)
    nn.save(net, out)
    np.save(out + ".loss.npy", np.array(history["loss"]))
""" % EPOCHS)


def _train(tmp_path, name, checkpoint="", kill_after=0, resume=False):
    env = dict(os.environ, PYTHONPATH=REPO)
    out = str(tmp_path / f"{name}.npz")
    run = subprocess.run([sys.executable, "-c", TRAIN, out, checkpoint, str(kill_after), "1" if resume else "0"],
                         env=env, capture_output=True, text=True, timeout=300)
    return run, out


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reference")
    run, out = _train(folder, "reference")
    assert run.returncode == 0, run.stderr
    return nn.load_state(out), np.load(out + ".loss.npy")


@pytest.mark.slow
@pytest.mark.parametrize("kill_after", [1, 3, 5])
def test_killed_and_resumed_run_equals_the_uninterrupted_one_bit_for_bit(tmp_path, uninterrupted, kill_after):
    checkpoint = str(tmp_path / "ckpt.npz")
    run, _ = _train(tmp_path, "killed", checkpoint, kill_after=kill_after, resume=True)
    assert run.returncode == -signal.SIGKILL
    if kill_after == 1:  # killed before the first checkpoint: resuming starts afresh
        assert not os.path.exists(checkpoint)
    else:  # the checkpoint of the epoch before the kill is there, whole
        with np.load(checkpoint) as npz:
            assert '"epoch": %d' % (kill_after - 1) in str(npz["meta"])
    run, out = _train(tmp_path, "resumed", checkpoint, resume=True)
    assert run.returncode == 0, run.stderr
    state, reference = nn.load_state(out), uninterrupted[0]
    assert state.keys() == reference.keys()
    for key in reference:
        np.testing.assert_array_equal(state[key], reference[key], err_msg=key)  # exactly, not approximately
    np.testing.assert_array_equal(np.load(out + ".loss.npy"), uninterrupted[1])  # the history carried over


@pytest.mark.slow
def test_losing_the_rng_state_would_change_the_weights(tmp_path, uninterrupted):
    """The test can fail: resuming with fresh generators (state not restored) gives other weights."""
    checkpoint = str(tmp_path / "ckpt.npz")
    run, _ = _train(tmp_path, "killed", checkpoint, kill_after=3, resume=True)
    assert run.returncode == -signal.SIGKILL
    import json
    with np.load(checkpoint) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(str(arrays["meta"]))
    fresh = {k: np.random.default_rng(99).bit_generator.state for k in meta["generators"]}
    meta["generators"] = fresh
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(checkpoint, **arrays)
    run, out = _train(tmp_path, "resumed", checkpoint, resume=True)
    assert run.returncode == 0, run.stderr
    state = nn.load_state(out)
    assert any(not np.array_equal(state[k], uninterrupted[0][k]) for k in state)


def test_resume_without_a_checkpoint_path_is_refused():
    net = nn.Sequential(nn.Dense(2, 2, rng=0))
    with pytest.raises(ValueError, match="checkpoint"):
        nn.fit(net, nn.SGD(net.parameters(), lr=0.1), np.zeros((4, 2), np.float32), np.zeros(4, np.int64),
               epochs=1, progress=False, resume=True)


def test_a_checkpoint_of_another_file_is_a_clear_error(tmp_path):
    net = nn.Sequential(nn.Dense(2, 2, rng=0))
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a training checkpoint"):
        nn.load_checkpoint(bad, net, nn.SGD(net.parameters(), lr=0.1), rng=np.random.default_rng(0))
