"""Sphinx glue for the scratchface site: sources the site reads from elsewhere, and the offline check.

At ``builder-inited`` it writes (only files whose content changed, so incremental builds stay cheap):

* ``lectures/NN_*.py``: the lecture notebooks ``notebooks/0*.py`` (jupytext percent files, executed
  by myst-nb), and ``assignments/NN_*.py``: the student versions ``notebooks/assignments/*.py``
  (instructions and ``TODO`` cells, no solutions; shown, not executed);
* ``api/generated/``: one page per public module (its docstring and a table of its ``__all__``) and one
  page per public name (autodoc of the object, its docstring parsed by numpydoc). Docstrings stay the
  single source: the pages hold nothing but directives;
* ``benchmarks_generated.md``: each ``benchmarks/bench_*.py`` with its module docstring.

Public means: listed in the ``__all__`` of a module whose dotted path has no ``_``-prefixed part. A name
is documented in the module that defines it (``obj.__module__``) when that module is public and lists it,
else in the first public module listing it. Every name of every subpackage's ``__all__`` (the lazy
exports of ``scratchface._lazy``) must be documented somewhere, or the build stops.

At ``build-finished`` it checks the HTML (:func:`check_site`): no script, style sheet, font or image
loaded from an ``http(s)`` URL (the site must work without internet), and no link to a page or file of
the site that is not there. Any problem fails the build.
"""
from __future__ import annotations

import ast
import importlib
import inspect
import pathlib
import pkgutil
import re
import shutil
from html.parser import HTMLParser
from urllib.parse import unquote, urlsplit

DOCS = pathlib.Path(__file__).resolve().parents[1]
REPO = DOCS.parent
PACKAGE = "scratchface"


# ----------------------------------------------------------------------------------------- writing files
def _write_if_changed(path: pathlib.Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def _sync_folder(folder: pathlib.Path, files: dict) -> None:
    """Make ``folder`` hold exactly ``files`` (name -> text), rewriting only what changed."""
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.iterdir():
        if stale.is_file() and stale.name not in files:
            stale.unlink()
        elif stale.is_dir() and stale.name not in (".ipynb_checkpoints",):
            shutil.rmtree(stale)
    for name, text in files.items():
        _write_if_changed(folder / name, text)


def copy_notebooks() -> None:
    """The lectures and the student assignments, copied from ``notebooks/`` (the sources stay there)."""
    nb = REPO / "notebooks"
    _sync_folder(DOCS / "lectures", {p.name: p.read_text(encoding="utf-8") for p in sorted(nb.glob("0*.py"))})
    _sync_folder(DOCS / "assignments",
                 {p.name: p.read_text(encoding="utf-8") for p in sorted((nb / "assignments").glob("0*.py"))})


# ----------------------------------------------------------------------------------------------- the API
def public_modules() -> list[str]:
    """Dotted names of the package's public modules and subpackages, in walk order."""
    package = importlib.import_module(PACKAGE)
    names = [PACKAGE]
    for info in pkgutil.walk_packages(package.__path__, PACKAGE + "."):
        parts = info.name.split(".")[1:]
        if any(p.startswith("_") for p in parts):
            continue
        names.append(info.name)
    return names


def _is_public_module(name: str) -> bool:
    return name.startswith(PACKAGE) and not any(p.startswith("_") for p in name.split(".")[1:])


def _kind(obj) -> str:
    if inspect.isclass(obj):
        return "class"
    if inspect.isroutine(obj) or hasattr(obj, "py_func"):  # functions, builtins, Numba dispatchers
        return "function"
    return "data"


def collect_api() -> tuple[dict, dict, list[str]]:
    """``(documented, packages, modules)``.

    ``documented``: module -> list of ``(name, kind)`` documented on that module's page;
    ``packages``: subpackage -> its ``__all__`` as ``(name, "module.name")`` targets;
    ``modules``: every public module, walk order.
    """
    modules = public_modules()
    loaded = {m: importlib.import_module(m) for m in modules}
    documented: dict[str, list] = {m: [] for m in modules}
    where: dict[int, str] = {}  # id(object) -> "module.name" where it is documented
    # first pass: objects at the public module that defines them
    for m, mod in loaded.items():
        if hasattr(mod, "__path__"):
            continue  # subpackages re-export; their own names are documented in their modules
        for name in getattr(mod, "__all__", []):
            obj = getattr(mod, name)
            home = getattr(obj, "__module__", None) if _kind(obj) != "data" else m
            if home == m or not (home and _is_public_module(home) and name in getattr(loaded.get(home), "__all__", [])):
                if _kind(obj) != "data" and id(obj) in where:
                    continue
                documented[m].append((name, _kind(obj)))
                key = id(obj) if _kind(obj) != "data" else (name, id(obj))
                where.setdefault(key, f"{m}.{name}")
    # second pass: every lazy export of a subpackage is reachable
    packages: dict[str, list] = {}
    missing = []
    for m, mod in loaded.items():
        if not hasattr(mod, "__path__"):
            continue
        targets = []
        for name in getattr(mod, "__all__", []):
            obj = getattr(mod, name)
            target = where.get(id(obj) if _kind(obj) != "data" else (name, id(obj)))
            if target is None:  # a constant: documented in the module the lazy table names
                exports = getattr(mod, "_EXPORTS", {})
                source = exports.get(name)
                if source:
                    source = source if source.startswith(PACKAGE + ".") else f"{m}.{source}"
                    if (name, "data") in documented.get(source, []):
                        target = f"{source}.{name}"
                if target is None and m != PACKAGE:
                    # defined in the package __init__ itself
                    documented[m].append((name, _kind(obj)))
                    target = f"{m}.{name}"
            if target is None:
                missing.append(f"{m}.{name}")
            else:
                targets.append((name, target))
        packages[m] = targets
    if missing:
        raise RuntimeError(f"public names without an API page: {missing}")
    return documented, packages, modules


def _title(text: str) -> str:
    return f"{text}\n{'=' * len(text)}\n"


def _module_page(module: str, names: list, package_exports: list | None, children: list[str]) -> str:
    lines = [_title(f"``{module}``"), f".. automodule:: {module}\n   :no-members:\n"]
    if package_exports:
        lines += ["Exported names\n--------------\n",
                  (f"Importable as ``from {module} import NAME`` (each module is imported when one of its "
                  "names is first used).\n"), ".. currentmodule:: None\n", ".. autosummary::\n   :nosignatures:\n"]
        lines += [f"   ~{target}" for _, target in package_exports]
        lines.append("")
    if names:
        lines += ["Names\n-----\n", f".. currentmodule:: {module}\n", ".. autosummary::\n   :nosignatures:\n"]
        lines += [f"   {name}" for name, _ in names]
        lines.append("")
    if children:
        lines += ["Modules\n-------\n", ".. toctree::\n   :maxdepth: 1\n"]
        lines += [f"   {child}" for child in children]
        lines.append("")
    if names:
        lines += [".. toctree::\n   :hidden:\n"] + [f"   {module}.{name}" for name, _ in names] + [""]
    return "\n".join(lines)


def _name_page(module: str, name: str, kind: str) -> str:
    obj = getattr(importlib.import_module(module), name)
    body = [_title(name), f".. currentmodule:: {module}\n"]
    if kind == "class":
        body.append(f".. autoclass:: {name}\n   :members:\n   :show-inheritance:\n")
    elif kind == "function":
        body.append(f".. autofunction:: {name}\n")
    else:
        option = "" if len(repr(obj)) <= 100 else "\n   :no-value:"
        body.append(f".. autodata:: {name}{option}\n")
    return "\n".join(body)


#: for cross-references: "package.name" (a lazy export) -> "module.name", and short name -> every target
ALIASES: dict = {}
SHORT: dict = {}


def write_api() -> int:
    """Write ``api/generated/``; returns the number of name pages."""
    documented, packages, modules = collect_api()
    ALIASES.clear()
    SHORT.clear()
    for package, targets in packages.items():
        ALIASES.update({f"{package}.{name}": target for name, target in targets if target != f"{package}.{name}"})
    for module, names in documented.items():
        for name, _ in names:
            SHORT.setdefault(name, set()).add(f"{module}.{name}")
    SHORT.update({m.rpartition(".")[2]: {m} for m in modules if m.rpartition(".")[2] not in SHORT})
    files = {}
    for module in modules:
        children = [m for m in modules if m.rpartition(".")[0] == module and module != PACKAGE]
        files[f"{module}.rst"] = _module_page(module, documented[module], packages.get(module), children)
        for name, kind in documented[module]:
            files[f"{module}.{name}.rst"] = _name_page(module, name, kind)
    _sync_folder(DOCS / "api" / "generated", files)
    return sum(len(v) for v in documented.values())


# ------------------------------------------------------------------------------------------ benchmarks
def write_benchmarks() -> None:
    """``benchmarks_generated.md``: each benchmark script, its docstring (the source) and its command."""
    parts = []
    for path in sorted((REPO / "benchmarks").glob("bench_*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        head, _, rest = doc.partition("\n")
        parts.append(f"## `{path.name}`\n\n**{head.strip()}**\n\n```{{code-block}} text\n{rest.strip()}\n```\n")
    _write_if_changed(DOCS / "benchmarks_generated.md", "\n".join(parts))


# ----------------------------------------------------------------------------------------- offline check
class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.loads, self.links = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "img", "iframe", "source", "audio", "video", "embed") and attrs.get("src"):
            self.loads.append(attrs["src"])
        if tag == "link" and attrs.get("href") and any(
                r in (attrs.get("rel") or "") for r in ("stylesheet", "preload", "icon", "modulepreload")):
            self.loads.append(attrs["href"])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])


_CSS_URL = re.compile(r"""(?:@import\s+|url\()\s*['"]?(https?:)?//""", re.IGNORECASE)
_JS_URL = re.compile(r"""(?:import\s*\(|fetch\s*\(|src\s*=)\s*['"]https?://""", re.IGNORECASE)


def check_site(outdir: pathlib.Path) -> list[str]:
    """Problems of the built HTML in ``outdir``: remote loads and dead internal links (empty when fine)."""
    outdir = pathlib.Path(outdir)
    problems = []
    for page in sorted(p for p in outdir.rglob("*.html") if "_static" not in p.relative_to(outdir).parts):
        parser = _Links()
        parser.feed(page.read_text(encoding="utf-8", errors="replace"))
        rel = page.relative_to(outdir)
        for url in parser.loads:
            parts = urlsplit(url)
            if parts.scheme in ("http", "https") or url.startswith("//"):
                problems.append(f"{rel}: loads {url} from the network")
        for url in parser.links + [u for u in parser.loads if not urlsplit(u).scheme]:
            parts = urlsplit(url)
            if parts.scheme or url.startswith(("#", "//", "mailto:")) or not parts.path:
                continue
            target = (page.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                problems.append(f"{rel}: dead link {url}")
    for sheet in sorted(outdir.rglob("*.css")):
        if _CSS_URL.search(sheet.read_text(encoding="utf-8", errors="replace")):
            problems.append(f"{sheet.relative_to(outdir)}: loads a style or font from the network")
    for script in sorted((outdir / "_static").rglob("*.js")):
        if "mathjax" in script.parts:
            continue  # MathJax's own loader: every component it loads is under _static/mathjax
        if _JS_URL.search(script.read_text(encoding="utf-8", errors="replace")):
            problems.append(f"{script.relative_to(outdir)}: loads a script from the network")
    return problems


# --------------------------------------------------------------------------------------------- Sphinx
def _on_builder_inited(app):
    copy_notebooks()
    write_api()
    write_benchmarks()


def _on_missing_reference(app, env, node, contnode):
    """Resolve ``scratchface.nn.Sequential`` (a lazy export) and a short name that names one object only.

    A docstring may name ``Detections`` or ``scratchface.nn.Sequential``; the object is documented once,
    at ``scratchface.detection.detections.Detections`` / ``scratchface.nn.blocks.Sequential``. Anything
    else stays unresolved, and with ``nitpicky`` the build fails on it.
    """
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    full = ALIASES.get(target)
    if full is None:
        candidates = SHORT.get(target.rpartition(".")[2], set())
        if "." in target:
            candidates = {c for c in candidates if c.endswith("." + target)}
        first, _, rest = target.partition(".")
        if not candidates and rest and len(SHORT.get(first, ())) == 1:  # ScaleBranch.propose: a member
            candidates = {f"{next(iter(SHORT[first]))}.{rest}"}
        if len(candidates) != 1:
            return None
        full = next(iter(candidates))
    domain = env.get_domain("py")
    new = node.deepcopy()
    new["reftarget"] = full
    for role in ("obj", "mod") if node.get("reftype") != "mod" else ("mod",):
        new["reftype"] = role
        found = domain.resolve_xref(env, node.get("refdoc"), app.builder, role, full, new, contnode)
        if found is not None:
            return found
    return None


def _copy_mathjax(app) -> None:
    """MathJax 3 into ``_static/mathjax`` (``mathjax_path`` in conf.py points there), from the files that the
    ``sphinx-mathjax-offline`` package ships; its own Sphinx hook does the same but blocks parallel reading."""
    import importlib.util

    from sphinx.util.fileutil import copy_asset

    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    if spec is None:
        from sphinx.errors import ExtensionError

        raise ExtensionError('MathJax for offline use is missing: pip install -e ".[docs]" (sphinx-mathjax-offline)')
    source = pathlib.Path(next(iter(spec.submodule_search_locations))) / "static" / "mathjax"
    target = pathlib.Path(app.outdir) / "_static" / "mathjax"
    if not (target / "tex-chtml.js").is_file():
        copy_asset(str(source), str(target))


def _on_build_finished(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    from sphinx.errors import ExtensionError

    _copy_mathjax(app)

    problems = check_site(pathlib.Path(app.outdir))
    if problems:
        shown = "\n".join(problems[:50])
        raise ExtensionError(f"the site is not self-contained ({len(problems)} problems):\n{shown}")


def _numpydoc_warnings_to_sphinx() -> None:
    """numpydoc reports a docstring it half understands (an unknown section, a wrong underline) with
    :func:`warnings.warn`, which ``sphinx-build -W`` would not see: send those to Sphinx's log instead."""
    import warnings

    from sphinx.util import logging

    logger = logging.getLogger("numpydoc")
    previous = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if "numpydoc" in str(filename):
            logger.warning("numpydoc: %s", message, type="numpydoc", subtype="docstring")
        else:
            previous(message, category, filename, lineno, file, line)

    warnings.filterwarnings("always", category=UserWarning, module=r"numpydoc\b")
    warnings.showwarning = show


def setup(app):
    _numpydoc_warnings_to_sphinx()
    app.connect("builder-inited", _on_builder_inited)
    app.connect("missing-reference", _on_missing_reference)
    app.connect("build-finished", _on_build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


if __name__ == "__main__":  # python docs/_ext/scratchface_docs.py docs/_build/html
    import sys

    found = check_site(pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else DOCS / "_build" / "html"))
    print("\n".join(found) or "the site loads nothing from the network and has no dead internal link")
    sys.exit(1 if found else 0)
