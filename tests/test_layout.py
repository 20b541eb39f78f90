"""The package's layout, as the guide states it: read off the source, not trusted.

- no import cycle anywhere in ``scratchface/`` (imports inside functions count too);
- the library never imports an experiment (``experiments/``);
- no library module has a ``main()`` but the command-line modules;
- no module is much over 600 lines;
- a function-level import of another scratchface module is only there to defer something heavy
  (the Numba / CUDA kernels, matplotlib-backed plots): every other import sits at the top of the module.

Each check is planted with a failure in a scratch package first, so that it is known to be able to fail.
"""
import ast
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = REPO / "scratchface"
MAX_LINES = 600
COMMAND_MODULES = {"scratchface.cli", "scratchface.__main__", "scratchface.check.__main__",
                   "scratchface.check.assignments"}  # the instructor's student-file generator
# Deferred on purpose: these import Numba / numba.cuda / CuPy / matplotlib when imported.
LAZY_PREFIXES = ("scratchface.kernels", "scratchface.viz")


def module_files(package: pathlib.Path):
    """``{dotted module name: path}`` of every ``.py`` file below ``package``."""
    root = package.parent
    out = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports_of(name: str, path: pathlib.Path, modules=()):
    """``[(imported module, line, inside a function?)]`` for every import statement of a module.

    ``from pkg import mod`` counts as an import of ``pkg.mod`` when that is one of ``modules``, else of ``pkg``.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((alias.name, child.lineno, in_function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - child.level + 1]
                    module = ".".join(base + ([child.module] if child.module else []))
                else:
                    module = child.module or ""
                submodules = [f"{module}.{a.name}" for a in child.names if f"{module}.{a.name}" in modules]
                found.extend((target, child.lineno, in_function) for target in (submodules or [module]))
            visit(child, inner)

    visit(tree, False)
    return found


def import_graph(modules):
    """Edges between the modules of ``modules``."""
    graph = {name: set() for name in modules}
    for name, path in modules.items():
        for target, _, _ in imports_of(name, path, modules):
            if target in modules and target != name:
                graph[name].add(target)
    return graph


def cycles(graph):
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out


def _write(root, files):
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


def test_cycle_finder_finds_a_planted_cycle_through_a_function_level_import(tmp_path):
    package = _write(tmp_path, {"pkg/__init__.py": "", "pkg/a.py": "from . import b\n",
                                "pkg/b.py": "def f():\n    from .c import g\n", "pkg/c.py": "import pkg.a\n",
                                "pkg/d.py": "from .a import b\n"})
    assert cycles(import_graph(module_files(package))) == [["pkg.a", "pkg.b", "pkg.c"]]


def test_no_import_cycle_in_the_package():
    found = cycles(import_graph(module_files(PACKAGE)))
    assert not found, f"import cycles: {found}"


def test_the_library_never_imports_an_experiment():
    bad = [f"{path.relative_to(REPO)}:{line} imports {target}"
           for name, path in module_files(PACKAGE).items()
           for target, line, _ in imports_of(name, path, ()) if target.split(".")[0] == "experiments"]
    assert not bad, "\n".join(bad)


def _mains(modules):
    return sorted(name for name, path in modules.items()
                  if any(isinstance(node, ast.FunctionDef) and node.name == "main"
                         for node in ast.parse(path.read_text()).body))


def test_only_the_command_line_modules_have_a_main(tmp_path):
    planted = _write(tmp_path, {"pkg/__init__.py": "", "pkg/train.py": "def main(argv=None):\n    return 0\n"})
    assert _mains(module_files(planted)) == ["pkg.train"]
    extra = sorted(set(_mains(module_files(PACKAGE))) - COMMAND_MODULES)
    assert not extra, f"library modules with a main() (experiments belong in experiments/): {extra}"


def test_experiments_are_modules_with_a_main():
    modules = {name: path for name, path in module_files(REPO / "experiments").items() if name != "experiments"}
    assert modules, "experiments/ is empty"
    missing = sorted(set(modules) - set(_mains(modules)) - {n for n in modules if n.rpartition(".")[2].startswith("_")})
    assert not missing, f"experiments without a main(): {missing}"


@pytest.mark.parametrize("name", sorted(module_files(PACKAGE)))
def test_module_is_at_most_about_600_lines(name):
    lines = len(module_files(PACKAGE)[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines (> {MAX_LINES}): split it by concept"


def _lazy_internal_imports(modules):
    bad = []
    for name, path in modules.items():
        for target, line, in_function in imports_of(name, path, modules):
            if (in_function and target in modules and target != name and not target.startswith(LAZY_PREFIXES)
                    and modules[target].name != "__init__.py"):
                bad.append(f"{path.name}:{line} {target}")
    return bad


def test_function_level_imports_of_the_package_only_defer_heavy_modules(tmp_path):
    planted = _write(tmp_path, {"pkg/__init__.py": "", "pkg/a.py": "def f():\n    from . import b\n", "pkg/b.py": ""})
    assert _lazy_internal_imports(module_files(planted)) == ["a.py:2 pkg.b"]
    bad = _lazy_internal_imports(module_files(PACKAGE))
    assert not bad, "imports inside functions that dodge a cycle instead of deferring a heavy module:\n" + \
        "\n".join(bad)


# The layers of the package, lowest first (scratchface/__init__.py draws the same list): a module may import
# from its own layer and the ones below it, never from above.
LAYERS = (
    ("scratchface", "_validation", "backend", "_lazy", "image"),
    ("kernels",),
    ("gradcheck",),
    ("layers", "distances", "data"),
    ("nn",),
    ("losses",),
    ("models",),
    ("detection",),
    ("recognition",),
    ("viz",),
    ("check", "cli", "cli_common", "cli_cluster"),
    ("__main__",),
)


def _layer_of(module):
    part = module.split(".")[1] if "." in module else module
    return next(rank for rank, names in enumerate(LAYERS) if part in names)


def _upward_imports(modules):
    return sorted(f"{a} -> {b}" for a, targets in import_graph(modules).items() for b in targets
                  if _layer_of(b) > _layer_of(a))


def test_every_part_of_the_package_has_a_layer():
    parts = {name.split(".")[1] if "." in name else name for name in module_files(PACKAGE)}
    assert parts == {name for layer in LAYERS for name in layer}


def test_no_module_imports_from_a_layer_above_its_own(tmp_path):
    planted = _write(tmp_path, {"scratchface/__init__.py": "", "scratchface/kernels/__init__.py": "",
                                "scratchface/kernels/k.py": "from ..layers import conv\n",
                                "scratchface/layers/__init__.py": "", "scratchface/layers/conv.py": ""})
    assert _upward_imports(module_files(planted.parent / "scratchface")) == \
        ["scratchface.kernels.k -> scratchface.layers.conv"]
    bad = _upward_imports(module_files(PACKAGE))
    assert not bad, "imports from a higher layer:\n" + "\n".join(bad)
