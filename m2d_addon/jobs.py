"""The session's engine process and the generation in progress, shared by operators and panels.

One worker process is kept between generations (the model stays loaded) as
long as the Python environment is the same; it is ended when the extension is
disabled, when Blender quits, or when the preference to keep it is off.
"""

from __future__ import annotations

import atexit

import bpy

from ..inference.errors import M2DError
from . import runtime
from .worker_client import Job, WorkerClient, worker_command


class Session:
    def __init__(self):
        self.client: WorkerClient | None = None
        self.job: Job | None = None
        self.generation = None
        """The :class:`~.generation.Generation` in progress, if any."""
        self.status = ""
        """The status line: what is happening, or how the last generation ended."""
        self.status_icon = "NONE"

    @property
    def running(self) -> bool:
        if self.generation is not None and self.generation.active:
            return True
        return self.job is not None and not self.job.finished

    def progress(self) -> tuple[float, str]:
        """(fraction done, what is happening) of the work in progress."""
        current = self.generation if self.generation is not None and self.generation.active else self.job
        return (current.fraction, current.status) if current is not None else (0.0, "")

    def client_for(self, python_path: str) -> WorkerClient:
        """The running worker for this Python environment, started if needed."""
        python, env, cwd = runtime.worker_setup(python_path)
        command = worker_command(python)
        if self.client is not None and (not self.client.alive or self.client.command != command
                                        or self.client.env.get("PYTHONPATH") != env.get("PYTHONPATH")):
            self.client.close()
            self.client = None
        if self.client is None:
            client = WorkerClient(command, env, cwd)
            client.start()
            self.client = client
        return self.client

    def start(self, python_path: str, request, title: str = "") -> Job:
        """Send ``request`` (an :mod:`inference.protocol` request) to the worker for ``python_path``."""
        if self.job is not None and not self.job.finished:
            raise M2DError("A dance is already being generated; wait for it or press Cancel.")
        try:
            self.job = Job(self.client_for(python_path), request, title).start()
        except M2DError:
            self.shutdown()  # a worker that cannot take requests is of no use
            raise
        self.set_status(self.job.status, "SORTTIME")
        return self.job

    def cancel(self) -> None:
        if not self.running:
            return
        if self.generation is not None and self.generation.active:
            self.generation.cancel()
        elif self.job is not None:
            self.job.cancel()
        self.set_status("Cancelled; nothing was changed.", "CANCEL")

    def release(self, keep_worker: bool) -> None:
        """After a job: keep the worker (and its loaded model) or end it."""
        if not keep_worker or (self.client is not None and not self.client.alive):
            self.shutdown()

    def shutdown(self) -> None:
        if self.generation is not None:
            self.generation.cancel()
        if self.job is not None and not self.job.finished:
            self.job.cancel()
        if self.client is not None:
            self.client.close()
            self.client = None

    def set_status(self, text: str, icon: str = "NONE") -> None:
        self.status, self.status_icon = text, icon


SESSION = Session()


@bpy.app.handlers.persistent
def _cancel_on_load(*_args):
    SESSION.cancel()


def register():
    bpy.app.handlers.load_pre.append(_cancel_on_load)
    atexit.register(SESSION.shutdown)


def unregister():
    if _cancel_on_load in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.remove(_cancel_on_load)
    atexit.unregister(SESSION.shutdown)
    SESSION.shutdown()
    if runtime.INSTALLER.running:
        runtime.INSTALLER.cancel()
