"""Getting PyTorch and librosa: the installer's command line, and an existing environment.

Nothing is downloaded here: the installer is tested through the command it builds.
"""

from __future__ import annotations

import os
import shutil
import sys
import types
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


# ----------------------------------------------------------------------------- online access, offline installs


@pytest.fixture
def kept_runtime(ext):
    """A runtime already installed (a marker file in it), removed again after the test."""
    site = ext.runtime.installed_site_packages(create=True)
    (site / "kept.txt").write_text("the runtime installed before")
    yield site
    shutil.rmtree(site, ignore_errors=True)


def _log_state(ext):
    log = ext.runtime.log_path()
    return log.read_bytes() if log.is_file() else None


def test_install_refused_while_online_access_is_off(prefs, ext, kept_runtime):
    """Allow Online Access off: Install runtime refuses before pip starts and says which setting."""
    system = bpy.context.preferences.system
    saved = system.use_online_access
    system.use_online_access = False
    try:
        assert not bpy.app.online_access
        log = _log_state(ext)
        with pytest.raises(RuntimeError, match=r"Allow Online Access.*Turn it on, or install from a wheel folder"):
            bpy.ops.m2d.install_runtime()
        assert not ext.runtime.INSTALLER.running and _log_state(ext) == log
        assert sorted(p.name for p in kept_runtime.iterdir()) == ["kept.txt"]
    finally:
        system.use_online_access = saved


def test_offline_mode_from_the_command_line_is_named(prefs, ext, kept_runtime, monkeypatch):
    """Started with --offline-mode (bpy.app.online_access_override): the message says so, since the
    preference cannot change it."""
    forced_off = types.SimpleNamespace(online_access=False, online_access_override=True)
    problem = ext.runtime.online_access_problem(forced_off)
    assert "--offline-mode" in problem and "Restart Blender without it" in problem
    assert "Allow Online Access" not in problem
    assert ext.runtime.online_access_problem(types.SimpleNamespace(online_access=True,
                                                                   online_access_override=True)) is None
    monkeypatch.setattr(ext.runtime, "bpy", types.SimpleNamespace(app=forced_off))
    with pytest.raises(RuntimeError, match="--offline-mode"):
        bpy.ops.m2d.install_runtime()
    assert sorted(p.name for p in kept_runtime.iterdir()) == ["kept.txt"]


def test_unwritable_runtime_folder_is_refused_before_pip_starts(prefs, ext, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setattr(ext.runtime, "installed_site_packages", lambda create=False: blocker / "site-packages")
    log = _log_state(ext)
    (tmp_path / "torch-2.13.0-py3-none-any.whl").write_bytes(b"")
    prefs.wheels_path = str(tmp_path)  # offline: only the folder is in the way
    with pytest.raises(RuntimeError, match="Cannot write to .*the runtime cannot be installed there"):
        bpy.ops.m2d.install_runtime()
    assert not ext.runtime.INSTALLER.running and _log_state(ext) == log
    assert blocker.read_text() == ""


def _fake_wheel(folder: Path, name: str, version: str, init: str = "") -> None:
    """A minimal pure-Python wheel of ``name`` whose package runs ``init`` when imported."""
    import zipfile

    info = f"{name}-{version}.dist-info"
    files = {f"{name}/__init__.py": init,
             f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    files[f"{info}/RECORD"] = "".join(f"{path},,\n" for path in [*files, f"{info}/RECORD"])
    with zipfile.ZipFile(folder / f"{name}-{version}-py3-none-any.whl", "w") as whl:
        for path, text in files.items():
            whl.writestr(path, text)


def test_install_that_does_not_import_keeps_the_runtime_that_was_there(prefs, ext, kept_runtime, tmp_path):
    """pip succeeds but what it installed cannot be imported (checked in a separate process): the report
    says so, the runtime that was there stays, Allow Online Access does not matter for a wheel folder."""
    import re

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for spec in ext.runtime.runtime_requirements():
        name = re.split(r"[<>=!~;\[ ]", spec, maxsplit=1)[0]
        version = {"numpy": "1.26.4"}.get(name) or spec.split("==")[1].strip()
        _fake_wheel(wheels, name, version, "raise ImportError('a broken build')" if name == "torch" else "")
    prefs.wheels_path = str(wheels)
    system = bpy.context.preferences.system
    saved = system.use_online_access
    system.use_online_access = False
    try:
        with pytest.raises(RuntimeError) as info:
            bpy.ops.m2d.install_runtime()
    finally:
        system.use_online_access = saved
    message = str(info.value)
    assert "The installed packages do not work" in message and "torch" in message, message
    assert str(ext.runtime.log_path()) in message
    assert sorted(p.name for p in kept_runtime.iterdir()) == ["kept.txt"]
    assert not kept_runtime.with_name(kept_runtime.name + ".new").exists()
    log = ext.runtime.log_path().read_text()
    assert "Successfully installed" in log and "do not work" in log


def test_ctrl_c_during_install_is_a_clean_cancel(prefs, ext, kept_runtime, tmp_path, monkeypatch, python_sigint):
    """Ctrl+C while Install runtime waits for pip (a stand-in that never ends): {'CANCELLED'}, pip ended,
    the runtime that was there unchanged."""
    import _thread
    import threading
    import time

    (tmp_path / "torch-2.13.0-py3-none-any.whl").write_bytes(b"")
    prefs.wheels_path = str(tmp_path)
    monkeypatch.setattr(ext.runtime, "pip_runner", lambda python: [sys.executable, "-c", "import time; time.sleep(30)"])

    def interrupt_once_pip_runs():
        end = time.monotonic() + 20
        while time.monotonic() < end and not ext.runtime.INSTALLER.running:
            time.sleep(0.02)
        time.sleep(0.3)
        if ext.runtime.INSTALLER.running:
            _thread.interrupt_main()

    started = time.monotonic()
    watcher = threading.Thread(target=interrupt_once_pip_runs)
    watcher.start()
    try:
        result = bpy.ops.m2d.install_runtime()
    finally:
        watcher.join()
    assert result == {"CANCELLED"} and time.monotonic() - started < 20
    assert ext.runtime.INSTALLER.cancelled and ext.runtime.INSTALLER.proc.poll() is not None
    assert sorted(p.name for p in kept_runtime.iterdir()) == ["kept.txt"]
