"""The `scratchface` command line: the README's main job and its exit codes."""
import subprocess
import sys

import pytest

from scratchface.cli import main
from scratchface.gradcheck import collect_gradcheck_cases


def test_every_layer_module_has_gradcheck_cases():
    names = {c.name.split("[")[0].split(" ")[0] for c in collect_gradcheck_cases()}
    for layer in ("conv2d", "dense", "max_pool2d", "avg_pool2d", "l2_pool2d", "relu", "prelu", "maxout",
                  "lrn", "batch_norm", "softmax_cross_entropy", "l2_normalize", "concat"):
        assert any(layer in n for n in names), f"no gradcheck case for {layer}: {sorted(names)}"


def test_gradcheck_command_prints_table_and_passes(capsys):
    code = main(["gradcheck", "--only", "relu", "dense"])
    out = capsys.readouterr().out
    assert "max rel. error" in out and "FAIL" not in out
    assert code == 0
    assert " 0 failed" in out


def test_gradcheck_only_unknown_is_usage_error(capsys):
    assert main(["gradcheck", "--only", "no-such-layer"]) == 2
    assert "no gradcheck case matches" in capsys.readouterr().err


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "gradcheck" in capsys.readouterr().out


def test_console_script_help():
    done = subprocess.run([sys.executable, "-m", "scratchface", "gradcheck", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "central" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "scratchface", "nonsense"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2


@pytest.mark.parametrize("case", collect_gradcheck_cases(), ids=lambda c: c.name)
def test_each_case_passes(case):
    result = case.run()
    assert result.passed, f"{case.name}: {result.errors}"


def test_demo_is_the_main_job(tmp_path, capsys):
    out = tmp_path / "demo.png"
    assert main(["demo", "--out", str(out)]) == 0
    assert out.stat().st_size > 10_000
    printed = capsys.readouterr().out
    assert "face 1" in printed and str(out) in printed


def test_face_commands_are_registered(capsys):
    for command in ("detect", "verify", "identify", "cluster", "demo"):
        with pytest.raises(SystemExit) as done:
            main([command, "--help"])
        assert done.value.code == 0
        assert "usage: scratchface " + command in capsys.readouterr().out
