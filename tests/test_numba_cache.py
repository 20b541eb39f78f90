"""Numba's cache is dropped when any kernel source changes, not only the file that defines a function (#16)."""
from scratchface.kernels import drop_stale_numba_cache


def make(folder, sources, cached):
    (folder / "__pycache__").mkdir(parents=True, exist_ok=True)
    for name, text in sources.items():
        (folder / name).write_text(text)
    for name in cached:
        (folder / "__pycache__" / name).write_bytes(b"machine code")


def test_a_changed_helper_drops_the_cache_of_every_kernel(tmp_path):
    kernels, cuda = tmp_path / "kernels", tmp_path / "kernels" / "cuda"
    make(kernels, {"microkernel.py": "TILE = 16\n", "implicit_conv.py": "from .microkernel import TILE\n"},
         ["implicit_conv.f-10.py311.nbi", "implicit_conv.f-10.py311.1.nbc"])
    make(cuda, {"conv.py": "x = 1\n"}, ["conv.k-3.py311.nbi"])
    folders = (kernels, cuda)
    assert drop_stale_numba_cache(folders)                  # no stamp yet: built from unknown sources
    assert not list(kernels.glob("__pycache__/*.nb?")) and not list(cuda.glob("__pycache__/*.nb?"))
    make(kernels, {}, ["implicit_conv.f-10.py311.nbi"])      # compiled again, sources unchanged: kept
    assert not drop_stale_numba_cache(folders)
    assert (kernels / "__pycache__" / "implicit_conv.f-10.py311.nbi").exists()
    (kernels / "microkernel.py").write_text("TILE = 32\n")  # only the helper changes: the user's cache goes
    assert drop_stale_numba_cache(folders)
    assert not (kernels / "__pycache__" / "implicit_conv.f-10.py311.nbi").exists()
    assert (kernels / "__pycache__" / "kernel-sources.sha256").read_text().strip()
    assert not drop_stale_numba_cache(folders)


def test_a_cache_folder_it_cannot_write_is_left_alone(tmp_path):
    """Where the stamp cannot be written (here ``__pycache__`` is a file: the same ``OSError`` as a read-only
    install, also when the tests run as root), nothing is deleted and the import goes on."""
    kernels = tmp_path / "kernels"
    kernels.mkdir()
    (kernels / "a.py").write_text("x = 1\n")
    (kernels / "__pycache__").write_bytes(b"not a folder")
    assert not drop_stale_numba_cache((kernels,))
    assert (kernels / "__pycache__").read_bytes() == b"not a folder"
