"""A new user's first run, in a Blender that has only what Blender ships.

Install the zip, enable it, see the panels and the preferences' "runtime
missing" state, then Install runtime, Check, and Generate Dance on a short
strip of the bundled demo track with the shipped model.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import bpy
import numpy as np
import pytest
from addon_helpers import ADDON, REPO, add_strip, draw, draw_preferences


def test_enabled_without_importing_the_runtime(addon, runtime_imported):
    assert hasattr(bpy.types, "M2D_OT_generate") and hasattr(bpy.types, "VIEW3D_PT_m2d_dance")
    assert runtime_imported() == []


def test_every_module_of_the_add_on_imports_with_numpy_alone(addon, runtime_imported):
    package = importlib.import_module(f"{ADDON}.m2d_addon")
    names = [info.name for info in pkgutil.iter_modules(package.__path__)]
    assert len(names) > 10
    for name in names:
        importlib.import_module(f"{ADDON}.m2d_addon.{name}")
    assert runtime_imported() == []


def test_disable_and_enable_again(addon):
    import addon_utils

    addon_utils.disable(ADDON, default_set=True)
    try:
        assert not hasattr(bpy.types, "M2D_OT_generate") and not hasattr(bpy.types.Scene, "m2d")
        assert not bpy.app.timers.is_registered(sys.modules[f"{ADDON}.m2d_addon.common"]._watch_tick)
    finally:
        addon_utils.enable(ADDON, default_set=True)
    assert hasattr(bpy.types, "M2D_OT_generate") and hasattr(bpy.types.Scene, "m2d")


def _demo_scene(seconds: float):
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 30, 1.0
    strip = add_strip(scene, REPO / "assets" / "demo_track.ogg", name="Demo")
    strip.frame_final_end = strip.frame_final_start + int(seconds * 30)
    return scene


def test_panels_draw(addon, runtime_imported):
    _demo_scene(3.0)
    calls = draw(bpy.types.VIEW3D_PT_m2d_dance, bpy.context)
    assert ("operator", "m2d.generate") in calls and ("label", "Using 'Demo'") in calls
    assert [c for c in draw(bpy.types.VIEW3D_PT_m2d_export, bpy.context) if c[0] == "operator"]
    assert runtime_imported() == []


def test_preferences_say_the_runtime_is_missing(runtime):
    assert bpy.ops.m2d.check_runtime() == {"FINISHED"}
    assert runtime.PROBE.state == "missing"
    assert "Missing: torch" in runtime.PROBE.message
    calls = draw_preferences()
    assert ("label", runtime.PROBE.message) in calls
    assert ("operator", "m2d.install_runtime") in calls and bpy.ops.m2d.install_runtime.poll()
    assert any(c[0] == "label" and (c[1] or "").startswith("Will install PyTorch") for c in calls)


def test_install_refused_while_online_access_is_off(runtime):
    system = bpy.context.preferences.system
    prefs = bpy.context.preferences.addons[ADDON].preferences
    saved = system.use_online_access, prefs.wheels_path
    system.use_online_access, prefs.wheels_path = False, ""
    try:
        assert not bpy.app.online_access
        with pytest.raises(RuntimeError, match="Allow Online Access"):
            bpy.ops.m2d.install_runtime()
        assert not runtime.installed_site_packages().exists()
        assert not runtime.INSTALLER.running
    finally:
        system.use_online_access, prefs.wheels_path = saved


def test_install_runtime_then_generate(runtime, wheel_folder, runtime_imported):
    """The whole first run: Install runtime (offline, from the wheel folder), Check, Generate Dance."""
    prefs = bpy.context.preferences.addons[ADDON].preferences
    prefs.wheels_path = str(wheel_folder)
    try:
        assert bpy.ops.m2d.install_runtime() == {"FINISHED"}, runtime.INSTALLER.failure
        assert "CPU build" in runtime.INSTALLER.plan.build
        assert runtime.installed_site_packages().joinpath("torch").is_dir()
        assert runtime.log_path().read_text().count("Successfully installed") == 1
        assert bpy.ops.m2d.check_runtime() == {"FINISHED"}
        assert runtime.PROBE.state == "ok", runtime.PROBE.message
        assert "PyTorch 2.13.0" in runtime.PROBE.message

        scene = _demo_scene(3.0)
        scene.m2d.steps = 4
        assert bpy.ops.m2d.generate() == {"FINISHED"}
        rig = bpy.context.active_object
        assert rig.type == "ARMATURE" and len(rig.m2d.takes) == 1
        action = rig.animation_data.action
        curves = [fc for layer in action.layers for strip in layer.strips for bag in strip.channelbags
                  for fc in bag.fcurves]
        assert len(curves) > 24 * 4
        frames = np.empty(2 * len(curves[0].keyframe_points), np.float32)
        curves[0].keyframe_points.foreach_get("co", frames)
        assert len(frames) // 2 >= 3 * 30 - 1
        assert runtime_imported() == []  # the dance was made in the worker, not in Blender's process
    finally:
        prefs.wheels_path = ""
        sys.modules[f"{ADDON}.m2d_addon.jobs"].SESSION.shutdown()
