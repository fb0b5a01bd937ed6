"""Easing into pins: pinned frames take their values and the free frames beside them bend toward them.

The bend matches position and velocity at each border (a cubic Hermite), so a
pinned stretch joins the free motion with neither a jump nor a kink. The
sampler eases every step's clean prediction and its final output this way
(:mod:`inference.sampling.sampler`); rotations are eased as quaternions
(:func:`ease_rotations`), root positions and other values additively
(:func:`ease_vectors`). Pure NumPy.
"""

from __future__ import annotations

import numpy as np

from .. import skeleton as sk


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of True in a (T,) mask, as inclusive (first, last) pairs."""
    padded = np.concatenate([[False], mask, [False]])
    edges = np.nonzero(np.diff(padded.astype(np.int8)))[0]
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2])]


def _gaps(mask: np.ndarray) -> list[tuple[int, int]]:
    """Stretches of free frames ``lo + 1 .. hi - 1`` between pinned frames ``lo`` and ``hi``.

    ``lo`` is -1 before the first pinned frame, ``hi`` is T after the last one.
    """
    bounds, prev = [], -1
    for a, b in _runs(mask):
        bounds.append((prev, a))
        prev = b
    bounds.append((prev, len(mask)))
    return [(lo, hi) for lo, hi in bounds if hi - lo > 1]


def _hermite(s):
    """The cubic Hermite basis h00, h10, h01, h11 at s in [0, 1]."""
    s2, s3 = s * s, s * s * s
    return 2 * s3 - 3 * s2 + 1, s3 - 2 * s2 + s, -2 * s3 + 3 * s2, s3 - s2


def _ease(pred, target, mask, frames: int, delta, shift, trusted=None, stretch=None):
    """Write the pins into ``pred`` and bend the free frames beside them, matching position and velocity.

    At each border the free motion is extrapolated one frame into the pinned
    one from its two nearest free frames (the network's own prediction there
    may sit on the pin while its neighbours do not); the offset ``D`` from there
    to the pin and the velocity difference ``V`` (against the pinned stretch's
    own velocity; through a lone pinned frame, the mean velocity of the free
    motion on its two sides) are eased out over
    ``frames`` free frames by a cubic Hermite (offset D with slope V, to 0 with
    slope 0); where a ``stretch`` is given, over ``stretch(D)`` times as long
    (a far pin eases in over more frames, so the bend accelerates no harder
    than a near one's). Where the two borders' spans cover the gap, one
    Hermite joins their (D, V). Pinned frames marked ``trusted`` (the known
    start of a later chunk, which the network continues) are compared with the
    prediction on them instead. ``delta(a, b)`` is the step from b to a and
    ``shift(x, o)`` moves x by it (vectors: subtraction and addition;
    rotations: log and exp).
    """
    t = len(mask)
    out = pred.copy()
    if not mask.any():
        return out
    out[mask] = target[mask]
    trusted = np.zeros(t, bool) if trusted is None else np.asarray(trusted, bool)
    zero = delta(pred[0], pred[0]) * 0.0

    def length(d):  # free frames over which offset d is eased out
        return frames if stretch is None else int(np.ceil((frames + 1) * max(1.0, stretch(d)))) - 1

    def free_step(a, b):  # the prediction's step b -> a where both frames are free, else None
        ok = 0 <= min(a, b) and max(a, b) < t and not mask[a] and not mask[b]
        return delta(pred[a], pred[b]) if ok else None

    def pinned_step(a, b):
        """The pinned motion's step b -> a: its own when both are pinned; through a lone pinned frame,
        the mean of the free steps on either side (so the motion passes it without a kink)."""
        if 0 <= min(a, b) and max(a, b) < t and mask[a] and mask[b]:
            return delta(target[a], target[b])
        lone = a if 0 <= a < t and mask[a] else b  # the pinned one of the two
        steps = [x for x in (free_step(lone - 1, lone - 2), free_step(lone + 2, lone + 1)) if x is not None]
        return sum(steps) / len(steps) if len(steps) == 2 else None

    for lo, hi in _gaps(mask):
        n_free = hi - lo - 1
        free = np.arange(lo + 1, hi)
        ends = {}
        if lo >= 0:  # the stretch after pinned frame lo
            v_pin = pinned_step(lo, lo - 1)
            if trusted[lo]:
                v_own = delta(pred[lo], pred[lo - 1]) if lo >= 1 else zero
                d = delta(target[lo], pred[lo])
                if v_pin is not None and n_free >= 2:  # a jump from its last pinned frame to its first free one
                    d = delta(target[lo], shift(pred[lo + 1], -(v_pin + delta(pred[lo + 2], pred[lo + 1])) / 2))
                v = zero if v_pin is None else v_pin - v_own
            else:
                v_free = delta(pred[lo + 2], pred[lo + 1]) if n_free >= 2 else zero
                d = delta(target[lo], shift(pred[lo + 1], -v_free))
                v = zero if v_pin is None else v_pin - v_free
            ends["left"] = (d, v)
        if hi < t:  # the stretch before pinned frame hi
            v_pin = pinned_step(hi + 1, hi)
            if trusted[hi]:
                v_own = delta(pred[hi + 1], pred[hi]) if hi + 1 < t else zero
                d = delta(target[hi], pred[hi])
                if v_pin is not None and n_free >= 2:
                    d = delta(target[hi], shift(pred[hi - 1], (v_pin + delta(pred[hi - 1], pred[hi - 2])) / 2))
                v = zero if v_pin is None else v_pin - v_own
            else:
                v_free = delta(pred[hi - 1], pred[hi - 2]) if n_free >= 2 else zero
                d = delta(target[hi], shift(pred[hi - 1], v_free))
                v = zero if v_pin is None else v_pin - v_free
            ends["right"] = (d, v)
        shape = (-1,) + (1,) * np.ndim(zero)
        spans = {side: length(d) for side, (d, v) in ends.items()}
        if len(ends) == 2 and n_free <= spans["left"] + spans["right"]:
            gap = float(hi - lo)
            h00, h10, h01, h11 = _hermite(((free - lo) / gap).reshape(shape))
            (dl, vl), (dr, vr) = ends["left"], ends["right"]
            out[free] = shift(pred[free], h00 * dl + h10 * gap * vl + h01 * dr + h11 * gap * vr)
            continue
        for side, (d, v) in ends.items():
            span = spans[side] + 1.0
            k = np.arange(1, min(spans[side], n_free) + 1)
            f = lo + k if side == "left" else hi - k
            h00, h10, _, _ = _hermite((k / span).reshape(shape))
            out[f] = shift(pred[f], h00 * d + h10 * span * (v if side == "left" else -v))
    return out


EASE_ANGLE = np.pi / 4
"""Rotation offsets up to this angle ease in over the plain span; a larger offset ``a`` eases in over
``sqrt(a / EASE_ANGLE)`` times as many frames (twice as many for a half turn), which keeps the
bend's angular acceleration (offset / span squared) at most that of this angle over the plain span."""


def _rotation_stretch(d) -> float:
    """Span factor for rotation-vector offsets ``d`` (..., 3): set by the largest angle among them."""
    return float(np.sqrt(np.linalg.norm(np.reshape(d, (-1, 3)), axis=-1).max() / EASE_ANGLE))


def _rotation_step(a, b):
    """The rotation vector turning quaternion b into a (left multiplication): log(a b^-1)."""
    return sk.quat_to_axis_angle(sk.quat_multiply(a, sk.quat_conjugate(b)))


def _rotate(q, rotvec):
    rotvec = np.broadcast_to(rotvec, np.shape(q)[:-1] + (3,))
    return sk.quat_multiply(sk.axis_angle_to_quat(rotvec), q)


def ease_rotations(pred_q: np.ndarray, target_q: np.ndarray, mask: np.ndarray, frames: int,
                   trusted=None) -> np.ndarray:
    """(T, 4) quaternions: pinned frames take the target, free frames beside them bend toward it.

    Offsets are rotation vectors applied by left multiplication; an offset larger than
    :data:`EASE_ANGLE` eases over up to ``2 * frames + 1`` frames; ``trusted``: see :func:`_ease`.
    """
    return _ease(np.asarray(pred_q, np.float64), np.asarray(target_q, np.float64), mask, frames,
                 _rotation_step, _rotate, trusted, stretch=_rotation_stretch)


def ease_vectors(pred: np.ndarray, target: np.ndarray, mask: np.ndarray, frames: int,
                 trusted=None) -> np.ndarray:
    """The additive counterpart of :func:`ease_rotations` for (T,) or (T, C) values."""
    return _ease(np.asarray(pred, np.float64), np.asarray(target, np.float64), mask, frames,
                 lambda a, b: a - b, lambda x, o: x + o, trusted)
