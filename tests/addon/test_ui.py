"""Panels and preferences draw without errors and name only real properties and operators.

Background mode has no window regions to draw into, so ``draw`` runs against a
layout stand-in that checks every ``prop``/``operator``/``template_list`` call.
"""

from __future__ import annotations

import sys
import types

import bpy
import pytest
from addon_helpers import ADDON, add_strip, generate


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


def test_main_panel_without_and_with_music(scene, song):
    calls = draw(bpy.types.VIEW3D_PT_m2d_dance, bpy.context)
    assert ("label", "Add music in the Video Sequencer") in calls
    assert ("label", "Add music to the Video Sequencer first (Add > Sound)") in calls
    add_strip(scene, song)
    calls = draw(bpy.types.VIEW3D_PT_m2d_dance, bpy.context)
    props = [c[1] for c in calls if c[0] == "prop"]
    for name in ("audio_strip", "range_mode", "seed", "steps", "guidance", "device", "target"):
        assert name in props
    assert ("operator", "m2d.generate") in calls
    assert ("label", "Using 'Song'") in calls


def test_takes_and_export_panels(scene, song):
    add_strip(scene, song)
    assert not bpy.types.VIEW3D_PT_m2d_takes.poll(bpy.context)
    assert generate() == {"FINISHED"}
    assert bpy.types.VIEW3D_PT_m2d_takes.poll(bpy.context)
    assert ("list", "takes") in draw(bpy.types.VIEW3D_PT_m2d_takes, bpy.context)
    assert [c for c in draw(bpy.types.VIEW3D_PT_m2d_export, bpy.context) if c[0] == "operator"] == [
        ("operator", "m2d.export_fbx")] * 3


def test_progress_and_cancel_while_running(scene, song, ext, prefs):
    add_strip(scene, song)
    run = ext.generation.Generation(ext.generation.make_plan(bpy.context), prefs.python_path).start()
    try:
        calls = draw(bpy.types.VIEW3D_PT_m2d_dance, bpy.context)
        assert ("operator", "m2d.cancel") in calls
        assert any(c[0] == "progress" for c in calls)
        assert not bpy.ops.m2d.generate.poll()
    finally:
        run.cancel()
        run.close()


def test_preferences_draw(prefs):
    module = sys.modules[f"{ADDON}.m2d_addon.preferences"]
    calls = []

    class Self:  # the preferences, with our layout
        layout = Layout(calls)

        def __getattr__(self, name):
            return getattr(prefs, name)

    module.M2D_AP_preferences.draw(Self(), bpy.context)
    props = [c[1] for c in calls if c[0] == "prop"]
    assert {"python_path", "weights_path", "smpl_model_path", "keep_loaded"} <= set(props)
    assert ("operator", "m2d.install_runtime") in calls and ("operator", "m2d.check_runtime") in calls


@pytest.mark.parametrize("name", ["VIEW3D_PT_m2d_dance", "VIEW3D_PT_m2d_takes", "VIEW3D_PT_m2d_export"])
def test_panels_live_in_the_dance_tab(name):
    panel = getattr(bpy.types, name)
    assert (panel.bl_space_type, panel.bl_region_type, panel.bl_category) == ("VIEW_3D", "UI", "Dance")
