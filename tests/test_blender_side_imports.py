"""The engine modules the Blender add-on imports load with NumPy and the standard library alone.

Blender's Python has no PyTorch, SciPy or librosa; the add-on runs them in its
worker process only. This is the quick check in the engine's environment (the
runtime packages are hidden from a subprocess); tests/plain_blender proves the
same in a Python that has only bpy.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
IMPORT_NAMES = {"pillow": "PIL"}


def _runtime_packages() -> list[str]:
    names = []
    for line in (REPO / "requirements.txt").read_text().splitlines():
        spec = line.split("#", 1)[0].strip()
        if spec and not spec.startswith("-"):
            name = re.split(r"[<>=!~\[; ]", spec, maxsplit=1)[0].lower()
            if name != "numpy":
                names.append(IMPORT_NAMES.get(name, name))
    return names + ["numba"]


def _engine_modules_the_add_on_imports() -> set[str]:
    found = set()
    for path in (REPO / "m2d_addon").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level >= 2 and (node.module or "").startswith("inference"):
                if node.module == "inference":
                    found.update(f"inference.{a.name}" for a in node.names)
                else:
                    found.add(node.module)
    return found


def test_engine_modules_used_by_the_add_on_need_only_numpy():
    modules = sorted(_engine_modules_the_add_on_imports())
    blocked = _runtime_packages()
    assert "inference.sampling.constraints" in modules and "torch" in blocked and "scipy" in blocked
    script = f"""
import importlib, sys
BLOCKED = {blocked!r}
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{{name}} is not in Blender's Python")
sys.meta_path.insert(0, Block())
for module in {modules!r}:
    importlib.import_module(module)
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
