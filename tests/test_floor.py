"""Feet above the floor: a sinking foot is lifted onto the floor by its own leg; nothing else changes."""

from __future__ import annotations

import numpy as np
from test_footlock import FPS, LEG_JOINTS, OTHER_JOINTS, stance

from inference import analysis
from inference import skeleton as sk
from inference.cleanup.floor import EASE_SECONDS, keep_feet_above_floor
from inference.cleanup.footlock import LEGS
from inference.sampling.constraints import PIN_CLEARANCE_SECONDS


def sinking(n: int = 200):
    """Both feet on the floor, the left one pushed through it over frames 40-47 (its knee straightens)."""
    poses, trans = stance(n, speed=0.0)
    aa = poses.reshape(n, sk.NUM_JOINTS, 3)
    dip = np.zeros(n)
    dip[40:48] = np.sin(np.linspace(0, np.pi, 10)[1:-1])
    knee, hip, ankle = (sk.JOINT_INDEX[f"left_{j}"] for j in ("knee", "hip", "ankle"))
    aa[:, knee, 0] -= 0.45 * dip  # a straighter knee lowers the foot
    aa[:, hip, 0] += 0.225 * dip
    aa[:, ankle, 0] += 0.225 * dip  # foot kept flat
    return aa.reshape(n, -1), trans


def lowest(poses, trans):
    return sk.joint_positions(poses, trans)[:, analysis.FOOT_JOINTS, analysis.UP].min(axis=1)


def test_a_sinking_foot_is_lifted_onto_the_floor_by_its_leg_alone():
    poses, trans = sinking()
    joints = sk.joint_positions(poses, trans)
    floor = analysis.estimate_floor(joints)
    depth = floor - joints[:, list(analysis.FEET[0]), analysis.UP].min(axis=1)
    assert depth.max() > 0.02  # 2+ cm through the floor before
    out = keep_feet_above_floor(poses, trans, FPS)
    after = sk.joint_positions(out, trans)
    assert (floor - after[:, analysis.FOOT_JOINTS, analysis.UP].min(axis=1)).max() < 1e-3
    assert (floor - analysis.estimate_floor(after)) < 0.01
    aa, aa0 = out.reshape(-1, sk.NUM_JOINTS, 3), poses.reshape(-1, sk.NUM_JOINTS, 3)
    assert np.array_equal(aa[:, OTHER_JOINTS], aa0[:, OTHER_JOINTS])  # root, spine, arms untouched
    right = [j for j in LEGS[1]]
    assert np.array_equal(aa[:, right], aa0[:, right])  # the other leg too
    changed = np.flatnonzero(np.abs(aa - aa0).max(axis=(1, 2)) > 0)
    assert changed.min() >= 40 - 3 * EASE_SECONDS * FPS and changed.max() <= 47 + 3 * EASE_SECONDS * FPS
    # The foot keeps its orientation in the world, and the lift eases in and out (no jump).
    world0, world = (sk.forward_kinematics(sk.axis_angle_to_matrix(a), trans)[1] for a in (aa0, aa))
    ankle = sk.JOINT_INDEX["left_ankle"]
    assert np.abs(world[:, ankle] - world0[:, ankle]).max() < 1e-6
    rise = after[:, ankle, 2] - joints[:, ankle, 2]
    assert np.abs(np.diff(rise)).max() < 0.01


def test_feet_on_or_above_the_floor_are_left_exactly():
    poses, trans = stance(60, speed=0.0, lift_left=True)
    assert np.array_equal(keep_feet_above_floor(poses, trans, FPS), poses)


def test_a_pinned_leg_is_left_as_pinned():
    poses, trans = sinking()
    n = len(poses)
    mask = np.zeros((n, sk.NUM_JOINTS), bool)
    mask[44, list(LEGS[0])] = True
    out = keep_feet_above_floor(poses, trans, FPS, mask)
    near = np.abs(np.arange(n) - 44) <= PIN_CLEARANCE_SECONDS * FPS
    aa, aa0 = out.reshape(n, sk.NUM_JOINTS, 3), poses.reshape(n, sk.NUM_JOINTS, 3)
    assert np.array_equal(aa[near][:, LEG_JOINTS], aa0[near][:, LEG_JOINTS])
