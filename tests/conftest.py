"""Shared fixtures: seeded RNG, the optional torch reference, the data in ../shared; CI's skip policy.

``SCRATCHFACE_STRICT_SKIPS=1`` (``.ci/run`` sets it) turns every skip into a failure but the known
ones (:data:`KNOWN_SKIPS`: no GPU / CuPy / numba-cuda on the CI runner, the optional dlib and face-api
peers), so that CI cannot go green with torch or the face sets missing. The run ends with the count
of skips by reason.

Hypothesis runs seeded (profile ``seeded``: the same examples on every run and machine, so that CI
cannot turn red on a draw it never made before); ``SCRATCHFACE_HYPOTHESIS=explore pytest`` searches anew.
"""
import collections
import os
import pathlib
import re

import numpy as np
import pytest
from hypothesis import settings

settings.register_profile("seeded", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("SCRATCHFACE_HYPOTHESIS", "seeded"))

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


# ----------------------------------------------------------------------------- CI's skip policy
#: Skips CI accepts: a CPU-only runner (no CUDA GPU, CuPy or numba-cuda), and the optional peers
#: dlib / face-recognition-models and face-api's tarball. Any other skip (torch, the face sets,
#: ../shared/reference, jupytext, dask...) fails the run when SCRATCHFACE_STRICT_SKIPS=1.
KNOWN_SKIPS = re.compile(r"CuPy|CUDA|GPU|numba\.cuda|NUMBA_ENABLE_CUDASIM|torchvision|dlib|face-recognition-models"
                         r"|FACE_API")


def _skip_reason(report):
    longrepr = report.longrepr
    return str(longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else longrepr)


def _enforce(report):
    if (report.skipped and not hasattr(report, "wasxfail") and os.environ.get("SCRATCHFACE_STRICT_SKIPS") == "1"
            and not KNOWN_SKIPS.search(_skip_reason(report))):
        report.outcome = "failed"
        report.longrepr = f"skip not allowed here (SCRATCHFACE_STRICT_SKIPS=1): {_skip_reason(report)}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _enforce(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _enforce(outcome.get_result())


def pytest_terminal_summary(terminalreporter):
    """``N skipped`` with the count per reason (``.ci/run`` prints it; the reasons are in ``-ra`` above)."""
    skipped = terminalreporter.stats.get("skipped", [])
    counts = collections.Counter(re.sub(r"^Skipped: ", "", _skip_reason(r)) for r in skipped)
    terminalreporter.write_sep("-", f"{len(skipped)} skipped")
    for reason, n in counts.most_common():
        known = "known" if KNOWN_SKIPS.search(reason) else "NOT ALLOWED IN CI"
        terminalreporter.write_line(f"{n:5d}  [{known}] {reason}")
