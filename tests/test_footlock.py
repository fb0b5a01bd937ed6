"""Foot lock: a foot resting on the floor is held still by the leg; nothing else changes."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic import noise_features

from inference import analysis
from inference import skeleton as sk
from inference.analysis import floor_contacts
from inference.cleanup.footlock import LEGS, MAX_SHIFT, SOFT_REACH, leg_ik, lock_feet, soft_reach
from inference.sampling.constraints import PIN_CLEARANCE_SECONDS, Constraints, joint_indices

FPS = 30.0
LEG_JOINTS = sorted(j for leg in LEGS for j in leg)
OTHER_JOINTS = [j for j in range(sk.NUM_JOINTS) if j not in LEG_JOINTS]


def stance(n: int, speed: float, lift_left: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Knees a little bent, feet flat; the root travels along x at ``speed`` m/s, so the feet creep."""
    poses = np.zeros((n, sk.NUM_JOINTS, 3))
    poses[:, 0] = sk.Y_UP_TO_Z_UP_AXIS_ANGLE
    for side in ("left", "right"):
        poses[:, sk.JOINT_INDEX[f"{side}_hip"], 0] = -0.3  # thigh forward
        poses[:, sk.JOINT_INDEX[f"{side}_knee"], 0] = 0.6  # shin back
        poses[:, sk.JOINT_INDEX[f"{side}_ankle"], 0] = -0.3  # foot flat again
    if lift_left:
        poses[:, sk.JOINT_INDEX["left_hip"], 0] = -1.2
        poses[:, sk.JOINT_INDEX["left_knee"], 0] = 1.2
    trans = np.zeros((n, 3))
    trans[:, 0] = np.arange(n) * speed / FPS
    trans[:, 2] = 1.0
    return poses.reshape(n, -1), trans


def feet(poses, trans, foot: int) -> np.ndarray:
    """(N, 2, 2) horizontal positions of one foot's ankle and toe."""
    return sk.joint_positions(poses, trans)[:, list(analysis.FEET[foot])][..., analysis.HORIZONTAL]


def same_joints(a, b, joints) -> bool:
    n = len(a)
    return np.array_equal(a.reshape(n, -1, 3)[:, joints], b.reshape(n, -1, 3)[:, joints])


def test_a_creeping_foot_is_held_still_by_its_leg_alone():
    poses, trans = stance(30, speed=0.1)  # 3 cm of creep in a second
    before = feet(poses, trans, 0)
    assert np.ptp(before[..., 0]) > 0.025
    locked = lock_feet(poses, trans, FPS)
    for foot in (0, 1):
        after = feet(locked, trans, foot)
        assert np.abs(after - after.mean(axis=0)).max() < 1e-6  # ankle and toe both still
    assert same_joints(locked, poses, OTHER_JOINTS)  # root, spine, arms, head untouched
    # The foot keeps its orientation: the toe stays ahead of the ankle by the same vector.
    world = sk.forward_kinematics(sk.axis_angle_to_matrix(locked.reshape(30, -1, 3)), trans)[1]
    world0 = sk.forward_kinematics(sk.axis_angle_to_matrix(poses.reshape(30, -1, 3)), trans)[1]
    for leg in LEGS:
        np.testing.assert_allclose(world[:, leg[2]], world0[:, leg[2]], atol=1e-9)


def test_a_drift_beyond_reach_is_held_only_partly():
    poses, trans = stance(60, speed=0.3)  # 18 cm in two seconds: slower than sliding, further than MAX_SHIFT
    locked = lock_feet(poses, trans, FPS)
    shift = np.linalg.norm(feet(locked, trans, 0)[:, 0] - feet(poses, trans, 0)[:, 0], axis=-1)
    assert shift.max() == pytest.approx(MAX_SHIFT, abs=1e-6)
    assert np.ptp(feet(locked, trans, 0)[:, 0, 0]) < np.ptp(feet(poses, trans, 0)[:, 0, 0]) - 0.1


def test_stepping_and_lifted_feet_are_left_alone():
    poses, trans = stance(30, speed=1.0)  # faster than a resting foot: a step or a slide, not a plant
    assert np.array_equal(lock_feet(poses, trans, FPS), poses)
    poses, trans = stance(30, speed=0.1, lift_left=True)
    locked = lock_feet(poses, trans, FPS)
    assert same_joints(locked, poses, list(LEGS[0]))  # the raised foot is not on the floor
    assert not same_joints(locked, poses, list(LEGS[1]))


def test_contacts_mark_still_joints_of_feet_on_the_floor():
    # Standing still: every foot joint touches. The left foot lifted but still: none of its joints.
    poses, trans = stance(30, speed=0.0, lift_left=True)
    contacts = floor_contacts(sk.joint_positions(poses, trans), FPS)
    order = [sk.CONTACT_JOINTS.index(f"{side}_{j}") for side in ("left", "right") for j in ("ankle", "foot")]
    np.testing.assert_array_equal(contacts[:, order], np.tile([0, 0, 1, 1], (30, 1)))
    # Sliding along the floor faster than a contact: none; creeping slower than one: all.
    poses, trans = stance(30, speed=1.0)
    assert floor_contacts(sk.joint_positions(poses, trans), FPS).max() == 0
    poses, trans = stance(30, speed=0.1)
    assert floor_contacts(sk.joint_positions(poses, trans), FPS).min() == 1


def test_a_pinned_leg_and_its_approach_are_untouched():
    n, pin = 90, 45
    poses, trans = stance(n, speed=0.05)
    mask = np.zeros((n, sk.NUM_JOINTS), bool)
    mask[pin, list(LEGS[0])] = True
    locked = lock_feet(poses, trans, FPS, pose_mask=mask)
    clear = int(round(PIN_CLEARANCE_SECONDS * FPS))
    near = slice(pin - clear, pin + clear + 1)
    assert same_joints(locked[near], poses[near], list(LEGS[0]))
    assert not same_joints(locked[:10], poses[:10], list(LEGS[0]))  # far from the pin it locks
    assert not same_joints(locked[near], poses[near], list(LEGS[1]))  # the other leg is free


def test_leg_ik_puts_the_ankle_on_target_and_keeps_the_foot_turned():
    rng = np.random.default_rng(0)
    m = 200
    poses, trans = stance(m, speed=0.0)
    poses = poses.reshape(m, -1, 3)
    poses[:, 1:] += rng.normal(scale=0.25, size=(m, sk.NUM_JOINTS - 1, 3))  # varied, still bent legs
    local = sk.axis_angle_to_matrix(poses)
    pos, rot = sk.forward_kinematics(local, trans)
    for leg in LEGS:
        target = pos[:, leg[2]] + rng.uniform(-0.03, 0.03, size=(m, 3))
        new = local.copy()
        new[:, list(leg)] = leg_ik(local, pos, rot, leg, target)
        pos2, rot2 = sk.forward_kinematics(new, trans)
        hip, knee, ankle = pos[:, leg[0]], pos[:, leg[1]], pos[:, leg[2]]
        full = np.linalg.norm(knee - hip, axis=-1) + np.linalg.norm(ankle - knee, axis=-1)
        own = np.linalg.norm(ankle - hip, axis=-1)
        want = np.linalg.norm(target - hip, axis=-1)
        far = want > np.maximum(SOFT_REACH * full, own)
        assert 0 < far.sum() < m / 3
        np.testing.assert_allclose(pos2[~far, leg[2]], target[~far], atol=1e-9)
        # Beyond the soft reach: aimed at the target, never quite straight, never further than wanted.
        got = pos2[:, leg[2]] - hip
        np.testing.assert_allclose(np.linalg.norm(got, axis=-1)[far], soft_reach(want, full, own)[far], atol=1e-9)
        assert np.all(np.linalg.norm(got, axis=-1)[far] < np.minimum(want, full)[far])
        aim = (target - hip)[far] / want[far, None]
        np.testing.assert_allclose(got[far] / np.linalg.norm(got[far], axis=-1, keepdims=True), aim, atol=1e-9)
        np.testing.assert_allclose(rot2[:, leg[2]], rot[:, leg[2]], atol=1e-9)
        np.testing.assert_allclose(pos2[:, leg[0]], pos[:, leg[0]], atol=1e-12)  # the hip stays


def test_soft_reach_never_snaps_the_leg_straight():
    full, own = 0.8, 0.7
    want = np.linspace(0.5, 1.2, 7001)
    got = soft_reach(want, np.full_like(want, full), np.full_like(want, own))
    soft = SOFT_REACH * full
    np.testing.assert_array_equal(got[want <= soft], want[want <= soft])  # wanted distance, exactly
    assert np.all(np.diff(got) > 0) and got.max() < full  # always a little bent
    slope = np.diff(got) / np.diff(want)
    assert np.abs(np.diff(slope)).max() < 1e-2  # no kink where it starts to soften
    # A leg already straighter than the soft limit keeps its own extension.
    assert soft_reach(np.array([0.79]), np.array([full]), np.array([0.79]))[0] == 0.79


def test_generator_locks_feet_after_the_timing_and_keeps_pins(trained_generator):
    generator = trained_generator
    n = 240
    music = noise_features(generator.config, n)  # a beat every 15 frames
    plain = generator.generate_from_features(music, seed=1, steps=4, foot_lock=False)
    locked = generator.generate_from_features(music, seed=1, steps=4)
    assert locked.extras["foot_lock"] and not plain.extras["foot_lock"]
    assert not same_joints(locked.smpl_poses, plain.smpl_poses, LEG_JOINTS), "an untrained model's feet creep"
    np.testing.assert_array_equal(locked.smpl_poses, lock_feet(plain.smpl_poses, plain.smpl_trans, FPS))
    np.testing.assert_array_equal(locked.smpl_trans, plain.smpl_trans)
    np.testing.assert_allclose(locked.joints, sk.joint_positions(locked.smpl_poses, locked.smpl_trans), atol=1e-5)
    np.testing.assert_array_equal(locked.contacts, floor_contacts(locked.joints, FPS))  # the motion delivered
    # Legs pinned over a range: exact there, and as the sampler made them on the approach.
    legs = joint_indices("legs")
    c = Constraints.empty(n)
    c.pin_joints(range(100, 130), legs, plain.smpl_poses[100:130].reshape(30, -1, 3)[:, legs])
    free = generator.generate_from_features(music, seed=1, steps=4, constraints=c, foot_lock=False)
    held = generator.generate_from_features(music, seed=1, steps=4, constraints=c)
    clear = int(round(PIN_CLEARANCE_SECONDS * FPS))
    near = slice(100 - clear, 130 + clear)
    assert same_joints(held.smpl_poses[near], free.smpl_poses[near], LEG_JOINTS)
    assert same_joints(held.smpl_poses[100:130], plain.smpl_poses[100:130], LEG_JOINTS)
