"""Shared fixtures: seeded RNG, the optional torch reference, the data in ../shared."""
import os
import pathlib

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DIR = REPO.parent / "shared"
DATA_DIR = pathlib.Path(os.environ.get("SCRATCHFACE_DATA", SHARED_DIR / "data"))


@pytest.fixture
def rng():
    """A fresh, seeded generator for every test (no global random state)."""
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def torch():
    """PyTorch (CPU) for cross-checks against autograd; the test skips without it."""
    torch = pytest.importorskip("torch", reason="torch not installed: cross-check against autograd skipped")
    torch.set_default_dtype(torch.float64)
    return torch


@pytest.fixture(scope="session")
def data_dir():
    """``../shared/data`` (or $SCRATCHFACE_DATA); the test skips when it is absent."""
    if not DATA_DIR.is_dir():
        pytest.skip(f"face data not found at {DATA_DIR} (set SCRATCHFACE_DATA)")
    return DATA_DIR


@pytest.fixture(scope="session")
def reference_dir():
    """``../shared/reference`` (lecture facts, MTCNN reference outputs); skip when absent."""
    path = SHARED_DIR / "reference"
    if not path.is_dir():
        pytest.skip(f"reference files not found at {path}")
    return path
