"""Helpers for the add-on tests (imported after conftest.py has prepared the environment for bpy)."""

from __future__ import annotations

import time
import types
from pathlib import Path

import bpy
import numpy as np

REPO = Path(__file__).resolve().parents[2]
ADDON = "bl_ext.user_default.music2dance"
WAIT_SECONDS = 120.0
"""How long a test waits for the engine before it fails: a regression fails instead of hanging CI."""


class Deadline:
    """A wait's limit: call :meth:`check` on every turn of a polling loop."""

    def __init__(self, what: str, seconds: float = WAIT_SECONDS):
        self.what, self.seconds = what, seconds
        self.end = time.monotonic() + seconds

    def check(self) -> None:
        assert time.monotonic() < self.end, f"gave up after {self.seconds:.0f} s waiting for {self.what}"


def write_song(path: Path, seconds: float, sample_rate: int = 22050) -> Path:
    """A click track at 120 BPM over a low tone: enough music for the features."""
    import soundfile as sf

    t = np.arange(int(seconds * sample_rate)) / sample_rate
    beat = np.exp(-((t % 0.5) * 40.0)) * np.sin(2 * np.pi * 1000 * t)
    y = 0.3 * beat + 0.1 * np.sin(2 * np.pi * 110 * t)
    sf.write(str(path), y.astype(np.float32), sample_rate)
    return path


def add_strip(scene, path, frame_start=1, name="Song", channel=1):
    editor = scene.sequence_editor or scene.sequence_editor_create()
    return editor.strips.new_sound(name, str(path), channel=channel, frame_start=frame_start)


def snapshot(scene=None) -> dict:
    """What a failed or cancelled generation must leave unchanged."""
    scene = scene or bpy.context.scene

    def keys(action):
        out = []
        for layer in action.layers:
            for strip in layer.strips:
                for bag in strip.channelbags:
                    for fc in bag.fcurves:
                        co = np.empty(2 * len(fc.keyframe_points), np.float32)
                        fc.keyframe_points.foreach_get("co", co)
                        out.append((fc.data_path, fc.array_index, co.tobytes()))
        return out

    return {
        "objects": sorted((o.name, o.type, o.parent.name if o.parent else None) for o in bpy.data.objects),
        "actions": {a.name: (a.use_fake_user, keys(a)) for a in bpy.data.actions},
        "assigned": {o.name: (o.animation_data.action.name if o.animation_data and o.animation_data.action else None)
                     for o in bpy.data.objects},
        "meshes": sorted(m.name for m in bpy.data.meshes),
        "armatures": sorted(a.name for a in bpy.data.armatures),
        "frame": (scene.frame_current, scene.frame_start, scene.frame_end),
        "selected": sorted(o.name for o in bpy.context.selected_objects),
        "active": bpy.context.view_layer.objects.active.name if bpy.context.view_layer.objects.active else None,
        "takes": {o.name: len(o.m2d.takes) for o in bpy.data.objects},
    }


def generate(**kwargs):
    return bpy.ops.m2d.generate(**kwargs)


class Layout:
    """Records a panel's layout calls; fails on unknown properties or operators."""

    def __init__(self, calls):
        self.__dict__["calls"] = calls

    def __setattr__(self, name, value):
        pass

    def _sub(self, *args, **kwargs):
        return Layout(self.calls)

    row = column = box = split = _sub

    def prop(self, data, name, **kwargs):
        assert name in data.bl_rna.properties, f"{data} has no property {name!r}"
        self.calls.append(("prop", name))

    def operator(self, idname, **kwargs):
        module, op = idname.split(".")
        assert hasattr(getattr(bpy.ops, module), op), idname
        self.calls.append(("operator", idname))
        return types.SimpleNamespace()

    def template_list(self, list_type, list_id, data, prop, active_data, active_prop, **kwargs):
        assert hasattr(bpy.types, list_type)
        assert prop in data.bl_rna.properties and active_prop in active_data.bl_rna.properties
        self.calls.append(("list", prop))

    def label(self, **kwargs):
        self.calls.append(("label", kwargs.get("text")))

    def progress(self, **kwargs):
        self.calls.append(("progress", kwargs.get("text")))


def draw(panel_type, context):
    calls = []
    panel_type.draw(types.SimpleNamespace(layout=Layout(calls)), context)
    return calls


def draw_preferences() -> list:
    """The calls the extension's preferences make when drawn (into a recording :class:`Layout`)."""
    prefs = bpy.context.preferences.addons[ADDON].preferences
    calls = []

    class Drawn:  # the preferences, drawn into the recording layout
        layout = Layout(calls)

        def __getattr__(self, name):
            return getattr(prefs, name)

        def _draw_install(self, context, box):
            type(prefs)._draw_install(self, context, box)

    type(prefs).draw(Drawn(), bpy.context)
    return calls
