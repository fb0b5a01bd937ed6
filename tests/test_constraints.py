"""The pinning API, its file form and its checks."""

import numpy as np
import pytest

from inference import skeleton as sk
from inference.errors import ConstraintsError
from inference.sampling.constraints import Constraints, joint_indices
from inference.sampling.easing import ease_rotations, ease_vectors


def test_pin_kinds_set_the_right_masks():
    c = Constraints.empty(100)
    assert not c
    c.pin_pose(10, np.full(72, 0.1), [0, 0, 0.9])
    c.pin_joints(range(20, 30), "left_arm", np.zeros((10, 5, 3)))
    c.pin_root(range(40, 50), np.zeros((10, 3)), horizontal_only=True)
    assert c and c.pose_mask[10].all() and c.root_mask[10].all()
    arm = joint_indices("left_arm")
    assert c.pose_mask[20:30][:, arm].all() and c.pose_mask[20:30].sum() == 50
    assert c.root_mask[40:50, :2].all() and not c.root_mask[40:50, 2].any()
    assert c.pose_mask.sum() == 24 + 50 and c.root_mask.sum() == 3 + 20


def test_joint_names_and_groups():
    assert joint_indices(["pelvis", 3, "head"]) == [0, 3, 15]
    assert len(joint_indices("legs")) == 8
    with pytest.raises(ConstraintsError, match="'tail' is not an SMPL joint"):
        joint_indices("tail")
    with pytest.raises(ConstraintsError, match="out of range"):
        joint_indices(24)


def test_contradicting_pins_are_refused_but_equal_ones_agree():
    c = Constraints.empty(50)
    c.pin_pose(5, np.zeros(72))
    c.pin_joints(5, "head", np.zeros(3))  # the same value: fine
    with pytest.raises(ConstraintsError, match="Frame 5 already has a different head rotation"):
        c.pin_joints(5, "head", [0.5, 0, 0])
    c.pin_root(7, [1, 2, 3])
    with pytest.raises(ConstraintsError, match="Frame 7 already has a different root position"):
        c.pin_root(7, [1, 2, 4])
    # One rotation, two axis-angle forms: not a contradiction.
    c.pin_joints(9, "neck", [np.pi, 0, 0])
    c.pin_joints(9, "neck", [-np.pi, 0, 0])


@pytest.mark.parametrize("frames, message", [
    ([100], "outside the dance"), ([-1], "outside the dance"), ([1.5], "whole frame numbers"),
    ([3, 3], "listed twice"),
])
def test_bad_frames(frames, message):
    with pytest.raises(ConstraintsError, match=message):
        Constraints.empty(100).pin_root(frames, np.zeros((len(frames), 3)))


def test_nan_and_wrong_shapes_are_refused():
    c = Constraints.empty(10)
    with pytest.raises(ConstraintsError, match="NaN"):
        c.pin_root(1, [np.nan, 0, 0])
    with pytest.raises(ConstraintsError, match="do not fit 2 frames x 5 joints"):
        c.pin_joints([1, 2], "left_arm", np.zeros((2, 4, 3)))
    with pytest.raises(ConstraintsError, match="starts at frame 5, after its end 2"):
        c.pin_range(5, 2, np.zeros((1, 72)), np.zeros((1, 3)))


def test_file_round_trip(tmp_path):
    c = Constraints.empty(60)
    c.pin_pose(range(5, 8), np.random.default_rng(0).normal(size=(3, 72)), np.ones((3, 3)))
    c.save(tmp_path / "c.npz")
    d = Constraints.load(tmp_path / "c.npz", fps=30)
    for k in ("smpl_poses", "smpl_trans", "pose_mask", "root_mask"):
        assert np.array_equal(getattr(c, k), getattr(d, k))


def _write(path, **arrays):
    base = {"smpl_poses": np.zeros((20, 72), np.float32), "smpl_trans": np.zeros((20, 3), np.float32),
            "pose_mask": np.zeros((20, 24), bool), "root_mask": np.zeros((20, 3), bool)}
    base.update(arrays)
    np.savez(path, **{k: v for k, v in base.items() if v is not None})
    return path


@pytest.mark.parametrize("arrays, message", [
    ({"smpl_poses": np.zeros((20, 71), np.float32)}, r"c.npz: Constraint array smpl_poses has shape \(20, 71\); expected \(20, 72\)"),
    ({"root_mask": np.zeros((20, 2), bool)}, r"root_mask has shape \(20, 2\); expected \(20, 3\)"),
    ({"pose_mask": np.zeros((20, 24), np.int64)}, "pose_mask .* must be boolean"),
    ({"root_mask": None}, "lacks the arrays root_mask"),
    ({"fps": np.int32(60)}, "60 fps"),
])
def test_bad_files(tmp_path, arrays, message):
    with pytest.raises(ConstraintsError, match=message):
        Constraints.load(_write(tmp_path / "c.npz", **arrays), fps=30)


def test_nan_in_a_pinned_value_of_a_file(tmp_path):
    poses = np.zeros((20, 72), np.float32)
    poses[3, 0] = np.nan
    mask = np.zeros((20, 24), bool)
    mask[3, 0] = True
    with pytest.raises(ConstraintsError, match="NaN"):
        Constraints.load(_write(tmp_path / "c.npz", smpl_poses=poses, pose_mask=mask))
    # NaN where nothing is pinned is ignored.
    mask[3, 0] = False
    mask[4, 0] = True
    Constraints.load(_write(tmp_path / "d.npz", smpl_poses=poses, pose_mask=mask))


def test_pins_beyond_the_music_are_refused():
    c = Constraints.empty(200)
    c.pin_root(150, [0, 0, 1])
    with pytest.raises(ConstraintsError, match="Pins reach frame 150, but the music gives only 100 frames"):
        c.resized(100)
    assert c.resized(300).root_mask[150].all()


def test_unreadable_file(tmp_path):
    (tmp_path / "bad.npz").write_text("hello")
    with pytest.raises(ConstraintsError, match="not a readable .npz"):
        Constraints.load(tmp_path / "bad.npz")
    with pytest.raises(ConstraintsError, match="not found"):
        Constraints.load(tmp_path / "missing.npz")


def test_easing_is_exact_on_pins_and_continuous_beside_them():
    t = 60
    pred = np.zeros((t, 3))
    target = np.zeros((t, 3))
    mask = np.zeros(t, bool)
    mask[20:30] = True
    target[20:30] = 1.0
    out = ease_vectors(pred, target, mask, frames=8)
    assert np.all(out[20:30] == 1.0)
    assert np.all(out[:11] == 0) and np.all(out[39:] == 0)  # beyond the easing span: untouched
    assert np.abs(np.diff(out[:, 0])).max() < 0.2  # no jump at the borders
    # Rotations: the same with quaternions.
    q = sk.axis_angle_to_quat(np.zeros((t, 3)))
    qt = sk.axis_angle_to_quat(np.tile([0.0, 0.0, 1.0], (t, 1)))
    out_q = ease_rotations(q, qt, mask, frames=8)
    angles = np.linalg.norm(sk.quat_to_axis_angle(out_q), axis=-1)
    np.testing.assert_allclose(angles[20:30], 1.0, atol=1e-12)
    assert np.abs(np.diff(angles)).max() < 0.2


def test_a_far_rotation_pin_eases_in_over_more_frames():
    # A lone pinned frame turned 150 degrees from the free motion (a pinned pose facing the
    # other way): over the plain span the dancer would whip round; the span grows with the
    # offset so the turn accelerates no harder than a 45-degree pin's over the plain span.
    t, frames = 121, 15
    mask = np.zeros(t, bool)
    mask[60] = True
    q = sk.axis_angle_to_quat(np.zeros((t, 3)))

    def eased(degrees):
        qt = sk.axis_angle_to_quat(np.tile([0.0, 0.0, np.radians(degrees)], (t, 1)))
        return sk.quat_to_axis_angle(ease_rotations(q, qt, mask, frames=frames))[:, 2]

    near, far = eased(45.0), eased(150.0)
    assert far[60] == pytest.approx(np.radians(150.0), abs=1e-12)
    assert np.all(near[:60 - frames] == 0) and np.any(far[:60 - frames] != 0)  # a longer span
    assert np.all(far[:60 - 2 * frames - 1] == 0) and np.all(far[60 + 2 * frames + 2:] == 0)  # at most twice
    assert np.abs(np.diff(far, 2)).max() <= np.abs(np.diff(near, 2)).max() * 1.05
    plain = ease_vectors(np.zeros(t), np.full(t, np.radians(150.0)), mask, frames=frames)
    assert np.abs(np.diff(plain, 2)).max() > 2.5 * np.abs(np.diff(near, 2)).max()  # what it avoids


def test_easing_between_two_close_pins_meets_both():
    pred = np.zeros(30)
    target = np.zeros(30)
    mask = np.zeros(30, bool)
    mask[5], mask[12] = True, True
    target[5], target[12] = 1.0, -1.0
    out = ease_vectors(pred, target, mask, frames=8)
    assert out[5] == 1.0 and out[12] == -1.0
    assert np.all(np.diff(out[5:13]) < 0)  # a smooth path from one to the other
