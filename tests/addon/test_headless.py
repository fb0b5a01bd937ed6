"""The main job without the interface: ``python tools/demo.py`` in its own process."""

from __future__ import annotations

import subprocess
import sys

import bpy
from addon_helpers import REPO, write_song


def demo(tmp_path, *args):
    cmd = [sys.executable, str(REPO / "tools" / "demo.py"), "--blender-user", str(tmp_path / "blender-user"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def test_demo_command_end_to_end(tmp_path):
    out = tmp_path / "out"
    done = demo(tmp_path, "--random-weights", "--steps", "2", "--fps", "24", "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    for name in ("demo.blend", "demo.fbx", "demo.gif"):
        assert (out / name).stat().st_size > 10_000, name
    with bpy.data.libraries.load(str(out / "demo.blend")) as (source, _):
        assert "Dancer" in source.objects and "Dance" in source.actions
    assert "Dance on frames 1-720 at 24 fps" in done.stdout


def test_demo_command_bad_input_exits_2(tmp_path):
    done = demo(tmp_path, "--audio", str(tmp_path / "missing.ogg"), "--random-weights")
    assert done.returncode == 2
    assert "Audio file not found" in done.stderr
    short = write_song(tmp_path / "short.wav", 0.5)
    done = demo(tmp_path, "--audio", str(short), "--random-weights", "--out", str(tmp_path / "o"))
    assert done.returncode == 2, done.stderr[-2000:]
    assert "at least 1 s" in done.stderr.splitlines()[-1]


def test_demo_without_trained_weights_says_how_to_get_them(tmp_path):
    done = demo(tmp_path, "--weights", str(tmp_path))
    assert done.returncode == 2 and "model.safetensors" in done.stderr
