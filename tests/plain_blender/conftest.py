"""The extension in Blender as users have it: a Python with only ``bpy`` (and pytest).

Blender's own Python has NumPy and the standard library, and none of the engine's
packages (PyTorch, SciPy, librosa …). These tests run in a virtual environment
holding only the ``bpy`` wheel, where the extension must install from its zip,
enable, draw, and get its runtime with **Install runtime** before it can dance.
Run them apart from the other tiers (their parent's conftest needs the engine's
packages): ``python -m pytest --confcutdir tests/plain_blender tests/plain_blender``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_TMP = Path(tempfile.mkdtemp(prefix="m2d-plain-blender-"))
# Before bpy is imported: Blender must write nothing into the home folder.
os.environ["BLENDER_USER_RESOURCES"] = str(_TMP / "blender-user")
os.environ["XDG_CACHE_HOME"] = str(_TMP / "cache")
os.environ.setdefault("NUMBA_CACHE_DIR", str(REPO / "cache" / "numba-plain"))
sys.dont_write_bytecode = True
for path in (REPO, REPO / "tests" / "addon"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import bpy  # noqa: E402
import pytest  # noqa: E402
from addon_helpers import ADDON  # noqa: E402

RUNTIME_MODULES = ("torch", "scipy", "librosa", "soundfile", "soxr", "safetensors", "smplx", "numba", "PIL")
"""What Blender's own Python does not have, and its process must never import."""
WHEELS = REPO / "cache" / "runtime-wheels"
"""The runtime's wheels for this platform, downloaded once and kept between runs (git-ignored)."""


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_TMP, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def plain_python():
    """Refuse to run where the runtime is importable: the tier would prove nothing there."""
    present = [m for m in RUNTIME_MODULES if importlib.util.find_spec(m) is not None]
    if present:
        pytest.exit(f"tests/plain_blender needs a Python with only bpy; this one has {', '.join(present)}. "
                    "Run it with .venv-plain-4.5 or .venv-plain-5.0 (bash tools/test.sh sets them up).", 2)


@pytest.fixture(scope="session")
def runtime_imported():
    """A function: the runtime packages imported into this (Blender's) process so far."""
    return lambda: sorted({name.split(".")[0] for name in sys.modules} & set(RUNTIME_MODULES))


@pytest.fixture(scope="session")
def addon(plain_python):
    """The extension installed from its zip and enabled; disabled (unregistered) at the end."""
    import addon_utils

    from tools.build_extension import build

    zip_path = build(_TMP / "dist")
    result = bpy.ops.extensions.package_install_files(filepath=str(zip_path), repo="user_default",
                                                      enable_on_install=True)
    assert result == {"FINISHED"}
    try:
        yield sys.modules[ADDON]
    finally:
        addon_utils.disable(ADDON, default_set=True)
        assert not hasattr(bpy.types, "M2D_OT_generate")


@pytest.fixture(scope="session")
def runtime(addon):
    return sys.modules[f"{ADDON}.m2d_addon.runtime"]


@pytest.fixture(scope="session")
def wheel_folder(runtime) -> Path:
    """A folder with the runtime's wheels (CPU PyTorch), as the README tells offline users to prepare.

    pip's configured sources are tried first (they may already hold the CPU build),
    then PyTorch's CPU index.
    """
    requirements = [r if not r.startswith("torch==") else r + "+cpu" for r in runtime.runtime_requirements()]
    base = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
            "--only-binary", ":all:", "--dest", str(WHEELS), *requirements]
    for extra in ([], ["--extra-index-url", runtime.TORCH_INDEX["cpu"]]):
        done = subprocess.run(base + extra, capture_output=True, text=True)
        if done.returncode == 0:
            return WHEELS
    pytest.fail(f"pip download of the runtime failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
