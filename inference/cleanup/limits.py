"""What no dancer can do, and how the engine keeps the network's output from doing it.

The network learned from retargeted capture, faults included, and now and then
it reproduces them (the README gives what was measured):

* **Head turn.** Some training dances' head markers drift round the head, so the
  network turns heads backwards at times. :func:`limit_head_turn` folds every
  turn into a neck's range; the retarget folds the training data the same way.
* **Spin.** Now and then the network turns the whole body faster than any dancer.
  :func:`limit_spin` spreads such a turn over as many frames as it needs at
  :data:`MAX_SPIN_SPEED`.

:func:`keep_within_limits` applies both to a generated dance. Pinned joints keep
their values; a head turn is also left as it is near a pinned neck or head (the
motion there eases into the pin), but a spin is spread right up to a pinned
root orientation, since easing into a pin facing elsewhere can itself whip the
body round within a frame or two.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from .. import skeleton as sk
from ..sampling.constraints import clear_of_pins

MAX_SPIN_SPEED = math.radians(1600.0)
"""Fastest turn of the whole body (radians per second): 53 degrees a frame at 30 fps, the fastest
turn in the captured ballroom dances (a rumba spin), so no turn a dancer there made is touched."""
MAX_SPIN_SPREAD_SECONDS = 0.5
"""Longest stretch over which one too-fast turn is spread; a turn needing more is spread over this."""

_NECK = sk.JOINT_INDEX["neck"]
_HEAD = (_NECK, sk.JOINT_INDEX["head"])  # pinning either keeps the head turn near the pin as it is


def limit_head_turn(neck_rotations, weight=None):
    """(..., 3, 3) local neck rotations with the head's turn folded into the range a neck can turn.

    The turn is the twist about :data:`~inference.skeleton.HEAD_TURN_AXIS`: angle ``a``
    (radians, -pi..pi) becomes ``sin(a)``. Small turns stay nearly as they are (30 degrees
    becomes 28.6, 45 becomes 40.5); none exceeds 1 radian (57 degrees, at 90), and a turn
    towards 180 degrees — the head facing backwards — folds back to face forwards. The fold is
    smooth all round the circle, so a turn that winds through 180 degrees does not jump. The
    tilt (the rest of the rotation) is kept: the direction from the neck to the top of the head
    does not change. ``weight`` (broadcast against the leading dims, 0..1) blends from the
    rotation as it was (0) to the folded one (1).
    """
    m = np.asarray(neck_rotations, np.float64)
    q = sk.matrix_to_quat(m)
    angle = 2.0 * np.arctan2(q[..., 1:] @ sk.HEAD_TURN_AXIS, q[..., 0])  # the twist (q and -q agree)
    angle = (angle + np.pi) % (2.0 * np.pi) - np.pi
    target = np.sin(angle)
    if weight is not None:
        target = angle + np.asarray(weight, np.float64) * (target - angle)
    # R = swing @ twist(angle); the new twist is twist(angle) @ twist(target - angle).
    return m @ sk.axis_angle_to_matrix(sk.HEAD_TURN_AXIS * (target - angle)[..., None])


def _spans(too_fast: np.ndarray, steps: np.ndarray, limit: float, longest: int) -> list[tuple[int, int]]:
    """Frame spans [a, b] around each run of too-fast steps, widened until their steps average
    at most ``limit`` (or ``longest`` frames are reached); overlapping spans merge."""
    n = len(steps) + 1
    spans = []
    t = 0
    while t < len(steps):
        if not too_fast[t]:
            t += 1
            continue
        a, b = t, t + 1
        while b < len(steps) and too_fast[b]:
            b += 1
        while steps[a:b].sum() > limit * (b - a) and b - a < longest and (a > 0 or b < n - 1):
            a, b = max(0, a - 1), min(n - 1, b + 1)
        if spans and a <= spans[-1][1]:
            a = spans.pop()[0]
        spans.append((a, b))
        t = b
    return spans


def limit_spin(root_rotations, fps: float, movable=None) -> np.ndarray:
    """(N, 3, 3) root orientations with every turn faster than :data:`MAX_SPIN_SPEED` spread out.

    Around each run of too-fast frames the orientation is replaced, over the shortest stretch
    whose turns average at most the limit (at most :data:`MAX_SPIN_SPREAD_SECONDS`), by an even
    turn from the stretch's first orientation to its last; frames outside keep theirs exactly.
    ``movable`` (N,) bool: a stretch that would change a frame that is not movable is left as it
    is (its first and last frames never change, so a pinned frame may end one).
    """
    r = np.asarray(root_rotations, np.float64)
    out = r.copy()
    if len(r) < 3:
        return out
    limit = MAX_SPIN_SPEED / fps
    steps = np.linalg.norm(sk.matrix_to_axis_angle(r[1:] @ np.swapaxes(r[:-1], -1, -2)), axis=-1)
    longest = max(2, int(round(MAX_SPIN_SPREAD_SECONDS * fps)))
    q = sk.matrix_to_quat(r)
    for a, b in _spans(steps > limit, steps, limit, longest):
        if movable is not None and not np.all(movable[a + 1:b]):
            continue
        u = (np.arange(a + 1, b) - a) / (b - a)
        out[a + 1:b] = sk.quat_to_matrix(sk.quat_slerp(np.broadcast_to(q[a], (len(u), 4)),
                                                       np.broadcast_to(q[b], (len(u), 4)), u))
    return out


def keep_within_limits(smpl_poses: np.ndarray, fps: float, pose_mask: Optional[np.ndarray] = None) -> np.ndarray:
    """(N, 72) poses with head turns folded and too-fast spins spread; pinned joints as they were,
    and the head within :data:`~inference.sampling.constraints.PIN_CLEARANCE_SECONDS` of its pins."""
    poses = np.array(smpl_poses, copy=True)
    n = len(poses)
    p = poses.reshape(n, sk.NUM_JOINTS, 3)
    head_clear = clear_of_pins(pose_mask, n, fps, _HEAD)
    free = np.flatnonzero(head_clear > 0.0)  # the rest keep their values bit for bit
    neck = sk.axis_angle_to_matrix(p[free, _NECK].astype(np.float64))
    p[free, _NECK] = sk.matrix_to_axis_angle(limit_head_turn(neck, head_clear[free]))
    root = sk.axis_angle_to_matrix(p[:, 0].astype(np.float64))
    spun = limit_spin(root, fps, movable=None if pose_mask is None else ~np.asarray(pose_mask)[:, 0])
    changed = np.flatnonzero((spun != root).any(axis=(1, 2)))
    p[changed, 0] = sk.matrix_to_axis_angle(spun[changed])
    return poses
