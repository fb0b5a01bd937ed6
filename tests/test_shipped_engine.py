"""The engine as the Blender extension ships it: the zip built, unpacked, and its commands run from there.

The extension leaves the development sub-packages out (``inference/training/``,
``inference/evaluation/``); every command it keeps must still run, and the ones it
leaves out must say how to get them. Building the zip needs the ``blender_ext.py``
inside the ``bpy`` wheel (found without importing bpy); without it this module is skipped.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from inference import protocol
from inference.sampling.constraints import Constraints

REPO = Path(__file__).resolve().parents[1]
COMMAND_SECONDS = 600

pytestmark = pytest.mark.skipif(importlib.util.find_spec("bpy") is None,
                                reason="building the extension zip needs the bpy wheel's blender_ext.py")


@pytest.fixture(scope="module")
def extension(tmp_path_factory) -> Path:
    """The extension zip, built by tools/build_extension.py and unpacked into a folder of its own."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from tools.build_extension import build

    base = tmp_path_factory.mktemp("shipped")
    folder = base / "music2dance"
    with zipfile.ZipFile(build(base / "dist")) as z:
        z.extractall(folder)
    return folder


def run(extension: Path, *args) -> subprocess.CompletedProcess:
    """``python ARGS`` (this Python) run inside the unpacked extension, with nothing else on its path."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, *map(str, args)], cwd=extension, env=env, capture_output=True,
                          text=True, timeout=COMMAND_SECONDS)


def test_the_development_packages_stay_out(extension):
    assert (extension / "inference" / "generate.py").is_file() and (extension / "weights").is_dir()
    assert not (extension / "inference" / "training").exists()
    assert not (extension / "inference" / "evaluation").exists()
    found = run(extension, "-c", "import inference; print(inference.__file__)")
    assert Path(found.stdout.strip()).is_relative_to(extension), found.stdout + found.stderr


def test_help_lists_what_is_and_is_not_installed(extension):
    done = run(extension, "-m", "inference", "--help")
    assert done.returncode == 0, done.stderr
    lines = {line.split()[0]: line for line in done.stdout.splitlines() if line.startswith("    ")}
    assert "make a dance" in lines["generate"]
    for name in ("preprocess", "train", "evaluate"):
        assert "not installed" in lines[name], done.stdout


@pytest.mark.parametrize("command", ["preprocess", "train", "evaluate"])
def test_development_commands_say_how_to_get_them(extension, command):
    done = run(extension, "-m", "inference", command, "--data", "cache.npz", "--out", "runs/x")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"error: `{command}` is a development command")
    assert "use a checkout of the repository" in done.stderr


def test_generate_with_the_shipped_model(extension, song, tmp_path):
    out, gif = tmp_path / "dance.npz", tmp_path / "dance.gif"
    done = run(extension, "-m", "inference", "generate", song, "-o", out, "--duration", "3", "--steps", "4", "--device", "cpu",
               "--preview", gif)
    assert done.returncode == 0, done.stderr
    assert "Wrote" in done.stdout and gif.is_file()
    with np.load(out) as d:
        assert d["smpl_poses"].shape == (90, 72) and np.isfinite(d["joints"]).all()


def test_the_command_export_pins_prints(extension, song, tmp_path):
    """Export Pins (m2d_addon.regenerate.export_constraints) reports this line; run it as the user would."""
    pins = Constraints.empty(90)
    pose = np.random.default_rng(3).normal(size=72) * 0.3
    pose[:3] = (np.pi / 2, 0.0, 0.0)  # upright
    pins.pin_pose(45, pose, (0.1, 0.2, 0.95))
    pins_path = tmp_path / "pins.npz"
    pins.save(pins_path)
    line = protocol.generate_command(str(song), "dance.npz", 1.0, 3.0, 7, str(pins_path))
    argv = shlex.split(line)
    assert argv[:3] == ["python", "-m", "inference"]
    done = run(extension, *argv[1:])
    assert done.returncode == 0, done.stderr
    with np.load(extension / "dance.npz") as d:
        assert d["smpl_poses"].shape == (90, 72) and float(d["audio_start"]) == pytest.approx(1.0)
        assert np.abs(d["smpl_poses"][45] - pose).max() <= 1e-4
        assert np.abs(d["smpl_trans"][45] - (0.1, 0.2, 0.95)).max() <= 1e-4
