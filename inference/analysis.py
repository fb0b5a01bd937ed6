"""Measurements of a dance shared by the clean-ups and the metrics: floor, feet, joint speed, kinematic beats.

NumPy only at import (SciPy inside :func:`kinematic_beats`): Blender's process reads contacts here. Joint positions are ``(T, 24, 3)`` in metres, z-up, in
:mod:`inference.skeleton` order; constants are in seconds or metres so that
they mean the same at any frame rate. Foot lock (:mod:`inference.cleanup.footlock`)
holds a foot still exactly where the skating metric
(:func:`inference.evaluation.metrics.foot_skating`) would call it planted, and
beat snap (:mod:`inference.cleanup.retime`) moves the very accents the beat
alignment score (:func:`inference.evaluation.metrics.beat_alignment`) measures:
one definition each, here.
"""

from __future__ import annotations

import numpy as np

from . import motion as mo
from . import skeleton as sk

UP = 2
"""Index of the vertical axis: the world is z-up."""
HORIZONTAL = [0, 1]

# The two feet, each as (ankle, toe) joint indices, in EDGE's PFC order (left, right).
FEET = (
    (sk.JOINT_INDEX["left_ankle"], sk.JOINT_INDEX["left_foot"]),
    (sk.JOINT_INDEX["right_ankle"], sk.JOINT_INDEX["right_foot"]),
)
FOOT_JOINTS = [j for foot in FEET for j in foot]

FLOOR_PERCENTILE = 5.0
"""A dance's floor is this percentile of its lowest foot joint's height over the whole dance."""
SKATE_HEIGHT = 0.05
"""A foot whose lower joint is within this many metres of the floor is in contact."""
SKATE_SPEED = 0.5
"""A foot in contact that slides faster than this (m/s, horizontal) skates: 2.5 cm/frame at 20 fps (GMD)."""

SPEED_SMOOTHING_SECONDS = 1.0 / 12.0
"""Gaussian smoothing (sigma) of mean joint speed before picking minima: Bailando's 5 frames at its 60 fps,
2.5 frames at 30 fps. Five frames at 30 fps would smooth away the quarter-second accents of real dance."""


def check_joints(joints) -> np.ndarray:
    """``joints`` as float64 (T >= 3, 24, 3); ValueError naming the shape otherwise."""
    joints = np.asarray(joints, np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (sk.NUM_JOINTS, 3) or len(joints) < 3:
        raise ValueError(f"expected (T >= 3, {sk.NUM_JOINTS}, 3) joint positions, got {joints.shape}")
    return joints


def estimate_floor(joints) -> float:
    """Floor height (metres) of a dance: a low percentile of its lowest foot joint's height."""
    joints = np.asarray(joints, np.float64)
    return float(np.percentile(joints[:, FOOT_JOINTS, UP].min(axis=1), FLOOR_PERCENTILE))


def mean_joint_speed(joints, fps: float) -> np.ndarray:
    """(T,) mean over joints of each joint's speed, m/s, by central differences."""
    joints = check_joints(joints)
    return np.linalg.norm(np.gradient(joints, axis=0), axis=-1).mean(axis=1) * fps


def kinematic_beats(joints, fps: float) -> np.ndarray:
    """Kinematic beats, Li et al. 2021 (AIST++/FACT), as in Bailando: local minima of smoothed mean joint speed.

    Returns their frame indices. Speeds use central differences so that a minimum at frame ``i``
    means time ``i / fps`` (Bailando's forward differences put it half a frame later).
    A motionless body has no beats.
    """
    from scipy.ndimage import gaussian_filter1d  # here, not at import: Blender's process reads contacts
    from scipy.signal import argrelextrema

    speed = gaussian_filter1d(mean_joint_speed(joints, fps), SPEED_SMOOTHING_SECONDS * fps, mode="reflect")
    return argrelextrema(speed, np.less)[0]


def floor_contacts(joints, fps: float, floor: float | None = None) -> np.ndarray:
    """(N, 4) contacts of a finished dance, in :data:`~inference.skeleton.CONTACT_JOINTS` order.

    A joint is in contact (1) where its foot is on the floor (the foot's lower joint within
    :data:`SKATE_HEIGHT` of it) and the joint is still by the rule that labelled the training
    data (:func:`inference.motion.foot_contacts`), else 0.
    """
    joints = np.asarray(joints, np.float64)
    floor = estimate_floor(joints) if floor is None else floor
    on_floor = np.stack([joints[:, list(foot), UP].min(axis=1) - floor < SKATE_HEIGHT for foot in FEET], axis=1)
    side = [next(f for f, foot in enumerate(FEET) if j in foot) for j in sk.CONTACT_INDICES]
    return (mo.foot_contacts(joints, fps) * on_floor[:, side]).astype(np.float32)
