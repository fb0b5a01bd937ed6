"""The SMPL 24-joint skeleton and every rotation conversion the project uses.

This is the one home of joint names, parents, rest offsets, forward kinematics
and rotation maths. It imports only NumPy so that Blender's own Python (which
has no PyTorch) can use it too; every function also accepts torch tensors and
then computes in torch, keeping gradients and the device.

Conventions
-----------
* Rotation matrices act on column vectors: ``v_world = R @ v_local``.
* Quaternions are ``(w, x, y, z)``.
* The 6D form is the first two *columns* of the matrix, concatenated
  ``(R[:, 0], R[:, 1])`` (Zhou et al., "On the Continuity of Rotation
  Representations in Neural Networks", CVPR 2019).
* The rest offsets are SMPL's (neutral body, y-up, metres). The world is z-up:
  the root's local rotation carries the y-up body into the z-up world, so a
  person standing upright has root axis-angle ``(pi/2, 0, 0)`` — see
  :data:`Y_UP_TO_Z_UP`.
* ``trans`` is the world position of the root joint (the pelvis). Note that in
  an SMPL mesh model the pelvis sits at ``J_0 + transl``; only this skeleton's
  convention (root joint = ``trans``) is used across the project.
"""

from __future__ import annotations

import math

import numpy as np

JOINT_NAMES = (
    "pelvis",
    "left_hip",
    "right_hip",
    "spine1",
    "left_knee",
    "right_knee",
    "spine2",
    "left_ankle",
    "right_ankle",
    "spine3",
    "left_foot",
    "right_foot",
    "neck",
    "left_collar",
    "right_collar",
    "head",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hand",
    "right_hand",
)
NUM_JOINTS = len(JOINT_NAMES)
JOINT_INDEX = {name: i for i, name in enumerate(JOINT_NAMES)}

PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)

# Each joint's rest position relative to its parent: SMPL neutral model, y-up, metres.
REST_OFFSETS = np.array(
    [
        [0.0, 0.0, 0.0],
        [0.05858135, -0.08228004, -0.01766408],
        [-0.06030973, -0.09051332, -0.01354254],
        [0.00443945, 0.12440352, -0.03838522],
        [0.04345142, -0.38646945, 0.008037],
        [-0.04325663, -0.38368791, -0.00484304],
        [0.00448844, 0.1379564, 0.02682033],
        [-0.01479032, -0.42687458, -0.037428],
        [0.01905555, -0.4200455, -0.03456167],
        [-0.00226458, 0.05603239, 0.00285505],
        [0.04105436, -0.06028581, 0.12204243],
        [-0.03483987, -0.06210566, 0.13032329],
        [-0.0133902, 0.21163553, -0.03346758],
        [0.07170245, 0.11399969, -0.01889817],
        [-0.08295366, 0.11247234, -0.02370739],
        [0.01011321, 0.08893734, 0.05040987],
        [0.12292141, 0.04520509, -0.019046],
        [-0.11322832, 0.04685326, -0.00847207],
        [0.2553319, -0.01564902, -0.02294649],
        [-0.26012748, -0.01436928, -0.03126873],
        [0.26570925, 0.01269811, -0.00737473],
        [-0.26910836, 0.00679372, -0.00602676],
        [0.08669055, -0.01063603, -0.01559429],
        [-0.0887537, -0.00865157, -0.01010708],
    ]
)

# The joints whose ground contact the motion carries, in the motion's contact order.
CONTACT_JOINTS = ("left_ankle", "right_ankle", "left_foot", "right_foot")
CONTACT_INDICES = tuple(JOINT_INDEX[n] for n in CONTACT_JOINTS)

# Left/right partner of every joint (itself for the spine), for mirroring.
MIRROR_INDICES = tuple(
    JOINT_INDEX[n.replace("left_", "@").replace("right_", "left_").replace("@", "right_")]
    for n in JOINT_NAMES
)

# A +90 degree turn about X: carries SMPL's y-up body into the z-up world.
Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
Y_UP_TO_Z_UP_AXIS_ANGLE = np.array([math.pi / 2, 0.0, 0.0])

HEAD_TOP_HEIGHT = 0.05
"""The top of the head: this far (m) above the head joint, along the head's up axis."""

# At rest (every rotation the identity), from the shoulders' midpoint to the top of the head:
HEAD_TURN_AXIS = (REST_OFFSETS[12] + REST_OFFSETS[15] + np.array([0.0, HEAD_TOP_HEIGHT, 0.0])
                  - 0.5 * (REST_OFFSETS[13] + REST_OFFSETS[16] + REST_OFFSETS[14] + REST_OFFSETS[17]))
HEAD_TURN_AXIS = HEAD_TURN_AXIS / np.linalg.norm(HEAD_TURN_AXIS)
"""Unit axis, in the neck's frame, that the head turns (shakes "no") about: at rest, from between
the shoulders to the top of the head. The retargeted data's neck twist is fitted about it."""

# Named groups of joints, used for pinning parts of the body.
JOINT_GROUPS = {
    "legs": ("left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
             "left_foot", "right_foot"),
    "upper_body": ("spine1", "spine2", "spine3", "neck", "head", "left_collar", "right_collar",
                   "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
                   "right_wrist", "left_hand", "right_hand"),
    "left_arm": ("left_collar", "left_shoulder", "left_elbow", "left_wrist", "left_hand"),
    "right_arm": ("right_collar", "right_shoulder", "right_elbow", "right_wrist", "right_hand"),
    "spine_head": ("spine1", "spine2", "spine3", "neck", "head"),
}


# ----------------------------------------------------------------------------- array helpers


def _is_numpy(x) -> bool:
    return not hasattr(x, "detach")


def _xp(x):
    """The array module of ``x``: numpy, or torch for tensors."""
    if _is_numpy(x):
        return np
    import torch

    return torch


def _cross(a, b):
    if _is_numpy(a):
        return np.cross(a, b)
    import torch

    return torch.linalg.cross(a, b)


def _norm(x, keepdims=False):
    xp = _xp(x)
    return xp.sqrt((x * x).sum(-1, keepdims=keepdims))


def _asarray(x):
    return np.asarray(x, dtype=np.float64) if _is_numpy(x) else x


# ----------------------------------------------------------------------------- quaternions


def quat_multiply(a, b):
    """Hamilton product ``a * b`` of (..., 4) quaternions."""
    a, b = _asarray(a), _asarray(b)
    aw, ax, ay, az = a[..., 0], a[..., 1], a[..., 2], a[..., 3]
    bw, bx, by, bz = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    return _xp(a).stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=-1,
    )


def quat_conjugate(q):
    q = _asarray(q)
    sign = q.new_tensor([1.0, -1.0, -1.0, -1.0]) if not _is_numpy(q) else np.array([1.0, -1, -1, -1])
    return q * sign


def quat_normalize(q):
    q = _asarray(q)
    return q / _xp(q).clip(_norm(q, keepdims=True), 1e-12, None)


def quat_to_axis_angle(q):
    """(..., 4) -> (..., 3); the rotation angle is in [0, pi]."""
    xp = _xp(q)
    q = quat_normalize(q)
    q = xp.where(q[..., :1] < 0, -q, q)  # shortest arc: w >= 0
    s = _norm(q[..., 1:], keepdims=True)
    angle = 2.0 * xp.arctan2(s, q[..., :1])
    # angle / sin(angle / 2); near zero this tends to 2 / w.
    small = s < 1e-8
    w = xp.clip(q[..., :1], 1e-8, None)
    scale = xp.where(small, 2.0 / w, angle / xp.where(small, xp.ones_like(s), s))
    return q[..., 1:] * scale


def axis_angle_to_quat(aa):
    """(..., 3) -> (..., 4)."""
    aa = _asarray(aa)
    xp = _xp(aa)
    angle = _norm(aa, keepdims=True)
    half = 0.5 * angle
    small = angle < 1e-8
    # sin(angle/2) / angle, with its Taylor series near zero.
    k = xp.where(small, 0.5 - angle * angle / 48.0, xp.sin(half) / xp.where(small, xp.ones_like(angle), angle))
    return xp.concatenate([xp.cos(half), aa * k], axis=-1)


def quat_to_matrix(q):
    """(..., 4) -> (..., 3, 3)."""
    q = quat_normalize(q)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    rows = [
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ]
    return _xp(q).stack(rows, axis=-1).reshape(q.shape[:-1] + (3, 3))


def matrix_to_quat(m):
    """(..., 3, 3) -> (..., 4) with w >= 0 (Shepperd's method: the best-conditioned of four)."""
    m = _asarray(m)
    xp = _xp(m)
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    # Four times the square of each component, and the candidate built around each.
    sq = xp.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], axis=-1)
    root = xp.sqrt(xp.clip(sq, 1e-12, None))  # (..., 4) = 2 * |component|
    d21, d02, d10 = m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]
    s21, s02, s10 = m[..., 2, 1] + m[..., 1, 2], m[..., 0, 2] + m[..., 2, 0], m[..., 1, 0] + m[..., 0, 1]
    cands = xp.stack(
        [
            xp.stack([root[..., 0] ** 2, d21, d02, d10], axis=-1) / root[..., 0:1],
            xp.stack([d21, root[..., 1] ** 2, s10, s02], axis=-1) / root[..., 1:2],
            xp.stack([d02, s10, root[..., 2] ** 2, s21], axis=-1) / root[..., 2:3],
            xp.stack([d10, s02, s21, root[..., 3] ** 2], axis=-1) / root[..., 3:4],
        ],
        axis=-2,
    ) * 0.5  # (..., 4 candidates, 4)
    best = sq.argmax(-1)
    if _is_numpy(m):
        q = np.take_along_axis(cands, best[..., None, None].repeat(4, -1), axis=-2)[..., 0, :]
    else:
        q = cands.gather(-2, best[..., None, None].expand(best.shape + (1, 4))).squeeze(-2)
    q = quat_normalize(q)
    return xp.where(q[..., :1] < 0, -q, q)


def quat_slerp(a, b, t):
    """Spherical interpolation from ``a`` (t=0) to ``b`` (t=1) along the shorter arc.

    ``t`` broadcasts against the leading dimensions of the (..., 4) inputs.
    """
    a, b = quat_normalize(a), quat_normalize(b)
    xp = _xp(a)
    t = xp.asarray(t) if _is_numpy(a) else xp.as_tensor(t, dtype=a.dtype, device=a.device)
    t = t[..., None]
    dot = (a * b).sum(-1, keepdims=True)
    b = xp.where(dot < 0, -b, b)
    dot = xp.clip(xp.abs(dot), 0.0, 1.0)
    theta = xp.arccos(dot)
    sin_theta = xp.sin(theta)
    near = sin_theta < 1e-6
    safe = xp.where(near, xp.ones_like(sin_theta), sin_theta)
    wa = xp.where(near, 1.0 - t, xp.sin((1.0 - t) * theta) / safe)
    wb = xp.where(near, t, xp.sin(t * theta) / safe)
    return quat_normalize(wa * a + wb * b)


def quat_continuous(q, axis: int = 0):
    """Flip signs along ``axis`` so consecutive quaternions stay in one hemisphere.

    Animation curves need this: ``q`` and ``-q`` are the same rotation, but
    interpolating between them spins the bone the long way round.
    """
    q = _asarray(q)
    xp = _xp(q)
    q = xp.moveaxis(q, axis, 0)
    flips = 1.0 - 2.0 * ((q[1:] * q[:-1]).sum(-1) < 0)  # (T-1, ...) -1 where neighbours disagree
    signs = xp.concatenate([xp.ones_like(q[:1, ..., 0]), flips.cumprod(0)])  # a single frame keeps its sign
    return xp.moveaxis(q * signs[..., None], 0, axis)


# ----------------------------------------------------------------------------- matrices, 6D


def axis_angle_to_matrix(aa):
    return quat_to_matrix(axis_angle_to_quat(aa))


def matrix_to_axis_angle(m):
    return quat_to_axis_angle(matrix_to_quat(m))


def matrix_to_rot6d(m):
    """(..., 3, 3) -> (..., 6): the first two columns."""
    m = _asarray(m)
    return _xp(m).concatenate([m[..., :, 0], m[..., :, 1]], axis=-1)


def rot6d_to_matrix(d6):
    """(..., 6) -> (..., 3, 3) by Gram-Schmidt (Zhou et al. 2019, section 4)."""
    d6 = _asarray(d6)
    xp = _xp(d6)
    a1, a2 = d6[..., 0:3], d6[..., 3:6]
    b1 = a1 / xp.clip(_norm(a1, keepdims=True), 1e-8, None)
    a2 = a2 - (b1 * a2).sum(-1, keepdims=True) * b1
    b2 = a2 / xp.clip(_norm(a2, keepdims=True), 1e-8, None)
    b3 = _cross(b1, b2)
    return xp.stack([b1, b2, b3], axis=-1)


def axis_angle_to_rot6d(aa):
    return matrix_to_rot6d(axis_angle_to_matrix(aa))


def rot6d_to_axis_angle(d6):
    return matrix_to_axis_angle(rot6d_to_matrix(d6))


def identity_rot6d(shape=()):
    """Identity rotations in 6D, shape ``shape + (6,)``."""
    return np.broadcast_to(np.array([1.0, 0, 0, 0, 1, 0]), tuple(shape) + (6,)).copy()


# ----------------------------------------------------------------------------- kinematics


def rest_offsets(like=None):
    """REST_OFFSETS as an array of the same kind, dtype and device as ``like``."""
    if like is None or _is_numpy(like):
        return REST_OFFSETS.copy()
    return like.new_tensor(REST_OFFSETS)


def forward_kinematics(rotations, trans, offsets=None):
    """World joint positions and rotations from local rotations (SMPL FK).

    Args:
        rotations: (..., 24, 3, 3) local rotation matrices; joint 0 is the root's
            world orientation (including the y-up to z-up turn).
        trans: (..., 3) world position of the root joint, metres, z-up.
        offsets: (24, 3) rest offsets; SMPL's neutral ones by default.

    Returns:
        positions (..., 24, 3) and world rotations (..., 24, 3, 3).
    """
    rotations, trans = _asarray(rotations), _asarray(trans)
    xp = _xp(rotations)
    offsets = rest_offsets(rotations) if offsets is None else _asarray(offsets)
    world_rot = [rotations[..., 0, :, :]]
    world_pos = [trans]
    for j in range(1, NUM_JOINTS):
        p = PARENTS[j]
        world_pos.append(world_pos[p] + (world_rot[p] @ offsets[j][:, None])[..., 0])
        world_rot.append(world_rot[p] @ rotations[..., j, :, :])
    return xp.stack(world_pos, axis=-2), xp.stack(world_rot, axis=-3)


def joint_positions(smpl_poses, smpl_trans):
    """World joint positions (N, 24, 3) from axis-angle poses (N, 72) and root positions (N, 3)."""
    poses = _asarray(smpl_poses)
    rot = axis_angle_to_matrix(poses.reshape(poses.shape[:-1] + (NUM_JOINTS, 3)))
    return forward_kinematics(rot, smpl_trans)[0]


def rest_joint_positions():
    """Joint positions (24, 3) of the rest pose standing in the z-up world, root at the origin."""
    rot = np.broadcast_to(np.eye(3), (NUM_JOINTS, 3, 3)).copy()
    rot[0] = Y_UP_TO_Z_UP
    return forward_kinematics(rot, np.zeros(3))[0]
