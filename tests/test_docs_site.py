"""The documentation site's own checks (docs/_ext/scratchface_docs.py), without building the site.

The offline check must find a script, style sheet or font loaded from the network and a dead internal
link in hand-written HTML; the API listing must give every public name a page; README and CI must run
the same docs command.
"""
import importlib
import pathlib
import re
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "docs" / "_ext"))
site = importlib.import_module("scratchface_docs")

PAGE = """<html><head>{head}</head><body><a href="other.html#x">other</a> <a href="https://example.org">out</a>
<img src="_static/demo.png"></body></html>"""


def _site(tmp_path, head="", extra_css=""):
    (tmp_path / "_static").mkdir()
    (tmp_path / "_static" / "demo.png").write_bytes(b"png")
    (tmp_path / "_static" / "theme.css").write_text("body { color: red; }\n" + extra_css)
    (tmp_path / "other.html").write_text("<html></html>")
    (tmp_path / "index.html").write_text(PAGE.format(head=head))
    return tmp_path


def test_a_self_contained_site_passes(tmp_path):
    head = '<script src="_static/demo.png"></script><link rel="stylesheet" href="_static/theme.css">'
    assert site.check_site(_site(tmp_path, head)) == []  # an outgoing <a href="https://..."> is fine: nothing loads it


@pytest.mark.parametrize("head, expected", [
    ('<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js"></script>', "loads https://cdn"),
    ('<link rel="stylesheet" href="//fonts.googleapis.com/css?family=Lato">', "loads //fonts.googleapis.com"),
    ('<link rel="preload" as="font" href="https://example.org/f.woff2">', "loads https://example.org/f.woff2"),
    ('<script src="_static/missing.js"></script>', "dead link _static/missing.js"),
])
def test_a_remote_load_or_a_missing_file_is_reported(tmp_path, head, expected):
    problems = site.check_site(_site(tmp_path, head))
    assert len(problems) == 1 and expected in problems[0], problems


def test_a_style_sheet_importing_a_web_font_is_reported(tmp_path):
    problems = site.check_site(_site(tmp_path, extra_css="@import url('https://fonts.googleapis.com/css2');"))
    assert problems == ["_static/theme.css: loads a style or font from the network"]


def test_a_dead_internal_link_is_reported(tmp_path):
    _site(tmp_path)
    (tmp_path / "other.html").unlink()
    assert site.check_site(tmp_path) == ["index.html: dead link other.html#x"]


def test_every_public_name_has_an_api_page():
    """Each subpackage's lazy ``__all__`` and each public module's ``__all__`` are documented, once."""
    documented, packages, modules = site.collect_api()
    pages = {f"{module}.{name}" for module, names in documented.items() for name, _ in names}
    for package in ("scratchface.layers", "scratchface.losses", "scratchface.detection", "scratchface.recognition",
                    "scratchface.viz", "scratchface.nn", "scratchface.models"):
        exported = importlib.import_module(package).__all__
        assert [name for name, _ in packages[package]] == list(exported)
        assert {target for _, target in packages[package]} <= pages
    from scratchface.detection import nms

    assert ("scratchface.detection.nms" in modules and ("nms", "function") in documented["scratchface.detection.nms"])
    assert nms.__module__ == "scratchface.detection.nms"
    assert len(pages) > 600


def test_readme_and_ci_run_the_same_docs_command():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    command = re.search(r"^sphinx-build .*?docs/_build/html", readme, re.MULTILINE).group(0)
    assert command.startswith("sphinx-build -j auto -W --keep-going")
    assert command.replace("-W --keep-going", "-W --keep-going -q") in ci
    assert 'pip install -e ".[docs]"' in readme and 'pip install -q -e ".[docs]"' in ci


def test_a_docstring_numpydoc_half_understands_becomes_a_sphinx_warning(monkeypatch):
    """numpydoc warns through ``warnings`` (which ``-W`` would not see); the extension sends it to Sphinx's log."""
    import warnings

    pytest.importorskip("sphinx", reason="the docs extra is not installed")
    docscrape = pytest.importorskip("numpydoc.docscrape", reason="the docs extra is not installed")
    import sphinx.util.logging

    logged = []

    class Logger:
        def warning(self, message, *args, **kwargs):
            logged.append(message % args)

    monkeypatch.setattr(sphinx.util.logging, "getLogger", lambda name: Logger())

    def f():
        """Summary.

        Bogus
        -----
        text
        """

    with warnings.catch_warnings():
        site._numpydoc_warnings_to_sphinx()
        docscrape.FunctionDoc(f)
    assert len(logged) == 1 and "Unknown section Bogus" in logged[0], logged
