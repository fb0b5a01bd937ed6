"""Planted feet on the character's own proportions: held still, never below the floor.

A character's legs are not SMPL's, so a transferred dance slides and sinks where
SMPL's feet stand. Where the dance plants a foot (its ``contacts``: the heel or
the ball still on the floor), the foot is held at its mean position over the
plant — the joint it rests on, heel (ankle) or ball (toe) — and between plants
the correction changes smoothly from one plant's to the next's, so a step grows
or shrinks a little instead of a foot jumping. On every frame the foot is lifted
where it would go below the floor. Hip and knee reach the moved ankle by
two-bone IK in the leg's own bend plane; the foot keeps its orientation. Legs
pinned on a frame (``hold`` 0) keep the transferred pose there.

NumPy only: Blender's own process runs it.
"""

from __future__ import annotations

import numpy as np

from .. import skeleton as sk
from .character import LEGS, Retarget
from .rotations import normalize, swing

SOFT_REACH = 0.999
"""A leg stretches to at most this share of its length (a straight knee has no bend plane)."""
MIN_PLANT_FRAMES = 2


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[first, last] of every run of True in (F,) ``mask``."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1))


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _bridge(offsets: np.ndarray, known: np.ndarray) -> np.ndarray:
    """(F, 3) ``offsets`` given on ``known`` frames, eased across the gaps between them (held at the ends)."""
    out = offsets.copy()
    runs = _runs(known)
    if not runs:
        return np.zeros_like(offsets)
    out[:runs[0][0]] = offsets[runs[0][0]]
    out[runs[-1][1] + 1:] = offsets[runs[-1][1]]
    for (_, a), (b, _) in zip(runs[:-1], runs[1:]):
        if b - a > 1:
            t = _smoothstep((np.arange(a + 1, b) - a) / (b - a))[:, None]
            out[a + 1:b] = (1 - t) * offsets[a] + t * offsets[b]
    return out


def _at_least(values: np.ndarray, width: int) -> np.ndarray:
    """A smooth curve never below (F,) ``values``: a running maximum, then a running mean, ``width`` frames."""
    if width <= 1 or not values.any():
        return values
    pad = np.pad(values, width, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(pad, 2 * width + 1)
    high = windows.max(axis=-1)
    padded = np.pad(high, width // 2, mode="edge")
    return np.convolve(padded, np.ones(width) / width, mode="valid")[: len(values)]


def plant_offsets(points: np.ndarray, guide: np.ndarray, contacts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(F, 3) how far to move one foot on each frame to hold its plants, and (F,) where it is planted.

    ``points``: (F, P, 3) the character's foot points (ankle head first, then the ball, then the tip);
    ``guide``: (F, 2, 3) the dance's heel and ball joints, scaled and turned into the character's world;
    ``contacts``: (F, 2) heel and ball on the floor (the dance's contacts for this foot). Over each
    stretch resting on one joint, that joint moves as the dance's does (still where it stands still)
    from where it is mid-stretch: the drift that other proportions add is taken out, nothing else.
    Between plants the offset eases from one plant's to the next's.
    """
    frames = len(points)
    heel, ball = contacts[:, 0] > 0.5, contacts[:, 1] > 0.5
    anchor_index = np.where(heel | (points.shape[1] < 2), 0, 1)
    anchor = points[np.arange(frames), anchor_index]
    guide = guide[np.arange(frames), anchor_index]
    offsets = np.zeros((frames, 3))
    planted = np.zeros(frames, bool)
    for first, last in _runs(heel | ball):
        if last - first + 1 < MIN_PLANT_FRAMES:
            continue
        part = anchor_index[first:last + 1]
        for seg in np.split(np.arange(first, last + 1), np.flatnonzero(np.diff(part)) + 1):
            mid = seg[len(seg) // 2]
            target = anchor[mid] + guide[seg] - guide[mid]
            offsets[seg] = target - anchor[seg]
        planted[first:last + 1] = True
    return _bridge(offsets, planted), planted


def floor_lift(points: np.ndarray, floor: float, frames: int) -> np.ndarray:
    """(F,) a smooth lift that keeps every one of the foot's (F, P, 3) ``points`` on or above ``floor``."""
    return _at_least(np.maximum(0.0, floor - points[..., 2].min(axis=1)), frames)


def two_bone_ik(hip, knee, ankle, target, lengths):
    """New knee positions (F, 3) putting the ankle at ``target`` (F, 3), in the plane of hip, knee and target.

    ``lengths``: (thigh, shin). The target is pulled in to :data:`SOFT_REACH` of the leg's length.
    """
    upper, lower = lengths
    to_target = target - hip
    distance = np.linalg.norm(to_target, axis=-1)
    reach = np.clip(distance, abs(upper - lower) + 1e-6, SOFT_REACH * (upper + lower))
    direction = normalize(to_target)
    target = hip + direction * reach[:, None]
    bend = knee - hip
    bend = bend - (bend * direction).sum(-1, keepdims=True) * direction  # towards the knee, across the leg
    fallback = normalize((knee - hip) + (knee - ankle))
    bend = np.where((np.linalg.norm(bend, axis=-1) < 1e-9)[:, None], fallback, normalize(bend))
    along = (upper ** 2 - lower ** 2 + reach ** 2) / (2 * reach)
    across = np.sqrt(np.maximum(upper ** 2 - along ** 2, 0.0))
    return hip + direction * along[:, None] + bend * across[:, None], target


def stand_on_floor(retarget: Retarget, rotations: np.ndarray, hips: np.ndarray, contacts: np.ndarray) -> float:
    """Metres to raise the dance so that the character's planted feet stand on its floor (median over
    the frames with a foot planted; 0 when none is). Sets ``retarget.floor_shift`` and returns it."""
    heads, tails = retarget.heads(rotations, hips)
    lows = []
    for side in range(2):
        planted = (contacts[:, side] > 0.5) | (contacts[:, side + 2] > 0.5)
        low = retarget.foot_points(heads, tails, side)[..., 2].min(axis=1)
        lows.append(low[planted])
    lows = np.concatenate(lows)
    shift = float(retarget.sole - np.median(lows)) if len(lows) else 0.0
    retarget.floor_shift += shift
    return shift


def _raise_end(rotations: np.ndarray, pivot: np.ndarray, end: np.ndarray, floor: float,
               weight: np.ndarray | None = None) -> np.ndarray:
    """(F, 3, 3) a bone's world ``rotations`` turned up about ``pivot`` (F, 3) on the frames where the
    point ``end`` (F, 3) it carries is below ``floor``: just enough to put it on the floor, same heading
    (``weight`` (F,): that share of the turn, 0 where the bone must stay)."""
    vec = end - pivot
    length = np.linalg.norm(vec, axis=-1)
    below = (end[:, 2] < floor) & (pivot[:, 2] > floor - length)
    if not below.any():
        return rotations
    flat = vec.copy()
    flat[:, 2] = 0.0
    flat = normalize(flat)
    rise = np.clip((floor - pivot[:, 2]) / np.maximum(length, 1e-9), -1.0, 1.0)
    wanted = length[:, None] * (flat * np.sqrt(1 - rise ** 2)[:, None] + np.array([0.0, 0.0, 1.0]) * rise[:, None])
    turn = swing(vec[below], wanted[below])
    if weight is not None:
        turn = sk.axis_angle_to_matrix(sk.matrix_to_axis_angle(turn) * weight[below, None])
    out = rotations.copy()
    out[below] = turn @ rotations[below]
    return out


def flex_feet(retarget: Retarget, rotations: np.ndarray, hips: np.ndarray, hold=None) -> np.ndarray:
    """``rotations`` with feet and toes turned up where they would go below the floor: a foot about its
    ankle until the ball is on the floor, then the toes about the ball until the tip is. Legs unchanged;
    ``hold`` (F, 3) as for :func:`plant_feet`."""
    out = np.array(rotations, float, copy=True)
    for side, (_, _, ankle, toe) in enumerate(LEGS):
        for bone, end_bone in ((ankle, toe), (toe, None)):
            if bone not in retarget.slot:
                continue
            i = retarget.slot[bone]
            heads, tails = retarget.heads(out, hips)
            end = heads[:, retarget.slot[end_bone]] if end_bone in retarget.slot else tails[:, i]
            out[:, i] = _raise_end(out[:, i], heads[:, i], end, retarget.sole,
                                   None if hold is None else np.asarray(hold, float)[:, side])
    return out


def plant_feet(retarget: Retarget, rotations: np.ndarray, hips: np.ndarray, joints: np.ndarray,
               contacts: np.ndarray, fps: float, hold: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rotations (F, M, 3, 3) and hips (F, 3) with planted feet held and every foot above the floor.

    The part of the planted feet's correction they share moves the hips (the character travels as its
    own feet carry it, so legs of other proportions need not stretch or fold); the rest is solved by
    two-bone IK per leg. ``joints``: (F, 24, 3) the dance's joint positions; ``contacts``: (F, 4) left
    heel, right heel, left ball, right ball (the dance's, 1 or 0); ``hold``: (F, 3) per leg and for the
    hips, 1 where they may change, 0 where they must stay (pins), fading between.
    """
    out = np.array(rotations, float, copy=True)
    hold = np.ones((len(out), 3)) if hold is None else np.asarray(hold, float)
    heads, tails = retarget.heads(out, hips)
    offsets, planted = [], []
    for side, (_, _, ankle, toe) in enumerate(LEGS):
        guide = retarget.scale * joints[:, [sk.JOINT_INDEX[ankle], sk.JOINT_INDEX[toe]]] @ retarget.heading.T
        o, p = plant_offsets(retarget.foot_points(heads, tails, side), guide, contacts[:, [side, side + 2]])
        offsets.append(o * hold[:, side:side + 1])
        planted.append(p)
    weight = np.stack(planted, axis=1).astype(float)  # (F, 2)
    shared = (weight[..., None] * np.stack(offsets, axis=1)).sum(1) / np.maximum(weight.sum(1), 1)[:, None]
    shared = _bridge(shared, weight.sum(1) > 0) * hold[:, 2:3]
    hips = hips + shared
    heads, tails = retarget.heads(out, hips)
    lift_frames = max(1, int(round(0.1 * fps)))
    for side, (hip, knee, ankle, _) in enumerate(LEGS):
        i_hip, i_knee, i_ankle = retarget.slot[hip], retarget.slot[knee], retarget.slot[ankle]
        points = retarget.foot_points(heads, tails, side)
        move = _bridge(offsets[side] - shared, planted[side])  # a swinging leg goes with the hips
        move[:, 2] += floor_lift(points + move[:, None], retarget.sole, lift_frames)
        move *= hold[:, side:side + 1]
        if not np.any(np.abs(move) > 1e-9):
            continue
        h, k, a = heads[:, i_hip], heads[:, i_knee], heads[:, i_ankle]
        lengths = (np.linalg.norm(retarget.h[i_knee] - retarget.h[i_hip]),
                   np.linalg.norm(retarget.h[i_ankle] - retarget.h[i_knee]))
        new_knee, reached = two_bone_ik(h, k, a, a + move, lengths)
        out[:, i_hip] = swing(k - h, new_knee - h) @ out[:, i_hip]
        out[:, i_knee] = swing(a - k, reached - new_knee) @ out[:, i_knee]
    return out, hips
