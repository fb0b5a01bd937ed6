"""Waiting on the engine process: a hung engine is ended and reported, Ctrl+C is a cancel.

Both leave the scene exactly as it was. The hang is a real one (the worker is stopped with SIGSTOP while
it samples); the tests shorten :data:`worker_client.STALL_SECONDS` instead of waiting ten minutes.
"""

from __future__ import annotations

import _thread
import os
import signal
import threading
import time

import bpy
import pytest
from addon_helpers import Deadline, add_strip, generate, snapshot, write_song

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="needs POSIX signals")

STALL_FOR_TESTS = 2.0
"""Seconds of silence after which the tests' engine counts as hung."""


@pytest.fixture
def long_song(tmp_path):
    return write_song(tmp_path / "long.wav", 30.0)


@pytest.fixture
def slow_scene(scene, long_song):
    """A generation that samples for long enough to be interrupted while it samples."""
    add_strip(scene, long_song)
    scene.m2d.steps = 400
    return scene


class WhenSampling:
    """Runs ``act(client)`` on a thread once the engine samples; then, should the engine still be alive
    after ``give_up`` seconds, ends it (so that a regression fails instead of hanging the tests)."""

    def __init__(self, ext, act, give_up: float = 60.0):
        self.ext, self.act, self.give_up = ext, act, give_up
        self.proc = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        session = self.ext.jobs.SESSION
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            job, client = session.job, session.client
            if job is not None and job.stage == "sampling" and client is not None and client.alive:
                self.proc = client.proc
                self.act(client)
                break
            time.sleep(0.02)
        end = time.monotonic() + self.give_up
        while self.proc is not None and self.proc.poll() is None and time.monotonic() < end:
            time.sleep(0.1)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()

    def join(self) -> None:
        self.thread.join()


def _hang(ext, monkeypatch):
    def act(client):
        monkeypatch.setattr(ext.worker_client, "STALL_SECONDS", STALL_FOR_TESTS)
        os.kill(client.pid, signal.SIGSTOP)  # alive, silent, never answering: hung

    return act


def test_hung_engine_is_ended_and_reported(slow_scene, ext, monkeypatch):
    """Scripts and background mode: Generate Dance used to wait for a hung engine for ever."""
    before = snapshot()
    watcher = WhenSampling(ext, _hang(ext, monkeypatch))
    try:
        with pytest.raises(RuntimeError) as info:
            generate()
    finally:
        watcher.join()
    message = str(info.value)
    assert "made no progress for" in message and "Dancing: step" in message, message
    assert "was stopped" in message and "Nothing was changed" in message and "Device in the Dance panel" in message
    assert watcher.proc.poll() is not None  # ended by the extension, not by the watcher
    assert "made no progress" in ext.jobs.SESSION.status
    assert snapshot() == before
    monkeypatch.undo()
    slow_scene.m2d.steps = 2
    assert generate() == {"FINISHED"}  # a new engine takes over


def test_hung_engine_in_the_panel_path(slow_scene, ext, prefs, monkeypatch):
    """The timer-driven path notices the silence too (no Cancel press needed)."""
    before = snapshot()
    run = ext.generation.Generation(ext.generation.make_plan(bpy.context), prefs.python_path).start()
    watcher = WhenSampling(ext, _hang(ext, monkeypatch))
    deadline = Deadline("the hung engine to be noticed", 90)
    try:
        while not run.poll():
            deadline.check()
            time.sleep(0.05)
    finally:
        watcher.join()
        run.close()
        ext.jobs.SESSION.release(True)
    assert "made no progress" in str(run.error) and not run.cancelled
    assert watcher.proc.poll() is not None
    assert snapshot() == before


def test_a_healthy_engine_is_never_taken_for_hung(scene, song, ext, monkeypatch):
    """Every event counts as a sign of life: with a limit shorter than the whole generation but longer
    than any silence of a working engine, the dance is made."""
    add_strip(scene, song)
    monkeypatch.setattr(ext.worker_client, "STALL_SECONDS", 60.0)
    assert generate() == {"FINISHED"}
    job = ext.jobs.SESSION.job
    assert job.result is not None and job.heard >= job.started


def test_ctrl_c_in_a_script_is_a_clean_cancel(slow_scene, ext, python_sigint):
    """Ctrl+C while Generate Dance runs from a script: {'CANCELLED'} and a "cancelled" report, not a
    KeyboardInterrupt traceback; the engine is ended and nothing is changed."""
    before = snapshot()
    watcher = WhenSampling(ext, lambda client: _thread.interrupt_main())
    try:
        result = generate()
    finally:
        watcher.join()
    assert result == {"CANCELLED"}
    assert ext.jobs.SESSION.status == "Cancelled (Ctrl+C); nothing was changed."
    assert watcher.proc.poll() is not None
    assert snapshot() == before
    assert not bpy.ops.m2d.cancel.poll()
