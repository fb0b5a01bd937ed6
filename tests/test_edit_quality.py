"""The editing quality bar's measurements on cases with known answers, and pins met by a tiny model."""

import numpy as np
import pytest

from inference import skeleton as sk
from inference.evaluation import edit_quality as E
from inference.generate import DanceGenerator
from inference.sampling.constraints import Constraints

FPS = 30


def test_rotation_angle_is_the_geodesic_angle_even_when_tiny():
    a = np.zeros((3, 3))
    b = np.array([[0, 0, 0.3], [1e-6, 0, 0], [0, -2.0, 0]])
    np.testing.assert_allclose(E.rotation_angle(a, b), [0.3, 1e-6, 2.0], rtol=1e-9, atol=1e-15)
    # One rotation, two axis-angle forms: no distance.
    axis = np.array([0.0, 0.0, 1.0])
    assert E.rotation_angle(axis * 0.5, -axis * (2 * np.pi - 0.5)) == pytest.approx(0.0, abs=1e-12)


def test_pin_errors_report_the_largest_miss():
    n = 10
    c = Constraints.empty(n)
    pose = np.zeros((24, 3))
    pose[0] = sk.Y_UP_TO_Z_UP_AXIS_ANGLE
    c.pin_pose([2, 3], np.tile(pose.reshape(1, 72), (2, 1)), [[0.1, 0.2, 0.9]] * 2)
    c.pin_root([7], [1.0, 1.0, 5.0], horizontal_only=True)
    out_poses = np.tile(pose.reshape(1, 72), (n, 1))
    out_poses[3, 3 * 5 + 2] = 2e-4  # right_knee turned by 2e-4 rad on a pinned frame
    out_poses[5, :] = 1.0  # unpinned frame: anything goes
    out_trans = np.tile([0.1, 0.2, 0.9], (n, 1))
    out_trans[7] = [1.0, 1.0 + 5e-5, -3.0]  # y 0.05 mm off; z is not pinned
    errors = E.pin_errors(out_poses, out_trans, c)
    assert errors.rotation == pytest.approx(2e-4, rel=1e-6)
    assert errors.root == pytest.approx(5e-5, rel=1e-6)
    assert not errors.ok
    out_poses[3, 17] = 5e-5
    assert E.pin_errors(out_poses, out_trans, c).ok
    assert E.pin_errors(out_poses, out_trans, Constraints.empty(n)) == E.PinErrors(0.0, 0.0)


def test_velocity_change_of_known_motions():
    t = np.arange(20, dtype=np.float64)
    steady = np.zeros((20, 24, 3))
    steady[..., 0] = 0.01 * t[:, None]  # constant velocity: no change
    change = E.velocity_change(steady)
    assert np.isnan(change[0]) and np.isnan(change[-1])
    np.testing.assert_allclose(change[1:-1], 0.0, atol=1e-15)
    kinked = steady.copy()
    kinked[10:, :, 0] += 0.03 * (t[10:, None] - 9)  # from frame 10 on, 0.03 m/frame faster
    change = E.velocity_change(kinked)
    assert change[9] == pytest.approx(0.03) and np.nanmax(np.delete(change, 9)) < 1e-12
    jumped = steady.copy()
    jumped[10:, 3, 2] += 0.24  # one joint of 24 jumps 0.24 m: the mean over joints moves 0.01
    change = E.velocity_change(jumped)
    assert change[9] == pytest.approx(0.01) and change[10] == pytest.approx(0.01)
    assert E.border_value(change, 10) == pytest.approx(0.01)


def test_borders_of_regions_and_pins():
    mask = np.array([0, 0, 1, 1, 1, 0, 1], bool)
    assert E.region_borders(mask).tolist() == [2, 5, 6]
    c = Constraints.empty(12)
    c.pin_joints(range(3, 6), "left_arm", np.zeros(3))
    c.pin_root(range(5, 9), np.zeros(3), horizontal_only=True)
    assert E.constraint_borders(c).tolist() == [3, 5, 6, 9]
    assert E.pinned_frames(c).nonzero()[0].tolist() == [3, 4, 5, 6, 7, 8]


def sway(frames: int, phase: float = 0.0) -> np.ndarray:
    """A smooth dance of the rest pose: every joint sways 5 cm, one sway per second."""
    t = np.arange(frames)[:, None, None] / FPS
    rest = sk.rest_joint_positions()[None]
    return rest + 0.05 * np.sin(2 * np.pi * t + phase + np.arange(3))


def test_seam_report_passes_smooth_joins_and_fails_jumps():
    reference = sway(300)
    threshold = E.seam_threshold(reference)
    change = E.velocity_change(reference)
    assert threshold == pytest.approx(np.nanpercentile(change, 95))
    report = E.seam_report(reference, [100, 200], reference)
    assert report.ok and report.ratio <= 1.0
    jump = reference.copy()
    jump[200:] += [0.0, 0.0, 0.01]  # a 1 cm jump at frame 200
    report = E.seam_report(jump, [100, 200], reference)
    assert not report.ok and report.values[0] <= threshold < report.values[1]
    assert report.borders.tolist() == [100, 200] and report.worst == report.values[1]
    assert report.nearby[1] >= report.values[1]


def dipping(frames: int, shift_at=None, shift: float = 0.0, period: int = 15) -> np.ndarray:
    """A body travelling along x whose speed (1 - cos) is zero on frames k * period (+ ``shift`` from ``shift_at``)."""
    fine = np.arange(frames * 20) / 20.0  # integrate the speed finely: x stays smooth where the phase shifts
    offset = np.where(fine >= (frames if shift_at is None else shift_at), shift, 0.0)
    speed = 1 - np.cos(2 * np.pi * (fine - offset) / period)
    x = np.cumsum(speed)[::20] * 0.02 / 20
    return sk.rest_joint_positions()[None] + np.stack([x, 0 * x, 0 * x], axis=1)[:, None, :]


def test_free_beat_alignment_counts_only_free_beats():
    beats = np.arange(15, 300, 15)
    free = np.ones(300, bool)
    assert E.free_beat_alignment(dipping(300), beats, FPS, free) == pytest.approx(1.0, abs=0.02)
    assert E.free_beat_alignment(dipping(300, 0, 7.0), beats, FPS, free) < 0.2
    # Pinned frames hold no beats to score: a dance on the beat only where free scores 1.
    half = dipping(300, 150, 7.0)
    assert E.free_beat_alignment(half, beats, FPS, free) < 0.7
    free[150:] = False
    assert E.free_beat_alignment(half, beats, FPS, free) == pytest.approx(1.0, abs=0.02)
    free[:] = False
    assert np.isnan(E.free_beat_alignment(half, beats, FPS, free))


def test_beat_alignment_within_noise():
    free = [0.50, 0.55, 0.45, 0.52]
    assert E.beat_alignment_holds([0.50, 0.49, 0.53, 0.47], free)
    assert E.beat_alignment_holds([0.60, 0.62, 0.58, 0.61], free)
    assert not E.beat_alignment_holds([0.20, 0.22, 0.18, 0.21], free)


def test_keep_outside_pins_everything_but_the_range():
    poses = np.random.default_rng(0).normal(size=(20, 72)).astype(np.float32)
    trans = np.random.default_rng(1).normal(size=(20, 3)).astype(np.float32)
    c = E.keep_outside(poses, trans, 5, 9)
    assert E.pinned_frames(c).nonzero()[0].tolist() == [0, 1, 2, 3, 4, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]
    assert c.root_mask[c.root_mask.any(1)].all()
    assert np.array_equal(c.smpl_poses[:5], poses[:5]) and np.array_equal(c.smpl_trans[10:], trans[10:])
    assert not E.keep_outside(poses, trans, 0, 19)
    with pytest.raises(ValueError):
        E.keep_outside(poses, trans, 9, 5)


def test_regenerated_range_keeps_the_rest_bit_for_bit_and_meets_pins(tiny_weights):
    """A tiny random model's motion is noise, so only the machinery is checked here (see bench/editing.py)."""
    g = DanceGenerator(tiny_weights, device="cpu")
    music = np.random.default_rng(3).normal(size=(200, g.config.music_dim)).astype(np.float32)
    source = g.generate_from_features(music, seed=1, steps=3)
    c = E.keep_outside(source.smpl_poses, source.smpl_trans, 80, 120)
    c.pin_joints([100], "right_arm", np.full((5, 3), 0.4))
    edited = g.generate_from_features(music, seed=2, steps=3, constraints=c)
    assert E.pin_errors(edited.smpl_poses, edited.smpl_trans, c).ok
    outside = np.r_[0:80, 121:200]
    assert np.array_equal(edited.smpl_poses[outside], source.smpl_poses[outside])
    assert np.array_equal(edited.smpl_trans[outside], source.smpl_trans[outside])
    assert not np.array_equal(edited.smpl_poses[81:120], source.smpl_poses[81:120])
    assert E.constraint_borders(c).tolist() == [80, 100, 101, 121]
    report = E.seam_report(edited.joints, [80, 121], source.joints)
    assert report.borders.tolist() == [80, 121] and np.isfinite(report.values).all()


# ----------------------------------------------------------------------------- easing into pins


def test_easing_removes_a_spike_the_prediction_left_on_a_lone_pin():
    """The network may put the pinned frame where it belongs while its neighbours stay away: no spike remains."""
    from inference.sampling.easing import ease_vectors

    t = np.arange(40, dtype=np.float64)
    pred = 0.01 * t  # steady motion...
    target = pred.copy()
    target[20] += 0.3  # ...pinned 0.3 away on frame 20; the prediction already sits on the pin there
    pred_spiky = pred.copy()
    pred_spiky[20] = target[20]
    mask = np.zeros(40, bool)
    mask[20] = True
    out = ease_vectors(pred_spiky, target, mask, frames=8)
    assert out[20] == target[20]
    accel = np.abs(np.diff(out, 2))
    assert accel.max() < 0.3 * 6 / 9 ** 2 * 1.01  # the Hermite's own bend, nowhere a 0.3 spike
    assert np.allclose(out[:11], pred[:11]) and np.allclose(out[30:], pred[30:])  # beyond the easing: untouched


def test_easing_matches_the_velocity_of_a_moving_pinned_stretch():
    from inference.sampling.easing import ease_vectors

    t = np.arange(60, dtype=np.float64)
    pred = np.zeros(60)  # the free motion stands still
    target = 0.02 * (t - 30)  # the pinned stretch moves at 2 cm/frame
    mask = (t >= 30) & (t < 45)
    out = ease_vectors(pred, target, mask, frames=8)
    velocity = np.diff(out)
    assert np.all(np.diff(velocity[24:30]) > 0) and 0.015 < velocity[29] < 0.02  # speeding up to the pins
    accel = np.abs(np.diff(out, 2))  # accel[i] is centred on frame i + 1
    assert accel[20:30].max() < 0.4 * 0.02  # the 2 cm/frame kink spread out by the Hermite
    assert np.all(out[:21] == 0.0)
    plain = np.where(mask, target, pred)
    assert np.abs(np.diff(plain, 2))[29] == pytest.approx(0.02)  # pins written as they are: a kink


def test_easing_rotations_is_the_same_on_the_sphere():
    from inference.sampling.easing import ease_rotations, ease_vectors

    t = 50
    angle = np.linspace(0.0, 1.0, t)
    pred = np.stack([np.zeros(t), np.zeros(t), angle * 0.3], 1)  # turning about z
    target = pred.copy()
    target[25:35, 2] = 0.9
    mask = np.zeros(t, bool)
    mask[25:35] = True
    q = ease_rotations(sk.axis_angle_to_quat(pred), sk.axis_angle_to_quat(target), mask, frames=8)
    z = sk.quat_to_axis_angle(q)[:, 2]
    expected = ease_vectors(pred[:, 2], target[:, 2], mask, frames=8)  # one axis: angles add
    np.testing.assert_allclose(z, expected, atol=1e-12)
