"""Foot lock: a foot the dance plants stays where it was planted.

A diffusion model's feet creep: where a captured dancer's foot on the floor stands
still, the network's drifts slowly (the README and the model card give the
measured figures). Foot lock is the classic clean-up of captured and synthesised motion (e.g. Kovar, Schreiner and Gleicher, "Footskate cleanup
for motion capture editing", SCA 2002), applied after sampling:

* a **plant** is a stretch of at least :data:`MIN_PLANT_SECONDS` in which a
  foot is on the floor (its lower joint within :data:`PLANT_HEIGHT` of the
  dance's floor) and slower than :data:`PLANT_SPEED` (its slower joint; the
  speed above which :func:`inference.evaluation.metrics.foot_skating` calls a planted foot
  sliding); breaks of up to :data:`GAP_SECONDS` are bridged;
* during a plant the joint the foot rests on (ankle or toe, whichever travels
  less) is held at its mean position over the plant, moved sideways only and
  by at most :data:`MAX_SHIFT`; between plants the move changes from one
  plant's to the next's in step with the foot's own travel, so a step grows or
  shrinks a little rather than the foot jumping;
* the leg reaches the moved foot by two-bone inverse kinematics (hip and knee),
  and the ankle turns back so that the foot keeps its orientation in the world.
  Near full extension the IK is soft (:data:`SOFT_REACH`), and between plants
  the leg's reach is smoothed over time, so a knee never snaps straight or
  flicks. Root, spine, arms and head are untouched.

A leg whose hip, knee or ankle is pinned is left alone on the pinned frames and
within :data:`~inference.sampling.constraints.PIN_CLEARANCE_SECONDS` of them, the lock
fading in over :data:`~inference.sampling.constraints.PIN_EASE_SECONDS` beyond, so pins
and the motion eased into them stay exactly as they were.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np
from scipy.ndimage import find_objects, gaussian_filter1d, label

from .. import analysis
from .. import skeleton as sk
from ..sampling.constraints import clear_of_pins

PLANT_HEIGHT = analysis.SKATE_HEIGHT
"""A foot whose lower joint is within this many metres of the floor can be planted."""
PLANT_SPEED = analysis.SKATE_SPEED
"""m/s: a foot on the floor whose slower joint moves slower than this is planted."""
MIN_PLANT_SECONDS = 0.1
"""Shorter plants are passing touches, left as they are."""
GAP_SECONDS = 0.1
"""A plant interrupted for at most this long is one plant."""
BLEND_SPEED_FLOOR = 0.05
"""m/s added to the foot's speed when spreading a lock's correction over the step between two plants."""
MAX_SHIFT = 0.08
"""Farthest a foot is moved (metres): a plant that drifts further is held only partly."""
SOFT_REACH = 0.97
"""Fraction of a leg's length beyond which the IK straightens the knee ever more slowly (soft IK)."""
REACH_SMOOTHING_SECONDS = 1.0 / 30.0
"""Between plants, the lock's change to a leg's reach is smoothed over time with a Gaussian of this width (sigma)."""

LEGS = (
    tuple(sk.JOINT_INDEX[n] for n in ("left_hip", "left_knee", "left_ankle")),
    tuple(sk.JOINT_INDEX[n] for n in ("right_hip", "right_knee", "right_ankle")),
)
"""Each leg's IK chain, in :data:`inference.analysis.FEET` order (left, right)."""
_REACH_MARGIN = 1e-4
"""Metres kept from a fully straight or fully folded knee."""


def plants(joints: np.ndarray, fps: float, foot: int, floor: Optional[float] = None) -> list[slice]:
    """The plants of one foot (0 left, 1 right): frame ranges in which it stands still on the floor."""
    ankle_toe = list(analysis.FEET[foot])
    floor = analysis.estimate_floor(joints) if floor is None else floor
    low = joints[:, ankle_toe, analysis.UP].min(axis=1) - floor < PLANT_HEIGHT
    speed = np.linalg.norm(np.gradient(joints[:, ankle_toe][..., analysis.HORIZONTAL], axis=0), axis=-1) * fps
    planted = low & (speed.min(axis=1) < PLANT_SPEED)
    merged: list[list[int]] = []  # [start, stop) of each run, short breaks bridged
    gap = int(round(GAP_SECONDS * fps))
    for (run,) in find_objects(label(planted)[0]):
        if merged and run.start - merged[-1][1] <= gap:
            merged[-1][1] = run.stop
        else:
            merged.append([run.start, run.stop])
    shortest = max(1, int(round(MIN_PLANT_SECONDS * fps)))
    return [slice(a, b) for a, b in merged if b - a >= shortest]


def foot_shifts(joints: np.ndarray, fps: float, foot: int,
                floor: Optional[float] = None) -> tuple[np.ndarray, np.ndarray]:
    """Sideways move (N, 3) of one foot that holds each plant still, blended in between (from 0 at the
    ends), and the (N,) mask of the plants' frames."""
    n = len(joints)
    ankle_toe = list(analysis.FEET[foot])
    shift = np.zeros((n, 3))
    planted = np.zeros(n, bool)
    held = []
    for p in plants(joints, fps, foot, floor):
        planted[p] = True
        points = joints[p][:, ankle_toe][..., analysis.HORIZONTAL]  # (L, 2 joints, 2)
        path = np.linalg.norm(np.diff(points, axis=0), axis=-1).sum(axis=0)
        anchor = points[:, int(path.argmin())]  # the joint the foot rests on
        move = anchor.mean(axis=0) - anchor
        size = np.linalg.norm(move, axis=-1, keepdims=True)
        move *= np.minimum(1.0, MAX_SHIFT / np.maximum(size, 1e-12))
        shift[p, :2] = move
        held.append((p, move))
    # Between plants the move changes from one plant's to the next's in step with the foot's own
    # travel: the step grows or shrinks a little where the foot is moving anyway, and a foot that
    # lingers near the floor before or after a plant is not hurried.
    step = np.gradient(joints[:, ankle_toe][..., analysis.HORIZONTAL], axis=0)
    travel = np.linalg.norm(step, axis=-1).mean(axis=1)  # metres per frame
    for (a, before), (b, after) in zip([(slice(0, 0), None)] + held, held + [(slice(n, n), None)]):
        gap = np.arange(a.stop, b.start)
        if not len(gap):
            continue
        start = np.zeros(2) if before is None else before[-1]
        end = np.zeros(2) if after is None else after[0]
        weight = travel[gap] * fps + BLEND_SPEED_FLOOR
        share = weight / weight.sum()  # of the change, per frame
        progress = (np.cumsum(share) - 0.5 * share)[:, None]
        shift[gap, :2] = (1.0 - progress) * start + progress * end
    return shift, planted


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(M, 3, 3) shortest rotations turning directions ``a`` onto ``b`` (M, 3)."""
    axis = np.cross(a, b)
    sin = np.linalg.norm(axis, axis=-1)
    cos = (a * b).sum(axis=-1)
    angle = np.arctan2(sin, cos)
    axis = np.where(sin[:, None] > 1e-12, axis / np.maximum(sin, 1e-12)[:, None], 0.0)
    return sk.axis_angle_to_matrix(axis * angle[:, None])


def soft_reach(want: np.ndarray, full: np.ndarray, own: np.ndarray) -> np.ndarray:
    """Hip-to-ankle distance a leg of length ``full`` gives for a wanted one (soft IK).

    Up to :data:`SOFT_REACH` of the leg's length (or the leg's ``own``
    extension, if straighter) the wanted distance; beyond, a curve that starts
    at slope 1 and approaches a straight leg ever more slowly, so the knee cannot
    snap straight from one frame to the next.
    """
    soft = np.maximum(SOFT_REACH * full, own)
    room = np.maximum(full - _REACH_MARGIN - soft, 1e-9)
    return np.where(want > soft, soft + room * -np.expm1(-np.maximum(want - soft, 0.0) / room), want)


def leg_ik(local: np.ndarray, world_pos: np.ndarray, world_rot: np.ndarray, leg: tuple[int, int, int],
           target: np.ndarray, reach: Optional[np.ndarray] = None) -> np.ndarray:
    """New local rotations (M, 3, 3, 3) of a leg's hip, knee and ankle that put its ankle on ``target`` (M, 3).

    Two-bone IK: the knee bends or straightens in the leg's own plane to give
    the hip-to-ankle distance, then the hip swings the leg onto the target; the
    ankle's world orientation is kept. ``reach`` (M,) overrides the
    hip-to-ankle distance, by default :func:`soft_reach` of the target's: a
    target beyond it is aimed at but not reached.
    """
    hip, knee, ankle = leg
    h, k, a = world_pos[:, hip], world_pos[:, knee], world_pos[:, ankle]
    thigh, shin = k - h, a - k
    upper, lower = np.linalg.norm(thigh, axis=-1), np.linalg.norm(shin, axis=-1)
    if reach is None:
        reach = soft_reach(np.linalg.norm(target - h, axis=-1), upper + lower, np.linalg.norm(a - h, axis=-1))
    reach = np.clip(reach, np.abs(upper - lower) + _REACH_MARGIN, upper + lower - _REACH_MARGIN)
    # Interior knee angle now and needed (between knee->hip and knee->ankle).
    now = np.arccos(np.clip((-thigh * shin).sum(-1) / (upper * lower), -1.0, 1.0))
    need = np.arccos(np.clip((upper ** 2 + lower ** 2 - reach ** 2) / (2 * upper * lower), -1.0, 1.0))
    normal = np.cross(-thigh, shin)
    size = np.linalg.norm(normal, axis=-1)
    # A straight leg has no plane: bend it about the knee's own hinge (SMPL's local x).
    hinge = world_rot[:, knee][..., 0]
    axis = np.where(size[:, None] > 1e-9, normal / np.maximum(size, 1e-12)[:, None], -hinge)
    bend = sk.axis_angle_to_matrix(axis * (need - now)[:, None])
    ankle_bent = k + (bend @ shin[..., None])[..., 0]
    swing = _rotation_between(ankle_bent - h, target - h)
    hip_world = swing @ world_rot[:, hip]
    knee_world = swing @ bend @ world_rot[:, knee]
    parent = world_rot[:, sk.PARENTS[hip]]
    out = np.empty((len(target), 3, 3, 3))
    out[:, 0] = np.swapaxes(parent, -1, -2) @ hip_world
    out[:, 1] = np.swapaxes(hip_world, -1, -2) @ knee_world
    out[:, 2] = np.swapaxes(knee_world, -1, -2) @ world_rot[:, ankle]
    return out


LegTargets = Callable[[np.ndarray, float, int, tuple[int, int, int], np.ndarray],
                      Optional[tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]]]
"""``targets(joints, floor, foot, leg, free)`` of :func:`resolve_legs`: for one leg, given the dance's (N, 24, 3)
joints, its floor height and ``free`` (N,) (how clear each frame is of that leg's pins, 0 to 1), the frames
to re-solve, the ankle's targets there (M, 3) and the hip-to-ankle reach (M,) or None (:func:`soft_reach`);
None when the leg needs no change."""


def resolve_legs(smpl_poses: np.ndarray, smpl_trans: np.ndarray, fps: float, pose_mask: Optional[np.ndarray],
                 targets: LegTargets) -> np.ndarray:
    """Poses (N, 72) with each leg re-solved by :func:`leg_ik` where ``targets`` asks; every other value (and a
    dance shorter than 3 frames) kept exactly. The one frame of the leg clean-ups (foot lock, the floor pass)."""
    poses = np.array(smpl_poses, np.float64, copy=True)
    n = len(poses)
    if n < 3:
        return poses.astype(np.asarray(smpl_poses).dtype)
    local = sk.axis_angle_to_matrix(poses.reshape(n, sk.NUM_JOINTS, 3))
    world_pos, world_rot = sk.forward_kinematics(local, np.asarray(smpl_trans, np.float64))
    floor = analysis.estimate_floor(world_pos)
    out = poses.reshape(n, sk.NUM_JOINTS, 3)
    for foot, leg in enumerate(LEGS):
        solve = targets(world_pos, floor, foot, leg, clear_of_pins(pose_mask, n, fps, leg))
        if solve is None:
            continue
        moved, target, reach = solve
        rot = leg_ik(local[moved], world_pos[moved], world_rot[moved], leg, target, reach)
        out[moved[:, None], list(leg)] = sk.matrix_to_axis_angle(rot)
    return poses.astype(np.asarray(smpl_poses).dtype)


def lock_feet(smpl_poses: np.ndarray, smpl_trans: np.ndarray, fps: float,
              pose_mask: Optional[np.ndarray] = None) -> np.ndarray:
    """Poses (N, 72) with every plant held still; frames and legs with nothing to lock keep their values exactly.

    Args:
        smpl_poses, smpl_trans: the dance, (N, 72) axis-angle and (N, 3) metres.
        fps: its frame rate.
        pose_mask: optional (N, 24) pinned joints (:class:`inference.sampling.constraints.Constraints`).
    """
    def hold_plants(joints, floor, foot, leg, free):
        shift, planted = foot_shifts(joints, fps, foot, floor)
        shift *= free[:, None]
        moved = np.flatnonzero(np.abs(shift).max(axis=1) > 0)
        if not len(moved):
            return None
        hip, knee, ankle = (joints[:, j] for j in leg)
        full = np.linalg.norm(knee - hip, axis=-1) + np.linalg.norm(ankle - knee, axis=-1)
        own = np.linalg.norm(ankle - hip, axis=-1)
        change = soft_reach(np.linalg.norm(ankle + shift - hip, axis=-1), full, own) - own
        # Between plants the foot is stepping: the change in how far the leg reaches is smoothed
        # there, so a target that swings away and back within a frame or two does not flick the knee.
        stepping = ~planted
        change[stepping] = gaussian_filter1d(change, REACH_SMOOTHING_SECONDS * fps, mode="nearest")[stepping]
        reach = own + change
        return moved, ankle[moved] + shift[moved], reach[moved]

    return resolve_legs(smpl_poses, smpl_trans, fps, pose_mask, hold_plants)
