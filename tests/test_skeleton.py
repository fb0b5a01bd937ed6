"""Forward kinematics on hand-computed poses and rotation round trips."""

import math

import numpy as np
import pytest
import torch

from inference import skeleton as sk

RNG = np.random.default_rng(0)


def rx(deg):
    a = math.radians(deg)
    return np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])


def rz(deg):
    a = math.radians(deg)
    return np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])


def standing(trans=(0.0, 0.0, 0.0)):
    poses = np.zeros((1, 72))
    poses[0, :3] = sk.Y_UP_TO_Z_UP_AXIS_ANGLE
    return poses, np.array([trans], float)


def test_tables_are_consistent():
    assert len(sk.JOINT_NAMES) == len(sk.PARENTS) == len(sk.REST_OFFSETS) == 24
    assert all(sk.PARENTS[j] < j for j in range(1, 24))
    assert [sk.JOINT_NAMES[i] for i in sk.CONTACT_INDICES] == ["left_ankle", "right_ankle", "left_foot", "right_foot"]
    for j, m in enumerate(sk.MIRROR_INDICES):
        assert sk.MIRROR_INDICES[m] == j
        assert sk.JOINT_NAMES[m].replace("right_", "left_") == sk.JOINT_NAMES[j].replace("right_", "left_")


def test_rest_pose_stands_up_in_z_and_faces_minus_y():
    poses, trans = standing((1.0, 2.0, 3.0))
    j = sk.joint_positions(poses, trans)[0]
    c = sk.Y_UP_TO_Z_UP
    # Hand-computed: every joint is the root plus the turned sum of the rest offsets on its chain.
    knee = np.array([1.0, 2.0, 3.0]) + c @ (sk.REST_OFFSETS[1] + sk.REST_OFFSETS[4])
    np.testing.assert_allclose(j[4], knee, atol=1e-12)
    head = np.array([1.0, 2.0, 3.0]) + c @ sk.REST_OFFSETS[[3, 6, 9, 12, 15]].sum(0)
    np.testing.assert_allclose(j[15], head, atol=1e-12)
    assert j[15, 2] > j[0, 2] + 0.5 > j[7, 2] + 1.0  # head above pelvis above ankles
    assert j[sk.JOINT_INDEX["left_foot"], 1] < j[sk.JOINT_INDEX["left_ankle"], 1]  # toes point to -y
    x = j[:, 0] - 1.0
    assert x[sk.JOINT_INDEX["left_wrist"]] > 0.5 and x[sk.JOINT_INDEX["right_wrist"]] < -0.5  # SMPL left is +x


def test_knee_bend_hand_computed():
    poses, trans = standing()
    poses[0, 3 * 4: 3 * 4 + 3] = [math.pi / 2, 0, 0]  # left knee: 90 degrees about its local x
    j = sk.joint_positions(poses, trans)[0]
    c = sk.Y_UP_TO_Z_UP
    knee = c @ (sk.REST_OFFSETS[1] + sk.REST_OFFSETS[4])
    ankle = knee + c @ rx(90) @ sk.REST_OFFSETS[7]
    toe = ankle + c @ rx(90) @ sk.REST_OFFSETS[10]
    np.testing.assert_allclose(j[7], ankle, atol=1e-12)
    np.testing.assert_allclose(j[10], toe, atol=1e-12)
    # The shin now points backwards (+y, away from the facing direction), level with the knee.
    assert abs(j[7, 2] - j[4, 2]) < 0.05 and j[7, 1] - j[4, 1] > 0.35


def test_root_turn_about_world_z():
    poses, trans = standing()
    turned = poses.copy()
    turned[0, :3] = sk.matrix_to_axis_angle(rz(90) @ sk.Y_UP_TO_Z_UP)
    a = sk.joint_positions(poses, trans)[0]
    b = sk.joint_positions(turned, trans)[0]
    np.testing.assert_allclose(b, a @ rz(90).T, atol=1e-12)


def test_fk_torch_matches_numpy_and_has_gradients():
    rot6d = torch.randn(2, 5, 24, 6, dtype=torch.float64, requires_grad=True)
    trans = torch.randn(2, 5, 3, dtype=torch.float64)
    pos_t, rot_t = sk.forward_kinematics(sk.rot6d_to_matrix(rot6d), trans)
    pos_n, rot_n = sk.forward_kinematics(sk.rot6d_to_matrix(rot6d.detach().numpy()), trans.numpy())
    np.testing.assert_allclose(pos_t.detach().numpy(), pos_n, atol=1e-12)
    np.testing.assert_allclose(rot_t.detach().numpy(), rot_n, atol=1e-12)
    pos_t.sum().backward()
    assert torch.isfinite(rot6d.grad).all()


def random_rotations(n):
    aa = RNG.normal(size=(n, 3))
    aa[:3] = [[0, 0, 0], [math.pi, 0, 0], [0, 1e-10, 0]]
    aa[3] = [0, 0, math.pi - 1e-7]
    return aa


def test_quaternion_round_trips():
    aa = random_rotations(500)
    m = sk.axis_angle_to_matrix(aa)
    np.testing.assert_allclose(m @ np.swapaxes(m, -1, -2), np.broadcast_to(np.eye(3), m.shape), atol=1e-12)
    q = sk.matrix_to_quat(m)
    assert np.all(q[:, 0] >= 0)
    np.testing.assert_allclose(sk.quat_to_matrix(q), m, atol=1e-12)
    q2 = sk.axis_angle_to_quat(aa)
    np.testing.assert_allclose(np.abs((q * q2).sum(-1)), 1.0, atol=1e-12)  # same rotation (up to sign)
    np.testing.assert_allclose(sk.axis_angle_to_matrix(sk.quat_to_axis_angle(q)), m, atol=1e-12)


def test_6d_round_trips_and_gram_schmidt():
    m = sk.axis_angle_to_matrix(random_rotations(500))
    d = sk.matrix_to_rot6d(m)
    np.testing.assert_allclose(d[:, :3], m[:, :, 0])  # the first two columns
    np.testing.assert_allclose(d[:, 3:], m[:, :, 1])
    np.testing.assert_allclose(sk.rot6d_to_matrix(d), m, atol=1e-12)
    # Any non-degenerate 6D vector maps to a proper rotation, and rotations to themselves.
    r = sk.rot6d_to_matrix(RNG.normal(size=(100, 6)))
    np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-12)
    np.testing.assert_allclose(sk.rot6d_to_matrix(sk.matrix_to_rot6d(r)), r, atol=1e-12)


def test_torch_and_numpy_agree():
    aa = random_rotations(100)
    for fn in (sk.axis_angle_to_quat, sk.axis_angle_to_matrix, sk.axis_angle_to_rot6d):
        np.testing.assert_allclose(fn(torch.tensor(aa)).numpy(), fn(aa), atol=1e-12)
    m = sk.axis_angle_to_matrix(aa)
    np.testing.assert_allclose(sk.matrix_to_quat(torch.tensor(m)).numpy(), sk.matrix_to_quat(m), atol=1e-12)
    np.testing.assert_allclose(sk.matrix_to_axis_angle(torch.tensor(m)).numpy(), sk.matrix_to_axis_angle(m), atol=1e-10)


def test_slerp_and_hemisphere():
    a = sk.axis_angle_to_quat(np.array([[0.0, 0, 0]]))
    b = sk.axis_angle_to_quat(np.array([[0.0, 0, 1.0]]))
    mid = sk.quat_slerp(a, b, np.array([0.5]))
    np.testing.assert_allclose(sk.quat_to_axis_angle(mid), [[0, 0, 0.5]], atol=1e-12)
    np.testing.assert_allclose(sk.quat_slerp(a, -b, np.array([1.0])), b, atol=1e-12)  # shorter arc
    q = sk.axis_angle_to_quat(np.stack([np.zeros(20), np.zeros(20), np.linspace(0, 6, 20)], 1))
    flipped = q * np.where(np.arange(20) % 2, -1, 1)[:, None]
    cont = sk.quat_continuous(flipped)
    assert np.all((cont[1:] * cont[:-1]).sum(-1) > 0)
    np.testing.assert_allclose(np.abs(cont), np.abs(q))


@pytest.mark.parametrize("frames", [1, 7])
def test_joint_positions_shapes(frames):
    poses = RNG.normal(size=(frames, 72)) * 0.3
    trans = RNG.normal(size=(frames, 3))
    assert sk.joint_positions(poses, trans).shape == (frames, 24, 3)



def test_quat_continuous_keeps_a_single_frame():
    q = np.array([[0.0, 1.0, 0.0, 0.0]])
    assert np.array_equal(sk.quat_continuous(q), q)
