"""The kernels with the other register tile (#16).

``scratchface.kernels.microkernel`` picks its tile by the CPU Numba compiles for: 12 rows by two AVX-512
registers (32 float32) where the CPU has AVX-512, 6 rows by two AVX registers (16 float32) where not. The
suite runs with the tile of the machine it runs on; this test runs the micro-kernel's and the convolution
routes' equality tests again with the other tile (``SCRATCHFACE_VECTOR_BYTES``), in a child process with a
Numba cache of its own, so that both tiles are checked on every machine.
"""
import os
import subprocess
import sys
from pathlib import Path

from scratchface.kernels import microkernel

ROOT = Path(__file__).resolve().parents[1]
SHOW_TILE = "from scratchface.kernels import microkernel as m; print(m.VECTOR_BYTES, m.TILE_ROWS)"


def test_the_other_tile_passes_the_kernel_tests(tmp_path):
    other = 32 if microkernel.VECTOR_BYTES == 64 else 64
    env = dict(os.environ, SCRATCHFACE_VECTOR_BYTES=str(other), NUMBA_CACHE_DIR=str(tmp_path))
    shown = subprocess.run([sys.executable, "-c", SHOW_TILE], cwd=ROOT, env=env, capture_output=True, text=True)
    assert shown.stdout.split() == [str(other), "12" if other == 64 else "6"], shown.stderr
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                          "tests/test_microkernel.py", "tests/test_conv_fused.py",
                          "-k", "not winograd"],             # Winograd's transforms have their own vectors
                         cwd=ROOT, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]


def test_the_vector_width_must_be_32_or_64():
    env = dict(os.environ, SCRATCHFACE_VECTOR_BYTES="48")
    run = subprocess.run([sys.executable, "-c", "import scratchface.kernels.microkernel"], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    assert run.returncode != 0 and "SCRATCHFACE_VECTOR_BYTES must be 32 or 64, got '48'" in run.stderr


def test_a_named_target_cpu_gets_the_avx2_tile():
    """``NUMBA_CPU_NAME=generic`` (Numba's portable caches): the registers of the target are not the host's, so
    the tile that needs only 16 vector registers."""
    env = dict(os.environ, NUMBA_CPU_NAME="generic")
    env.pop("SCRATCHFACE_VECTOR_BYTES", None)
    shown = subprocess.run([sys.executable, "-c", SHOW_TILE], cwd=ROOT, env=env, capture_output=True, text=True)
    assert shown.stdout.split() == ["32", "6"], shown.stderr
