"""Fitting a dance's clock to its music, and a gentle beat-synchronous re-timing.

* The score is the project's beat alignment (:func:`inference.evaluation.metrics.beat_alignment`,
  Bailando's BA: mean over music beats of ``exp(-d^2 / (2 sigma^2))``, ``d`` the
  distance to the nearest kinematic beat of :func:`inference.analysis.kinematic_beats`,
  ``sigma`` = 3 frames at 30 fps), over all music beats of a dance.
* The clock fit: music time ``t = t0 + offset + rate * (tau - t0)`` for the
  dataset's own time ``tau``. The rate maximises the motion's beat coherence
  (how strongly a speed signal repeats with the music's beat grid: the
  magnitude of its Fourier coefficient at the beat and bar frequencies, as in
  phase-locking analysis); the offset (within half a beat) maximises the
  beat-alignment score.
* The beat warp: small, smooth time shifts that move each kinematic beat onto
  the nearest music beat when it is already close (a "beat-synchronous re-timing").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ... import analysis
from ...evaluation import metrics

RATE_STEP = 0.0005
NULL_RATES = (0.70, 1.35)
"""Rates scanned for the coherence background a candidate peak is compared with."""


def motion_beats(joints: np.ndarray, fps: float) -> np.ndarray:
    """Frame indices of the kinematic beats of (T, 24, 3) joints (:func:`inference.analysis.kinematic_beats`)."""
    if len(joints) < 3:
        return np.zeros(0, int)
    return analysis.kinematic_beats(joints, fps)


def clip_beat_score(joints: np.ndarray, beat_onehot: np.ndarray, fps: float) -> float:
    """Beat alignment of a motion (T, 24, 3) with the beat column (T,) of its music features."""
    frames = min(len(joints), len(beat_onehot))
    score = metrics.beat_alignment(np.flatnonzero(beat_onehot[:frames]), motion_beats(joints[:frames], fps), fps)
    return 0.0 if np.isnan(score) else score


# ----------------------------------------------------------------------------- clock fit


def beat_count(times: np.ndarray, beat_times: np.ndarray) -> np.ndarray:
    """Continuous beat index at ``times`` (linear between beats; NaN outside the beat grid)."""
    return np.interp(times, beat_times, np.arange(len(beat_times)), left=np.nan, right=np.nan)


def beat_coherence(signal: np.ndarray, times: np.ndarray, beat_times: np.ndarray, harmonics) -> float:
    """RMS over ``harmonics`` of |sum x e^{-2 pi i h phi}| / sqrt(n) for a z-scored signal x at beat count phi.

    About 1 for white noise unrelated to the beat; large when the signal repeats
    with the beat grid (h = 1) or with groups of beats (h = 1/2, 1/3: bars).
    """
    phi = beat_count(times, beat_times)
    ok = ~np.isnan(phi)
    if ok.sum() < 8:
        return 0.0
    x = signal[ok] - signal[ok].mean()
    x = x / max(x.std(), 1e-12)
    power = [abs((x * np.exp(-2j * np.pi * h * phi[ok])).sum()) ** 2 / len(x) for h in harmonics]
    return float(np.sqrt(np.mean(power)))


@dataclass
class Clock:
    """A dance's fitted clock: music time = t0 + offset + rate * (tau - t0)."""

    t0: float
    rate: float
    offset: float
    hypothesis: str  # which nominal clock the rate was searched around
    coherence: float  # beat coherence at the fitted rate
    background: float  # median coherence over all scanned rates
    prominence: float  # coherence / background

    def __call__(self, tau):
        return self.t0 + self.offset + self.rate * (np.asarray(tau, np.float64) - self.t0)

    def to_dict(self) -> dict:
        return {k: (round(v, 5) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def fit_clock(signal: np.ndarray, tau: np.ndarray, beat_times: np.ndarray, hypotheses: dict,
              harmonics, band: float = 0.06) -> Clock:
    """Fit the rate of a dance's clock to the beat grid ``beat_times`` (seconds); offset 0.

    ``signal`` (M,) is a motion speed sampled at dataset times ``tau`` (M,).
    ``hypotheses`` maps a name to a nominal rate; each is searched within
    ``+-band`` (relative) and the rate of highest beat coherence wins. The
    offset is left to :func:`best_offset` (coherence does not depend on it).
    """
    t0 = float(tau[0])
    rates = np.arange(NULL_RATES[0], NULL_RATES[1] + RATE_STEP / 2, RATE_STEP)
    coh = np.array([beat_coherence(signal, t0 + r * (tau - t0), beat_times, harmonics) for r in rates])
    background = float(np.median(coh))
    best = None
    for name, nominal in hypotheses.items():
        inside = np.abs(rates / nominal - 1.0) <= band
        if not inside.any():
            continue
        i = int(np.flatnonzero(inside)[np.argmax(coh[inside])])
        if best is None or coh[i] > best[2]:
            best = (name, rates[i], coh[i])
    if best is None:
        raise ValueError("no clock hypothesis lies within the scanned rates")
    name, rate, c = best
    return Clock(t0=t0, rate=float(rate), offset=0.0, hypothesis=name, coherence=float(c),
                 background=background, prominence=float(c / max(background, 1e-9)))


def best_offset(score, period: float, step: float) -> tuple[float, float]:
    """The offset in [-period/2, period/2) maximising ``score(offset)``, and that score.

    Beat alignment repeats every beat, so half a beat either way covers every phase.
    """
    offsets = np.arange(-period / 2, period / 2, step)
    scores = np.array([score(o) for o in offsets])
    i = int(np.argmax(scores))
    return float(offsets[i]), float(scores[i])


# ----------------------------------------------------------------------------- beat warp


def beat_warp(motion_beat_times: np.ndarray, beat_times: np.ndarray, max_shift: float,
              max_rate_change: float = 0.3):
    """A gentle time warp ``t -> t + D(t)`` that moves motion beats onto nearby music beats.

    Each motion beat within ``max_shift`` seconds of a music beat becomes an
    anchor with shift ``D = beat - motion_beat``; D is linear between anchors
    and constant outside them. Consecutive anchors whose shifts would change the
    local speed by more than ``max_rate_change`` are relaxed towards each other.
    Returns ``(anchor_times, anchor_shifts)`` for :func:`apply_warp`.
    """
    m = np.sort(np.asarray(motion_beat_times, np.float64))
    b = np.asarray(beat_times, np.float64)
    if len(m) == 0 or len(b) == 0:
        return np.zeros(0), np.zeros(0)
    j = np.clip(np.searchsorted(b, m), 1, max(1, len(b) - 1))
    near = np.where(np.abs(m - b[j - 1]) <= np.abs(m - b[np.minimum(j, len(b) - 1)]), b[j - 1],
                    b[np.minimum(j, len(b) - 1)])
    shift = near - m
    keep = np.abs(shift) <= max_shift
    t, d = m[keep], shift[keep]
    for _ in range(50):  # relax neighbours until every segment's speed change is bounded
        gap = np.diff(t)
        slope = np.diff(d) / np.maximum(gap, 1e-9)
        bad = np.abs(slope) > max_rate_change
        if not bad.any():
            break
        excess = (np.abs(slope) - max_rate_change) * gap * np.sign(slope) / 2
        excess[~bad] = 0.0
        d[:-1] += excess
        d[1:] -= excess
    return t, d


def apply_warp(times: np.ndarray, anchors: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Warped times ``t + D(t)`` for the anchors from :func:`beat_warp`."""
    t, d = anchors
    if len(t) == 0:
        return np.asarray(times, np.float64).copy()
    return times + np.interp(times, t, d)
