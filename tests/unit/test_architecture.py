"""The package's shape, read from its source: no import cycles (imports inside functions
included), docker-py only under the engine adapter, pytest only in the glue, a pure core.

Every ``import`` and ``from ... import`` statement of every module is an edge, wherever it stands
(module level, inside a function, inside ``try``), except those under ``if TYPE_CHECKING:``,
which never run.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "pytest_slimimage"
NAME = "pytest_slimimage"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements that can run (those under ``if TYPE_CHECKING:`` cannot)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                yield from _runtime_nodes(child)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        yield from _runtime_nodes(node)


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if MODULES[module].name != "__init__.py":
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports(module: str) -> set[str]:
    """Every module ``module`` imports, by full name (``from pkg import sub`` is ``pkg.sub``)."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
            continue
        target = _resolve(module, node)
        for alias in node.names:
            sub = f"{target}.{alias.name}"
            found.add(sub if sub in MODULES else target)
    return found


def internal_graph() -> dict[str, set[str]]:
    return {m: {i for i in imports(m) if i in MODULES and i != m} for m in MODULES}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_package_has_no_import_cycle() -> None:
    cycle = find_cycle(internal_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or ())


def test_the_cycle_finder_finds_a_cycle_hidden_in_a_function(tmp_path: Path) -> None:
    """The test above can fail: a cycle through an import inside a function is one."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    source = "def f():\n    from pytest_slimimage.checks import registry\n"
    tree = ast.parse(source)
    assert [ast.unparse(n) for n in _runtime_nodes(tree)] == ["from pytest_slimimage.checks import registry"]
    guarded = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import docker\n"
    assert [ast.unparse(n) for n in _runtime_nodes(ast.parse(guarded))] == ["from typing import TYPE_CHECKING"]


def _importers_of(prefix: str) -> dict[str, set[str]]:
    return {
        m: {i for i in imports(m) if i == prefix or i.startswith(prefix + ".")}
        for m in MODULES
        if any(i == prefix or i.startswith(prefix + ".") for i in imports(m))
    }


def test_docker_py_is_imported_only_by_the_engine_adapter() -> None:
    outside = {m: names for m, names in _importers_of("docker").items() if not m.startswith(f"{NAME}.engine.")}
    assert outside == {}
    outside_tc = {
        m: names for m, names in _importers_of("testcontainers").items() if not m.startswith(f"{NAME}.engine.")
    }
    assert outside_tc == {}


def test_pytest_is_imported_only_by_the_glue_and_the_entry_point() -> None:
    allowed = (f"{NAME}.glue.", f"{NAME}.plugin")
    outside = {m: names for m, names in _importers_of("pytest").items() if not m.startswith(allowed)}
    assert outside == {}


CORE = (
    "dockerfile",
    "analysis",
    "checks",
    "errors",
    "sizes",
    "labels",
    "facts",
    "baseline",
    "report",
    "fileio",
    "buildinputs",
)


@pytest.mark.parametrize("layer", CORE)
def test_the_core_imports_neither_the_engine_nor_the_glue(layer: str) -> None:
    """The pure core (Dockerfile model, layer analysis, checks, facts, reports) is tested fast,
    without an engine: it imports nothing from the engine adapter or the pytest glue."""
    modules = [m for m in MODULES if m == f"{NAME}.{layer}" or m.startswith(f"{NAME}.{layer}.")]
    bad = {
        m: sorted(i for i in imports(m) if i.startswith((f"{NAME}.engine", f"{NAME}.glue", f"{NAME}.plugin")))
        for m in modules
    }
    assert {m: found for m, found in bad.items() if found} == {}


def test_the_dockerfile_model_and_the_analysis_do_not_import_the_checks() -> None:
    lower = [m for m in MODULES if m.startswith((f"{NAME}.dockerfile", f"{NAME}.analysis"))]
    bad = {m: sorted(i for i in imports(m) if i.startswith(f"{NAME}.checks")) for m in lower}
    assert {m: found for m, found in bad.items() if found} == {}


def test_package_inits_import_nothing_but_the_public_facade() -> None:
    """Folder ``__init__`` files are empty or re-export their own folder's modules, so importing one
    module of a folder does not import the rest (and cannot close a cycle)."""
    for module, path in MODULES.items():
        if path.name != "__init__.py" or module == NAME:
            continue
        outside = {i for i in imports(module) if i.startswith(NAME) and not i.startswith(module + ".")}
        assert outside == set(), module
