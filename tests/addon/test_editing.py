"""Pins and edits (regenerate a range / everything unpinned, in-between, variations), read back from F-curves.

The tiny random test model dances noise, so these tests check the machinery:
pinned keys are met exactly, keys outside a regenerated range are the source
take's bit for bit, bad input changes nothing. The seam and beat figures of a
real model come from ``bench/editing.py`` (the same measurement functions).
"""

from __future__ import annotations

import os
import time
import types

import bpy
import numpy as np
import pytest
from addon_helpers import Deadline, Layout, add_strip, draw, generate, snapshot

from inference import skeleton as sk
from inference.evaluation import edit_quality as E
from inference.sampling.constraints import Constraints

ROT = 'pose.bones["{}"].rotation_quaternion'
LOC = 'pose.bones["pelvis"].location'


# ----------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def ext(addon):
    """The installed extension's modules, with the editing ones (``ext.pins``, ``ext.pin_display``,
    ``ext.regenerate``)."""
    import importlib

    from addon_helpers import ADDON

    names = ("bridge", "generation", "jobs", "pin_display", "pins", "regenerate", "rig", "timing")
    return types.SimpleNamespace(**{n: importlib.import_module(f"{ADDON}.m2d_addon.{n}") for n in names})


@pytest.fixture
def dancer(scene, song):
    """A generated dance on a new armature (frames 1-180 at 30 fps), active, in Object Mode."""
    add_strip(scene, song, frame_start=1)
    assert generate() == {"FINISHED"}
    arm = bpy.data.objects["Dancer"]
    bpy.context.view_layer.objects.active = arm
    scene.m2d.target = "SELECTED"
    return arm


def curves(action, ext) -> dict:
    return {(fc.data_path, fc.array_index): fc for fc in ext.bridge.action_channels(action)}


def values(action, ext, frames):
    """(F, 24, 4) quaternion keys and (F, 3) root location keys of ``action`` at whole ``frames``."""
    table = curves(action, ext)
    frames = np.asarray(frames, np.float64)

    def at(path, i):
        keys = ext.bridge.read_keys(table[(path, i)])
        x, y = keys["co"][0::2], keys["co"][1::2]
        index = np.searchsorted(x, frames)
        assert np.all(x[index] == frames), f"{path}[{i}] is not keyed on every frame asked"
        return y[index].astype(np.float64)

    quats = np.stack([np.stack([at(ROT.format(n), i) for i in range(4)], -1) for n in sk.JOINT_NAMES], 1)
    loc = np.stack([at(LOC, i) for i in range(3)], -1)
    return quats, loc


def angle(qa, qb) -> np.ndarray:
    """Rotation angle between quaternions (any length, any sign)."""
    qa = qa / np.linalg.norm(qa, axis=-1, keepdims=True)
    qb = qb / np.linalg.norm(qb, axis=-1, keepdims=True)
    rel = sk.quat_multiply(sk.quat_conjugate(qa), qb)
    return 2 * np.arctan2(np.linalg.norm(rel[..., 1:], axis=-1), np.abs(rel[..., 0]))


def fails(op, *fragments, **kwargs):
    """Run an operator that must fail with ``fragments`` in its message and change nothing."""
    before = snapshot()
    pins_before = {o.name: [(p.name, p.kind, p.frame_start, p.frame_end) for p in o.m2d.pins]
                   for o in bpy.data.objects}
    with pytest.raises(RuntimeError) as info:
        op(**kwargs)
    message = str(info.value)
    print(message)
    for fragment in fragments:
        assert fragment.lower() in message.lower(), message
    assert snapshot() == before
    assert {o.name: [(p.name, p.kind, p.frame_start, p.frame_end) for p in o.m2d.pins]
            for o in bpy.data.objects} == pins_before
    return message


def turn(arm, bone, radians, axis=(1.0, 0.0, 0.0)):
    """Pose ``bone`` by hand (not keyed): turn it by ``radians`` about ``axis`` (bone space)."""
    from mathutils import Quaternion

    pb = arm.pose.bones[bone]
    pb.rotation_quaternion = Quaternion(axis, radians) @ pb.rotation_quaternion


def smpl(arm, ext, quats, loc):
    """Pose-bone keys -> SMPL axis-angle (F, 24, 3) and root positions (F, 3) for ``arm``'s rest pose."""
    rest, pelvis = ext.bridge.bone_rest(arm)
    poses, trans = ext.bridge.smpl_from_channels(quats, loc, rest, pelvis)
    return poses.reshape(len(quats), 24, 3), trans


def key_bytes(ext, fc, chosen=None) -> bytes:
    """Every stored field of the keys of ``fc`` (where ``chosen``), as bytes."""
    keys = ext.bridge.read_keys(fc)
    if chosen is not None:
        keys = ext.bridge.select_keys(keys, chosen(ext.bridge.key_frames(keys)))
    return b"".join(keys[name].tobytes() for name, _, _ in ext.bridge.KEY_FIELDS)


def take_bytes(action, ext) -> dict:
    return {k: key_bytes(ext, fc) for k, fc in curves(action, ext).items()}


# ----------------------------------------------------------------------------- the maths


def test_pose_channels_round_trip(ext, scene):
    """smpl_from_channels inverts pose_channels (the keys' maths) for the rig's rest pose."""
    rest, pelvis = ext.rig.rest_matrices()
    rng = np.random.default_rng(0)
    poses = rng.normal(size=(5, 72)) * 0.5
    trans = rng.normal(size=(5, 3))
    quats, loc = ext.bridge.pose_channels(poses, trans, rest, pelvis)
    back, back_trans = ext.bridge.smpl_from_channels(quats * 3.0, loc, rest, pelvis)  # any length
    assert E.rotation_angle(poses.reshape(-1, 3), back.reshape(-1, 3)).max() < 1e-9
    assert np.abs(back_trans - trans).max() < 1e-12


# ----------------------------------------------------------------------------- pins


def test_each_pin_kind_is_stored_and_shown(dancer, ext, scene):
    source = dancer.animation_data.action
    scene.frame_set(30)
    turn(dancer, "left_elbow", 0.7)  # posed by hand, not keyed
    posed = np.array([tuple(dancer.pose.bones[n].rotation_quaternion) for n in sk.JOINT_NAMES])
    assert bpy.ops.m2d.pin_add(kind="POSE") == {"FINISHED"}
    assert bpy.ops.m2d.pin_add(kind="BONES", preset="LEGS", frame_start=40, frame_end=60) == {"FINISHED"}
    assert bpy.ops.m2d.pin_add(kind="ROOT", horizontal_only=True, frame_start=70, frame_end=90) == {"FINISHED"}
    assert bpy.ops.m2d.pin_add(kind="KEEP", frame_start=100, frame_end=120, name="Hold") == {"FINISHED"}
    pins = dancer.m2d.pins
    assert [(p.name, p.kind, p.frame_start) for p in pins] == [
        ("Pose 30", "POSE", 30), ("Legs 40-60", "BONES", 40), ("Root path (floor) 70-90", "ROOT", 70),
        ("Hold", "KEEP", 100)]
    assert np.allclose(np.array(pins[0].pose), posed, atol=1e-7)  # the hand-made pose, not the keys
    assert pins[1].bones == ", ".join(sk.JOINT_GROUPS["legs"]) and pins[1].action == source
    assert pins[2].horizontal_only and (pins[3].frame_start, pins[3].frame_end) == (100, 120)
    assert dancer.m2d.active_pin == 3
    markers = {(m.name, m.frame) for m in scene.timeline_markers}
    assert markers == {("| Pose 30", 30), ("[ Legs 40-60", 40), ("Legs 40-60 ]", 60),
                       ("[ Root path (floor) 70-90", 70), ("Root path (floor) 70-90 ]", 90),
                       ("[ Hold", 100), ("Hold ]", 120)}
    palettes = {b.name: b.color.palette for b in dancer.pose.bones}
    assert set(palettes.values()) == {ext.pin_display.PIN_BONE_COLOR}  # a pose pin holds every bone


def test_pins_are_renamed_toggled_edited_and_removed_with_their_markers_and_colours(dancer, ext, scene):
    scene.timeline_markers.new("Chorus", frame=50)  # the animator's own marker stays
    dancer.pose.bones["left_knee"].color.palette = "THEME09"  # and the animator's own bone colour comes back
    assert bpy.ops.m2d.pin_add(kind="BONES", bones="left_knee, right_knee", frame_start=40, frame_end=60) == {
        "FINISHED"}
    pin = dancer.m2d.pins[0]
    assert {b.name for b in dancer.pose.bones if b.color.palette == ext.pin_display.PIN_BONE_COLOR} == {
        "left_knee", "right_knee"}
    pin.name = "Knees"
    assert {(m.name, m.frame) for m in scene.timeline_markers} == {("Chorus", 50), ("[ Knees", 40), ("Knees ]", 60)}
    pin.frame_end = 70
    pin.bones = "left_knee"
    assert ("Knees ]", 70) in {(m.name, m.frame) for m in scene.timeline_markers}
    assert dancer.pose.bones["right_knee"].color.palette == "DEFAULT"
    pin.enabled = False
    assert {m.name for m in scene.timeline_markers} == {"Chorus"}
    assert dancer.pose.bones["left_knee"].color.palette == "THEME09"
    pin.enabled = True
    assert dancer.pose.bones["left_knee"].color.palette == ext.pin_display.PIN_BONE_COLOR
    assert bpy.ops.m2d.pin_remove(index=0) == {"FINISHED"}
    assert len(dancer.m2d.pins) == 0 and {m.name for m in scene.timeline_markers} == {"Chorus"}
    assert dancer.pose.bones["left_knee"].color.palette == "THEME09"
    assert {b.color.palette for b in dancer.pose.bones if b.name != "left_knee"} == {"DEFAULT"}


def test_selected_bones_preset_and_pin_update(dancer, ext, scene):
    bpy.ops.object.mode_set(mode="POSE")
    bpy.ops.pose.select_all(action="DESELECT")
    for name in ("left_wrist", "left_hand"):
        bone = dancer.pose.bones[name]
        if hasattr(bone, "select"):
            bone.select = True
        else:
            bone.bone.select = True
    assert bpy.ops.m2d.pin_add(kind="BONES", frame_start=10, frame_end=20) == {"FINISHED"}
    assert dancer.m2d.pins[0].bones == "left_wrist, left_hand"
    scene.frame_set(25)
    assert bpy.ops.m2d.pin_add(kind="POSE") == {"FINISHED"}
    turn(dancer, "head", 0.5)
    before = np.array(dancer.m2d.pins[1].pose)
    assert bpy.ops.m2d.pin_update(index=1) == {"FINISHED"}
    after = np.array(dancer.m2d.pins[1].pose)
    assert np.abs(after - before).max() > 0.1
    assert np.allclose(after[sk.JOINT_INDEX["head"]], tuple(dancer.pose.bones["head"].rotation_quaternion))
    bpy.ops.object.mode_set(mode="OBJECT")


def test_pins_survive_save_and_reload(dancer, ext, scene, tmp_path):
    scene.frame_set(30)
    turn(dancer, "right_elbow", 0.9)
    assert bpy.ops.m2d.pin_add(kind="POSE") == {"FINISHED"}
    assert bpy.ops.m2d.pin_add(kind="BONES", preset="RIGHT_ARM", frame_start=40, frame_end=80) == {"FINISHED"}
    assert bpy.ops.m2d.pin_add(kind="ROOT", frame_start=90, frame_end=100) == {"FINISHED"}
    dancer.m2d.pins[2].enabled = False
    stored = [(p.name, p.kind, p.enabled, p.frame_start, p.frame_end, p.bones, p.horizontal_only,
               p.action.name if p.action else None, tuple(np.array(p.pose).ravel()), tuple(p.location))
              for p in dancer.m2d.pins]
    markers = sorted((m.name, m.frame) for m in scene.timeline_markers)
    path = tmp_path / "pins.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.ops.wm.open_mainfile(filepath=str(path))
    arm = bpy.data.objects["Dancer"]
    assert [(p.name, p.kind, p.enabled, p.frame_start, p.frame_end, p.bones, p.horizontal_only,
             p.action.name if p.action else None, tuple(np.array(p.pose).ravel()), tuple(p.location))
            for p in arm.m2d.pins] == stored
    assert sorted((m.name, m.frame) for m in bpy.context.scene.timeline_markers) == markers
    assert arm.pose.bones["right_wrist"].color.palette == ext.pin_display.PIN_BONE_COLOR


def test_pin_add_and_remove_undo_in_one_step(dancer, scene):
    bpy.ops.ed.undo_push(message="before")
    assert bpy.ops.m2d.pin_add("EXEC_DEFAULT", True, kind="KEEP", frame_start=10, frame_end=20) == {"FINISHED"}
    assert len(bpy.data.objects["Dancer"].m2d.pins) == 1 and len(scene.timeline_markers) == 2
    bpy.ops.ed.undo()
    assert len(bpy.data.objects["Dancer"].m2d.pins) == 0
    assert len(bpy.context.scene.timeline_markers) == 0


# ----------------------------------------------------------------------------- regenerate


def test_regenerate_range_keeps_every_key_outside_bit_for_bit(dancer, ext, scene):
    source = dancer.animation_data.action
    for frame, size in ((10, 1.0), (80, 1.3), (150, 0.9)):  # the animator's own curves (Bezier) come along
        dancer.pose.bones["head"].scale = (size, size, size)
        dancer.keyframe_insert('pose.bones["head"].scale', frame=frame)
    assert dancer.animation_data.action == source
    before = take_bytes(source, ext)
    settings = {k: {s: getattr(fc, s) for s in ("extrapolation", "color_mode", "mute", "hide", "lock")}
                for k, fc in curves(source, ext).items()}
    assert bpy.ops.m2d.regenerate(mode="RANGE", frame_start=60, frame_end=100) == {"FINISHED"}
    new = dancer.animation_data.action
    assert new != source and new.name == "Dance.001"
    assert [t.action for t in dancer.m2d.takes] == [source, new] and dancer.m2d.active_take == 1
    assert take_bytes(source, ext) == before  # the source take is untouched
    table = curves(new, ext)
    assert set(table) == set(before)

    def outside(x):
        return (x < 60) | (x > 100)

    changed = 0
    for key, fc in table.items():
        assert key_bytes(ext, fc, outside) == key_bytes(ext, curves(source, ext)[key], outside), key
        assert {s: getattr(fc, s) for s in settings[key]} == settings[key]
        if key[0].endswith("scale"):
            continue
        x = ext.bridge.key_frames(ext.bridge.read_keys(fc))
        assert np.array_equal(x[~outside(x)], np.arange(60, 101))
        changed += key_bytes(ext, fc, lambda x: ~outside(x)) != key_bytes(ext, curves(source, ext)[key],
                                                                            lambda x: ~outside(x))
    assert changed > 80  # the range was sampled again
    scale = table[('pose.bones["head"].scale', 0)]
    assert key_bytes(ext, scale) == before[('pose.bones["head"].scale', 0)]  # copied whole
    assert scale.keyframe_points[0].interpolation == "BEZIER"
    # Blender evaluates the new take exactly as the source outside the range.
    for key in [(ROT.format("left_knee"), 1), (LOC, 0)]:
        for frame in (1.0, 37.0, 59.0, 101.0, 150.5, 180.0):
            assert table[key].evaluate(frame) == curves(source, ext)[key].evaluate(frame)
    info = new["music2dance"]
    assert (info["mode"], list(info["regenerated"]), info["source"]) == ("RANGE", [60, 100], "Dance")
    assert (info["frame_start"], info["frame_end"]) == (1, 180)
    assert tuple(new.frame_range) == tuple(source.frame_range)


def test_pins_inside_a_regenerated_range_are_met(dancer, ext, scene):
    source = dancer.animation_data.action
    scene.frame_set(80)
    turn(dancer, "left_elbow", 0.8)
    turn(dancer, "spine2", 0.3, axis=(0.0, 0.0, 1.0))
    dancer.pose.bones["pelvis"].location.x += 0.05
    posed_q, posed_loc = ext.pins.current_pose(dancer)
    assert bpy.ops.m2d.pin_add(kind="POSE") == {"FINISHED"}
    assert bpy.ops.m2d.pin_add(kind="BONES", preset="LEGS", frame_start=65, frame_end=75) == {"FINISHED"}
    assert bpy.ops.m2d.pin_add(kind="ROOT", horizontal_only=True, frame_start=85, frame_end=95) == {"FINISHED"}
    assert bpy.ops.m2d.pin_add(kind="BONES", preset="RIGHT_ARM", frame_start=150, frame_end=170) == {
        "FINISHED"}  # outside the range: ignored
    assert bpy.ops.m2d.regenerate(mode="RANGE", frame_start=60, frame_end=100) == {"FINISHED"}
    new = dancer.animation_data.action
    q_new, l_new = values(new, ext, np.arange(60, 101))
    q_src, l_src = values(source, ext, np.arange(60, 101))
    p_new, t_new = smpl(dancer, ext, q_new, l_new)
    p_src, t_src = smpl(dancer, ext, q_src, l_src)
    p_pose, t_pose = smpl(dancer, ext, posed_q[None], posed_loc[None])
    at = 80 - 60
    assert E.rotation_angle(p_new[at], p_pose[0]).max() <= 1e-4
    assert np.abs(t_new[at] - t_pose[0]).max() <= 1e-4
    legs = [sk.JOINT_INDEX[n] for n in sk.JOINT_GROUPS["legs"]]
    assert E.rotation_angle(p_new[5:16][:, legs], p_src[5:16][:, legs]).max() <= 1e-4
    assert np.abs(t_new[25:36, :2] - t_src[25:36, :2]).max() <= 1e-4  # the path on the floor
    assert E.rotation_angle(p_new[:, 0], p_src[:, 0]).max() > 1e-3  # the rest was sampled again


def test_regenerate_unpinned_meets_pins_and_samples_the_rest_again(dancer, ext, scene):
    source = dancer.animation_data.action
    scene.frame_set(30)
    turn(dancer, "right_shoulder", 1.0)
    posed_q, posed_loc = ext.pins.current_pose(dancer)
    assert bpy.ops.m2d.pin_add(kind="POSE") == {"FINISHED"}
    assert bpy.ops.m2d.pin_add(kind="KEEP", frame_start=100, frame_end=130) == {"FINISHED"}
    scene.m2d.seed = 5
    assert bpy.ops.m2d.regenerate(mode="UNPINNED") == {"FINISHED"}
    new = dancer.animation_data.action
    frames = np.arange(1, 181)
    q_new, l_new = values(new, ext, frames)
    q_src, l_src = values(source, ext, frames)
    assert angle(q_new[29], posed_q).max() <= 1e-4 and np.abs(l_new[29] - posed_loc).max() <= 1e-4
    assert angle(q_new[99:130], q_src[99:130]).max() <= 1e-4
    assert np.abs(l_new[99:130] - l_src[99:130]).max() <= 1e-4
    free = np.r_[0:20, 40:90, 140:180]
    assert np.median(angle(q_new[free], q_src[free])) > 1e-3
    assert new["music2dance"]["mode"] == "UNPINNED" and new["music2dance"]["seed"] == 5
    assert new["music2dance"]["pins"] == 2


@pytest.mark.parametrize("fps,fps_base", [(24, 1.0), (30, 1.001)])
def test_other_frame_rates(scene, song, ext, fps, fps_base):
    """Model frames fall between scene frames: pinned keys are still exact, the rest outside bit for bit."""
    scene.render.fps, scene.render.fps_base = fps, fps_base
    add_strip(scene, song, frame_start=1)
    assert generate() == {"FINISHED"}
    arm = bpy.data.objects["Dancer"]
    bpy.context.view_layer.objects.active = arm
    source = arm.animation_data.action
    assert bpy.ops.m2d.pin_add(kind="BONES", preset="UPPER_BODY", frame_start=45, frame_end=55) == {"FINISHED"}
    assert bpy.ops.m2d.pin_add(kind="ROOT", frame_start=58, frame_end=62) == {"FINISHED"}
    assert bpy.ops.m2d.regenerate(mode="RANGE", frame_start=40, frame_end=70) == {"FINISHED"}
    new = arm.animation_data.action
    for key, fc in curves(new, ext).items():
        assert key_bytes(ext, fc, lambda x: (x < 40) | (x > 70)) == key_bytes(
            ext, curves(source, ext)[key], lambda x: (x < 40) | (x > 70)), key
    q_new, l_new = values(new, ext, np.arange(40, 71))
    q_src, l_src = values(source, ext, np.arange(40, 71))
    upper = [sk.JOINT_INDEX[n] for n in sk.JOINT_GROUPS["upper_body"]]
    assert angle(q_new[5:16][:, upper], q_src[5:16][:, upper]).max() <= 1e-6
    assert np.abs(l_new[18:23] - l_src[18:23]).max() <= 1e-6
    assert np.median(angle(q_new[20:31, 1], q_src[20:31, 1])) > 1e-3


def test_sparse_hand_keyed_bezier_take(scene, song, ext):
    """A take of a few hand-set keys (Bezier): kept keys stay bit for bit, and the poses are met."""
    add_strip(scene, song, frame_start=1)
    arm = ext.rig.create_armature(bpy.context)
    for name in sk.JOINT_NAMES:
        arm.pose.bones[name].rotation_mode = "QUATERNION"
    keyed = {}
    for frame, bend in ((10, 0.2), (60, 0.9), (110, -0.4), (170, 0.5)):
        turn(arm, "left_knee", bend)
        turn(arm, "right_shoulder", -bend, axis=(0.0, 1.0, 0.0))
        arm.pose.bones["pelvis"].location = (0.0, bend * 0.1, 0.0)
        for name in sk.JOINT_NAMES:
            arm.keyframe_insert(f'pose.bones["{name}"].rotation_quaternion', frame=frame)
        arm.keyframe_insert(LOC, frame=frame)
        keyed[frame] = ext.pins.current_pose(arm)
    source = arm.animation_data.action
    before = take_bytes(source, ext)
    # In-between: a dance through the four keyed poses.
    assert bpy.ops.m2d.inbetween() == {"FINISHED"}
    dance = arm.animation_data.action
    assert dance != source and dance["music2dance"]["mode"] == "INBETWEEN"
    for frame, (q, loc) in keyed.items():
        q_new, l_new = values(dance, ext, [frame])
        assert angle(q_new[0], q).max() <= 1e-4 and np.abs(l_new[0] - loc).max() <= 1e-4, frame
    # Regenerate a range of the sparse take itself: its keys outside stay, two keys hold its motion at the edges.
    arm.m2d.active_take = 0
    assert arm.animation_data.action == source
    assert bpy.ops.m2d.regenerate(mode="RANGE", frame_start=40, frame_end=80) == {"FINISHED"}
    new = arm.animation_data.action
    assert take_bytes(source, ext) == before
    old_curves = curves(source, ext)
    for key, fc in curves(new, ext).items():
        assert key_bytes(ext, fc, lambda x: ~np.isin(x, np.arange(39, 82))) == key_bytes(
            ext, old_curves[key], lambda x: ~np.isin(x, np.arange(39, 82))), key
        x = ext.bridge.key_frames(ext.bridge.read_keys(fc))
        assert set(x) == {10, 110, 170} | set(range(39, 82))
        for edge in (39.0, 81.0):
            assert fc.evaluate(edge) == pytest.approx(old_curves[key].evaluate(edge), abs=1e-6)


# ----------------------------------------------------------------------------- variations, undo, cancel


def test_variations_are_takes_with_consecutive_seeds(dancer, ext, scene):
    source = dancer.animation_data.action
    scene.m2d.seed = 7
    assert bpy.ops.m2d.variations(count=3, mode="RANGE", frame_start=50, frame_end=90) == {"FINISHED"}
    takes = [t.action for t in dancer.m2d.takes]
    assert takes[0] == source and len(takes) == 4
    assert [a["music2dance"]["seed"] for a in takes[1:]] == [7, 8, 9]
    assert dancer.animation_data.action == takes[1] and dancer.m2d.active_take == 1
    keys = [values(a, ext, np.arange(50, 91))[0] for a in takes[1:]]
    assert np.median(angle(keys[0], keys[1])) > 1e-3 and np.median(angle(keys[1], keys[2])) > 1e-3
    assert bpy.ops.m2d.switch_take(step=1) == {"FINISHED"}
    assert dancer.animation_data.action == takes[2]
    assert bpy.ops.m2d.switch_take(step=-2) == {"FINISHED"}
    assert dancer.animation_data.action == takes[0]


def test_panel_path_ticks_to_the_same_takes(dancer, ext, prefs, scene):
    """The modal operator's path (timer ticks, keys written a slice at a time) gives the blocking path's keys
    and changes nothing before its last tick."""
    scene.frame_set(50)
    turn(dancer, "left_shoulder", 0.6)
    assert bpy.ops.m2d.pin_add(kind="POSE") == {"FINISHED"}
    assert bpy.ops.m2d.variations(count=2, mode="UNPINNED") == {"FINISHED"}
    blocking = [take_bytes(t.action, ext) for t in dancer.m2d.takes[1:]]
    dancer.m2d.active_take = 0
    before = snapshot()
    run = ext.regenerate.EditGeneration(ext.regenerate.make_plan(bpy.context, "UNPINNED", count=2),
                                        prefs.python_path).start()
    run.WRITE_BUDGET = 0.0
    op_type = bpy.types.M2D_OT_variations
    reports = []
    op = types.SimpleNamespace(_run=run, _timer=None, report=lambda level, text: reports.append((level, text)))
    for name in ("_stop", "_fail", "_done", "tick"):
        setattr(op, name, types.MethodType(getattr(op_type, name), op))
    ticks = 0
    deadline = Deadline("two variations")
    while (state := op.tick(bpy.context)) == {"PASS_THROUGH"}:
        ticks += 1
        if run.keys is None:
            assert snapshot() == before
        deadline.check()
        time.sleep(0.01)
    assert state == {"FINISHED"} and ticks > 2 * 27, ticks  # two takes, written curve by curve
    assert reports[-1][0] == {"INFO"} and "2 variations on Dancer" in reports[-1][1]
    modal = [take_bytes(t.action, ext) for t in dancer.m2d.takes[-2:]]
    assert modal == blocking
    assert dancer.animation_data.action == dancer.m2d.takes[-2].action


def test_one_undo_removes_a_regeneration(dancer, scene):
    bpy.ops.ed.undo_push(message="before")
    before = snapshot()
    assert bpy.ops.m2d.regenerate("EXEC_DEFAULT", True, mode="RANGE", frame_start=20, frame_end=40) == {
        "FINISHED"}
    assert "Dance.001" in bpy.data.actions
    bpy.ops.ed.undo()
    assert snapshot() == before
    arm = bpy.data.objects["Dancer"]
    assert arm.animation_data.action.name == "Dance" and len(arm.m2d.takes) == 1


def test_cancel_midway_leaves_the_source_take_intact_and_current(dancer, ext, prefs):
    plan = ext.regenerate.make_plan(bpy.context, "RANGE", 30, 60, count=2)
    before = snapshot()
    source = dancer.animation_data.action
    run = ext.regenerate.EditGeneration(plan, prefs.python_path).start()
    run.WRITE_BUDGET = 0.0
    deadline = Deadline("key writing to begin")
    while not run.engine_done or run.keys is None:  # until the keys are being written
        assert not run.poll()
        deadline.check()
        time.sleep(0.02)
    assert not run.poll()
    bpy.ops.m2d.cancel()
    assert run.poll() and run.cancelled
    run.close()
    assert snapshot() == before
    assert dancer.animation_data.action == source and not any(p.startswith("Dance.") for p in bpy.data.actions.keys())
    assert all(not os.path.exists(p) for p in plan.temp_files)


def test_cancel_while_the_engine_runs(dancer, ext, prefs):
    before = snapshot()
    run = ext.regenerate.EditGeneration(ext.regenerate.make_plan(bpy.context, "UNPINNED"), prefs.python_path)
    run.start()
    bpy.ops.m2d.cancel()
    assert run.poll() and run.cancelled
    run.close()
    assert snapshot() == before


# ----------------------------------------------------------------------------- the command line


def test_export_constraints_for_the_command_line(dancer, ext, scene, tmp_path):
    scene.frame_set(31)
    turn(dancer, "head", 0.4)
    assert bpy.ops.m2d.pin_add(kind="POSE") == {"FINISHED"}
    assert bpy.ops.m2d.pin_add(kind="ROOT", horizontal_only=True, frame_start=61, frame_end=70) == {"FINISHED"}
    path = tmp_path / "pins.npz"
    assert bpy.ops.m2d.export_constraints(filepath=str(path)) == {"FINISHED"}
    c = Constraints.load(path, fps=30)
    assert np.flatnonzero(c.pose_mask.any(1)).tolist() == [30]  # frame 31 shows file time 1 s: model frame 30
    assert c.pose_mask[30].all() and c.root_mask[30].all()
    assert np.flatnonzero(c.root_mask.any(1)).tolist() == [30] + list(range(60, 70))
    assert not c.root_mask[60:70, 2].any()
    q, loc = ext.pins.current_pose(dancer)
    poses, trans = smpl(dancer, ext, q[None], loc[None])
    assert E.rotation_angle(c.smpl_poses[30].reshape(24, 3), poses[0]).max() < 1e-5


# ----------------------------------------------------------------------------- bad input


def test_pin_outside_the_strip(dancer):
    fails(bpy.ops.m2d.pin_add, "outside the strip", "1-180", kind="KEEP", frame_start=170, frame_end=260)
    fails(bpy.ops.m2d.pin_add, "outside the strip", kind="POSE", frame_start=500)


def test_range_that_ends_before_it_starts(dancer):
    fails(bpy.ops.m2d.pin_add, "after its end", kind="BONES", preset="LEGS", frame_start=60, frame_end=50)
    fails(bpy.ops.m2d.regenerate, "after its end", mode="RANGE", frame_start=90, frame_end=80)


def test_pin_edited_into_a_bad_range_is_reported_when_regenerating(dancer):
    assert bpy.ops.m2d.pin_add(kind="KEEP", frame_start=10, frame_end=20) == {"FINISHED"}
    dancer.m2d.pins[0].frame_end = 5
    fails(bpy.ops.m2d.regenerate, "starts at frame 10, after its end 5", mode="UNPINNED")
    dancer.m2d.pins[0].frame_end = 400
    fails(bpy.ops.m2d.regenerate, "lies outside frames 1-180", mode="UNPINNED")


def test_contradicting_pins(dancer, scene):
    scene.frame_set(30)
    turn(dancer, "left_knee", 0.5)  # posed by hand: no longer what the take has
    assert bpy.ops.m2d.pin_add(kind="POSE") == {"FINISHED"}
    fails(bpy.ops.m2d.pin_add, "contradict", "'Pose 30' and 'Keep 20-40'", "frame 30", "left_knee",
          kind="KEEP", frame_start=20, frame_end=40)
    turn(dancer, "left_knee", 0.5)
    fails(bpy.ops.m2d.pin_add, "contradict", "frame 30", "left_knee", kind="POSE")
    # Pins that agree are fine: the right arm of the pose is the take's.
    assert bpy.ops.m2d.pin_add(kind="BONES", preset="RIGHT_ARM", frame_start=25, frame_end=35) == {"FINISHED"}
    scene.frame_set(50)
    assert bpy.ops.m2d.pin_add(kind="POSE") == {"FINISHED"}
    assert bpy.ops.m2d.pin_add(kind="POSE") == {"FINISHED"}  # the same pose twice agrees
    assert [p.name for p in dancer.m2d.pins][-2:] == ["Pose 50", "Pose 50.001"]


def test_bones_that_are_not_smpl_bones(dancer):
    fails(bpy.ops.m2d.pin_add, "'tail' is not an SMPL bone", kind="BONES", bones="left_knee, tail",
          frame_start=10, frame_end=20)
    fails(bpy.ops.m2d.pin_add, "no bones", kind="BONES", preset="SELECTED", frame_start=10, frame_end=20)


def test_regenerating_without_a_take(scene, song, ext):
    add_strip(scene, song)
    ext.rig.create_armature(bpy.context)
    fails(bpy.ops.m2d.regenerate, "has no take yet", mode="RANGE", frame_start=10, frame_end=20)
    fails(bpy.ops.m2d.regenerate, "has no take yet", mode="UNPINNED")
    fails(bpy.ops.m2d.pin_add, "has no take yet", kind="KEEP", frame_start=10, frame_end=20)
    fails(bpy.ops.m2d.inbetween, "two or more poses", "found 0")


def test_inbetween_needs_two_poses(dancer, scene):
    scene.frame_set(40)
    assert bpy.ops.m2d.pin_add(kind="POSE") == {"FINISHED"}
    bpy.context.view_layer.objects.active.animation_data.action = None
    bpy.context.view_layer.objects.active.m2d.takes.clear()
    fails(bpy.ops.m2d.inbetween, "two or more poses", "found 1")


def test_inbetween_of_a_take_keyed_on_every_frame(dancer):
    fails(bpy.ops.m2d.inbetween, "keyed on 180 of frames 1-180", "use Regenerate")


def test_regenerate_range_outside_the_take(dancer):
    fails(bpy.ops.m2d.regenerate, "outside the take", mode="RANGE", frame_start=150, frame_end=400)


def test_euler_bones_are_refused(dancer):
    dancer.pose.bones["neck"].rotation_mode = "XYZ"
    fails(bpy.ops.m2d.pin_add, "neck", "Quaternion", kind="POSE")
    fails(bpy.ops.m2d.regenerate, "neck", mode="UNPINNED")


# ----------------------------------------------------------------------------- panels


def test_pin_and_edit_panels_draw(dancer, scene):
    assert bpy.types.VIEW3D_PT_m2d_pins.poll(bpy.context) and bpy.types.VIEW3D_PT_m2d_edit.poll(bpy.context)
    calls = draw(bpy.types.VIEW3D_PT_m2d_pins, bpy.context)
    assert [c for c in calls if c[0] == "operator"] == [("operator", "m2d.pin_add")] * 4
    assert bpy.ops.m2d.pin_add(kind="BONES", preset="LEGS", frame_start=10, frame_end=20) == {"FINISHED"}
    calls = draw(bpy.types.VIEW3D_PT_m2d_pins, bpy.context)
    assert ("list", "pins") in calls and ("operator", "m2d.pin_remove") in calls
    assert {"kind", "frame_start", "frame_end", "bones", "action"} <= {c[1] for c in calls if c[0] == "prop"}
    calls = draw(bpy.types.VIEW3D_PT_m2d_edit, bpy.context)
    ops = [c[1] for c in calls if c[0] == "operator"]
    assert ops == ["m2d.regenerate", "m2d.regenerate", "m2d.inbetween", "m2d.variations"]
    item_calls = []
    bpy.types.M2D_UL_pins.draw_item(None, bpy.context, Layout(item_calls), dancer.m2d, dancer.m2d.pins[0],
                                    0, dancer.m2d, "active_pin", 0)
    assert any(c[0] == "label" and c[1].endswith("10-20") for c in item_calls), item_calls


def test_pin_add_dialog_draws_what_the_kind_needs(dancer):
    op_type = bpy.types.M2D_OT_pin_add
    for kind, expected in (("POSE", {"name", "frame_start"}),
                           ("BONES", {"name", "frame_start", "frame_end", "preset", "bones"}),
                           ("ROOT", {"name", "frame_start", "frame_end", "horizontal_only"})):
        calls = []
        fake = types.SimpleNamespace(layout=Layout(calls), kind=kind, bl_rna=bpy.ops.m2d.pin_add.get_rna_type())
        op_type.draw(fake, bpy.context)
        assert {c[1] for c in calls if c[0] == "prop"} == expected, kind
