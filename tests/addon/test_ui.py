"""Panels and preferences draw without errors and name only real properties and operators.

Background mode has no window regions to draw into, so ``draw`` runs against a
layout stand-in that checks every ``prop``/``operator``/``template_list`` call.
"""

from __future__ import annotations

import sys

import bpy
import pytest
from addon_helpers import ADDON, Layout, add_strip, draw, generate


def test_main_panel_without_and_with_music(scene, song):
    calls = draw(bpy.types.VIEW3D_PT_m2d_dance, bpy.context)
    assert ("label", "Add music in the Video Sequencer") in calls
    assert ("label", "Add music to the Video Sequencer first (Add > Sound)") in calls
    add_strip(scene, song)
    calls = draw(bpy.types.VIEW3D_PT_m2d_dance, bpy.context)
    props = [c[1] for c in calls if c[0] == "prop"]
    for name in ("audio_strip", "range_mode", "seed", "sampler", "steps", "guidance", "style", "beat_snap", "foot_lock",
                 "device", "target"):
        assert name in props
    assert ("operator", "m2d.generate") in calls
    assert ("label", "Using 'Song'") in calls


def test_takes_and_export_panels(scene, song):
    add_strip(scene, song)
    assert not bpy.types.VIEW3D_PT_m2d_takes.poll(bpy.context)
    assert generate() == {"FINISHED"}
    assert bpy.types.VIEW3D_PT_m2d_takes.poll(bpy.context)
    assert ("list", "takes") in draw(bpy.types.VIEW3D_PT_m2d_takes, bpy.context)
    drawn = draw(bpy.types.VIEW3D_PT_m2d_export, bpy.context)
    assert [c for c in drawn if c[0] == "operator"] == [("operator", "m2d.export")]
    assert {("prop", name) for name in ("format", "preset", "root_motion")} <= set(drawn)


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
