"""The editing quality bar, measured: pins met, no visible seams, the music still followed.

Pure NumPy (no PyTorch, no ``bpy``), so ``bench/editing.py``, the engine tests
and the add-on tests measure with the same functions.

* :func:`pin_errors` — the largest distance between what was pinned and what
  came out: geodesic angle for rotations (bar: 1e-4 rad), metres for the root
  (bar: 0.1 mm).
* :func:`velocity_change` — per frame, the mean over joints of the change of
  joint velocity from one frame to the next, ``|x[t+1] - 2 x[t] + x[t-1]|``.
  :func:`seam_report` compares it at every border of a pinned or regenerated
  region with its 95th percentile over an unconstrained generation of the same
  music (bar: every border at or below it).
* :func:`free_beat_alignment` — Bailando's beat alignment on the frames nobody
  pinned (bar: not lower than an unconstrained generation's, within noise; see
  :func:`beat_alignment_holds`).

:func:`keep_outside` builds the pins of "regenerate frames a..b": everything
else stays as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import analysis
from .. import skeleton as sk
from ..sampling.constraints import Constraints
from . import metrics

ROTATION_TOLERANCE = 1e-4
"""Radians: a pinned rotation must come out within this geodesic angle of its target."""
ROOT_TOLERANCE = 1e-4
"""Metres (0.1 mm): a pinned root position must come out within this of its target."""
SEAM_PERCENTILE = 95.0
"""Seams are judged against this percentile of the free motion's velocity change."""
BEAT_NOISE_SIGMAS = 2.0
"""Beat alignment may fall this many standard deviations (seed to seed) below the free dances'."""


# ----------------------------------------------------------------------------- pins met


@dataclass(frozen=True)
class PinErrors:
    rotation: float
    """Largest geodesic angle (rad) between a pinned rotation and the output; 0 when none is pinned."""
    root: float
    """Largest distance (m) on a pinned root axis; 0 when none is pinned."""

    @property
    def ok(self) -> bool:
        return self.rotation <= ROTATION_TOLERANCE and self.root <= ROOT_TOLERANCE


def rotation_angle(aa_a, aa_b) -> np.ndarray:
    """Geodesic angle (rad) between two arrays of (..., 3) axis-angle rotations."""
    qa = sk.axis_angle_to_quat(np.asarray(aa_a, np.float64))
    qb = sk.axis_angle_to_quat(np.asarray(aa_b, np.float64))
    rel = sk.quat_multiply(sk.quat_conjugate(qa), qb)
    # 2 atan2(|v|, |w|) stays accurate for tiny angles, where 2 acos(|w|) does not.
    return 2.0 * np.arctan2(np.linalg.norm(rel[..., 1:], axis=-1), np.abs(rel[..., 0]))


def pin_errors(smpl_poses, smpl_trans, constraints: Constraints) -> PinErrors:
    """How far the output (N, 72), (N, 3) is from every pinned value of ``constraints`` (N frames)."""
    n = constraints.num_frames
    poses = np.asarray(smpl_poses, np.float64).reshape(-1, sk.NUM_JOINTS, 3)[:n]
    trans = np.asarray(smpl_trans, np.float64)[:n]
    targets = constraints.smpl_poses.reshape(n, sk.NUM_JOINTS, 3)
    mask = constraints.pose_mask
    rotation = float(rotation_angle(targets[mask], poses[mask]).max()) if mask.any() else 0.0
    root_mask = constraints.root_mask
    root = float(np.abs(trans[root_mask] - constraints.smpl_trans[root_mask]).max()) if root_mask.any() else 0.0
    return PinErrors(rotation=rotation, root=root)


# ----------------------------------------------------------------------------- seams


def velocity_change(joints) -> np.ndarray:
    """(T,) mean over joints of ``|x[t+1] - 2 x[t] + x[t-1]|`` (metres per frame²); NaN at both ends."""
    x = np.asarray(joints, np.float64)
    out = np.full(len(x), np.nan)
    if len(x) >= 3:
        out[1:-1] = np.linalg.norm(x[2:] - 2 * x[1:-1] + x[:-2], axis=-1).mean(axis=-1)
    return out


def region_borders(mask) -> np.ndarray:
    """Frames ``b`` where a (T,) pinned/regenerated mask changes: ``mask[b - 1] != mask[b]``."""
    m = np.asarray(mask, bool)
    return np.flatnonzero(m[1:] != m[:-1]) + 1


def pinned_frames(constraints: Constraints) -> np.ndarray:
    """(N,) True on frames where anything is pinned."""
    return constraints.pose_mask.any(axis=1) | constraints.root_mask.any(axis=1)


def constraint_borders(constraints: Constraints) -> np.ndarray:
    """Borders of every pinned stretch, joint by joint and root axis by axis (sorted, unique)."""
    columns = np.concatenate([constraints.pose_mask, constraints.root_mask], axis=1)
    found = [region_borders(columns[:, c]) for c in range(columns.shape[1]) if columns[:, c].any()]
    return np.unique(np.concatenate(found)) if found else np.zeros(0, int)


def border_value(change: np.ndarray, border: int) -> float:
    """The velocity change across the step from frame ``border - 1`` to ``border``.

    Two second differences contain that step, centred on ``border - 1`` and on
    ``border``; the larger counts. Outside the dance they are ignored.
    """
    values = [change[f] for f in (border - 1, border) if 0 <= f < len(change) and np.isfinite(change[f])]
    return float(max(values)) if values else 0.0


@dataclass(frozen=True)
class SeamReport:
    threshold: float
    """The free generation's 95th percentile of velocity change (m/frame²)."""
    borders: np.ndarray
    """(B,) border frames."""
    values: np.ndarray
    """(B,) velocity change across each border (m/frame²)."""
    nearby: np.ndarray
    """(B,) the largest velocity change on the free frames within ``reach`` frames of each border
    (where the easing bends the motion); for information, not part of the bar."""

    @property
    def worst(self) -> float:
        return float(self.values.max()) if len(self.values) else 0.0

    @property
    def ratio(self) -> float:
        """Worst border over the threshold: at most 1 passes."""
        return self.worst / self.threshold if self.threshold > 0 else float("inf")

    @property
    def ok(self) -> bool:
        return bool(np.all(self.values <= self.threshold))


def seam_threshold(reference_joints, percentile: float = SEAM_PERCENTILE) -> float:
    """The ``percentile`` of velocity change over an unconstrained dance's (T, 24, 3) joints."""
    change = velocity_change(reference_joints)
    return float(np.nanpercentile(change, percentile))


def seam_report(joints, borders, reference_joints, reach: int = 8, percentile: float = SEAM_PERCENTILE,
                free=None) -> SeamReport:
    """Velocity change at each border of an edited dance against an unconstrained one's percentile.

    ``free``: (T,) frames nobody pinned, for :attr:`SeamReport.nearby` (all frames by default).
    """
    change = velocity_change(joints)
    borders = np.asarray(sorted(int(b) for b in borders if 0 < int(b) < len(change)), int)
    values = np.array([border_value(change, b) for b in borders])
    open_change = np.nan_to_num(change, nan=0.0) * (np.ones(len(change)) if free is None else np.asarray(free))
    nearby = np.array([open_change[max(0, b - reach):b + reach].max() for b in borders])
    return SeamReport(threshold=seam_threshold(reference_joints, percentile), borders=borders,
                      values=values, nearby=nearby)


# ----------------------------------------------------------------------------- music


def free_beat_alignment(joints, music_beats, fps: float, free) -> float:
    """Beat alignment (Bailando) over the music beats that fall on ``free`` (T,) frames.

    Kinematic beats are found on the whole dance (as :mod:`inference.evaluation.evaluate`
    does), so a beat near a border may meet a motion beat on the other side.
    NaN when no music beat falls on a free frame.
    """
    free = np.asarray(free, bool)
    beats = np.asarray(music_beats, int)
    beats = beats[(beats >= 0) & (beats < len(free))]
    beats = beats[free[beats]]
    return metrics.beat_alignment(beats, analysis.kinematic_beats(np.asarray(joints, np.float64), fps), fps)


def beat_alignment_holds(edited, free, sigmas: float = BEAT_NOISE_SIGMAS) -> bool:
    """True when the edited dances' mean beat alignment is not lower than the free dances', within noise.

    ``edited`` and ``free``: scores over several seeds (each list at least one).
    Noise is the seed-to-seed standard deviation of the mean (pooled over both lists).
    """
    edited, free = np.asarray(edited, np.float64), np.asarray(free, np.float64)
    spread = np.concatenate([edited - edited.mean(), free - free.mean()])
    dof = max(1, len(spread) - 2)
    noise = np.sqrt((spread ** 2).sum() / dof) * np.sqrt(1 / len(edited) + 1 / len(free))
    return bool(edited.mean() >= free.mean() - sigmas * noise)


# ----------------------------------------------------------------------------- common edits


def keep_outside(smpl_poses, smpl_trans, first: int, last: int) -> Constraints:
    """Pins of "regenerate frames first..last": every other frame of the (N, 72), (N, 3) source is kept."""
    n = len(smpl_poses)
    if not 0 <= first <= last < n:
        raise ValueError(f"frames {first}..{last} are not inside the dance's 0..{n - 1}")
    c = Constraints.empty(n)
    keep = np.r_[0:first, last + 1:n]
    if len(keep):
        c.pin_pose(keep, np.asarray(smpl_poses)[keep], np.asarray(smpl_trans)[keep])
    return c
