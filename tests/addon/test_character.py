"""Your own character dances: Generate, edit and export on any humanoid rig, not only SMPL."""

from __future__ import annotations

import numpy as np
import pytest
from addon_helpers import ADDON, add_strip, generate, snapshot
import bpy
import rigs

from inference import skeleton as sk


@pytest.fixture(scope="module")
def ch(addon):
    import importlib
    import types

    names = ("character", "bridge", "generation", "pins", "regenerate")
    return types.SimpleNamespace(**{n: importlib.import_module(f"{ADDON}.m2d_addon.{n}") for n in names})


def _curves(action):
    return {(fc.data_path, fc.array_index): fc for layer in action.layers for strip in layer.strips
            for bag in strip.channelbags for fc in bag.fcurves}


def test_generate_onto_a_mixamo_character(scene, song, ch):
    add_strip(scene, song)
    obj = rigs.create(rigs.centimetres_y_up(rigs.build("MIXAMO", pose="A", roll=1.0, prefix="mixamorig:")),
                      name="Hero")
    scene.m2d.target = "SELECTED"
    assert generate() == {"FINISHED"}
    action = obj.animation_data.action
    curves = _curves(action)
    assert ('pose.bones["mixamorig:Hips"].location', 0) in curves
    assert ('pose.bones["mixamorig:LeftForeArm"].rotation_quaternion', 3) in curves
    assert not any("HandIndex" in path for path, _ in curves)  # fingers are not mapped: untouched
    assert obj.m2d.bone_map_family == "MIXAMO" and len(obj.m2d.takes) == 1
    assert {i.joint: i.bone for i in obj.m2d.bone_map}["left_elbow"] == "mixamorig:LeftForeArm"
