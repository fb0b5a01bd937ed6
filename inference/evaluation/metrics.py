"""Dance-quality metrics on world joint positions: physics, music following, features, diversity.

Pure NumPy/SciPy, no PyTorch and no ``bpy``. Every function takes joint
positions ``(T, 24, 3)`` in metres, z-up, in :mod:`inference.skeleton` order,
and the frame rate; constants are in seconds or metres so that they mean the
same at any frame rate (at 30 fps they equal the frame counts quoted).

What is measured (see each function for its reference):

* :func:`physical_foot_contact` — EDGE's PFC, lower is better.
* :func:`beat_alignment` — Bailando's beat-align score: for every *music* beat,
  ``exp(-d^2 / 2 sigma^2)`` with ``d`` the distance to the nearest kinematic beat
  (a local minimum of smoothed mean joint speed); ``sigma`` = 3 frames at 30 fps.
* :func:`kinetic_features` (72) and :func:`geometric_features` (32) — the
  AIST++/FACT "kinetic" and Müller-style "geometric" (manual) features, from
  which :func:`frechet_distance` (FID_k, FID_g) and :func:`diversity`
  (Div_k, Div_g) are computed after :func:`normalise` by ground-truth statistics.
* :func:`foot_skating` and :func:`ground_penetration` — contact artefacts.

The floor, the feet, joint speed and kinematic beats are :mod:`inference.analysis`'s, the
same the clean-ups use. Scores are computed on :func:`clip_slices` (EDGE's 5 s clips) by
:mod:`inference.evaluation.evaluate`; these functions accept any length of 3 frames or more.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.spatial.distance import pdist

from .. import skeleton as sk
from ..analysis import FEET, FOOT_JOINTS, HORIZONTAL, SKATE_HEIGHT, SKATE_SPEED, UP, check_joints, estimate_floor

CLIP_SECONDS = 5.0
"""Length of the clips every score is computed on (EDGE evaluates 5 s clips)."""

# --- PFC (EDGE, eval/eval_pfc.py) ---
PFC_FRAME_SECONDS = 1.0 / 30.0
"""EDGE measures foot velocity as displacement per frame at 30 fps; speeds are scaled by this."""
PFC_SCALE = 1e4
"""EDGE reports the mean score times 10^4."""
PFC_STILL_ACCEL = 0.01
"""A root whose peak acceleration is below this (m/s^2) is unaccelerated: float32 rounding alone gives ~1e-3."""

# --- beat alignment (Bailando, utils/beat_align_score.py) ---
BEAT_SIGMA_SECONDS = 0.1
"""Width of the beat-hit Gaussian: 3 frames at 30 fps (Bailando's sigma^2 = 9 frames^2, used at 30 fps)."""

# --- kinetic features (AIST++ / FACT) ---
KINETIC_DIMS = 3 * sk.NUM_JOINTS
KINETIC_WINDOW = 2
"""Frames on each side over which velocities and accelerations are averaged (AIST++'s sliding window)."""

# --- contact artefacts ---
FLOOR_Z = 0.0
"""The npz contract's floor: penetration is measured below z = 0."""

# --- normalisation of features ---
MIN_STD = 1e-8
"""A feature whose ground-truth standard deviation is below this is left unscaled (Bailando divides by ~0)."""


# ----------------------------------------------------------------------------- helpers


def clip_slices(num_frames: int, fps: float, seconds: float = CLIP_SECONDS) -> list[slice]:
    """Non-overlapping clips of ``seconds`` from frame 0; a shorter tail is left out."""
    length = int(round(seconds * fps))
    return [slice(a, a + length) for a in range(0, num_frames - length + 1, length)]


def resample_joints(joints: np.ndarray, src_fps: float, dst_fps: float) -> np.ndarray:
    """(T, 24, 3) positions sampled at ``dst_fps`` over the same duration, linearly interpolated."""
    joints = np.asarray(joints, np.float64)
    if src_fps == dst_fps:
        return joints
    duration = (len(joints) - 1) / src_fps
    times = np.arange(int(np.floor(duration * dst_fps + 1e-9)) + 1) / dst_fps
    src = np.arange(len(joints)) / src_fps
    flat = joints.reshape(len(joints), -1)
    out = np.stack([np.interp(times, src, flat[:, k]) for k in range(flat.shape[1])], axis=1)
    return out.reshape((len(times),) + joints.shape[1:])


# ----------------------------------------------------------------------------- physics


def physical_foot_contact(joints, fps: float) -> float:
    """PFC, Tseng et al. 2023 (EDGE's eval_pfc.py): mean of |a_root| / max|a_root| * v_left * v_right, x 10^4.

    ``a_root``: root acceleration by second differences, its downward part
    clamped to zero (the floor can only push up); ``v_left``/``v_right``: the
    slower of each foot's ankle and toe horizontal speeds (forward differences),
    as displacement per frame at 30 fps. A root that never accelerates (peak
    below :data:`PFC_STILL_ACCEL`) scores 0, where EDGE would divide by zero.
    """
    joints = check_joints(joints)
    root = joints[:, 0]
    accel = (root[2:] - 2 * root[1:-1] + root[:-2]) * fps * fps  # (T-2, 3)
    accel[:, UP] = np.maximum(accel[:, UP], 0.0)
    accel = np.linalg.norm(accel, axis=-1)
    peak = accel.max()
    if peak < PFC_STILL_ACCEL:
        return 0.0
    step = joints[2:] - joints[1:-1]  # (T-2, 24, 3): frame t -> t+1, beside the acceleration at t
    speed = np.linalg.norm(step[..., HORIZONTAL], axis=-1) * fps * PFC_FRAME_SECONDS  # (T-2, 24)
    left = speed[:, list(FEET[0])].min(axis=1)
    right = speed[:, list(FEET[1])].min(axis=1)
    return float((accel / peak * left * right).mean() * PFC_SCALE)


def foot_skating(joints, fps: float, floor: float | None = None) -> float:
    """Foot-skating ratio (after Karunratanakul et al. 2023, GMD): fraction of frames where a planted foot slides.

    A foot is planted when the lower of its ankle and toe is within
    :data:`SKATE_HEIGHT` of ``floor`` (by default :func:`estimate_floor` of
    ``joints``; pass the whole dance's floor when scoring a clip); it skates
    when it is planted and the slower of its two joints moves horizontally
    faster than :data:`SKATE_SPEED` (central differences). A frame counts once
    if either foot skates.
    """
    joints = check_joints(joints)
    floor = estimate_floor(joints) if floor is None else floor
    speed = np.linalg.norm(np.gradient(joints[..., HORIZONTAL], axis=0), axis=-1) * fps  # (T, 24)
    skating = np.zeros(len(joints), bool)
    for foot in FEET:
        planted = joints[:, list(foot), UP].min(axis=1) - floor < SKATE_HEIGHT
        sliding = speed[:, list(foot)].min(axis=1) > SKATE_SPEED
        skating |= planted & sliding
    return float(skating.mean())


@dataclass(frozen=True)
class Penetration:
    """How far the feet go below the floor."""

    depth: float
    """Mean over frames of the lowest foot joint's depth below the floor, metres (0 when above)."""
    frames: float
    """Fraction of frames with a foot joint below the floor."""


def ground_penetration(joints, floor: float = FLOOR_Z) -> Penetration:
    """Ground penetration: depth of the lowest of the four foot joints below ``floor`` (z = 0 by contract)."""
    joints = np.asarray(joints, np.float64)
    depth = np.maximum(0.0, floor - joints[:, FOOT_JOINTS, UP].min(axis=1))
    return Penetration(depth=float(depth.mean()), frames=float((depth > 0).mean()))


# ----------------------------------------------------------------------------- music following


def beat_alignment(music_beats, motion_beats, fps: float) -> float:
    """Beat-align score, Li et al. 2022 (Bailando): mean over music beats of exp(-d^2 / 2 sigma^2).

    ``d`` is the distance (frames) from each music beat to the nearest
    kinematic beat and ``sigma`` is :data:`BEAT_SIGMA_SECONDS` in frames.
    Returns 0 when the motion has no beats and NaN when the music has none.
    """
    music = np.asarray(music_beats, np.float64)
    motion = np.asarray(motion_beats, np.float64)
    if len(music) == 0:
        return float("nan")
    if len(motion) == 0:
        return 0.0
    sigma = BEAT_SIGMA_SECONDS * fps
    nearest = np.abs(music[:, None] - motion[None, :]).min(axis=1)
    return float(np.exp(-nearest ** 2 / (2 * sigma ** 2)).mean())


# ----------------------------------------------------------------------------- kinetic features


def _window_mean(values: np.ndarray, first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Mean of ``values[first[i]:last[i] + 1]`` along axis 0 for every i, by cumulative sums."""
    csum = np.concatenate([np.zeros((1,) + values.shape[1:]), np.cumsum(values, axis=0)])
    count = (last - first + 1).reshape((-1,) + (1,) * (values.ndim - 1))
    return (csum[last + 1] - csum[first]) / count


def kinetic_features(joints, fps: float) -> np.ndarray:
    """Kinetic features, Li et al. 2021 (AIST++/FACT), after Onuma et al. 2008: 24 joints x 3 = (72,).

    Per joint, in order: mean horizontal kinetic energy ``|v_xy|^2``, mean
    vertical kinetic energy ``v_z^2`` (unit mass, no factor 1/2) and mean energy
    expenditure ``|a|``. At every frame ``i`` = 1..T-1, ``v`` and ``a`` are the
    finite-difference velocity and acceleration averaged over the frames within
    :data:`KINETIC_WINDOW` of ``i`` (velocities of steps ``k-1 -> k``,
    accelerations centred on ``k``), in m/s and m/s^2.
    """
    joints = check_joints(joints)
    t = len(joints)
    frames = np.arange(1, t)
    steps = np.diff(joints, axis=0) * fps  # (T-1, 24, 3): step k-1 -> k at row k-1
    vel = _window_mean(steps, np.maximum(frames - KINETIC_WINDOW, 1) - 1,
                       np.minimum(frames + KINETIC_WINDOW, t - 1) - 1)
    second = (joints[2:] - 2 * joints[1:-1] + joints[:-2]) * fps * fps  # (T-2, 24, 3): centred on k at row k-1
    acc = _window_mean(second, np.maximum(frames - KINETIC_WINDOW, 1) - 1,
                       np.minimum(frames + KINETIC_WINDOW, t - 2) - 1)
    horizontal = (vel[..., HORIZONTAL] ** 2).sum(-1).mean(axis=0)  # (24,)
    vertical = (vel[..., UP] ** 2).mean(axis=0)
    expenditure = np.linalg.norm(acc, axis=-1).mean(axis=0)
    return np.stack([horizontal, vertical, expenditure], axis=1).reshape(-1)


# ----------------------------------------------------------------------------- geometric features

# Special points besides joints: the origin, unit vectors up and down, and the
# point on the z axis at the height of the frame's lowest joint.
_ORIGIN, _UP_UNIT, _DOWN_UNIT, _LOWEST = "origin", "up", "down", "lowest"

# Müller et al. 2005 relational features, the 32 of the AIST++ implementation. Each is
# (kind, four points, threshold) with a threshold as (body measure, factor) in metres or
# metres/second, or an angle range in degrees. Kinds (p = the last point):
#   plane:  p lies more than t in front of the plane through a, b, c (normal (c - a) x (b - a))
#   nplane: p lies more than t beyond the plane through c with normal b - a
#   move:   velocity of p relative to c, along the direction a -> b, exceeds t (the AIST++ code
#           moves c itself, which makes "hand moving upwards" measure the chest; we move p)
#   nmove:  velocity of p relative to a, along the normal (c - a) x (b - a), exceeds t
#   angle:  the angle between a -> b and c -> p is strictly inside the range
#   fast:   the speed of p exceeds t (a, b, c unused)
GEOMETRIC_FEATURES = (
    ("nmove", ("neck", "right_hip", "left_hip", "right_wrist"), ("hl", 1.8)),  # hand moving to the front/back
    ("nmove", ("neck", "left_hip", "right_hip", "left_wrist"), ("hl", 1.8)),
    ("nplane", ("spine3", "neck", "neck", "right_wrist"), ("hl", 0.2)),  # hand above the neck
    ("nplane", ("spine3", "neck", "neck", "left_wrist"), ("hl", 0.2)),
    ("move", ("spine1", "spine3", "spine3", "right_wrist"), ("hl", 1.8)),  # hand moving upwards
    ("move", ("spine1", "spine3", "spine3", "left_wrist"), ("hl", 1.8)),
    ("angle", ("right_elbow", "right_shoulder", "right_elbow", "right_wrist"), (0.0, 110.0)),  # elbow bent
    ("angle", ("left_elbow", "left_shoulder", "left_elbow", "left_wrist"), (0.0, 110.0)),
    ("nplane", ("left_shoulder", "right_shoulder", "left_wrist", "right_wrist"), ("sw", 2.5)),  # hands far apart
    ("move", ("left_wrist", "right_wrist", "right_wrist", "left_wrist"), ("hl", 1.4)),  # hands approaching
    ("move", ("right_wrist", "pelvis", "left_wrist", "pelvis"), ("hl", 1.4)),
    ("move", ("left_wrist", "pelvis", "right_wrist", "pelvis"), ("hl", 1.4)),
    ("fast", ("right_wrist",) * 4, ("hl", 2.5)),  # hand fast
    ("fast", ("left_wrist",) * 4, ("hl", 2.5)),
    ("plane", ("pelvis", "left_hip", "left_foot", "right_ankle"), ("hl", 0.38)),  # foot in front
    ("plane", ("pelvis", "right_hip", "right_foot", "left_ankle"), ("hl", 0.38)),
    ("nplane", (_ORIGIN, _UP_UNIT, _LOWEST, "right_ankle"), ("hl", 1.2)),  # foot raised
    ("nplane", (_ORIGIN, _UP_UNIT, _LOWEST, "left_ankle"), ("hl", 1.2)),
    ("nplane", ("left_hip", "right_hip", "left_ankle", "right_ankle"), ("hw", 2.1)),  # feet far apart
    ("angle", ("right_knee", "right_hip", "right_knee", "right_ankle"), (0.0, 110.0)),  # knee bent
    ("angle", ("left_knee", "left_hip", "left_knee", "left_ankle"), (0.0, 110.0)),
    ("fast", ("right_ankle",) * 4, ("hl", 2.5)),  # foot fast
    ("fast", ("left_ankle",) * 4, ("hl", 2.5)),
    ("angle", ("neck", "pelvis", "right_shoulder", "right_elbow"), (25.0, 180.0)),  # arm raised sideways
    ("angle", ("neck", "pelvis", "left_shoulder", "left_elbow"), (25.0, 180.0)),
    ("angle", ("neck", "pelvis", "right_hip", "right_knee"), (50.0, 180.0)),  # leg raised
    ("angle", ("neck", "pelvis", "left_hip", "left_knee"), (50.0, 180.0)),
    ("plane", ("right_ankle", "neck", "left_ankle", "pelvis"), ("hl", 0.5)),  # root behind the feet
    ("angle", ("neck", "pelvis", _ORIGIN, _UP_UNIT), (70.0, 110.0)),  # torso horizontal
    ("nplane", (_ORIGIN, _DOWN_UNIT, _LOWEST, "right_wrist"), ("hl", -1.2)),  # hand low
    ("nplane", (_ORIGIN, _DOWN_UNIT, _LOWEST, "left_wrist"), ("hl", -1.2)),
    ("fast", ("pelvis",) * 4, ("hl", 2.3)),  # root fast
)


@lru_cache(maxsize=1)
def body_measures() -> dict:
    """Müller's body measures from the skeleton's rest pose, metres: humerus length, shoulder and hip width."""
    rest = sk.rest_joint_positions()
    j = sk.JOINT_INDEX

    def dist(a, b):
        return float(np.linalg.norm(rest[j[a]] - rest[j[b]]))

    return {"hl": dist("left_shoulder", "left_elbow"), "sw": dist("left_shoulder", "right_shoulder"),
            "hw": dist("left_hip", "right_hip")}


def _points(joints: np.ndarray, name: str) -> np.ndarray:
    """(T, 3) positions of a joint or special point."""
    t = len(joints)
    if name == _ORIGIN:
        return np.zeros((t, 3))
    if name in (_UP_UNIT, _DOWN_UNIT):
        out = np.zeros((t, 3))
        out[:, UP] = 1.0 if name == _UP_UNIT else -1.0
        return out
    if name == _LOWEST:
        out = np.zeros((t, 3))
        out[:, UP] = joints[..., UP].min(axis=1)
        return out
    return joints[:, sk.JOINT_INDEX[name]]


def _along(vectors: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Signed length of each row of ``vectors`` along the matching row of ``direction`` (NaN if degenerate)."""
    norm = np.linalg.norm(direction, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (vectors * direction).sum(-1) / norm


def geometric_features(joints, fps: float) -> np.ndarray:
    """Geometric features, Müller et al. 2005 as used by AIST++ (Li et al. 2021): (32,) fractions of frames.

    Each entry is the fraction of frames 1..T-1 on which a boolean relation of
    :data:`GEOMETRIC_FEATURES` holds; velocities are backward differences in
    m/s at the true frame rate (the AIST++ code assumes 120 fps) and thresholds
    scale with :func:`body_measures` of our skeleton (AIST++ hard-codes them).
    """
    joints = check_joints(joints)
    cur, prev = joints[1:], joints[:-1]
    measures = body_measures()
    out = np.zeros(len(GEOMETRIC_FEATURES))
    for i, (kind, names, threshold) in enumerate(GEOMETRIC_FEATURES):
        a, b, c, p = (_points(cur, n) for n in names)
        if kind != "angle":
            limit = measures[threshold[0]] * threshold[1]
        if kind == "plane":
            value = _along(p - a, np.cross(c - a, b - a))
        elif kind == "nplane":
            value = _along(p - c, b - a)
        elif kind == "move":
            rel = (p - c) - (_points(prev, names[3]) - _points(prev, names[2]))
            value = _along(rel * fps, b - a)
        elif kind == "nmove":
            rel = (p - a) - (_points(prev, names[3]) - _points(prev, names[0]))
            value = _along(rel * fps, np.cross(c - a, b - a))
        elif kind == "fast":
            value = np.linalg.norm(p - _points(prev, names[3]), axis=-1) * fps
        else:  # angle
            u, v = b - a, p - c
            with np.errstate(invalid="ignore", divide="ignore"):
                cos = (u * v).sum(-1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1))
            angle = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
            out[i] = np.mean((angle > threshold[0]) & (angle < threshold[1]))
            continue
        out[i] = np.mean(value > limit)
    return out


# ----------------------------------------------------------------------------- set statistics


def normalise(features, reference):
    """Standardise both sets by the reference's per-dimension mean and std (Bailando's ``normalize``).

    Dimensions the reference never varies in (std < :data:`MIN_STD`) are only
    centred, where Bailando would divide by 1e-10.
    """
    features, reference = np.asarray(features, np.float64), np.asarray(reference, np.float64)
    mean, std = reference.mean(axis=0), reference.std(axis=0)
    std = np.where(std < MIN_STD, 1.0, std)
    return (features - mean) / std, (reference - mean) / std


def frechet_distance(a, b) -> float:
    """Fréchet distance between Gaussians fitted to two (N, D) feature sets (Heusel et al. 2017, FID).

    ``|mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a^1/2 S_b S_a^1/2)^1/2)``,
    with the trace of the square root taken from symmetric eigenvalues, which
    stays real and exact for the singular covariances of small sets.
    NaN when a set has fewer than two rows.
    """
    a, b = np.atleast_2d(np.asarray(a, np.float64)), np.atleast_2d(np.asarray(b, np.float64))
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    cov_a, cov_b = np.atleast_2d(cov_a), np.atleast_2d(cov_b)
    w, v = np.linalg.eigh(cov_a)
    root_a = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
    cross = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    diff = a.mean(axis=0) - b.mean(axis=0)
    value = diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2 * np.sqrt(np.clip(cross, 0.0, None)).sum()
    return float(max(value, 0.0))


def diversity(features) -> float:
    """Diversity, Li et al. 2022 (Bailando): mean Euclidean distance over all pairs of (N, D) features.

    NaN when there are fewer than two rows.
    """
    features = np.atleast_2d(np.asarray(features, np.float64))
    if len(features) < 2:
        return float("nan")
    return float(pdist(features).mean())


EXTREMITY_JOINTS = ("left_collar", "right_collar", "left_wrist", "right_wrist")
"""Joints whose motion :func:`rotation_range` reports (the first model kept them still)."""


def rotation_range(smpl_poses, joints=EXTREMITY_JOINTS, percentile: float = 95.0) -> dict:
    """How far each joint's local rotation moves over a dance: {joint: degrees}.

    The ``percentile`` of the angle between each frame's rotation and the dance's mean
    rotation (the normalised mean of sign-aligned quaternions); 0 for a joint that never moves.
    """
    poses = np.asarray(smpl_poses, np.float64).reshape(len(smpl_poses), sk.NUM_JOINTS, 3)
    out = {}
    for name in joints:
        q = sk.axis_angle_to_quat(poses[:, sk.JOINT_INDEX[name]])  # (N, 4) w first
        q = q * np.where(q[:, :1] < 0, -1.0, 1.0)
        mean = q.mean(0)
        mean /= max(np.linalg.norm(mean), 1e-12)
        cos = np.clip(np.abs(q @ mean), 0.0, 1.0)
        out[name] = float(np.percentile(np.degrees(2.0 * np.arccos(cos)), percentile))
    return out
