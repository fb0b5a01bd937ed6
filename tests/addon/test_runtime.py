"""Getting PyTorch and librosa: the installer's command line, and an existing environment.

Nothing is downloaded here: the installer is tested through the command it builds.
"""

from __future__ import annotations

import os
import shutil
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


@pytest.mark.parametrize("system,nvidia,build,index,torch_spec,words", [
    ("Linux", False, "AUTO", "cpu", "torch==2.13.0+cpu", "CPU build, about 0.3 GB"),  # PyPI's would be CUDA
    ("Linux", True, "AUTO", None, "torch==2.13.0", "CUDA build, about 3.3 GB"),
    ("Windows", False, "AUTO", "cpu", "torch==2.13.0+cpu", "CPU build"),
    ("Windows", True, "AUTO", "cu128", "torch==2.13.0", "CUDA build"),  # PyPI's Windows torch is CPU-only
    ("Darwin", False, "AUTO", None, "torch==2.13.0", "Apple GPUs"),
    ("Linux", True, "CPU", "cpu", "torch==2.13.0+cpu", "CPU build"),
    ("Linux", False, "CUDA", None, "torch==2.13.0", "CUDA build"),
    ("Linux", False, "PIP", None, "torch==2.13.0", "as your pip's index serves it"),
])
def test_install_plan_picks_the_pytorch_build(ext, system, nvidia, build, index, torch_spec, words):
    plan = ext.runtime.plan_install("/py/python", Path("/user/site-packages"), ["torch==2.13.0", "librosa==0.11.0"],
                                    torch_build=build, system=system, nvidia=nvidia)
    cmd = plan.command()
    assert cmd[:4] == ["/py/python", "-m", "pip", "install"]
    assert cmd[cmd.index("--target") + 1] == "/user/site-packages"
    assert torch_spec in cmd and "librosa==0.11.0" in cmd
    extra = cmd[cmd.index("--extra-index-url") + 1] if "--extra-index-url" in cmd else None
    assert extra == (ext.runtime.TORCH_INDEX[index] if index else None)
    assert "--no-index" not in cmd and plan.online
    assert words in plan.summary()


def test_install_plan_from_a_wheel_folder(ext, tmp_path):
    (tmp_path / "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl").write_bytes(b"")
    plan = ext.runtime.plan_install("/py/python", Path("/user/site-packages"), ["torch==2.13.0"],
                                    wheels=str(tmp_path), system="Linux", nvidia=False)
    cmd = plan.command()
    assert cmd[cmd.index("--find-links") + 1] == str(tmp_path) and "--no-index" in cmd
    assert "--extra-index-url" not in cmd and "torch==2.13.0" in cmd
    assert not plan.online and "2.13.0 CPU build" in plan.summary() and str(tmp_path) in plan.summary()


def test_install_plan_refuses_what_cannot_work(ext, tmp_path):
    plan = ext.runtime.plan_install
    with pytest.raises(ext.runtime.M2DError, match="does not exist"):
        plan("/py", tmp_path / "site", ["torch==2.13.0"], wheels=str(tmp_path / "nowhere"))
    with pytest.raises(ext.runtime.M2DError, match="no torch wheel"):
        plan("/py", tmp_path / "site", ["torch==2.13.0"], wheels=str(tmp_path))
    with pytest.raises(ext.runtime.M2DError, match="no CUDA build for macOS"):
        plan("/py", tmp_path / "site", ["torch==2.13.0"], torch_build="CUDA", system="Darwin")


def test_unwritable_target_is_refused_before_pip_starts(ext, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ext.runtime.M2DError, match="Cannot write to"):
        ext.runtime.check_writable(blocker / "site-packages")


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


def test_failed_install_keeps_the_runtime_that_was_there(prefs, ext, tmp_path):
    """pip fails (a broken wheel folder): a clear report with pip's last words, the log, nothing replaced."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl").write_bytes(b"not a wheel")
    site = ext.runtime.installed_site_packages(create=True)
    (site / "kept.txt").write_text("the runtime installed before")
    prefs.wheels_path = str(wheels)
    try:
        with pytest.raises(RuntimeError) as info:
            bpy.ops.m2d.install_runtime()
        message = str(info.value)
        assert "pip failed (exit status" in message and str(ext.runtime.log_path()) in message
        assert (site / "kept.txt").read_text() == "the runtime installed before"
        assert not site.with_name(site.name + ".new").exists()
        log = ext.runtime.log_path().read_text()
        assert "--no-index" in log and "pip failed" in log
        assert ext.runtime.INSTALLER.tail()
    finally:
        shutil.rmtree(site)
