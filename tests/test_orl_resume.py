"""``python -m experiments.orl_embedding --checkpoint-dir D --resume``: a killed training continues to the same weights.

A child process trains a small embedding network (both losses) on random faces with a checkpoint
per epoch and kills itself (SIGKILL) right after epoch k's checkpoint; a second child resumes; the
final weights (and ArcFace's centres) equal those of an uninterrupted run bit for bit.
"""
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHILD = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    from scratchface import nn
    from scratchface.models.orl_nets import INPUT_SIZE
    from experiments.orl_embedding import train_embedding
    from scratchface.models.orl_nets import build_embedding_net
    loss, out, checkpoint, kill_after = sys.argv[1], sys.argv[2], sys.argv[3] or None, int(sys.argv[4])
    real = nn.save_checkpoint

    def save_then_die(*args, **kwargs):
        real(*args, **kwargs)
        if kwargs["epoch"] == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    nn.save_checkpoint = save_then_die
    data = np.random.default_rng(0)
    x = data.standard_normal((40, 1) + tuple(INPUT_SIZE)).astype(np.float32)
    labels = np.repeat(np.arange(10), 4)
    net = build_embedding_net(channels=(4, 4, 4), embedding_dim=16, rng=5)
    options = dict(batch_size=20) if loss == "arcface" else dict(people_per_batch=5, images_per_person=4)
    net, history = train_embedding(x, labels, loss=loss, epochs=4, rng=5, net=net, progress=False,
                                   checkpoint=checkpoint, resume=True, **options)
    nn.save(net, out)
    np.save(out + ".loss.npy", np.array(history["loss"]))
""")


def _run(tmp_path, loss, name, checkpoint="", kill_after=0):
    out = str(tmp_path / f"{name}.npz")
    run = subprocess.run([sys.executable, "-c", CHILD, loss, out, checkpoint, str(kill_after)],
                         env=dict(os.environ, PYTHONPATH=REPO), capture_output=True, text=True, timeout=600)
    return run, out


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["triplet", "arcface"])
def test_killed_training_resumes_to_the_same_weights(tmp_path, loss):
    from scratchface import nn

    run, reference = _run(tmp_path, loss, "reference")
    assert run.returncode == 0, run.stderr
    checkpoint = str(tmp_path / "ckpt.npz")
    run, _ = _run(tmp_path, loss, "killed", checkpoint, kill_after=2)
    assert run.returncode == -signal.SIGKILL, run.stderr
    run, resumed = _run(tmp_path, loss, "resumed", checkpoint)
    assert run.returncode == 0, run.stderr
    a, b = nn.load_state(reference), nn.load_state(resumed)
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    np.testing.assert_array_equal(np.load(reference + ".loss.npy"), np.load(resumed + ".loss.npy"))
