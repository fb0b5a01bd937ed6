"""FBX export with presets; the file is imported back and compared bone by bone."""

from __future__ import annotations

import bpy
import numpy as np
import pytest
from addon_helpers import add_strip, generate, snapshot

from inference import skeleton as sk

SAMPLED = 7  # frames compared per preset


def _pose(obj, frames):
    """World rotation relative to rest (F, 24, 3, 3) and world head positions (F, 24, 3) per SMPL bone."""
    scene = bpy.context.scene
    depsgraph = bpy.context.evaluated_depsgraph_get()
    rot = np.empty((len(frames), 24, 3, 3))
    pos = np.empty((len(frames), 24, 3))
    for i, frame in enumerate(frames):
        scene.frame_set(int(frame))
        ev = obj.evaluated_get(depsgraph)
        world = np.array(ev.matrix_world)
        for j, name in enumerate(sk.JOINT_NAMES):
            pb, bone = ev.pose.bones[name], ev.data.bones[name]
            posed = world @ np.array(pb.matrix)
            rest = world @ np.array(bone.matrix_local)
            r_posed = posed[:3, :3] / np.linalg.norm(posed[:3, :3], axis=0)
            r_rest = rest[:3, :3] / np.linalg.norm(rest[:3, :3], axis=0)
            rot[i, j] = r_posed @ r_rest.T
            pos[i, j] = posed[:3, 3]
    return rot, pos


def _angle(a, b):
    cos = (np.trace(np.swapaxes(a, -1, -2) @ b, axis1=-2, axis2=-1) - 1) / 2
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


@pytest.fixture
def dancer(scene, song):
    add_strip(scene, song)
    assert generate() == {"FINISHED"}
    return bpy.data.objects["Dancer"]


@pytest.mark.parametrize("preset", ["GENERIC", "UNITY", "UNREAL"])
def test_round_trip(dancer, tmp_path, preset, ext):
    action = dancer.animation_data.action
    first, last = (int(v) for v in action.frame_range)
    frames = np.linspace(first, last, SAMPLED).round().astype(int)
    src_rot, src_pos = _pose(dancer, frames)
    path = tmp_path / f"dance-{preset.lower()}.fbx"
    before = snapshot()
    assert bpy.ops.m2d.export_fbx(filepath=str(path), preset=preset) == {"FINISHED"}
    assert snapshot() == before  # selection and frame range restored
    assert path.stat().st_size > 10_000
    options = ext.fbx.PRESETS[preset][2]
    existing = set(bpy.data.objects)
    # FBX times are scene times (frame / fps); anim_offset=0 maps them back to the same frames.
    bpy.ops.import_scene.fbx(filepath=str(path), axis_forward=options["axis_forward"], axis_up=options["axis_up"],
                             automatic_bone_orientation=False, ignore_leaf_bones=False, anim_offset=0.0)
    new = [o for o in bpy.data.objects if o not in existing]
    imported = next(o for o in new if o.type == "ARMATURE")
    assert sorted(b.name for b in imported.data.bones) == sorted(sk.JOINT_NAMES)  # no leaf bones
    assert any(o.type == "MESH" for o in new)
    imp_action = imported.animation_data.action
    assert imp_action is not None
    got_rot, got_pos = _pose(imported, frames)
    angle = _angle(src_rot, got_rot).max()
    # Positions: the presets may scale; compare after the best uniform scale about the origin.
    scale = float((got_pos * src_pos).sum() / (src_pos * src_pos).sum())
    err_mm = np.abs(got_pos / scale - src_pos).max() * 1000
    print(f"{preset}: max bone rotation difference {angle:.4f} deg, position {err_mm:.3f} mm, scale {scale:g}")
    assert angle < 0.05
    assert err_mm < 1.0
    if preset in ("GENERIC", "UNREAL"):
        assert scale == pytest.approx(1.0, abs=1e-4)


def test_export_button_needs_a_take(scene):
    bpy.ops.object.armature_add()
    with pytest.raises(RuntimeError, match="SMPL armature"):
        bpy.ops.m2d.export_fbx(filepath="/tmp/never.fbx")
