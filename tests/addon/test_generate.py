"""Generate Dance in background mode, read back from Blender's own data."""

from __future__ import annotations

import os
import time
import types

import bpy
import numpy as np
import pytest
from addon_helpers import Deadline, add_strip, generate, snapshot

from inference import skeleton as sk
from inference.config import DDIM, DPMPP_2M, SAMPLER_STEPS
from inference.motion import resample


def rig_of(name="Dancer"):
    return bpy.data.objects[name]


def test_new_armature_bones_body_and_keys(scene, song, ext):
    add_strip(scene, song, frame_start=1)
    assert generate() == {"FINISHED"}
    arm = rig_of()
    assert arm.type == "ARMATURE"
    bones = arm.data.bones
    assert sorted(b.name for b in bones) == sorted(sk.JOINT_NAMES)
    for j, name in enumerate(sk.JOINT_NAMES[1:], start=1):
        assert bones[name].parent.name == sk.JOINT_NAMES[sk.PARENTS[j]]
    # Bones point along the limbs: the thigh from hip to knee.
    hip, knee = bones["left_hip"], bones["left_knee"]
    direction = np.array(hip.tail_local) - np.array(hip.head_local)
    assert np.allclose(np.array(hip.tail_local), np.array(knee.head_local), atol=1e-6)
    assert direction[2] < -0.3  # downwards
    # The rest pose stands on the floor.
    heads = np.array([b.head_local for b in bones])
    assert 0.0 < heads[:, 2].min() < 0.05
    # A body skinned to the bones.
    body = [o for o in arm.children if o.type == "MESH"]
    assert len(body) == 1
    assert {g.name for g in body[0].vertex_groups} == set(sk.JOINT_NAMES)
    assert any(m.type == "ARMATURE" and m.object == arm for m in body[0].modifiers)
    # Keys: slotted action, every SMPL bone, root location, one key per frame, one hemisphere.
    action = arm.animation_data.action
    assert action.name == "Dance" and action.use_fake_user
    assert action.is_action_layered and len(action.slots) == 1
    assert arm.animation_data.action_slot == action.slots[0]
    curves = ext.bridge.action_channels(action)
    assert len(curves) == 24 * 4 + 3
    strip = scene.sequence_editor.strips_all["Song"]
    n_frames = strip.frame_final_end - strip.frame_final_start
    assert {len(fc.keyframe_points) for fc in curves} == {n_frames}
    assert {fc.keyframe_points[0].interpolation for fc in curves} == {"LINEAR"}
    for j, name in enumerate(sk.JOINT_NAMES):
        q = np.stack([_keys(curves, f'pose.bones["{name}"].rotation_quaternion', i) for i in range(4)], 1)
        assert np.all((q[1:] * q[:-1]).sum(1) >= 0), name
    assert len(_keys(curves, 'pose.bones["pelvis"].location', 0)) == n_frames
    assert tuple(action.frame_range) == (strip.frame_final_start, strip.frame_final_end - 1)


def _keys(curves, path, index):
    fc = next(c for c in curves if c.data_path == path and c.array_index == index)
    co = np.empty(2 * len(fc.keyframe_points), np.float32)
    fc.keyframe_points.foreach_get("co", co)
    return co[1::2]


@pytest.mark.parametrize("fps,fps_base", [(24, 1.0), (25, 1.0), (30, 1.0), (60, 1.0), (30, 1.001)])
def test_timing_and_fk_readback(scene, song, ext, tmp_path, fps, fps_base):
    """Bone heads read back from Blender = the engine's FK of the motion at each frame's audio time."""
    scene.render.fps, scene.render.fps_base = fps, fps_base
    strip = add_strip(scene, song, frame_start=7)
    strip.frame_offset_start = 5  # trimmed: the first 5 frames of the music are not heard
    strip.frame_offset_end = 3
    scene.cursor.location = (0.5, -1.0, 0.0)
    npz = tmp_path / "dance.npz"
    assert generate(save_npz=str(npz)) == {"FINISHED"}
    arm = rig_of()
    rate = fps / fps_base
    frames = np.arange(strip.frame_final_start, strip.frame_final_end)
    assert tuple(arm.animation_data.action.frame_range) == (frames[0], frames[-1])
    seconds = (frames - strip.frame_start) / rate  # what each frame shows of the music
    with np.load(npz) as data:
        dance = {k: data[k] for k in data.files}
    assert dance["audio_start"] == pytest.approx(seconds[0], abs=1e-4)
    poses, trans = resample(dance["smpl_poses"], dance["smpl_trans"], float(dance["fps"]),
                            seconds - dance["audio_start"])
    expected = sk.joint_positions(poses, trans) + np.array([0.5, -1.0, 0.0])
    got = ext.bridge.read_joint_positions(arm, frames)
    error_mm = np.abs(got - expected).max() * 1000
    print(f"fps {rate:.3f}: FK read-back max error {error_mm:.4f} mm over {len(frames)} frames")
    assert error_mm < 1.0
    if fps == 30 and fps_base == 1.0:  # frames fall on the model's frames: compare with its own joints
        index = np.round((seconds - dance["audio_start"]) * 30).astype(int)
        direct = dance["joints"][index] + np.array([0.5, -1.0, 0.0])
        assert np.abs(got - direct).max() * 1000 < 1.0


def test_sound_offset_and_range(scene, song):
    strip = add_strip(scene, song, frame_start=10)
    strip.sound_offset = 0.5  # the music starts half a second into the strip
    scene.m2d.range_mode = "RANGE"
    scene.m2d.frame_start, scene.m2d.frame_end = 1, 100
    assert generate() == {"FINISHED"}
    action = rig_of().animation_data.action
    first = 10 + 0.5 * 30
    assert tuple(action.frame_range) == (first, 100)
    assert action["music2dance"]["audio_start"] == pytest.approx(0.0, abs=1e-3)
    assert action["music2dance"]["beat_snap"]
    assert action["music2dance"]["foot_lock"]


def test_beat_snap_can_be_turned_off(scene, song):
    add_strip(scene, song)
    scene.m2d.beat_snap = False
    assert generate() == {"FINISHED"}
    assert not rig_of().animation_data.action["music2dance"]["beat_snap"]


def test_foot_lock_can_be_turned_off(scene, song):
    add_strip(scene, song)
    scene.m2d.foot_lock = False
    assert generate() == {"FINISHED"}
    meta = rig_of().animation_data.action["music2dance"]
    assert not meta["foot_lock"] and meta["beat_snap"]


def test_sampler_is_chosen_and_recorded(scene, song):
    add_strip(scene, song)
    settings = scene.m2d
    assert settings.sampler == DDIM
    assert generate() == {"FINISHED"}
    meta = rig_of().animation_data.action["music2dance"]
    assert meta["sampler"] == DDIM and meta["steps"] == 2
    settings.steps = SAMPLER_STEPS[DDIM]
    settings.sampler = DPMPP_2M
    assert settings.steps == SAMPLER_STEPS[DPMPP_2M]  # the usual count follows the sampler
    settings.steps = 3
    settings.sampler = DDIM
    assert settings.steps == 3  # a count of one's own stays
    settings.sampler = DPMPP_2M
    assert generate() == {"FINISHED"}
    meta = bpy.context.view_layer.objects.active.animation_data.action["music2dance"]  # a new dancer's take
    assert meta["sampler"] == DPMPP_2M and meta["steps"] == 3


def test_style_menu_offers_the_models_styles_and_the_take_records_one(scene, song, prefs, tmp_path):
    """Style: the menu lists the styles of the model in use (the shipped model's ballroom styles; the test model,
    trained without styles, Any only; a model trained on other labels, those); the take records the style."""
    import torch

    from inference.config import TINY_CONFIG
    from inference.network.model import DanceDenoiser
    from inference.network.weights import save_model

    assert scene.m2d.style == "ANY"
    with pytest.raises(TypeError, match=r"\('ANY'\)"):  # the test model knows no style
        scene.m2d.style = "WALTZ"
    add_strip(scene, song)
    assert generate() == {"FINISHED"}
    assert rig_of().animation_data.action["music2dance"]["style"] == "any"

    prefs.weights_path = ""  # the shipped model
    scene.m2d.style = "WALTZ"
    assert scene.m2d.style == "WALTZ"
    torch.manual_seed(0)
    prefs.weights_path = str(save_model(DanceDenoiser(TINY_CONFIG.replace(styles=("cha-cha", "rumba", "waltz"))),
                                        tmp_path / "styled"))
    scene.m2d.style = "CHA_CHA"
    assert generate() == {"FINISHED"}
    prefs.weights_path = str(save_model(DanceDenoiser(TINY_CONFIG.replace(styles=("house", "lock"))),
                                        tmp_path / "studio"))
    with pytest.raises(TypeError, match=r"\('ANY', 'HOUSE', 'LOCK'\)"):
        scene.m2d.style = "RUMBA"
    scene.m2d.style = "LOCK"
    assert generate() == {"FINISHED"}
    assert sorted(a["music2dance"]["style"] for a in bpy.data.actions if "music2dance" in a) == [
        "any", "cha-cha", "lock"]


def test_takes_keep_other_animation(scene, song, ext):
    add_strip(scene, song)
    bpy.ops.mesh.primitive_cube_add()
    cube = bpy.context.active_object
    cube.keyframe_insert("location", frame=1)
    cube.location.x = 3
    cube.keyframe_insert("location", frame=20)
    cube_before = snapshot()["actions"]
    assert generate() == {"FINISHED"}
    arm = rig_of()
    first = arm.animation_data.action
    bpy.context.view_layer.objects.active = arm
    scene.m2d.target = "SELECTED"
    scene.m2d.seed = 1
    assert generate() == {"FINISHED"}
    second = arm.animation_data.action
    assert (first.name, second.name) == ("Dance", "Dance.001")
    assert [t.action for t in arm.m2d.takes] == [first, second]
    assert arm.m2d.active_take == 1
    arm.m2d.active_take = 0  # switch back from the panel's list
    assert arm.animation_data.action == first
    assert first.use_fake_user and second.use_fake_user
    after = snapshot()["actions"]
    for name, value in cube_before.items():
        assert after[name] == value  # other objects' animation untouched
    assert cube.animation_data.action.name in cube_before


def test_existing_action_of_target_is_kept(scene, song):
    add_strip(scene, song)
    assert generate() == {"FINISHED"}
    arm = rig_of()
    own = bpy.data.actions.new("MyAnimation")  # the animator's own action, not a take
    arm.animation_data.action = own
    arm.m2d.takes.clear()
    bpy.context.view_layer.objects.active = arm
    scene.m2d.target = "SELECTED"
    assert generate() == {"FINISHED"}
    assert arm.m2d.takes[0].action == own and own.use_fake_user
    arm.m2d.active_take = 0
    assert arm.animation_data.action == own


def test_one_undo_removes_a_generation(scene, song):
    add_strip(scene, song)
    bpy.ops.ed.undo_push(message="before")
    before = snapshot()
    assert bpy.ops.m2d.generate("EXEC_DEFAULT", True) == {"FINISHED"}  # undo=True, as from the UI
    assert "Dancer" in bpy.data.objects
    bpy.ops.ed.undo()
    assert snapshot() == before


def test_worker_stays_loaded_and_nothing_written_into_extension(scene, song, ext, addon):
    add_strip(scene, song)
    ext_dir = os.path.dirname(addon.__file__)
    listing = sorted(os.path.relpath(os.path.join(d, f), ext_dir) for d, _, fs in os.walk(ext_dir) for f in fs)
    assert generate() == {"FINISHED"}
    pid = ext.jobs.SESSION.client.pid
    scene.m2d.seed = 3
    assert generate() == {"FINISHED"}
    assert ext.jobs.SESSION.client.pid == pid  # the same process: the model was not reloaded
    after = sorted(os.path.relpath(os.path.join(d, f), ext_dir) for d, _, fs in os.walk(ext_dir) for f in fs)
    assert after == listing


def test_new_rig_rest_pose_matches_the_precomputed_one(scene, ext):
    """The keys of a new rig are computed before it exists: its bones must match rig.rest_matrices()."""
    arm = ext.rig.create_armature(bpy.context)
    rest, pelvis = ext.bridge.bone_rest(arm)
    expected_rest, expected_pelvis = ext.rig.rest_matrices()
    assert np.abs(rest - expected_rest).max() < 1e-5  # float32 rounding; Keys.for_rest tolerates 1e-5
    assert np.abs(pelvis - expected_pelvis).max() < 1e-6


def test_ui_path_produces_the_same_take(scene, song, ext, prefs, tmp_path):
    """The panel's path (timer polls, keys written in slices) gives the keys of the blocking path."""
    add_strip(scene, song)
    assert generate() == {"FINISHED"}
    blocking = [tuple(_keys(ext.bridge.action_channels(bpy.data.actions["Dance"]), fc.data_path, fc.array_index))
                for fc in ext.bridge.action_channels(bpy.data.actions["Dance"])]
    plan = ext.generation.make_plan(bpy.context)
    run = ext.generation.Generation(plan, prefs.python_path).start()
    run.WRITE_BUDGET = 0.0
    ticks = 0
    deadline = Deadline("the generation")
    while not run.poll():
        ticks += 1
        deadline.check()
        time.sleep(0.01)
    assert run.error is None
    obj, action = run.finish(bpy.context)
    run.close()
    assert ticks > 24  # written bone by bone
    modal = [tuple(_keys(ext.bridge.action_channels(action), fc.data_path, fc.array_index))
             for fc in ext.bridge.action_channels(action)]
    assert np.allclose(np.array(blocking), np.array(modal), atol=1e-6)
    assert obj.name == "Dancer.001" and action.name == "Dance.001"


def _fake_operator(run):
    """The modal operator's state around ``run``, to drive its timer tick by hand (no events in background)."""
    op_type = bpy.types.M2D_OT_generate
    reports = []
    fake = types.SimpleNamespace(_run=run, _timer=None, report=lambda level, text: reports.append((level, text)))
    for name in ("_stop", "_fail", "_cancelled", "_done", "tick"):
        setattr(fake, name, types.MethodType(getattr(op_type, name), fake))
    return fake, reports


def test_modal_tick_applies_the_take_once_done(scene, song, ext, prefs):
    add_strip(scene, song)
    run = ext.generation.Generation(ext.generation.make_plan(bpy.context), prefs.python_path).start()
    op, reports = _fake_operator(run)
    ticks = 0
    deadline = Deadline("the generation")
    while (state := op.tick(bpy.context)) == {"PASS_THROUGH"}:
        assert "Dancer" not in bpy.data.objects  # nothing changes before the last tick
        ticks += 1
        deadline.check()
        time.sleep(0.05)
    assert state == {"FINISHED"} and ticks > 0
    assert reports[-1][0] == {"INFO"} and "Dance on Dancer" in reports[-1][1]
    assert ext.jobs.SESSION.status.startswith("Dance on Dancer") and not ext.jobs.SESSION.running
    assert bpy.data.objects["Dancer"].animation_data.action.name == "Dance"


def test_modal_tick_reports_cancel(scene, song, ext, prefs):
    add_strip(scene, song)
    run = ext.generation.Generation(ext.generation.make_plan(bpy.context), prefs.python_path).start()
    op, reports = _fake_operator(run)
    assert op.tick(bpy.context) == {"PASS_THROUGH"}
    bpy.ops.m2d.cancel()
    assert op.tick(bpy.context) == {"CANCELLED"}
    assert reports == [({"INFO"}, "Cancelled; nothing was changed.")]
    assert not bpy.data.actions and "Dancer" not in bpy.data.objects


def test_packed_sound_without_its_file(scene, song, tmp_path):
    import shutil

    path = shutil.copy(song, tmp_path / "packed.wav")
    strip = add_strip(scene, path)
    strip.sound.pack()
    os.remove(path)
    assert generate() == {"FINISHED"}


def test_remove_take_and_unloaded_worker(scene, song, ext, prefs):
    prefs.keep_loaded = False
    add_strip(scene, song)
    assert generate() == {"FINISHED"}
    assert ext.jobs.SESSION.client is None  # the engine process ended with the generation
    arm = rig_of()
    bpy.context.view_layer.objects.active = arm
    assert bpy.ops.m2d.remove_take() == {"FINISHED"}
    assert len(arm.m2d.takes) == 0 and arm.animation_data.action is None
    assert not bpy.data.actions["Dance"].use_fake_user  # gone on save, unless used elsewhere


def test_an_euler_armature_keeps_its_own_action_working(scene, song, ext):
    """Takes key quaternions; switching back to the armature's own Euler action gives its bones their
    Euler modes back, so that action drives them again (nothing converted silently)."""
    add_strip(scene, song)
    obj = ext.rig.create_armature(bpy.context)
    for pb in obj.pose.bones:
        pb.rotation_mode = "XYZ"
    elbow = obj.pose.bones["left_elbow"]
    elbow.rotation_euler = (0.5, 0.0, 0.0)
    elbow.keyframe_insert("rotation_euler", frame=1)
    own = obj.animation_data.action
    scene.m2d.target = "SELECTED"
    assert generate() == {"FINISHED"}
    assert elbow.rotation_mode == "QUATERNION" and obj.animation_data.action != own
    obj.m2d.active_take = [t.action for t in obj.m2d.takes].index(own)
    assert obj.animation_data.action == own
    assert all(pb.rotation_mode == "XYZ" for pb in obj.pose.bones)
    scene.frame_set(1)
    assert np.allclose(np.array(elbow.matrix_basis)[:3, :3],
                       np.array(elbow.rotation_euler.to_matrix()), atol=1e-6)
    assert tuple(elbow.rotation_euler) == pytest.approx((0.5, 0.0, 0.0))
    obj.m2d.active_take = len(obj.m2d.takes) - 1  # the take again: quaternions
    assert elbow.rotation_mode == "QUATERNION"
