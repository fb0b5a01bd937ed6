"""The engine's layout keeps its promises: no bpy, no import cycles, the shipped part stands alone.

Read from the source (every import, at module level or inside a function), so a
promise broken by a lazy import shows here too.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENGINE = REPO / "inference"
DEVELOPMENT = ("inference.training", "inference.evaluation")
"""Sub-packages the Blender extension leaves out (blender_manifest.toml)."""
CLEANUP = "inference.cleanup"


def _module(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The modules ``path`` imports (absolute dotted names; a package's submodules where imported by name)."""
    module = _module(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{a.name}" for a in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module(p): p for p in ENGINE.rglob("*.py")}
    return {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}


def test_engine_never_imports_bpy():
    for path in ENGINE.rglob("*.py"):
        names = _imports(path)
        assert not any(n == "bpy" or n.startswith("bpy.") for n in names), f"{path} imports bpy"


def test_no_import_cycles():
    graph = _graph()
    done, on_path = set(), []

    def visit(name):
        if name in on_path:
            raise AssertionError("import cycle: " + " -> ".join(on_path[on_path.index(name):] + [name]))
        if name in done:
            return
        on_path.append(name)
        for other in sorted(graph[name]):
            if not name.startswith(other + "."):  # a module importing its own package's __init__ is no cycle
                visit(other)
        on_path.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)


def test_shipped_engine_never_imports_development_packages():
    for name, imported in _graph().items():
        if not name.startswith(DEVELOPMENT):
            assert not {m for m in imported if m.startswith(DEVELOPMENT)}, name


def test_cleanups_import_no_evaluation_code():
    for name, imported in _graph().items():
        if name.startswith(CLEANUP):
            assert not {m for m in imported if m.startswith("inference.evaluation")}, name
