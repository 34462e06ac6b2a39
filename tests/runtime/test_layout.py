"""The runtime's shape (issue 11, part 2): the notation does not import it, no import circles,
no long parameter lists, and the examples in its docstrings hold."""

from __future__ import annotations

import ast
import doctest
import importlib
import pkgutil
from pathlib import Path

import networkx as nx
import pytest

import graphrnn

PACKAGE = Path(graphrnn.__file__).parent
NOTATION = ("graphrnn.recurrence",)
#: the engine's Tensor/functional core may import itself in a circle (a tensor's operators call the ops)
CORE = {"graphrnn.engine", "graphrnn.engine.tensor", "graphrnn.engine.functional", "graphrnn.engine.ops",
        "graphrnn.engine.autograd"}


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path, path.name == "__init__.py"


def _resolve(module: str, is_package: bool, node: ast.ImportFrom, names: set[str]) -> list[str]:
    if node.level == 0:
        base = node.module or ""
    else:
        here = module.split(".") if is_package else module.split(".")[:-1]
        here = here[: len(here) - (node.level - 1)]
        base = ".".join(here + ([node.module] if node.module else []))
    # `from . import style` imports the module graphrnn.render.style (the package is already loaded);
    # `from .spec import walk` imports graphrnn.recurrence.spec
    submodules = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in names]
    return submodules if len(submodules) == len(node.names) else [base] + submodules


def import_graph(top_level_only: bool) -> nx.DiGraph:
    """Which graphrnn module imports which, from the source (``top_level_only``: at module level)."""
    names = {name for name, _, _ in _modules()}
    g = nx.DiGraph()
    for name, path, is_package in _modules():
        g.add_node(name)
        tree = ast.parse(path.read_text())
        typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                       and isinstance(block.test, ast.Name) and block.test.id == "TYPE_CHECKING"
                       for n in ast.walk(block)}  # annotations only: not imported when the code runs
        nodes = tree.body if top_level_only else list(ast.walk(tree))
        for node in nodes:
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.ImportFrom):
                targets = _resolve(name, is_package, node, names)
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for target in targets:
                if target in names and target != name:
                    g.add_edge(name, target)
    return g


def test_the_import_graph_is_read_from_the_source():
    g = import_graph(top_level_only=True)
    assert g.has_edge("graphrnn.runtime.runner", "graphrnn.runtime.program")
    assert g.has_edge("graphrnn.runtime.taped", "graphrnn.recurrence.spec")
    assert not g.has_edge("graphrnn.recurrence.recurrence", "graphrnn.runtime")  # only lazily, inside _runtime()
    assert import_graph(top_level_only=False).has_edge("graphrnn.recurrence.recurrence", "graphrnn.runtime")


def test_the_notation_does_not_import_the_runtime_at_module_level():
    g = import_graph(top_level_only=True)
    for name in g:
        if name.startswith(NOTATION):
            bad = [t for t in nx.descendants(g, name) if t.startswith("graphrnn.runtime")]
            assert not bad, f"{name} imports {bad}"


def test_the_notation_reaches_the_runtime_through_one_entry_point():
    """``Recurrence.run`` and ``release_buffers`` go through ``recurrence._runtime()``; nothing else in the
    notation imports the runtime, even lazily (the package's ``__getattr__`` keeps the old names)."""
    g = import_graph(top_level_only=False)
    into = sorted(u for u, v in g.edges if u.startswith(NOTATION) and v.startswith("graphrnn.runtime"))
    assert into == ["graphrnn.recurrence", "graphrnn.recurrence.recurrence"]


def test_no_import_circles_outside_the_engine_core():
    """At module level: none anywhere.  Counting imports inside functions too: none through the runtime
    (Recurrence.derive's lazy import of graphrnn.derive, and derive's own modules, make circles the
    derive package answers for)."""
    for lazy in (False, True):
        g = import_graph(top_level_only=not lazy)
        g.remove_nodes_from(CORE)
        # the one documented way back: Recurrence.run delegates to the runtime when called (tested above)
        g.remove_edges_from([(u, v) for u, v in list(g.edges) if u.startswith(NOTATION) and v == "graphrnn.runtime"])
        cycles = list(nx.simple_cycles(g))
        # a package imports its own modules and may be imported by them only as a namespace
        cycles = [c for c in cycles if not _package_and_member(c)]
        if lazy:
            cycles = [c for c in cycles if any(m.startswith("graphrnn.runtime") for m in c)]
        assert not cycles, cycles


def _package_and_member(cycle) -> bool:
    return len(cycle) == 2 and (cycle[0].startswith(cycle[1] + ".") or cycle[1].startswith(cycle[0] + "."))


@pytest.mark.parametrize("package", ["runtime", "recurrence"])
def test_no_function_takes_more_than_eight_parameters(package):
    """Long parameter lists go into a plan or context object (keyword-only options of the public API,
    named at every call, are not counted)."""
    for path in sorted((PACKAGE / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                args = node.args
                names = [a.arg for a in args.posonlyargs + args.args if a.arg not in ("self", "cls")]
                assert len(names) <= 8, f"{path.name}:{node.lineno} {node.name} takes {len(names)} parameters"


def test_verify_and_render_use_only_the_runtime_public_api():
    public = set(importlib.import_module("graphrnn.runtime").__all__)
    for package in ("verify", "render"):
        for path in sorted((PACKAGE / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module and "runtime" in node.module:
                    assert node.module.endswith("runtime") and node.module.count(".") <= 1, \
                        f"{path.name} imports {node.module}, a private module of the runtime"
                    assert {a.name for a in node.names} <= public, f"{path.name}: {[a.name for a in node.names]}"
                if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("..recurrence."):
                    raise AssertionError(f"{path.name} imports {node.module}")  # pragma: no cover


def _runtime_modules():
    import graphrnn.runtime as rt

    return [rt.__name__] + [f"{rt.__name__}.{m.name}" for m in pkgutil.iter_modules(rt.__path__)]


@pytest.mark.parametrize("module", _runtime_modules())
def test_the_docstring_examples_hold(module):
    mod = importlib.import_module(module)
    failed, _ = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert failed == 0
