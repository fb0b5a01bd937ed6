"""Running the engine in a separate Python process (:mod:`inference.worker`) without blocking Blender.

A :class:`WorkerClient` owns the process: it writes JSON requests to its stdin
and a thread reads its stdout into a queue, so the main thread only ever looks
at the queue. A :class:`Job` is one request followed to its end; the modal
operator calls :meth:`Job.poll` from a timer, scripts call :meth:`Job.wait`.
Cancelling ends the process at once; a process that dies is noticed and
reported with the last lines it wrote to stderr; one that says nothing for
:data:`STALL_SECONDS` is taken for hung, ended and reported the same way.
"""

from __future__ import annotations

import collections
import json
import os
import queue
import subprocess
import sys
import threading
import time

from ..inference import protocol
from ..inference.errors import Cancelled, M2DError


STALL_SECONDS = 600.0
"""How long a job may go without a word from the engine (a progress event or its answer) before the
engine is taken for hung, ended and reported. Generous: a healthy engine reports every sampling step, and
its longest silences are a stage's first step on a slow computer (importing PyTorch, loading the model,
the first GPU call, reading a long song's features)."""


class WorkerDied(M2DError):
    """The worker process ended without answering."""


class WorkerStalled(M2DError):
    """The worker said nothing for :data:`STALL_SECONDS`; it was ended."""


class WorkerClient:
    """One ``python -m inference.worker`` process and the threads that read its output."""

    def __init__(self, command: list[str], env: dict, cwd: str):
        self.command, self.env, self.cwd = list(command), dict(env), cwd
        self.events: queue.Queue = queue.Queue()
        self.proc = None
        self._stderr = collections.deque(maxlen=40)
        self._next_id = 0
        self._write_lock = threading.Lock()

    # ------------------------------------------------------------------ process
    def start(self) -> None:
        flags = 0
        if sys.platform == "win32":
            flags = subprocess.BELOW_NORMAL_PRIORITY_CLASS | subprocess.CREATE_NO_WINDOW
        try:
            self.proc = subprocess.Popen(
                self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                cwd=self.cwd, env=self.env, creationflags=flags,
                text=True, encoding="utf-8", errors="replace", bufsize=1,
            )
        except OSError as exc:
            raise M2DError(
                f"Cannot start the dance engine with {self.command[0]} ({exc.strerror or exc}). "
                "Check the Python environment in the extension's preferences."
            ) from None
        threading.Thread(target=self._read_stdout, args=(self.proc,), daemon=True, name="m2d-worker-out").start()
        threading.Thread(target=self._read_stderr, args=(self.proc,), daemon=True, name="m2d-worker-err").start()

    def _read_stdout(self, proc) -> None:
        for line in proc.stdout:
            try:
                self.events.put(json.loads(line))
            except json.JSONDecodeError:
                self._stderr.append(line.rstrip())
        self.events.put({"event": protocol.EXIT, "code": proc.wait()})

    def _read_stderr(self, proc) -> None:
        for line in proc.stderr:
            line = line.rstrip()
            self._stderr.append(line)
            print(f"[music2dance engine] {line}", file=sys.stderr)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def request(self, request) -> int:
        """Send a request (one of :data:`inference.protocol.REQUESTS`); returns its id.

        Raises WorkerDied if the process is gone.
        """
        self._next_id += 1
        self._send(protocol.request_line(self._next_id, request))
        return self._next_id

    def _send(self, line: str) -> None:
        try:
            with self._write_lock:
                self.proc.stdin.write(line)
                self.proc.stdin.flush()
        except (OSError, ValueError, AttributeError):
            raise WorkerDied(self.death_message()) from None

    def stderr_tail(self, lines: int = 3) -> str:
        meaningful = [s for s in self._stderr if s.strip()]
        return " | ".join(meaningful[-lines:])

    def death_message(self, code=None) -> str:
        if code is None and self.proc is not None:
            code = self.proc.poll()
        how = f"exit code {code}" if code is not None and code >= 0 else f"signal {-code}" if code else "no answer"
        tail = self.stderr_tail()
        return ("The dance engine stopped unexpectedly (" + how + ")"
                + (f": {tail}" if tail else "") + ". Nothing was changed; try again, "
                "or choose CPU as Device in the Dance panel if the GPU ran out of memory.")

    def kill(self) -> None:
        """End the process now (cancel)."""
        if self.alive:
            self.proc.kill()
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            for stream in (self.proc.stdin,):
                try:
                    stream.close()
                except OSError:
                    pass

    def close(self, timeout: float = 2.0) -> None:
        """Ask the process to quit; end it if it does not."""
        if self.alive:
            try:
                self._send(protocol.QUIT_LINE)
                self.proc.wait(timeout=timeout)
            except (M2DError, subprocess.TimeoutExpired):
                pass
        self.kill()

    def drain(self) -> None:
        """Forget events left over from earlier requests (keeps an exit event)."""
        kept = []
        while True:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                break
            if event.get("event") == protocol.EXIT:
                kept.append(event)
        for event in kept:
            self.events.put(event)


class Job:
    """One request to the worker, followed until it is done, fails, or is cancelled."""

    def __init__(self, client: WorkerClient, request, title: str = ""):
        self.client, self.request, self.title = client, request, title
        self.id = None
        self.stage, self.done, self.total = protocol.STARTING.name, 0, 1
        self.result: dict | None = None
        self.error: M2DError | None = None
        self.started = self.heard = time.monotonic()
        """When the job began, and when the engine last said anything."""

    def start(self) -> "Job":
        self.client.drain()
        self.id = self.client.request(self.request)
        return self

    @property
    def finished(self) -> bool:
        return self.result is not None or self.error is not None

    def _handle(self, event: dict) -> None:
        self.heard = time.monotonic()
        kind = event.get("event")
        if kind == protocol.EXIT:
            if not self.finished:
                self.error = WorkerDied(self.client.death_message(event.get("code")))
            return
        if event.get("id") != self.id:
            return
        if kind == protocol.PROGRESS:
            self.stage, self.done, self.total = event["stage"], int(event["done"]), max(1, int(event["total"]))
        elif kind == protocol.DONE:
            self.result = event
        elif kind == protocol.ERROR:
            self.error = M2DError(event.get("message") or "The dance engine failed without a message.")
            self.error.kind = event.get("kind")

    def poll(self) -> bool:
        """Take in what the worker said since the last call (never blocks); True once finished."""
        while not self.finished:
            try:
                event = self.client.events.get_nowait()
            except queue.Empty:
                if self.client.proc is not None and self.client.proc.poll() is not None:
                    # Died: the reader thread will queue the exit event; wait for it briefly.
                    try:
                        event = self.client.events.get(timeout=0.05)
                    except queue.Empty:
                        break
                else:
                    break
            self._handle(event)
        self._check_stalled()
        return self.finished

    def _check_stalled(self) -> None:
        """End the worker and fail the job when it has said nothing for :data:`STALL_SECONDS`."""
        silent = time.monotonic() - self.heard
        if self.finished or silent <= STALL_SECONDS:
            return
        self.error = WorkerStalled(
            f"The dance engine made no progress for {silent:.0f} s (at \"{self.status}\") and was stopped. "
            "Nothing was changed. Try again; if it stops again, the system console may say why, or choose "
            "CPU as Device in the Dance panel.")
        self.client.kill()

    def wait(self, on_progress=None) -> dict:
        """Block until finished (scripts, background mode); returns the result or raises its error.

        An engine silent for :data:`STALL_SECONDS` is ended and its job failed.
        """
        last = None
        while not self.finished:
            try:
                self._handle(self.client.events.get(timeout=0.2))
            except queue.Empty:
                self._check_stalled()
            if on_progress is not None and (self.stage, self.done) != last:
                last = self.stage, self.done
                on_progress(self)
        if self.error is not None:
            raise self.error
        return self.result

    def cancel(self) -> None:
        if not self.finished:
            self.error = Cancelled("Cancelled; nothing was changed.")
        self.client.kill()

    @property
    def cancelled(self) -> bool:
        return isinstance(self.error, Cancelled)

    @property
    def fraction(self) -> float:
        return protocol.stage(self.stage).fraction(self.done, self.total)

    @property
    def status(self) -> str:
        if self.title and self.stage == protocol.STARTING.name:
            return self.title
        label = protocol.stage(self.stage).label
        if self.stage == protocol.SAMPLING.name:
            return f"{label}: step {self.done} of {self.total}"
        return label + "…"


def worker_command(python: str) -> list[str]:
    return [python, "-u", "-m", "inference.worker"]


def probe_command(python: str) -> list[str]:
    return [python, "-m", "inference.worker", "--probe"]


def run_probe(python: str, env: dict, cwd: str, timeout: float = 120.0) -> dict:
    """What ``python`` can run (see :func:`inference.worker.probe`); raises M2DError if it cannot start."""
    flags = subprocess.CREATE_NO_WINDOW if sys.platform == "win32" else 0
    try:
        done = subprocess.run(probe_command(python), capture_output=True, text=True, encoding="utf-8",
                              errors="replace", env=env, cwd=cwd, timeout=timeout, creationflags=flags)
    except OSError as exc:
        raise M2DError(f"Cannot run {python} ({exc.strerror or exc}). Check the Python environment path.") from None
    except subprocess.TimeoutExpired:
        raise M2DError(f"{python} did not answer within {timeout:.0f} s.") from None
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = " | ".join(done.stderr.strip().splitlines()[-2:])
        raise M2DError(f"{python} cannot run the dance engine" + (f": {tail}" if tail else "") + ".")
    return json.loads(lines[-1])


def env_with_pythonpath(base: dict, paths: list[str]) -> dict:
    env = dict(base)
    existing = env.get("PYTHONPATH")
    env["PYTHONPATH"] = os.pathsep.join([*paths, existing] if existing else paths)
    return env
