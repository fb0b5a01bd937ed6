"""Getting PyTorch and librosa: the installer's command line, and an existing environment.

Nothing is downloaded here: the installer is tested through the command it builds.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import bpy
import pytest


def test_runtime_pins_come_from_requirements(ext):
    pins = ext.runtime.runtime_requirements()
    names = {p.split("=")[0].split("<")[0].split(">")[0] for p in pins}
    assert "torch==2.13.0" in pins
    assert {"torch", "numpy", "librosa", "soundfile", "soxr", "scipy", "safetensors", "smplx"} == names
    assert not any(p.startswith(("bpy", "pytest", "pillow")) for p in pins)


@pytest.mark.parametrize("system,nvidia,extra", [("Linux", True, False), ("Linux", False, False),
                                                 ("Darwin", False, False), ("Windows", False, False),
                                                 ("Windows", True, True)])
def test_pip_command(ext, system, nvidia, extra):
    cmd = ext.runtime.pip_command("/py/python", "/user/site-packages", ["torch==2.13.0", "librosa==0.11.0"],
                                  system=system, nvidia=nvidia)
    assert cmd[:4] == ["/py/python", "-m", "pip", "install"]
    assert cmd[cmd.index("--target") + 1] == "/user/site-packages"
    assert "torch==2.13.0" in cmd and "librosa==0.11.0" in cmd
    assert ("--extra-index-url" in cmd) == extra
    if extra:
        assert cmd[cmd.index("--extra-index-url") + 1].startswith("https://download.pytorch.org/whl/cu")


def test_installer_targets_the_user_folder_not_the_extension(ext, addon):
    target = ext.runtime.installed_site_packages()
    assert target.parent == Path(bpy.utils.extension_path_user(ext.common.ADDON_PACKAGE))
    assert not target.resolve().is_relative_to(Path(addon.__file__).resolve().parent)
    assert ext.runtime.pip_runner(sys.executable)[:3] == [sys.executable, "-m", "pip"]


def test_existing_environment_is_found(prefs, ext):
    prefs.python_path = sys.executable  # the test venv has torch
    assert bpy.ops.m2d.check_runtime() == {"FINISHED"}
    probe = ext.runtime.PROBE
    assert probe.state == "ok", probe.message
    import torch

    assert f"PyTorch {torch.__version__}" in probe.message
    expected = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU only"
    assert expected in probe.message


def test_environment_folder_resolves_to_its_python(prefs, ext):
    venv = Path(sys.executable).parent.parent
    assert Path(ext.runtime.resolve_python(str(venv))).parent == Path(sys.executable).parent


def test_missing_packages_are_reported(prefs, ext, tmp_path):
    import subprocess

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "bare")], check=True)
    prefs.python_path = str(tmp_path / "bare")
    bpy.ops.m2d.check_runtime()
    assert ext.runtime.PROBE.state == "missing"
    assert "Missing: torch" in ext.runtime.PROBE.message


def test_worker_caches_stay_out_of_the_extension(ext, addon):
    python, env, cwd = ext.runtime.worker_setup("")
    ext_dir = Path(addon.__file__).resolve().parent
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(ext_dir)
    for key in ("PYTHONPYCACHEPREFIX", "NUMBA_CACHE_DIR"):
        assert not Path(env[key]).resolve().is_relative_to(ext_dir)
    assert not Path(cwd).resolve().is_relative_to(ext_dir)


def test_pip_from_pythons_bundled_wheel_when_pip_is_missing(ext, monkeypatch):
    """Blender's Python may lack pip: the one bundled with ensurepip is run from its wheel instead."""
    import subprocess

    real_run = subprocess.run
    monkeypatch.setattr(ext.runtime.subprocess, "run",
                        lambda cmd, **kw: subprocess.CompletedProcess(cmd, 1) if cmd[1:3] == ["-m", "pip"]
                        else real_run(cmd, **kw))
    runner = ext.runtime.pip_runner(sys.executable)
    assert runner[0] == sys.executable and ".whl" in runner[1]
    monkeypatch.undo()
    done = subprocess.run([*runner, "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("pip ")
