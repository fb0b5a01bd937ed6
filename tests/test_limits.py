"""Limits on what the network may do: head turns folded into a neck's range, spins spread out."""

import math

import numpy as np
from synthetic import noise_features

from inference import skeleton as sk
from inference.cleanup.limits import MAX_SPIN_SPEED, keep_within_limits, limit_head_turn, limit_spin
from inference.sampling.constraints import Constraints

FPS = 30.0


def head_turn(neck_rotations):
    """The twist (radians, -pi..pi) of (..., 3, 3) neck rotations about the head's turning axis."""
    q = sk.matrix_to_quat(np.asarray(neck_rotations, np.float64))
    a = 2.0 * np.arctan2(q[..., 1:] @ sk.HEAD_TURN_AXIS, q[..., 0])
    return (a + np.pi) % (2.0 * np.pi) - np.pi


def test_head_turn_folds_into_a_necks_range_and_keeps_the_tilt():
    tilt = sk.axis_angle_to_matrix(np.array([0.3, 0.0, -0.2]))  # a nod and a lean
    tilt = tilt @ sk.axis_angle_to_matrix(-sk.HEAD_TURN_AXIS * head_turn(tilt))  # with no turn of its own
    turns = np.radians(np.linspace(-180.0, 180.0, 721))
    necks = tilt @ sk.axis_angle_to_matrix(sk.HEAD_TURN_AXIS * turns[:, None])
    folded = limit_head_turn(necks)
    np.testing.assert_allclose(head_turn(folded), np.sin(turns), atol=1e-9)
    # The neck-to-head-top direction (hence the tilt) is the same before and after.
    np.testing.assert_allclose(folded @ sk.HEAD_TURN_AXIS, necks @ sk.HEAD_TURN_AXIS, atol=1e-12)
    # Smooth all round: no jump where the turn passes through 180 degrees.
    step = np.degrees(np.linalg.norm(sk.matrix_to_axis_angle(folded[1:] @ np.swapaxes(folded[:-1], -1, -2)), axis=-1))
    assert step.max() < 0.6  # the input steps by 0.5 degrees
    # Weight 0 leaves a rotation as it was; weight 1/2 goes half way.
    np.testing.assert_allclose(limit_head_turn(necks, np.zeros(len(turns))), necks, atol=1e-12)
    half = limit_head_turn(necks, 0.5)
    np.testing.assert_allclose(head_turn(half[300:421]), 0.5 * (turns + np.sin(turns))[300:421], atol=1e-9)


def test_generator_never_turns_the_head_backwards_but_meets_a_pinned_neck(trained_generator):
    generator = trained_generator
    n = 200
    music = noise_features(generator.config, n)
    neck = sk.JOINT_INDEX["neck"]
    free = generator.generate_from_features(music, seed=2, steps=4)
    turns = head_turn(sk.axis_angle_to_matrix(free.smpl_poses.reshape(n, 24, 3)[:, neck]))
    assert np.abs(turns).max() <= 1.0 + 1e-6
    # A neck the animator turned 150 degrees is theirs to keep, and the frames beside it ease into it.
    pinned = sk.matrix_to_axis_angle(sk.axis_angle_to_matrix(sk.HEAD_TURN_AXIS * math.radians(150.0)))
    c = Constraints.empty(n).pin_joints(range(100, 110), ["neck"], pinned)
    dance = generator.generate_from_features(music, seed=2, steps=4, constraints=c)
    necks = dance.smpl_poses.reshape(n, 24, 3)[:, neck]
    assert np.array_equal(necks[100:110], np.tile(pinned.astype(necks.dtype), (10, 1)))
    m = sk.axis_angle_to_matrix(necks.astype(np.float64))
    step = np.degrees(np.linalg.norm(sk.matrix_to_axis_angle(m[1:] @ np.swapaxes(m[:-1], -1, -2)), axis=-1))
    assert step[90:120].max() < 45.0, step[90:120].round(1)
    # Within the pin's clearance the sampler's neck is kept bit for bit.
    again = keep_within_limits(dance.smpl_poses, FPS, c.pose_mask).reshape(n, 24, 3)[:, neck]
    np.testing.assert_array_equal(again[85:125], necks[85:125])


def headings(degrees_per_frame):
    """(N, 3, 3) root orientations of an upright body turning about the world's up axis."""
    heading = np.radians(np.concatenate([[0.0], np.cumsum(degrees_per_frame)]))
    turn = sk.axis_angle_to_matrix(np.stack([np.zeros_like(heading), np.zeros_like(heading), heading], 1))
    return turn @ sk.axis_angle_to_matrix(sk.Y_UP_TO_Z_UP_AXIS_ANGLE)


def step_degrees(r):
    return np.degrees(np.linalg.norm(sk.matrix_to_axis_angle(r[1:] @ np.swapaxes(r[:-1], -1, -2)), axis=-1))


def test_a_spin_faster_than_a_dancer_is_spread_and_the_rest_kept():
    steps = np.full(100, 3.0)
    steps[50] = 170.0  # half a turn within one frame
    r = headings(steps)
    out = limit_spin(r, FPS)
    limit = math.degrees(MAX_SPIN_SPEED / FPS)
    assert step_degrees(out).max() <= limit + 1e-6
    changed = np.flatnonzero((out != r).any(axis=(1, 2)))
    assert 0 < len(changed) <= 8 and changed.min() > 40 and changed.max() < 60  # only around the spin
    # The body ends facing where the network turned it: every frame after the spread is the same.
    np.testing.assert_array_equal(out[changed.max() + 1:], r[changed.max() + 1:])
    # A fast but real spin (35 degrees a frame) is a dancer's: nothing changes.
    real = headings(np.concatenate([np.full(20, 2.0), np.full(10, 35.0), np.full(20, 2.0)]))
    np.testing.assert_array_equal(limit_spin(real, FPS), real)


def test_a_spin_is_spread_up_to_a_pinned_root_but_never_through_it():
    steps = np.full(100, 3.0)
    steps[50] = 170.0  # frame 50 -> 51
    poses = np.zeros((101, 72))
    poses[:, :3] = sk.matrix_to_axis_angle(headings(steps))
    limit = math.degrees(MAX_SPIN_SPEED / FPS) + 1e-6
    free = keep_within_limits(poses, FPS)
    assert step_degrees(sk.axis_angle_to_matrix(free[:, :3])).max() <= limit
    pinned = np.zeros((101, 24), bool)
    pinned[53, 0] = True  # the whip ends two frames before a pinned orientation: spread up to it
    near = keep_within_limits(poses, FPS, pinned)
    assert step_degrees(sk.axis_angle_to_matrix(near[:, :3])).max() <= limit
    np.testing.assert_array_equal(near[53:, :3], poses[53:, :3])
    pinned[:, 0] = False
    pinned[51, 0] = True  # spreading would have to move the pinned frame: left as it is
    np.testing.assert_array_equal(keep_within_limits(poses, FPS, pinned)[:, :3], poses[:, :3])
