"""Each subpackage exports its public names: complete, the same objects as in their modules, imported lazily."""
import importlib
import json
import pathlib
import pkgutil
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]

PACKAGES = ("layers", "losses", "detection", "recognition", "viz")
# names defined by more than one module of a package (or every module): reached through their modules
NOT_EXPORTED = {"gradcheck_cases", "IGNORED", "METHODS", "DEFAULT_THRESHOLD"}


def _public_modules(package):
    return [importlib.import_module(f"{package.__name__}.{m.name}")
            for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith("_") and not m.ispkg]


@pytest.mark.parametrize("name", PACKAGES)
def test_every_public_name_of_every_module_is_exported_as_the_same_object(name):
    package = importlib.import_module(f"scratchface.{name}")
    exported = set(package.__all__)
    for module in _public_modules(package):
        for public in getattr(module, "__all__", []):
            if public in NOT_EXPORTED:
                continue
            assert public in exported, f"scratchface.{name} does not export {module.__name__}.{public}"
            assert getattr(package, public) is getattr(module, public), f"{name}.{public} is another object"
    assert exported <= set(dir(package))
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        package.no_such_name  # noqa: B018


def test_the_detection_names_of_the_issue_are_the_functions():
    from scratchface.detection import detect_faces, detect_faces_hog, iou, nms

    assert [f.__name__ for f in (detect_faces, detect_faces_hog, nms, iou)] == \
        ["detect_faces", "detect_faces_hog", "nms", "iou"]
    assert callable(nms) and not hasattr(nms, "__path__")


def test_importing_every_subpackage_stays_light():
    """The exports are lazy: importing the packages pulls in none of Numba, torch, CuPy, matplotlib."""
    script = ("import json, sys, time; t = time.perf_counter()\n"
              "import scratchface.layers, scratchface.losses, scratchface.detection, scratchface.recognition, "
              "scratchface.viz, scratchface.nn, scratchface.models\n"
              "print(json.dumps({'s': time.perf_counter() - t, 'heavy': sorted(k for k in sys.modules "
              "if k.split('.')[0] in ('numba', 'torch', 'cupy', 'matplotlib'))}))")
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["heavy"] == []
