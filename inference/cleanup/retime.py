"""Beat snap: move the dance's accents onto the music's beats by a gentle retiming.

A dance's accents are its kinematic beats — the moments where the body's
overall speed dips (Li et al. 2021; :func:`inference.analysis.kinematic_beats`).
The network puts them near the music's beats but, at this model size, rarely
on them. Beat snap fixes the timing without changing a single pose:

* every music beat with a kinematic beat at most :data:`SNAP_SECONDS` away
  becomes an anchor — at the music beat's frame the dancer shows the pose of
  the kinematic beat;
* between anchors, the map from output frame to source time is a cubic
  Hermite curve with slope 1 at every anchor, so the motion plays at its own
  speed at each accent and speeds up or slows down smoothly in between, never
  outside :data:`SPEED_RANGE`;
* anchors that would need a harder change of speed are skipped — of the beats
  that can be kept together, the set that puts the most accents on beats
  (:func:`_choose_anchors`) — and every pinned frame is an anchor to itself:
  pins stay on their frames, and a stretch that is pinned throughout is left
  exactly as it was; so are the frames within
  :data:`~inference.sampling.constraints.PIN_CLEARANCE_SECONDS` of a pin, where the
  motion eases into it (:mod:`inference.sampling.constraints`).

The dance keeps its length and its first and last frames; its poses are
shown up to :data:`SNAP_SECONDS` earlier or later (the time offset is a smooth
blend of the anchors' offsets, never beyond them), frames in between sampled
along the motion (:func:`retime`). This is the classic
retiming of music-driven motion synthesis (e.g. Kim, Park and Shin, SIGGRAPH
2003), applied after sampling.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from scipy.interpolate import CubicHermiteSpline

from .. import analysis
from .. import skeleton as sk
from ..sampling.constraints import PIN_CLEARANCE_SECONDS, frames_to_pin

SNAP_SECONDS = 0.1
"""Farthest a kinematic beat is moved to meet a music beat (3 frames at 30 fps)."""
SPEED_RANGE = (0.8, 1.25)
"""Slowest and fastest average playback speed allowed between two anchors."""


def beat_time_map(joints: np.ndarray, beats: np.ndarray, fps: float,
                  fixed: Optional[np.ndarray] = None) -> np.ndarray:
    """Source frame (float) shown at each of the N output frames; identity where nothing is snapped.

    Args:
        joints: (N, 24, 3) joint positions of the dance as sampled.
        beats: frame indices of the music's beats.
        fps: frame rate of both.
        fixed: optional (N,) bool, frames that must show their own pose (pins).
    """
    n = len(joints)
    identity = np.arange(n, dtype=np.float64)
    if n < 3:
        return identity
    accents = analysis.kinematic_beats(joints, fps)
    fixed = np.zeros(n, bool) if fixed is None else np.asarray(fixed, bool)
    reach = SNAP_SECONDS * fps + 1e-9
    beats = np.unique(np.asarray(beats, int))
    nearest = {int(m): float(accents[np.abs(accents - m).argmin()]) for m in beats} if len(accents) else {}
    near_pin = frames_to_pin(fixed) <= PIN_CLEARANCE_SECONDS * fps

    # Candidate anchors (output frame, source frame, required), in output order. Pinned
    # frames and those near them keep their own time.
    candidates = [(float(f), float(f), True) for f in np.flatnonzero(near_pin)]
    candidates += [(0.0, 0.0, True), (n - 1.0, n - 1.0, True)]
    for m, k in nearest.items():
        if 0 < m < n - 1 and not near_pin[m] and 0 < abs(k - m) <= reach:
            candidates.append((float(m), k, False))
    anchors = _choose_anchors(sorted(set(candidates)), nearest, reach)
    if all(dst == src for dst, src, _ in anchors):
        return identity
    dst, src = (np.array([a[i] for a in anchors]) for i in (0, 1))
    out = CubicHermiteSpline(dst, src, np.ones(len(dst)))(identity)
    out[dst.astype(int)] = src  # anchors exactly, pins included
    return np.clip(out, 0.0, n - 1.0)


_SKIP = 8
"""Most consecutive beats one link of a chain of anchors may pass over (:func:`_choose_anchors`)."""


def _choose_anchors(candidates: list, nearest: dict, reach: float) -> list:
    """The required candidates and the set of beat anchors that puts the most accents on beats.

    ``candidates``: (output frame, source frame, required), sorted; the first and last are
    required; ``nearest``: each music beat's nearest accent (frames). Consecutive anchors must
    fit: the motion between them plays at an average speed within :data:`SPEED_RANGE`. Between
    two required anchors every chain of fitting beat anchors is scored by the beats it hits: its
    anchors, plus the beats in between whose nearest accent the (roughly linear) map between two
    anchors brings within a frame of them; ties go to the chain that brings the other accents
    closer. (Taking beats greedily, an early beat whose
    accent is late can shut out every later one whose accent is early.)
    """
    slow, fast = SPEED_RANGE
    order = np.array(sorted(nearest))

    def fits(a, b) -> bool:
        if b[0] <= a[0]:
            return False
        speed = (b[1] - a[1]) / (b[0] - a[0])
        return slow - 1e-12 <= speed <= fast + 1e-12

    def between(a, b) -> tuple[int, float]:
        """Beats strictly between anchors a and b that land on their accent, and how far the rest miss."""
        hits, miss = 0, 0.0
        for m in order[np.searchsorted(order, a[0], "right"):np.searchsorted(order, b[0], "left")]:
            k = nearest[int(m)]
            if not a[1] <= k <= b[1]:
                continue
            shown = a[0] + (k - a[1]) * (b[0] - a[0]) / (b[1] - a[1])  # where accent k is shown
            off = abs(shown - m)
            hits += off <= 1.0
            miss += min(off, reach)
        return hits, miss

    required = [i for i, c in enumerate(candidates) if c[2]]
    anchors = [candidates[required[0]]]
    for lo, hi in zip(required, required[1:]):
        chain = candidates[lo:hi + 1]
        if len(chain) == 2:
            anchors.append(chain[1])
            continue
        # best[i]: (beats hit, -distance missed) of the best chain from chain[0] to chain[i].
        best: list = [(0, 0.0)] + [None] * (len(chain) - 1)
        before = [-1] * len(chain)
        for i in range(1, len(chain)):
            # A chain skips at most _SKIP beats in a row (longer skips are never needed: anchors
            # two beats apart already fit); if none of those fits, any earlier one may.
            for js in (range(max(0, i - _SKIP - 1), i), range(max(0, i - _SKIP - 1))):
                for j in js:
                    if best[j] is None or not fits(chain[j], chain[i]):
                        continue
                    hits, miss = between(chain[j], chain[i])
                    score = (best[j][0] + hits + (not chain[i][2]), best[j][1] - miss)
                    if best[i] is None or score > best[i]:
                        best[i], before[i] = score, j
                if best[i] is not None:
                    break
        path, i = [], len(chain) - 1
        while i > 0:  # the last anchor is reachable: from the first, at the motion's own speed
            path.append(chain[i])
            i = before[i]
        anchors.extend(reversed(path))
    return anchors


def _catmull_rom(values: np.ndarray, i0: np.ndarray, frac: np.ndarray) -> np.ndarray:
    """Catmull-Rom spline through the frames of ``values`` (N, ...) at ``i0 + frac``.

    Unlike linear interpolation it keeps the motion's frame-to-frame detail
    (a linear blend halfway between two frames averages them, a low-pass).
    """
    n = len(values)
    p0, p1 = values[np.maximum(i0 - 1, 0)], values[i0]
    p2, p3 = values[np.minimum(i0 + 1, n - 1)], values[np.minimum(i0 + 2, n - 1)]
    f = frac.reshape((-1,) + (1,) * (values.ndim - 1))
    return p1 + 0.5 * f * ((p2 - p0) + f * ((2 * p0 - 5 * p1 + 4 * p2 - p3) + f * (3 * (p1 - p2) + p3 - p0)))


def retime(smpl_poses: np.ndarray, smpl_trans: np.ndarray, source: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Show ``source[i]`` (a float source frame) at output frame ``i``.

    Root positions and rotations (as sign-continuous unit quaternions) follow a
    Catmull-Rom spline through the frames; frames whose source is a whole frame
    are copied from it bit for bit. Returns poses (N, 72) and root positions (N, 3)
    as float32.
    """
    source = np.asarray(source, np.float64)
    n = len(smpl_poses)
    i0 = np.clip(np.floor(source).astype(int), 0, n - 1)
    frac = source - i0
    q = sk.quat_continuous(sk.axis_angle_to_quat(np.asarray(smpl_poses, np.float64).reshape(n, sk.NUM_JOINTS, 3)))
    poses = sk.quat_to_axis_angle(sk.quat_normalize(_catmull_rom(q, i0, frac))).reshape(n, -1)
    trans = _catmull_rom(np.asarray(smpl_trans, np.float64), i0, frac)
    whole = frac == 0
    poses[whole], trans[whole] = smpl_poses[i0[whole]], smpl_trans[i0[whole]]
    return poses.astype(np.float32), trans.astype(np.float32)
