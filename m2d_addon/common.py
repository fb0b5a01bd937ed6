"""Where the extension lives and where it may write; the preferences accessor; what operators share."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import bpy

from ..inference.errors import M2DError

ADDON_PACKAGE = __package__.rpartition(".")[0]
"""The extension's own package (the repository root): key of its preferences and user folder."""

EXTENSION_DIR = Path(__file__).resolve().parent.parent
"""The installed extension: holds ``inference/``, ``weights/`` and ``assets/``. Read-only to us."""


def user_dir(*parts: str) -> Path:
    """A folder in the extension's per-user directory, created if needed (never the extension's folder).

    M2DError when it cannot be made (Blender then gives "" for it, which would mean the working folder).
    """
    sub = os.path.join(*parts) if parts else ""
    path = bpy.utils.extension_path_user(ADDON_PACKAGE, path=sub, create=True)
    if not path or not os.path.isdir(path):
        where = os.path.join(bpy.utils.extension_path_user(ADDON_PACKAGE, path="", create=False), sub)
        raise M2DError(f"Music2Dance cannot create its folder {where} (a file in the way, or a full or read-only "
                       "disk?). Remove what is in the way, or free some disk space.")
    return Path(path)


def error_message(exc: M2DError | OSError) -> str:
    """The report for an M2DError (its message), or for an OSError past every check (a full disk, a folder
    taken away while the dance was made)."""
    if isinstance(exc, M2DError):
        return str(exc)
    return (f"Could not read or write {exc.filename or 'a file'} ({exc.strerror or exc}); nothing was changed. "
            "Free some disk space, or check the folder and its permissions.")


def preferences(context=None):
    """The extension's :class:`~.preferences.M2D_AP_preferences`."""
    context = context or bpy.context
    return context.preferences.addons[ADDON_PACKAGE].preferences


def model_folder(prefs) -> Path:
    """The model the extension uses: the Model preference (a folder, or its ``.safetensors`` file), else the
    shipped one. Not checked: :func:`~.generation.weights_path` says what is missing."""
    return Path(bpy.path.abspath(prefs.weights_path)) if prefs.weights_path else EXTENSION_DIR / "weights"


def reports_errors(execute):
    """For an operator's ``execute``: an M2DError (the user's input, explained) becomes an error report
    and ``{'CANCELLED'}``; anything else is a bug and propagates."""

    @functools.wraps(execute)
    def checked(self, context):
        try:
            return execute(self, context)
        except M2DError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}

    return checked


def passes(cls, check, context) -> bool:
    """For an operator's poll: True when ``check(context)`` raises no M2DError, else False with its message
    as the poll message (the tooltip of the greyed-out button)."""
    try:
        check(context)
    except M2DError as exc:
        cls.poll_message_set(str(exc))
        return False
    return True


def tag_redraw_all(area_types=("VIEW_3D", "PREFERENCES")) -> None:
    """Ask Blender to redraw the areas that show our panels (cheap; safe without a window)."""
    wm = bpy.context.window_manager
    if wm is None:
        return
    for window in wm.windows:
        for area in window.screen.areas:
            if area.type in area_types:
                area.tag_redraw()


_watched = []


def _watch_tick():
    still = [busy for busy in _watched if busy()]
    tag_redraw_all()
    _watched[:] = still
    return 0.25 if still else None


def redraw_while(busy) -> None:
    """Redraw our panels every 0.25 s while ``busy()`` is true (a thread's result is awaited)."""
    if bpy.app.background:
        return
    _watched.append(busy)
    if not bpy.app.timers.is_registered(_watch_tick):
        bpy.app.timers.register(_watch_tick, first_interval=0.25)


def stop_redraws() -> None:
    _watched.clear()
    if bpy.app.timers.is_registered(_watch_tick):
        bpy.app.timers.unregister(_watch_tick)
