"""The per-frame motion vector the network denoises, and conversions to and from SMPL.

Layout of one frame (EDGE, ``config.motion_dim`` = 151 numbers)::

    [0:4]    foot contacts: left ankle, right ankle, left toe, right toe (0..1)
    [4:7]    root translation, metres, z-up
    [7:151]  24 local joint rotations, 6D each (see :mod:`inference.skeleton`)

Inside a window the root's horizontal position is relative to the window's
first frame (:func:`to_window_frame`); height stays absolute. This lets the
same network place a dance anywhere on the floor and lets long songs travel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import skeleton as sk
from .config import NUM_CONTACTS, ROOT_DIMS, ROT6D_DIMS

CONTACTS = slice(0, NUM_CONTACTS)
ROOT = slice(NUM_CONTACTS, NUM_CONTACTS + ROOT_DIMS)
ROOT_XY = slice(ROOT.start, ROOT.start + 2)
ROTATIONS = slice(ROOT.stop, ROOT.stop + sk.NUM_JOINTS * ROT6D_DIMS)

PLACEMENT = np.r_[ROOT, ROTATIONS.start:ROTATIONS.start + ROT6D_DIMS]
"""Columns saying where the dancer is and which way they face: root translation and pelvis rotation."""

CONTACT_SPEED = 0.3
"""A foot joint moving slower than this (m/s) counts as in contact with the floor."""


def rotation_dims(joint: int) -> slice:
    """The six columns of ``joint``'s rotation."""
    start = ROTATIONS.start + joint * ROT6D_DIMS
    return slice(start, start + ROT6D_DIMS)


def pack(contacts, trans, rot6d):
    """(..., T, 4), (..., T, 3), (..., T, 24, 6) -> (..., T, 151)."""
    xp = sk._xp(trans)
    rot = rot6d.reshape(rot6d.shape[:-2] + (sk.NUM_JOINTS * ROT6D_DIMS,))
    return xp.concatenate([contacts, trans, rot], axis=-1)


def unpack(x):
    """(..., T, 151) -> contacts (..., T, 4), trans (..., T, 3), rot6d (..., T, 24, 6)."""
    rot = x[..., ROTATIONS]
    return x[..., CONTACTS], x[..., ROOT], rot.reshape(rot.shape[:-1] + (sk.NUM_JOINTS, ROT6D_DIMS))


def foot_contacts(joints: np.ndarray, fps: float) -> np.ndarray:
    """(T, 24, 3) world joint positions -> (T, 4) float contacts from foot speed."""
    feet = joints[:, list(sk.CONTACT_INDICES)]
    speed = np.zeros(feet.shape[:2])
    speed[1:] = np.linalg.norm(np.diff(feet, axis=0), axis=-1) * fps
    speed[0] = speed[1] if len(speed) > 1 else 0.0
    return (speed < CONTACT_SPEED).astype(np.float32)


def from_smpl(smpl_poses: np.ndarray, smpl_trans: np.ndarray, fps: float, contacts=None) -> np.ndarray:
    """(T, 72) axis-angle and (T, 3) root positions -> (T, 151) motion (global root position).

    Contacts are measured from foot speed unless given.
    """
    rotations = sk.axis_angle_to_matrix(np.asarray(smpl_poses, np.float64).reshape(-1, sk.NUM_JOINTS, 3))
    if contacts is None:
        contacts = foot_contacts(sk.forward_kinematics(rotations, smpl_trans)[0], fps)
    return pack(np.asarray(contacts, np.float64), np.asarray(smpl_trans, np.float64),
                sk.matrix_to_rot6d(rotations)).astype(np.float32)


@dataclass
class SmplMotion:
    """A motion in the project's output form (see the README's npz contract)."""

    smpl_poses: np.ndarray  # (N, 72) axis-angle, SMPL joint order
    smpl_trans: np.ndarray  # (N, 3) root position, metres, z-up
    contacts: np.ndarray  # (N, 4) in [0, 1]

    @property
    def joints(self) -> np.ndarray:
        """(N, 24, 3) world joint positions from the project's FK."""
        return sk.joint_positions(self.smpl_poses, self.smpl_trans).astype(np.float32)


def to_smpl(x: np.ndarray) -> SmplMotion:
    """(N, 151) motion with a global root position -> SMPL poses, translations and contacts."""
    contacts, trans, rot6d = unpack(np.asarray(x, np.float64))
    poses = sk.rot6d_to_axis_angle(rot6d).reshape(len(x), -1)
    return SmplMotion(smpl_poses=poses.astype(np.float32), smpl_trans=trans.astype(np.float32),
                      contacts=np.clip(contacts, 0.0, 1.0).astype(np.float32))


def to_window_frame(x):
    """Move a window's root so its first frame stands at the horizontal origin.

    ``x``: (..., T, 151) with a global root; returns the window-relative motion
    and the (..., 2) horizontal origin that was subtracted.
    """
    origin = x[..., 0, ROOT_XY]
    out = x.copy() if isinstance(x, np.ndarray) else x.clone()
    out[..., ROOT_XY] = x[..., ROOT_XY] - origin[..., None, :]
    return out, origin


def resample(smpl_poses: np.ndarray, smpl_trans: np.ndarray, src_fps: float, times: np.ndarray):
    """Sample a motion at arbitrary ``times`` (seconds; frame i of the source is at i / src_fps).

    Rotations are slerped per joint, the root and anything else linearly
    interpolated; times outside the source hold its first or last frame.
    Returns (M, 72) axis-angle poses and (M, 3) root positions, float64.
    """
    poses = np.asarray(smpl_poses, np.float64).reshape(len(smpl_poses), sk.NUM_JOINTS, 3)
    trans = np.asarray(smpl_trans, np.float64)
    pos = np.clip(np.asarray(times, np.float64) * src_fps, 0.0, len(poses) - 1)
    i0 = np.floor(pos).astype(int)
    i1 = np.minimum(i0 + 1, len(poses) - 1)
    frac = pos - i0
    q = sk.axis_angle_to_quat(poses)
    qt = sk.quat_slerp(q[i0], q[i1], np.broadcast_to(frac[:, None], (len(frac), sk.NUM_JOINTS)))
    out_trans = trans[i0] + frac[:, None] * (trans[i1] - trans[i0])
    return sk.quat_to_axis_angle(qt).reshape(len(frac), -1), out_trans


def resample_fps(smpl_poses: np.ndarray, smpl_trans: np.ndarray, src_fps: float, dst_fps: float):
    """Resample a whole motion from ``src_fps`` to ``dst_fps`` (same start, same duration)."""
    duration = (len(smpl_poses) - 1) / src_fps
    times = np.arange(int(np.floor(duration * dst_fps + 1e-9)) + 1) / dst_fps
    return resample(smpl_poses, smpl_trans, src_fps, times)
