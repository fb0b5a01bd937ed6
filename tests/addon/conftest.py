"""Headless ``bpy`` tests of the Blender extension.

The session builds the extension zip with Blender's own ``blender_ext.py``,
installs it with ``bpy.ops.extensions.package_install_files`` (Blender's
"Install from Disk") into a temporary user folder, and unregisters everything
at the end (a bpy process hangs at exit while operator classes are registered).
Run with either bpy: ``.venv/bin/python -m pytest tests/addon`` (Blender 4.5) or
``.venv-bpy5/bin/python -m pytest tests/addon`` (Blender 5.0).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_TMP = Path(tempfile.mkdtemp(prefix="m2d-addon-tests-"))
# Before bpy is imported: Blender must write nothing into the home folder.
os.environ["BLENDER_USER_RESOURCES"] = str(_TMP / "blender-user")
os.environ["XDG_CACHE_HOME"] = str(_TMP / "cache")
os.environ.setdefault("NUMBA_CACHE_DIR", str(REPO / "cache" / "numba"))  # librosa's kernels, kept between runs
sys.dont_write_bytecode = True  # so that any file appearing in the installed extension is a finding
for _path in (REPO, REPO / "tests"):  # the engine, and the helpers both tiers share (write_failures)
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import bpy  # noqa: E402
import pytest  # noqa: E402
from addon_helpers import ADDON, write_song  # noqa: E402

SONG_SECONDS = 6.0


_EXIT_STATUS = [0]


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_TMP, ignore_errors=True)
    _EXIT_STATUS[0] = int(exitstatus)


def pytest_unconfigure(config):
    """End the process with pytest's status once everything is reported, skipping the interpreter's
    shutdown: when anything keeps the bpy module alive through it (a failed test's traceback, an add-on's
    cached classes), Blender's exit code never runs and its sound thread deadlocks the exit
    (``delayed_close_thread_run`` against ``GlobalState::~GlobalState``), so the run would hang instead of
    failing."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_EXIT_STATUS[0])


@pytest.fixture
def python_sigint():
    """Python's own Ctrl+C handler while a test sends Ctrl+C, as a script's Blender has it; yields the
    handler it replaced, put back afterwards (code run earlier in this process may install its own)."""
    import signal

    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield previous
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.fixture(scope="session")
def tmp_session():
    return _TMP


@pytest.fixture(scope="session")
def extension_zip(tmp_session):
    from tools.build_extension import build

    return build(tmp_session / "dist")


@pytest.fixture(scope="session", autouse=True)
def addon(extension_zip):
    """The extension installed from its zip and enabled; disabled (unregistered) at the end."""
    import addon_utils

    result = bpy.ops.extensions.package_install_files(
        filepath=str(extension_zip), repo="user_default", enable_on_install=True)
    assert result == {"FINISHED"}
    module = sys.modules[ADDON]
    try:
        yield module
    finally:
        addon_utils.disable(ADDON, default_set=True)
        assert not hasattr(bpy.types, "M2D_OT_generate")


@pytest.fixture(scope="session")
def ext(addon):
    """The installed extension's modules: ``ext.bridge``, ``ext.generation``, ``ext.jobs`` …"""
    import importlib
    import types

    names = ("bridge", "common", "fbx", "generation", "jobs", "rig", "runtime", "timing", "worker_client")
    return types.SimpleNamespace(**{n: importlib.import_module(f"{ADDON}.m2d_addon.{n}") for n in names})


@pytest.fixture(scope="session")
def tiny_weights(tmp_session):
    import torch

    from inference.config import TINY_CONFIG
    from inference.network.model import DanceDenoiser
    from inference.network.weights import save_model

    torch.manual_seed(0)
    return save_model(DanceDenoiser(TINY_CONFIG), tmp_session / "tiny-weights")


@pytest.fixture(scope="session")
def song(tmp_session):
    return write_song(tmp_session / "song.wav", SONG_SECONDS)


@pytest.fixture
def prefs(addon, tiny_weights):
    """The extension's preferences, pointing at the tiny test model; restored after the test."""
    p = bpy.context.preferences.addons[ADDON].preferences
    saved = {k: getattr(p, k) for k in ("python_path", "weights_path", "smpl_model_path", "keep_loaded",
                                        "wheels_path", "torch_build")}
    p.weights_path = str(tiny_weights)
    yield p
    for k, v in saved.items():
        if getattr(p, k) != v:
            setattr(p, k, v)


@pytest.fixture
def scene(prefs):
    """An empty scene (factory start-up file emptied) with fast generation settings."""
    bpy.ops.wm.read_homefile(use_empty=True)
    sc = bpy.context.scene
    sc.m2d.steps = 2
    sc.render.fps, sc.render.fps_base = 30, 1.0
    sc.cursor.location = (0.0, 0.0, 0.0)
    return sc
