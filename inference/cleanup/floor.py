"""Feet above the floor: no ankle or toe joint sinks through the dance's floor.

The network sometimes puts a foot a few centimetres under the floor the rest of
its dance stands on. After foot lock, every frame where a foot's lower joint
(ankle or toe base) is below the dance's floor
(:func:`inference.analysis.estimate_floor`) has that leg re-solved by the same
two-bone IK as foot lock (:func:`inference.cleanup.footlock.leg_ik`): the ankle
rises until the lower joint is on the floor, the foot keeping its orientation in
the world. The lift is spread over :data:`EASE_SECONDS` before and after, so the
leg eases up and down instead of jumping. Root, spine, arms and the other leg are
untouched; a pinned leg is left alone on its pinned frames and near them.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from scipy.ndimage import gaussian_filter1d, maximum_filter1d

from .. import analysis
from .footlock import resolve_legs

EASE_SECONDS = 0.1
"""The lift of a sinking foot fades in and out over about this long."""
MIN_LIFT = 1e-4
"""Metres: smaller lifts (the fade's far tails) are left out, so those frames keep their values exactly."""


def floor_lift(joints: np.ndarray, fps: float, foot: int, floor: float) -> np.ndarray:
    """(N,) how far (metres) one foot's ankle must rise so that its lower joint is never below ``floor``.

    At least the depth on every frame; eased in and out around each sinking stretch.
    """
    depth = np.maximum(0.0, floor - joints[:, list(analysis.FEET[foot]), analysis.UP].min(axis=1))
    if not depth.any():
        return depth
    width = max(1, int(round(EASE_SECONDS * fps)))
    held = maximum_filter1d(depth, size=2 * width + 1, mode="nearest")  # covers the depth before smoothing
    lift = np.maximum(depth, gaussian_filter1d(held, width / 2.0, mode="nearest"))
    return np.where(lift > MIN_LIFT, lift, 0.0)


def keep_feet_above_floor(smpl_poses: np.ndarray, smpl_trans: np.ndarray, fps: float,
                          pose_mask: Optional[np.ndarray] = None) -> np.ndarray:
    """Poses (N, 72) with no foot joint below the dance's floor; frames and legs that need no lift keep their
    values exactly.

    Args:
        smpl_poses, smpl_trans: the dance, (N, 72) axis-angle and (N, 3) metres.
        fps: its frame rate.
        pose_mask: optional (N, 24) pinned joints (:class:`inference.sampling.constraints.Constraints`).
    """
    def lift_sinking(joints, floor, foot, leg, free):
        lift = floor_lift(joints, fps, foot, floor) * free
        moved = np.flatnonzero(lift > 0)
        if not len(moved):
            return None
        return moved, joints[moved, leg[2]] + lift[moved, None] * np.eye(3)[analysis.UP], None

    return resolve_legs(smpl_poses, smpl_trans, fps, pose_mask, lift_sinking)
