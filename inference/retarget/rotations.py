"""Rotation helpers of the retarget: shortest-arc swings and the rotation modes Blender keys.

Matrices act on column vectors; quaternions are ``(w, x, y, z)``; an Euler order
``"XYZ"`` turns about X first, then Y, then Z (``R = Rz Ry Rx``), as Blender's does.
NumPy only.
"""

from __future__ import annotations

import numpy as np

from .. import skeleton as sk

EULER_ORDERS = ("XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX")
ROTATION_MODES = ("QUATERNION", "AXIS_ANGLE") + EULER_ORDERS
"""Blender's ``PoseBone.rotation_mode`` values."""


def normalize(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, 1e-12)


def swing(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(..., 3, 3) shortest-arc rotations taking directions ``a`` to ``b`` (..., 3); any length."""
    a, b = normalize(np.asarray(a, float)), normalize(np.asarray(b, float))
    axis = np.cross(a, b)
    sin = np.linalg.norm(axis, axis=-1)
    cos = np.clip((a * b).sum(-1), -1.0, 1.0)
    # Opposite directions: turn half way round any axis perpendicular to a.
    helper = np.where(np.abs(a[..., :1]) < 0.9, np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0]))
    opposite = normalize(np.cross(a, helper))
    axis = np.where((sin < 1e-9)[..., None], np.where((cos < 0)[..., None], opposite, 0.0), axis / np.maximum(
        sin, 1e-12)[..., None])
    angle = np.arctan2(sin, cos)
    return sk.axis_angle_to_matrix(axis * angle[..., None])


def angle_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angles (radians) between directions ``a`` and ``b`` (..., 3)."""
    a, b = normalize(np.asarray(a, float)), normalize(np.asarray(b, float))
    return np.arctan2(np.linalg.norm(np.cross(a, b), axis=-1), (a * b).sum(-1))


def orthonormal(m: np.ndarray) -> np.ndarray:
    """The rotation nearest to (..., 3, 3) ``m`` (removes scale and shear)."""
    u, _, vt = np.linalg.svd(m)
    r = u @ vt
    flip = np.linalg.det(r) < 0
    if np.any(flip):
        u = u.copy()
        u[flip, :, -1] *= -1
        r = u @ vt
    return r


def _axis_rotation(axis: int, angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    m = np.zeros(angle.shape + (3, 3))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    m[..., axis, axis] = 1.0
    m[..., i, i], m[..., i, j], m[..., j, i], m[..., j, j] = c, -s, s, c
    return m


def euler_to_matrix(angles: np.ndarray, order: str) -> np.ndarray:
    """(..., 3) angles, one per axis X, Y, Z (as Blender stores them) -> (..., 3, 3)."""
    angles = np.asarray(angles, float)
    out = np.broadcast_to(np.eye(3), angles.shape[:-1] + (3, 3)).copy()
    for letter in order:  # the first letter turns first
        axis = "XYZ".index(letter)
        out = _axis_rotation(axis, angles[..., axis]) @ out
    return out


def matrix_to_euler(m: np.ndarray, order: str) -> np.ndarray:
    """(..., 3, 3) -> (..., 3) angles per axis X, Y, Z for ``order``; the middle angle in [-pi/2, pi/2]."""
    m = np.asarray(m, float)
    i, j, k = ("XYZ".index(c) for c in order)  # R = Rk Rj Ri
    parity = 1.0 if (j - i) % 3 == 1 else -1.0
    sin_j = np.clip(parity * m[..., k, i] * -1.0, -1.0, 1.0)
    # R[k, i] = -parity * sin(theta_j) for R = Rk Rj Ri
    theta_j = np.arcsin(sin_j)
    cos_j = np.cos(theta_j)
    regular = cos_j > 1e-6
    theta_i = np.where(regular, np.arctan2(parity * m[..., k, j], m[..., k, k]),
                       np.arctan2(-parity * m[..., j, k], m[..., j, j]))
    theta_k = np.where(regular, np.arctan2(parity * m[..., j, i], m[..., i, i]), 0.0)
    out = np.empty(m.shape[:-2] + (3,))
    out[..., i], out[..., j], out[..., k] = theta_i, theta_j, theta_k
    return out


def euler_continuous(angles: np.ndarray, order: str) -> np.ndarray:
    """(F, 3) Euler angles with each frame's equivalent (the flipped triple, whole turns added)
    chosen nearest to the frame before, so curves never jump by 2 pi."""
    i, j, k = ("XYZ".index(c) for c in order)
    raw = np.asarray(angles, float)
    flipped = raw.copy()
    flipped[:, i] += np.pi
    flipped[:, j] = np.pi - flipped[:, j]
    flipped[:, k] += np.pi
    tau = 2 * np.pi
    out = [list(raw[0])]
    for a, b in zip(raw[1:].tolist(), flipped[1:].tolist()):  # plain floats: this loop runs per frame
        prev = out[-1]
        best, cost = None, 0.0
        for cand in (a, b):
            cand = [c + tau * round((p - c) / tau) for c, p in zip(cand, prev)]
            c_cost = sum(abs(c - p) for c, p in zip(cand, prev))
            if best is None or c_cost < cost:
                best, cost = cand, c_cost
        out.append(best)
    return np.array(out)


def key_values(rotations: np.ndarray, mode: str) -> np.ndarray:
    """(F, 3, 3) rotations -> (F, n) the values Blender keys for ``mode``: quaternion (w, x, y, z),
    axis-angle (angle, x, y, z) or Euler (x, y, z); continuous along time."""
    if mode == "QUATERNION":
        return sk.quat_continuous(sk.matrix_to_quat(rotations), axis=0)
    if mode == "AXIS_ANGLE":
        q = sk.quat_continuous(sk.matrix_to_quat(rotations), axis=0)
        angle = 2.0 * np.arctan2(np.linalg.norm(q[:, 1:], axis=-1), q[:, 0])
        axis = normalize(q[:, 1:])
        axis[np.linalg.norm(q[:, 1:], axis=-1) < 1e-12] = (0.0, 1.0, 0.0)
        return np.concatenate([angle[:, None], axis], axis=-1)
    if mode in EULER_ORDERS:
        return euler_continuous(matrix_to_euler(rotations, mode), mode)
    raise ValueError(f"unknown rotation mode {mode!r}")


def from_key_values(values: np.ndarray, mode: str) -> np.ndarray:
    """The inverse of :func:`key_values`: (F, n) keyed values -> (F, 3, 3) (quaternions need not be unit)."""
    values = np.asarray(values, float)
    if mode == "QUATERNION":
        return sk.quat_to_matrix(sk.quat_normalize(values))
    if mode == "AXIS_ANGLE":
        return sk.axis_angle_to_matrix(normalize(values[:, 1:]) * values[:, :1])
    return euler_to_matrix(values, mode)
