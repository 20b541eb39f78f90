"""The atomic writer: a write killed at any point (SIGKILL) leaves the previous file whole and loadable.

Every file the package writes goes through :mod:`scratchface.data.atomic`; the kill test runs the
package's own writers (``Gallery.save``, ``nn.save``, ``write_reproducible_npz``, the compressed
model writers, ``savefig_atomic``, training checkpoints) in a child process that rewrites each file
in a loop, alternating two versions, and kills it with SIGKILL after a seeded random delay: each file
must then load and equal one of the two versions exactly.
"""
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from scratchface.data.atomic import atomic_write, npz_path, savefig_atomic, savez_atomic

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_atomic_write_replaces_the_file(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with atomic_write(target, "w") as fh:
        fh.write("new")
        assert target.read_text() == "old"  # untouched until the block ends
    assert target.read_text() == "new"
    assert os.listdir(tmp_path) == ["a.txt"]  # no temporary file left


def test_an_error_mid_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "g.npz"
    np.savez(target, x=np.arange(3))
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_write(target) as fh:
            fh.write(b"PK\x03\x04 half a zip")
            raise RuntimeError("disk full")
    with np.load(target) as npz:
        np.testing.assert_array_equal(npz["x"], np.arange(3))
    assert os.listdir(tmp_path) == ["g.npz"]


def test_permissions_of_an_existing_file_are_kept(tmp_path):
    target = tmp_path / "w.npz"
    target.write_bytes(b"x")
    os.chmod(target, 0o640)
    savez_atomic(target, x=np.zeros(2))
    assert os.stat(target).st_mode & 0o777 == 0o640


def test_savez_appends_npz_like_numpy_and_refuses_object_arrays(tmp_path):
    assert npz_path(tmp_path / "w") == str(tmp_path / "w.npz")
    assert savez_atomic(tmp_path / "w", x=np.ones(2)) == str(tmp_path / "w.npz")
    with pytest.raises(ValueError, match="object array"):
        savez_atomic(tmp_path / "w", x=np.array([{}, []], dtype=object))
    with np.load(tmp_path / "w.npz") as npz:  # the refused write left the previous file
        np.testing.assert_array_equal(npz["x"], np.ones(2))


def test_bad_mode_and_missing_folder_are_clear(tmp_path):
    with pytest.raises(ValueError, match="mode"):
        with atomic_write(tmp_path / "a", "a"):
            pass
    with pytest.raises(FileNotFoundError, match="does not exist"):
        with atomic_write(tmp_path / "nope" / "a"):
            pass


def test_savefig_writes_a_png_by_its_extension(tmp_path):
    from matplotlib.figure import Figure  # heavy: only this test draws
    from PIL import Image  # only to read the PNG back

    fig = Figure(figsize=(1, 1))
    fig.add_subplot().plot([0, 1])
    savefig_atomic(fig, tmp_path / "p.png", dpi=20)
    with Image.open(tmp_path / "p.png") as img:
        assert img.format == "PNG"


# ----------------------------------------------------------------------------- the kill test
CHILD = textwrap.dedent("""
    import sys, numpy as np
    from scratchface import nn
    from scratchface.data.atomic import savefig_atomic, savez_atomic
    from scratchface.data.weights import write_reproducible_npz
    from scratchface.recognition.pipeline import Gallery
    from matplotlib.figure import Figure
    folder, size = sys.argv[1], int(sys.argv[2])

    def version(v):
        rng = np.random.default_rng(v)
        return rng.standard_normal(size).astype(np.float32)

    net = nn.Sequential(nn.Dense(size // 64, 64, rng=0))
    opt = nn.SGD(net.parameters(), lr=0.1)
    rng = np.random.default_rng(0)
    fig = Figure(figsize=(4, 4))
    fig.add_subplot().imshow(np.zeros((200, 200)))
    first = True
    v = 0
    while True:
        data = version(v)
        g = Gallery()
        for k in range(size // 128):
            g.add_embedding(f"p{k}", data[128 * k:128 * (k + 1)])
        g.save(folder + "/gallery.npz")
        net.state_dict()["0.weight"][...] = data.reshape(64, -1).T
        nn.save(net, folder + "/net.npz")
        write_reproducible_npz({"w": data}, folder + "/weights.npz", deflate=True)
        savez_atomic(folder + "/model.npz", compress=True, w=data)
        savefig_atomic(fig, folder + "/plot.png", dpi=50 + v % 2)
        nn.save_checkpoint(folder + "/ckpt.npz", net, opt, epoch=v, rng=rng, history={"loss": [float(v)]})
        if first:
            print("ready", flush=True)
            first = False
        v = 1 - v
""")


def _load_all(folder):
    from PIL import Image  # only to read the plot back

    from scratchface import nn
    from scratchface.recognition.pipeline import Gallery

    g = Gallery.load(os.path.join(folder, "gallery.npz"))
    state = nn.load_state(os.path.join(folder, "net.npz"))
    with np.load(os.path.join(folder, "weights.npz"), allow_pickle=False) as npz:
        weights = npz["w"]
    with np.load(os.path.join(folder, "model.npz"), allow_pickle=False) as npz:
        model = npz["w"]
    with Image.open(os.path.join(folder, "plot.png")) as img:
        img.load()
    net = nn.Sequential(nn.Dense(state["0.weight"].shape[0], 64, rng=0))
    nn.load_checkpoint(os.path.join(folder, "ckpt.npz"), net, nn.SGD(net.parameters(), lr=0.1),
                       rng=np.random.default_rng(1))
    return {"gallery": g.embeddings.ravel(), "net": state["0.weight"].T.ravel(), "weights": weights,
            "model": model, "checkpoint": net.state_dict()["0.weight"].T.ravel()}


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(6))
def test_sigkill_at_a_random_point_leaves_every_file_loadable(tmp_path, seed):
    size = 1 << 19  # 2 MB of float32 per file: each write takes milliseconds, so kills land mid-write
    versions = [np.random.default_rng(v).standard_normal(size).astype(np.float32) for v in (0, 1)]
    env = dict(os.environ, PYTHONPATH=REPO, MPLBACKEND="Agg")
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path), str(size)], stdout=subprocess.PIPE,
                             env=env)
    try:
        assert child.stdout.readline().strip() == b"ready"
        time.sleep(np.random.default_rng(seed).uniform(0.0, 0.6))
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    for what, array in _load_all(tmp_path).items():
        assert any(np.array_equal(array, v) for v in versions), what
