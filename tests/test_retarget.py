"""Retargeting an SMPL dance onto other humanoid rigs: bone maps, the transfer, planted feet (NumPy only)."""

from __future__ import annotations

import numpy as np
import pytest
from humanoids import build, centimetres_y_up, character

from inference import skeleton as sk
from inference.errors import M2DError
from inference.retarget import rotations as rot
from inference.retarget.bone_map import BoneMap, auto_map, families, match_names
from inference.retarget.character import Retarget
from inference.retarget.feet import flex_feet, plant_feet, stand_on_floor, two_bone_ik

FAMILIES = ("MIXAMO", "UE5", "VRM", "METARIG")
DIRECT = [("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"), ("right_shoulder", "right_elbow"),
          ("left_hip", "left_knee"), ("left_knee", "left_ankle"), ("right_knee", "right_ankle"),
          ("left_collar", "left_shoulder"), ("neck", "head")]


def _map(h, family="AUTO"):
    c = character(h)
    heads = {n: c.rest[i, :3, 3] for i, n in enumerate(c.bone_names)}
    return c, auto_map(c.bone_names, c.parent_map(), heads, family)


def _random_motion(frames=40, seed=1, spread=0.4):
    rng = np.random.default_rng(seed)
    poses = rng.normal(scale=spread, size=(frames, 72))
    poses[:, :3] = np.array([np.pi / 2, 0, 0]) + rng.normal(scale=0.3, size=(frames, 3))
    trans = rng.normal(scale=0.3, size=(frames, 3)) + np.array([0, 0, 0.95])
    return poses, trans


# ----------------------------------------------------------------------------- bone maps


@pytest.mark.parametrize("family", FAMILIES + ("NAMES",))
@pytest.mark.parametrize("prefix", ["", "mixamorig:"])
def test_each_rig_family_maps_itself(family, prefix):
    h = build(family, prefix=prefix, roll=1.0, pose="A")
    _, bone_map = _map(h)
    assert bone_map.family == family
    assert {j: bone_map.bone(j) for j in h.expected} == h.expected
    assert bone_map.missing() == []


def test_name_matcher_reads_the_usual_spellings():
    names = ["Hips", "thigh_l", "Thigh.R", "L_Calf", "RightLeg", "leftUpperArm", "upperarm_r", "Left ForeArm",
             "lowerarm_r", "LeftHandIndex1", "upperarm_twist_01_l", "neck_01", "Head", "HeadTop_End",
             "mixamorig:LeftFoot", "foot_r", "clavicle_l", "ball_r"]
    found = match_names(names)
    assert found["pelvis"] == "Hips" and found["left_hip"] == "thigh_l" and found["right_hip"] == "Thigh.R"
    assert found["left_knee"] == "L_Calf" and found["right_knee"] == "RightLeg"
    assert found["left_shoulder"] == "leftUpperArm" and found["right_shoulder"] == "upperarm_r"
    assert found["left_elbow"] == "Left ForeArm" and found["right_elbow"] == "lowerarm_r"
    assert found["left_ankle"] == "mixamorig:LeftFoot" and found["right_foot"] == "ball_r"
    assert found["left_collar"] == "clavicle_l" and found["head"] == "Head" and found["neck"] == "neck_01"
    assert "left_wrist" not in found  # a finger and a twist bone are not a hand


@pytest.mark.parametrize("spine_bones,expect", [(1, 1), (2, 2), (5, 3)])
def test_spines_of_any_length_fill_by_height(spine_bones, expect):
    h = build("MIXAMO", spine_bones=spine_bones, collars=False, toes=False)
    _, bone_map = _map(h, "NAMES")
    spine = [bone_map.bone(j) for j in ("spine1", "spine2", "spine3")]
    assert sum(b is not None for b in spine) == expect
    mapped = [b for b in spine if b]
    order = [b.name for b in h.bones]
    assert mapped == sorted(mapped, key=order.index)  # bottom to top, each bone once


def test_bad_maps_name_the_problem():
    h = build("MIXAMO")
    names = [b.name for b in h.bones]
    good = BoneMap(dict(h.expected))
    good.check(names)
    with pytest.raises(M2DError, match="does not have.*left_knee -> Knee"):
        BoneMap({**h.expected, "left_knee": "Knee"}).check(names)
    with pytest.raises(M2DError, match="more than one joint.*LeftLeg"):
        BoneMap({**h.expected, "right_knee": "LeftLeg"}).check(names)
    partial = {j: b for j, b in h.expected.items() if j not in ("left_elbow", "head")}
    with pytest.raises(M2DError, match="not look humanoid.*left_elbow, head"):
        BoneMap(partial).check(names)
    with pytest.raises(M2DError, match="does not have"):
        BoneMap.from_json('{"bones": {"elbow": "x"}}')


def test_bone_map_json_round_trip():
    h = build("UE5")
    _, bone_map = _map(h)
    again = BoneMap.from_json(bone_map.to_json())
    assert again.bones == {j: b for j, b in bone_map.bones.items() if b} and again.family == "UE5"


def test_rig_tables_are_data():
    tables = families()
    assert {"MIXAMO", "UE5", "VRM", "METARIG", "RIGIFY"} <= set(tables)
    for table in tables.values():
        assert set(table.bones) <= set(sk.JOINT_NAMES) and table.description


# ----------------------------------------------------------------------------- the transfer


@pytest.mark.parametrize("variant", ["mixamo-T", "ue5-A-rolled-long-legs", "vrm-A-short", "cm-y-up-A", "one-spine"])
def test_every_mapped_segment_points_where_smpl_does(variant):
    kw = {"mixamo-T": ("MIXAMO", {}), "ue5-A-rolled-long-legs": ("UE5", dict(pose="A", roll=1.5, leg=1.2, arm=0.9)),
          "vrm-A-short": ("VRM", dict(pose="A", torso=0.8, leg=0.8)), "cm-y-up-A": ("MIXAMO", dict(pose="A", roll=1.0)),
          "one-spine": ("MIXAMO", dict(spine_bones=1, collars=False, toes=False))}[variant]
    h = build(kw[0], **kw[1])
    if variant.startswith("cm"):
        h = centimetres_y_up(h)
    c, bone_map = _map(h)
    r = Retarget(c, bone_map)
    poses, trans = _random_motion()
    joints, _ = sk.forward_kinematics(sk.axis_angle_to_matrix(poses.reshape(-1, 24, 3)), trans)
    world, hips = r.world_pose(poses, trans)
    heads, _ = r.heads(world, hips)
    for a, b in DIRECT:
        if a in r.slot and b in r.slot:
            angle = rot.angle_between(heads[:, r.slot[b]] - heads[:, r.slot[a]],
                                      joints[:, sk.JOINT_INDEX[b]] - joints[:, sk.JOINT_INDEX[a]])
            assert np.degrees(angle).max() < 0.1, (a, b)
    if "spine3" not in r.slot:  # a skipped joint: the spine still points at the neck
        angle = rot.angle_between(heads[:, r.slot["neck"]] - heads[:, r.slot["spine1"]],
                                  joints[:, sk.JOINT_INDEX["neck"]] - joints[:, sk.JOINT_INDEX["spine1"]])
        assert np.degrees(angle).max() < 0.1


def test_twist_is_carried_over():
    """A forearm turned about itself turns the character's forearm bone about itself by as much."""
    r = Retarget(*_map(build("UE5", pose="A", roll=1.0)))
    poses = np.zeros((2, 72))
    poses[:, :3] = (np.pi / 2, 0, 0)
    axis = sk.REST_OFFSETS[sk.JOINT_INDEX["left_wrist"]] / np.linalg.norm(sk.REST_OFFSETS[sk.JOINT_INDEX["left_wrist"]])
    poses[1, 3 * sk.JOINT_INDEX["left_elbow"]:][:3] = axis * 1.0
    world, _ = r.world_pose(poses, np.zeros((2, 3)))
    i = r.slot["left_elbow"]
    turn = world[1, i] @ world[0, i].T
    angle = np.arccos(np.clip((np.trace(turn) - 1) / 2, -1, 1))
    bone_axis = world[0, i] @ np.array([0.0, 1.0, 0.0])  # the bone's own Y axis
    assert angle == pytest.approx(1.0, abs=1e-6)
    assert abs(sk.matrix_to_axis_angle(turn) / angle @ bone_axis) > 0.98


@pytest.mark.parametrize("turned", [False, True])
def test_standing_rest_pose_is_the_characters_rest_pose(turned):
    """SMPL standing at rest puts a character of SMPL's proportions in its own rest pose, where it stands,
    facing where it faces, limbs within SMPL's own few degrees of asymmetry."""
    h = build("MIXAMO", roll=1.0)
    h = centimetres_y_up(h) if turned else h
    h.location = (1.0, -2.0, 0.5)
    if turned:
        h.rotation = (h.rotation[0], 0.0, 2.0)  # and turned 115 degrees about the vertical
    r = Retarget(*_map(h))
    poses = np.zeros((1, 72))
    poses[0, :3] = (np.pi / 2, 0, 0)
    world, hips = r.world_pose(poses, np.array([[0.0, 0.0, r.smpl_hips_height]]))
    for i, j in enumerate(r.joints):
        if j.startswith(("left", "right")):
            turn = world[0, i] @ r.q[i].T
            assert np.degrees(np.arccos(np.clip((np.trace(turn) - 1) / 2, -1, 1))) < 3.0, j
    _, location = r.basis(world, hips)
    assert np.allclose(location, 0.0, atol=1e-6)


def test_round_trips():
    """Character pose -> SMPL -> character pose, and key values -> pose -> key values, are exact."""
    h = centimetres_y_up(build("UE5", pose="A", roll=1.0, leg=1.15))
    r = Retarget(*_map(h))
    poses, trans = _random_motion()
    world, hips = r.world_pose(poses, trans)
    again, hips_again = r.world_pose(*r.smpl_pose(world, hips))
    assert np.abs(again - world).max() < 1e-9 and np.abs(hips_again - hips).max() < 1e-9
    basis, location = r.basis(world, hips)
    back, hips_back = r.from_basis(basis, location)
    assert np.abs(back - world).max() < 1e-9 and np.abs(hips_back - hips).max() < 1e-9


def test_hips_travel_scales_with_the_legs():
    short = Retarget(*_map(build("MIXAMO", leg=0.8)))
    normal = Retarget(*_map(build("MIXAMO")))
    trans = np.array([[0.0, 0.0, 0.9], [1.0, 0.5, 0.9]])
    step = lambda r: np.diff(r.hips_position(trans), axis=0)[0]  # noqa: E731
    assert short.scale == pytest.approx(0.8, rel=0.02)
    assert np.allclose(step(short)[:2], 0.8 * step(normal)[:2], rtol=0.02)


def test_uneven_object_scale_is_refused():
    h = build("MIXAMO")
    c = character(h)
    world = c.world.copy()
    world[0, 0] = 2.0
    bent = type(c)(c.bone_names, c.parents, c.rest, c.tails, world)
    with pytest.raises(M2DError, match="scaled unevenly"):
        Retarget(bent, _map(h)[1])


# ----------------------------------------------------------------------------- feet


def _planted_dance(frames=90, fps=30.0):
    """SMPL swaying and bobbing on both feet, which stand still (made by leg IK on SMPL's own proportions)."""
    r = Retarget(*_map(build("MIXAMO", symmetric=False)))  # SMPL's proportions
    t = np.arange(frames) / fps
    rest = np.zeros((frames, 72))
    rest[:, :3] = (np.pi / 2, 0, 0)
    trans = np.zeros((frames, 3))
    trans[:, 0] = 0.06 * np.sin(2 * np.pi * t)
    trans[:, 1] = 0.04 * np.sin(4 * np.pi * t)
    trans[:, 2] = r.smpl_hips_height - 0.03 - 0.03 * (1 - np.cos(4 * np.pi * t))
    world, hips = r.world_pose(rest, trans)
    heads, _ = r.heads(world, hips)
    fixed, _ = r.heads(world[:1], r.hips_position(np.array([[0.0, 0.0, r.smpl_hips_height - 0.03]])))
    for hip, knee, ankle in (("left_hip", "left_knee", "left_ankle"), ("right_hip", "right_knee", "right_ankle")):
        h, k, a = (heads[:, r.slot[n]] for n in (hip, knee, ankle))
        lengths = (np.linalg.norm(r.h[r.slot[knee]] - r.h[r.slot[hip]]), np.linalg.norm(r.h[r.slot[ankle]] - r.h[r.slot[knee]]))
        new_knee, reached = two_bone_ik(h, k, a, np.repeat(fixed[:, r.slot[ankle]], frames, 0), lengths)
        world[:, r.slot[hip]] = rot.swing(k - h, new_knee - h) @ world[:, r.slot[hip]]
        world[:, r.slot[knee]] = rot.swing(a - k, reached - new_knee) @ world[:, r.slot[knee]]
    poses, trans = r.smpl_pose(world, hips)
    joints, _ = sk.forward_kinematics(sk.axis_angle_to_matrix(poses.reshape(frames, 24, 3)), trans)
    contacts = np.ones((frames, 4), np.float32)
    return poses, trans, joints, contacts, fps


def test_planted_feet_stay_planted_on_other_proportions_and_above_the_floor():
    poses, trans, joints, contacts, fps = _planted_dance()
    assert np.ptp(joints[:, [7, 8]], axis=0).max() < 1e-3  # SMPL's ankles stand still
    r = Retarget(*_map(build("UE5", pose="A", leg=1.25, knee=1.3, roll=1.0)))
    world, hips = r.world_pose(poses, trans)
    raw, _ = r.heads(world, hips)
    stand_on_floor(r, world, hips, contacts)
    world, hips = r.world_pose(poses, trans)
    planted, hips = plant_feet(r, flex_feet(r, world, hips), hips, joints, contacts, fps)
    heads, tails = r.heads(planted, hips)
    for side, ankle in enumerate(("left_ankle", "right_ankle")):
        assert r.foot_points(heads, tails, side)[..., 2].min() > r.sole - 1e-6
        assert np.ptp(heads[:, r.slot[ankle]], axis=0).max() < 2e-3  # still on the character too
        assert np.ptp(raw[:, r.slot[ankle]], axis=0).max() > 5e-3  # where it slid before


# ----------------------------------------------------------------------------- rotation modes


@pytest.mark.parametrize("order", rot.EULER_ORDERS)
def test_euler_round_trip_and_continuity(order):
    rng = np.random.default_rng(3)
    m = sk.axis_angle_to_matrix(rng.normal(size=(200, 3)))
    assert np.allclose(rot.euler_to_matrix(rot.matrix_to_euler(m, order), order), m, atol=1e-9)
    path = sk.axis_angle_to_matrix(np.linspace(0, 12, 300)[:, None] * np.array([0.3, 0.9, 0.3]))
    values = rot.key_values(path, order)
    assert np.abs(np.diff(values, axis=0)).max() < 0.5
    assert np.allclose(rot.from_key_values(values, order), path, atol=1e-9)


@pytest.mark.parametrize("mode", ["QUATERNION", "AXIS_ANGLE"])
def test_quaternion_and_axis_angle_keys(mode):
    path = sk.axis_angle_to_matrix(np.linspace(0, 12, 300)[:, None] * np.array([0.3, 0.9, 0.3]))
    values = rot.key_values(path, mode)
    assert np.allclose(rot.from_key_values(values, mode), path, atol=1e-9)
    if mode == "QUATERNION":
        assert np.abs(np.diff(values, axis=0)).max() < 0.2
