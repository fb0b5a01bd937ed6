"""Bad input: a clear message, and the scene exactly as it was."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import bpy
import pytest
from addon_helpers import Deadline, add_strip, generate, snapshot, write_song


def fails_with(*fragments):
    """Run Generate Dance; it must fail with a message holding ``fragments`` and change nothing."""
    before = snapshot()
    with pytest.raises(RuntimeError) as info:
        generate()
    message = str(info.value)
    print(message)
    for fragment in fragments:
        assert fragment.lower() in message.lower(), message
    assert snapshot() == before
    return message


def test_no_sound_strip(scene):
    fails_with("Add music to the Video Sequencer")


def test_named_strip_missing(scene, song):
    add_strip(scene, song)
    scene.m2d.audio_strip = "Nope"
    fails_with("no sound strip named 'Nope'")


def test_strip_file_missing(scene, song, tmp_path):
    path = shutil.copy(song, tmp_path / "gone.wav")
    add_strip(scene, path)
    os.remove(path)
    fails_with("music file of strip 'Song' is missing", "gone.wav")


def test_strip_file_unreadable(scene, song, tmp_path):
    path = shutil.copy(song, tmp_path / "broken.wav")
    add_strip(scene, path)
    with open(path, "wb") as f:
        f.write(b"this is not audio" * 1000)
    fails_with("not a readable audio file")


def test_strip_shorter_than_one_second(scene, tmp_path):
    add_strip(scene, write_song(tmp_path / "short.wav", 0.6))
    fails_with("at least 1 s")


def test_range_outside_strip(scene, song):
    add_strip(scene, song, frame_start=1)
    scene.m2d.range_mode = "RANGE"
    scene.m2d.frame_start, scene.m2d.frame_end = 500, 600
    fails_with("outside the strip")


def test_selected_object_not_an_armature(scene, song):
    add_strip(scene, song)
    bpy.ops.mesh.primitive_cube_add()
    scene.m2d.target = "SELECTED"
    fails_with("'Cube' is a mesh, not an armature")


def test_armature_that_is_not_humanoid(scene, song):
    """One bone is no character: the message names the joints without a bone and how to map them."""
    add_strip(scene, song)
    bpy.ops.object.armature_add()
    scene.m2d.target = "SELECTED"
    fails_with("'Armature' does not look humanoid", "no bone found for pelvis, left_hip", "and 8 more", "bone map")


def test_missing_weights(scene, song, prefs, tmp_path):
    add_strip(scene, song)
    prefs.weights_path = str(tmp_path)
    fails_with("No model found", str(tmp_path))


def test_corrupt_weights(scene, song, prefs, tiny_weights, tmp_path):
    add_strip(scene, song)
    shutil.copy(tiny_weights / "config.json", tmp_path / "config.json")
    (tmp_path / "model.safetensors").write_bytes(b"\x00\x01garbage" * 100)
    prefs.weights_path = str(tmp_path)
    fails_with("corrupt")


def test_style_saved_with_another_models_menu(scene, song, prefs):
    """A scene saved with a style of another model's menu (Waltz, the shipped model's fourth; the test model knows
    only Any): Generate says so and makes nothing."""
    add_strip(scene, song)
    scene.m2d["style"] = 3
    fails_with("Style chosen in the Dance panel", "not one the model in use knows (any)", "Choose a Style")


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory):
    """A Python without PyTorch (a fresh venv of the base interpreter)."""
    where = tmp_path_factory.mktemp("bare-venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    return str(where)


def test_runtime_not_installed(scene, song, prefs, bare_python):
    add_strip(scene, song)
    prefs.python_path = bare_python  # a venv folder is accepted too
    fails_with("lacks torch", "preferences")


def test_python_path_does_not_exist(scene, song, prefs, tmp_path):
    add_strip(scene, song)
    prefs.python_path = str(tmp_path / "no-such-python")
    fails_with("does not exist")


# ----------------------------------------------------------------------------- the non-blocking path


def _start_ui_generation(context, ext, prefs):
    """What the panel's button does: plan and start, then the timer polls (driven by hand here)."""
    plan = ext.generation.make_plan(context)
    return plan, ext.generation.Generation(plan, prefs.python_path).start()


def _until_sampling(run, timeout=60.0):
    deadline = Deadline("the engine to start sampling", timeout)
    while run.job.stage != "sampling":
        assert not run.poll(), run.error
        deadline.check()
        time.sleep(0.02)


@pytest.fixture
def long_song(tmp_path):
    return write_song(tmp_path / "long.wav", 30.0)


def test_cancel_midway(scene, long_song, ext, prefs):
    add_strip(scene, long_song)
    scene.m2d.steps = 400  # long enough to be cancelled while sampling
    before = snapshot()
    plan, run = _start_ui_generation(bpy.context, ext, prefs)
    _until_sampling(run)
    process = ext.jobs.SESSION.client.proc
    assert bpy.ops.m2d.cancel() == {"FINISHED"}
    assert process.poll() is not None  # ended at once
    assert run.poll() and run.cancelled
    run.close()
    ext.jobs.SESSION.release(True)
    assert "Cancelled" in ext.jobs.SESSION.status
    assert snapshot() == before
    assert not bpy.ops.m2d.cancel.poll()
    scene.m2d.steps = 2
    assert generate() == {"FINISHED"}  # a new worker takes over


def test_worker_dies_midway_ui_path(scene, long_song, ext, prefs):
    add_strip(scene, long_song)
    scene.m2d.steps = 400
    before = snapshot()
    plan, run = _start_ui_generation(bpy.context, ext, prefs)
    _until_sampling(run)
    os.kill(ext.jobs.SESSION.client.pid, signal.SIGKILL)  # as if torch crashed or ran out of memory
    deadline = Deadline("the client to notice the dead worker", 10)
    while not run.poll():
        deadline.check()
        time.sleep(0.02)
    assert "stopped unexpectedly" in str(run.error) and "signal 9" in str(run.error)
    run.close()
    ext.jobs.SESSION.release(True)
    assert snapshot() == before


def test_worker_dies_midway_blocking_path(scene, long_song, ext):
    add_strip(scene, long_song)
    scene.m2d.steps = 400

    def kill_when_sampling():
        end = time.monotonic() + 60
        while time.monotonic() < end:
            job = ext.jobs.SESSION.job
            if job is not None and job.stage == "sampling" and ext.jobs.SESSION.client is not None:
                os.kill(ext.jobs.SESSION.client.pid, signal.SIGKILL)
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_when_sampling)
    killer.start()
    try:
        fails_with("stopped unexpectedly")
    finally:
        killer.join()


def test_cancel_while_writing_keys(scene, song, ext, prefs):
    add_strip(scene, song)
    before = snapshot()
    plan, run = _start_ui_generation(bpy.context, ext, prefs)
    run.WRITE_BUDGET = 0.0  # one F-curve per tick
    deadline = Deadline("key writing to begin")
    while run.writer is None or run.writer.written < 3:
        assert not run.poll(), run.error
        deadline.check()
        time.sleep(0.01)
    assert bpy.ops.m2d.cancel() == {"FINISHED"}
    assert run.poll() and run.cancelled
    run.close()
    assert snapshot() == before  # the half-written take is gone


def test_take_removed_while_writing(scene, song, ext, prefs):
    add_strip(scene, song)
    plan, run = _start_ui_generation(bpy.context, ext, prefs)
    run.WRITE_BUDGET = 0.0
    deadline = Deadline("key writing to begin")
    while run.writer is None or run.writer.written < 2:
        assert not run.poll(), run.error
        deadline.check()
        time.sleep(0.01)
    bpy.data.actions.remove(run.writer.action())  # as an Undo in between would
    assert run.poll() and "removed" in str(run.error)
    run.close()
    assert "Dancer" not in bpy.data.objects and not bpy.data.actions
