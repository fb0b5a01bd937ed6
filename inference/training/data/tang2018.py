"""The ballroom set of Tang, Jia & Mao 2018 ("Dance with Melody", ACM MM): reading, timing, retargeting.

Layout: one folder per dance (``DANCE_{C,R,W}_<n>``) holding ``audio.mp3``,
``config.json`` (``start_position``/``end_position``: the song span in 1/25 s)
and ``skeletons.json`` (``length``, ``center`` (N, 3) and ``skeletons``
(N, 23, 3) relative to it; centimetres, y-up).

What the data showed (figures per dance in the preprocessing report):

* Sides. The source frame is **left-handed**. Read as a right-handed y-up
  frame, the toes point forward, the knees bend forward, and "up x forward"
  (the body's left) points to the chain 12-13-14-15 / 16-17-18. But then in
  all 30 waltzes the head (points 0, 1) is turned 24-43 degrees to the
  *right* of the shoulders while the 12-side hand is the one reaching out
  sideways in the joined hold; the standard-hold rule (both partners' heads
  turn left; the lady's right hand is the joined one) fits only if the 3-side
  is the left. So the source is mirrored: anatomical left is 3-4-5-6 (+22) and
  7-8-9-10-11, and the conversion to our world swaps y and z (a reflection)
  and scales to metres (:func:`side_evidence` re-measures this per dance).
* Points: 0/1 the left/right side of the head; 2 lower spine (17 cm above the
  root); 3/12 shoulders (27-32 cm apart, SMPL's are 39 cm); 4/13 elbows; 6/15
  wrists (elbow-wrist 22-26 cm); 5/14 lie on the forearms, 3-6 cm off the
  elbow-wrist line (they give the forearm's twist); 22 sits 4.6 cm from the
  left wrist at a steady distance (a hand marker: the left wrist's bend) and
  21 on the right forearm between 13 and 14 (unused: the right hand has no
  hand marker, so only its twist is known); 7/16 hip
  markers about 5 cm *above* the root and 20 cm apart (not joint centres);
  8/17 knees; 9/18 ankles; 10/19 heels; 11/20 toes.
* Faults: the height drifts (feet rise by up to 0.5 m over a dance, as with
  inertial capture), and in 1-13 % of frames a limb or the whole upper body
  collapses towards the root for a few frames. Both are repaired
  (:func:`remove_vertical_drift`, :func:`repair_glitches`).
* Timing: frame i plays at ``(s + i (e - s) / N) / 25`` s of the song ("span"
  clock; waltz is sampled at only ~6 frames per second); for three cha-chas
  25 frames per second fits the music better ("25 fps" clock).

Processing (:func:`process_dance`): repaired landmarks -> cubic spline onto a
60 Hz grid of dataset time -> bone-direction IK (:mod:`.retarget`) -> clock
fit (rate by beat coherence, offset by beat alignment) -> optional beat warp
-> rotations slerped onto the music's 30 fps frames -> root path re-solved
(planted feet) -> grounded -> foot contacts from foot speed.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy.interpolate import CubicSpline
from scipy.ndimage import gaussian_filter1d, percentile_filter

from ... import motion as mo
from ... import skeleton as sk
from ...errors import DataError
from . import beats as bt
from . import retarget as rt
from ...evaluation.metrics import rotation_range
from .clip import Clip, contacts_from_motion, ground, repair_spikes

NUM_POINTS = 23
SPAN_UNITS_PER_SECOND = 25.0
"""``start_position`` / ``end_position`` count 1/25 s of music."""
STYLES = {"C": "cha-cha", "R": "rumba", "W": "waltz"}
UNMEASURED_JOINTS = ("right_wrist",)
"""Joints whose rotation the source does not measure in full: the right hand has no marker, so the retarget
keeps that wrist's bend at rest (its twist is known). Training may leave them out of the loss
(:class:`.cache.WindowSampler` ``unmeasured``)."""
BEATS_PER_CYCLE = {"cha-cha": 2, "rumba": 2, "waltz": 3}
"""Beats after which the style's basic movement repeats (its speed is analysed at this period too)."""

# (x, y, z) source -> (x, z, y) world: y-up to z-up *and* left- to right-handed; centimetres to metres.
SOURCE_TO_WORLD = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]) / 100.0

POINTS = {
    "head_left": 0, "head_right": 1, "spine": 2,
    "left_shoulder": 3, "left_elbow": 4, "left_forearm": 5, "left_wrist": 6, "left_hand": 22,
    "right_shoulder": 12, "right_elbow": 13, "right_forearm": 14, "right_wrist": 15, "right_forearm_2": 21,
    "left_hip": 7, "left_knee": 8, "left_ankle": 9, "left_heel": 10, "left_toe": 11,
    "right_hip": 16, "right_knee": 17, "right_ankle": 18, "right_heel": 19, "right_toe": 20,
}

SMOOTHING_SECONDS = 0.04
"""Gaussian smoothing of the source points before the IK (removes marker jitter at 25 fps)."""
MIN_PROMINENCE = 2.5
"""A dance is kept when its beat coherence at the fitted clock is this many times the background."""
WARP_MAX_SHIFT = 0.15
"""Largest shift (s) the beat warp applies to pull a motion beat onto a music beat."""
WARP_MAX_RATE_CHANGE = 0.15
"""Largest local speed-up or slow-down (relative) the beat warp may introduce."""
WARP_PASSES = 2
"""Warp passes tried; the best-scoring of none, one or two is kept."""


@dataclass
class TangDance:
    """One folder of the set, in world coordinates (z-up metres, right-handed)."""

    name: str
    style: str
    folder: Path
    points: np.ndarray  # (N, 23, 3) world positions
    center: np.ndarray  # (N, 3) world root position
    start: float  # span start, seconds of music
    end: float  # span end, seconds of music

    @property
    def num_frames(self) -> int:
        return len(self.points)

    @property
    def audio(self) -> Path:
        return self.folder / "audio.mp3"

    def span_times(self) -> np.ndarray:
        """(N,) music time of each frame under the span clock."""
        return self.start + np.arange(self.num_frames) * (self.end - self.start) / self.num_frames

    def landmarks(self, smoothing_seconds: float = SMOOTHING_SECONDS) -> dict:
        """Named (N, 3) landmarks for :func:`inference.training.data.retarget.fit_rotations` (glitches repaired,
        vertical drift removed)."""
        dt = (self.end - self.start) / self.num_frames
        pts, root = remove_vertical_drift(repair_glitches(self.points, self.center), self.center, dt)
        if smoothing_seconds > 0 and self.num_frames > 1:
            sigma = smoothing_seconds / dt
            pts = gaussian_filter1d(pts, sigma, axis=0, mode="nearest")
            root = gaussian_filter1d(root, sigma, axis=0, mode="nearest")
        lm = {name: pts[:, i] for name, i in POINTS.items()}
        lm["root"] = root
        lm["neck"] = 0.5 * (lm["left_shoulder"] + lm["right_shoulder"])
        lm["head"] = 0.5 * (lm["head_left"] + lm["head_right"])
        # The two head points come together when tracking falters; trust their direction less then.
        width = np.linalg.norm(lm["head_left"] - lm["head_right"], axis=-1)
        lm["head_side_weight"] = np.clip((width / np.median(width) - 0.5) / 0.3, 0.0, 1.0)
        return lm


FLOOR_WINDOW_SECONDS = 4.0
"""Sliding window in which the floor is taken as a low percentile of the lowest foot point."""
FLOOR_PERCENTILE = 10


def floor_height(points: np.ndarray, dt: float) -> np.ndarray:
    """(N,) the floor under the dancer over time: a smoothed sliding low percentile of the lowest foot point."""
    feet = [POINTS[f"{s}_{p}"] for s in ("left", "right") for p in ("heel", "toe")]
    lowest = points[:, feet, 2].min(axis=1)
    size = max(1, int(round(FLOOR_WINDOW_SECONDS / dt)))
    floor = percentile_filter(lowest, FLOOR_PERCENTILE, size=size, mode="nearest")
    return gaussian_filter1d(floor, size / 4, mode="nearest")


def remove_vertical_drift(points: np.ndarray, center: np.ndarray, dt: float):
    """Points and root with the floor held level: the source's height drifts by up to half a metre
    over a dance (its feet rise with it), so the floor is tracked and taken out."""
    drift = floor_height(points, dt)
    drift = drift - np.median(drift)
    return points - drift[:, None, None] * _Z_AXIS, center - drift[:, None] * _Z_AXIS


_Z_AXIS = np.array([0.0, 0.0, 1.0])
GLITCH_LIMITS = (0.55, 1.6)
"""A segment shorter or longer than these multiples of its median length marks a tracking glitch."""
UPPER_BODY_COLLAPSE = 0.85
"""Frames whose upper-body segments are (median) shorter than this share of their usual length."""
_ARMS = (3, 4, 5, 6, 22, 12, 13, 14, 15, 21)
_UPPER_SEGMENTS = ((3, 4), (4, 6), (12, 13), (13, 15), (3, 12), (2, 3), (2, 12))
_GLITCH_GROUPS = (  # (segments checked, points re-filled when one is off)
    (((3, 4), (4, 6)), (4, 5, 6, 22)),
    (((12, 13), (13, 15)), (13, 14, 15, 21)),
    (((3, 12),), _ARMS),
    (((7, 8), (8, 9), (9, 11)), (8, 9, 10, 11)),
    (((16, 17), (17, 18), (18, 20)), (17, 18, 19, 20)),
)


def _relative_lengths(points: np.ndarray, segments) -> np.ndarray:
    """(N, S) segment lengths over their medians."""
    lengths = np.stack([np.linalg.norm(points[:, a] - points[:, b], axis=-1) for a, b in segments], axis=1)
    return lengths / np.maximum(np.median(lengths, axis=0), 1e-9)


def glitch_frames(points: np.ndarray) -> np.ndarray:
    """(N, G + 1) True where a group of :data:`_GLITCH_GROUPS` has a segment of implausible length;
    the last column marks upper-body collapses (the arms and shoulders shrink towards a point), widened by a frame.
    """
    out = np.zeros((len(points), len(_GLITCH_GROUPS) + 1), bool)
    lo, hi = GLITCH_LIMITS
    for g, (segments, _) in enumerate(_GLITCH_GROUPS):
        rel = _relative_lengths(points, segments)
        out[:, g] = ((rel < lo) | (rel > hi)).any(axis=1)
    collapse = np.median(_relative_lengths(points, _UPPER_SEGMENTS), axis=1) < UPPER_BODY_COLLAPSE
    out[:, -1] = collapse | np.roll(collapse, 1) | np.roll(collapse, -1)
    return out


def repair_glitches(points: np.ndarray, center: np.ndarray) -> np.ndarray:
    """Points (N, 23, 3) with glitched groups re-filled from the nearest good frames.

    Interpolation runs in the pelvis frame (hip markers and spine), which the
    glitches leave intact, so a body turning meanwhile keeps its arms.
    """
    bad = glitch_frames(points)
    if not bad.any():
        return points
    frame = rt.two_vector_frame(points[:, POINTS["left_hip"]] - points[:, POINTS["right_hip"]],
                                points[:, POINTS["spine"]] - center)  # (N, 3, 3) pelvis axes
    local = np.einsum("nji,npj->npi", frame, points - center[:, None])  # (N, 23, 3) in the pelvis frame
    out = local.copy()
    frames = np.arange(len(points))
    for g, refill in enumerate([grp[1] for grp in _GLITCH_GROUPS] + [_ARMS]):
        good = ~bad[:, g]
        if good.all() or good.sum() < 2:
            continue
        for i in refill:
            for k in range(3):
                out[~good, i, k] = np.interp(frames[~good], frames[good], local[good, i, k])
    return np.einsum("nij,npj->npi", frame, out) + center[:, None]


@dataclass
class DanceReport:
    """What preprocessing found for one dance (all JSON-able)."""

    name: str
    style: str
    kept: bool
    reason: str
    clock: dict
    scale: float
    retarget_error_cm: dict
    bone_direction_error_deg: float
    ba_span: float
    ba_clock: float
    ba_warp: float
    frames: int
    seconds: float
    left_side_agreement: float
    extras: dict = field(default_factory=dict)


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise DataError(f"{path.parent} lacks {path.name}; a Tang 2018 dance folder holds audio.mp3, "
                        "config.json and skeletons.json.")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is not valid JSON ({exc}).") from None


def dance_folders(root) -> list[Path]:
    """The dance folders under ``root``, in a stable order; DataError if there are none."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"Tang 2018 folder not found: {root}.")
    folders = sorted((p for p in root.iterdir() if p.is_dir() and re.fullmatch(r"DANCE_[A-Z]_\d+", p.name)),
                     key=lambda p: (p.name.split("_")[1], int(p.name.split("_")[2])))
    if not folders:
        raise DataError(f"{root} holds no DANCE_<style>_<n> folders; point at the dataset's top folder.")
    return folders


def read_dance(folder) -> TangDance:
    """Read one dance folder into world coordinates; DataError naming the file on any problem."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"Dance folder not found: {folder}.")
    style_code = folder.name.split("_")[1] if folder.name.count("_") >= 2 else ""
    if style_code not in STYLES:
        raise DataError(f"{folder.name}: unknown style code {style_code!r} (expected one of {sorted(STYLES)}).")
    if not (folder / "audio.mp3").is_file():
        raise DataError(f"{folder} lacks audio.mp3.")
    config = _read_json(folder / "config.json")
    data = _read_json(folder / "skeletons.json")
    for key, src in (("start_position", config), ("end_position", config)):
        if not isinstance(src.get(key), (int, float)):
            raise DataError(f"{folder / 'config.json'}: {key} is missing or not a number.")
    for key in ("center", "skeletons"):
        if key not in data:
            raise DataError(f"{folder / 'skeletons.json'}: the key {key!r} is missing.")
    try:
        skel = np.asarray(data["skeletons"], np.float64)
        center = np.asarray(data["center"], np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{folder / 'skeletons.json'}: skeletons/center are not numeric arrays.") from None
    if skel.ndim != 3 or skel.shape[1:] != (NUM_POINTS, 3):
        raise DataError(f"{folder / 'skeletons.json'}: skeletons has shape {skel.shape}, expected (N, 23, 3).")
    if center.shape != (len(skel), 3):
        raise DataError(f"{folder / 'skeletons.json'}: center has shape {center.shape}, expected ({len(skel)}, 3).")
    if len(skel) < 2 or not np.isfinite(skel).all() or not np.isfinite(center).all():
        raise DataError(f"{folder / 'skeletons.json'}: fewer than 2 frames, or NaN/infinite values.")
    start = config["start_position"] / SPAN_UNITS_PER_SECOND
    end = config["end_position"] / SPAN_UNITS_PER_SECOND
    if not end > start >= 0:
        raise DataError(f"{folder / 'config.json'}: the span {start:.2f}-{end:.2f} s is empty or negative.")
    world = (skel + center[:, None]) @ SOURCE_TO_WORLD.T
    return TangDance(name=folder.name, style=STYLES[style_code], folder=folder, points=world,
                     center=center @ SOURCE_TO_WORLD.T, start=start, end=end)


def left_side_agreement(lm: dict) -> float:
    """Fraction of frames whose body-left (up x toe direction) points from the right to the left hip."""
    forward = (lm["left_toe"] - lm["left_heel"]) + (lm["right_toe"] - lm["right_heel"])
    left = np.cross(np.array([0.0, 0.0, 1.0]), forward)
    return float(((left * (lm["left_hip"] - lm["right_hip"])).sum(-1) > 0).mean())


def side_evidence(lm: dict) -> dict:
    """Figures that fix which side is left, in our (right-handed) world.

    ``head_yaw_deg``: median turn of the head (its left-right points) from the
    shoulder line about the vertical, positive = to the dancer's left; the
    standard-hold rule has it clearly positive in waltz. ``hand_reach_m``: how
    far each hand reaches sideways from its shoulder (the joined hand reaches out).
    """
    def yaw(v):
        return np.arctan2(v[:, 1], v[:, 0])

    rel = yaw(lm["head_left"] - lm["head_right"]) - yaw(lm["left_shoulder"] - lm["right_shoulder"])
    side = lm["left_shoulder"] - lm["right_shoulder"]
    side[:, 2] = 0.0
    side /= np.maximum(np.linalg.norm(side, axis=-1, keepdims=True), 1e-9)
    reach = {s: float(np.median(sign * ((lm[f"{s}_wrist"] - lm[f"{s}_shoulder"]) * side).sum(-1)))
             for s, sign in (("left", 1.0), ("right", -1.0))}
    return {"left_side_agreement": round(left_side_agreement(lm), 4),
            "head_yaw_deg": round(float(np.degrees(np.median(np.angle(np.exp(1j * rel))))), 1),
            "hand_reach_m": {k: round(v, 3) for k, v in reach.items()}}


def source_speed(dance: TangDance) -> tuple[np.ndarray, np.ndarray]:
    """Mean point speed (m/s) between frames, and the span time of each value (midpoints)."""
    tau = dance.span_times()
    pts = np.concatenate([dance.points, dance.center[:, None]], axis=1)
    speed = np.linalg.norm(np.diff(pts, axis=0), axis=-1).mean(-1) / np.diff(tau)
    if len(speed) / (dance.end - dance.start) > 15:  # dense sampling: take out marker jitter
        speed = gaussian_filter1d(speed, 1.0)
    return speed, 0.5 * (tau[1:] + tau[:-1])


def clock_hypotheses(dance: TangDance) -> dict:
    """Nominal rates (relative to the span clock) to search: the span clock, and 25 fps if plausible."""
    hyp = {"span": 1.0}
    r25 = dance.num_frames / ((dance.end - dance.start) * SPAN_UNITS_PER_SECOND)
    if bt.NULL_RATES[0] <= r25 <= bt.NULL_RATES[1]:
        hyp["25fps"] = r25
    return hyp


FINE_FPS = 60
"""Samples per second of dataset time at which the IK runs, on cubic-spline landmarks."""


def fine_landmarks(lm: dict, tau: np.ndarray, fine_fps: int = FINE_FPS) -> tuple[np.ndarray, dict]:
    """Landmarks on a uniform grid of dataset time (cubic spline through the frames)."""
    grid = np.arange(tau[0], tau[-1] + 1e-9, 1.0 / fine_fps)
    return grid, {k: CubicSpline(tau, v, axis=0)(grid) for k, v in lm.items()}


class _Timed:
    """A retargeted dance on a fine grid of dataset time, rendered onto music frames by a time map."""

    def __init__(self, poses: np.ndarray, guide: np.ndarray, fps: int, audio_frames: int, name: str):
        self.poses, self.guide, self.fps, self.audio_frames, self.name = poses, guide, fps, audio_frames, name
        rotations = sk.axis_angle_to_matrix(poses.reshape(len(poses), sk.NUM_JOINTS, 3))
        self.joints = sk.forward_kinematics(rotations, guide)[0]  # (G, 24, 3), root on the guide

    def frames(self, music_times: np.ndarray):
        """First output frame and fractional grid index of each frame covered by ``music_times`` (G,)."""
        first = max(0, int(np.ceil(music_times[0] * self.fps - 1e-9)))
        last = min(int(np.floor(music_times[-1] * self.fps + 1e-9)), self.audio_frames - 1)
        if last - first < 2:
            raise DataError(f"{self.name}: the dance falls outside its song after timing.")
        out = np.arange(first, last + 1) / self.fps
        return first, np.interp(out, music_times, np.arange(len(music_times)))

    def quick_joints(self, music_times: np.ndarray):
        """(first, (n, 24, 3)) joints by linear interpolation, root on the guide: for searching."""
        first, index = self.frames(music_times)
        i0 = np.floor(index).astype(int)
        i1 = np.minimum(i0 + 1, len(self.joints) - 1)
        frac = (index - i0)[:, None, None]
        return first, self.joints[i0] * (1 - frac) + self.joints[i1] * frac

    def render(self, music_times: np.ndarray):
        """(first, poses (n, 72), trans (n, 3)): slerped rotations, root path re-solved and grounded."""
        first, index = self.frames(music_times)
        poses, guide = mo.resample(self.poses, self.guide, 1.0, index)
        rotations = sk.axis_angle_to_matrix(poses.reshape(len(poses), sk.NUM_JOINTS, 3))
        trans = rt.solve_root_path(rotations, guide, self.fps)
        trans, _ = ground(poses, trans, self.fps)
        return first, poses, trans


def process_dance(dance: TangDance, song_features: np.ndarray, fps: int,
                  min_prominence: float = MIN_PROMINENCE, warp: bool = True):
    """Retarget and time one dance against its song's features (T, 35) at ``fps``.

    Returns ``(clip, music, report)``: the clip at ``fps`` on the music's frame
    grid, its (n, 35) slice of the song features, and the :class:`DanceReport`.
    """
    lm = dance.landmarks()
    toes = np.stack([lm["left_toe"], lm["right_toe"]], axis=1)
    scale = rt.source_scale(lm["root"], toes)
    raw_lm = dance.landmarks(smoothing_seconds=0.0)
    raw_rot = rt.fit_rotations(raw_lm, scale)
    err = rt.retarget_error(raw_rot, raw_lm, scale)
    dir_err = rt.bone_direction_error(raw_rot, raw_lm, scale)
    agreement = left_side_agreement(raw_lm)
    repaired = float(glitch_frames(dance.points).any(axis=1).mean())

    tau = dance.span_times()
    grid, lmf = fine_landmarks(lm, tau)
    poses = sk.matrix_to_axis_angle(rt.fit_rotations(lmf, scale)).reshape(len(grid), -1)
    timed = _Timed(poses, lmf["root"] * scale, fps, len(song_features), dance.name)

    beat_onehot = song_features[:, -1]
    beat_times = np.flatnonzero(beat_onehot) / fps
    period = float(np.median(np.diff(beat_times)))
    speed, speed_tau = source_speed(dance)
    m = BEATS_PER_CYCLE[dance.style]
    clock = bt.fit_clock(speed, speed_tau, beat_times, clock_hypotheses(dance), harmonics=(1.0 / m, 1.0))

    def quick_score(music_times, part=slice(None)):
        first, joints = timed.quick_joints(music_times)
        n = len(joints)
        sel = range(n)[part]
        return bt.clip_beat_score(joints[sel.start:sel.stop], beat_onehot[first + sel.start:first + sel.stop], fps)

    def final_score(music_times):
        first, p, tr = timed.render(music_times)
        return bt.clip_beat_score(sk.joint_positions(p, tr), beat_onehot[first:first + len(p)], fps)

    span_map = grid.copy()
    rate_map = clock(grid)
    clock.offset, _ = bt.best_offset(lambda o: quick_score(rate_map + o), period, 1.0 / fps)
    # Held-out check: fit the offset on the first half, score the second half.
    half_first = slice(None, len(timed.quick_joints(rate_map)[1]) // 2)
    half_second = slice(half_first.stop, None)
    off_half, _ = bt.best_offset(lambda o: quick_score(rate_map + o, half_first), period, 1.0 / fps)
    heldout = {"ba_span_second_half": round(quick_score(span_map, half_second), 4),
               "ba_clock_second_half": round(quick_score(rate_map + off_half, half_second), 4)}
    clock_map = rate_map + clock.offset
    first, poses_out, trans = timed.render(clock_map)
    ba_clock = bt.clip_beat_score(sk.joint_positions(poses_out, trans), beat_onehot[first:first + len(poses_out)],
                                   fps)
    best = (ba_clock, clock_map, first, poses_out, trans, 0)
    warp_map = clock_map
    for step in range(WARP_PASSES if warp else 0):  # keep a warp only where it helps
        joints = sk.joint_positions(best[3], best[4]) if step == 0 else joints
        anchors = bt.beat_warp((first + bt.motion_beats(joints, fps)) / fps, beat_times, WARP_MAX_SHIFT,
                               WARP_MAX_RATE_CHANGE)
        shift = np.clip(bt.apply_warp(warp_map, anchors) - clock_map, -WARP_MAX_SHIFT, WARP_MAX_SHIFT)
        warp_map = clock_map + shift  # passes add up, but never beyond the largest shift
        first, p_w, tr_w = timed.render(warp_map)
        joints = sk.joint_positions(p_w, tr_w)
        ba = bt.clip_beat_score(joints, beat_onehot[first:first + len(p_w)], fps)
        if ba > best[0]:
            best = (ba, warp_map, first, p_w, tr_w, step + 1)
    ba_final, final_map, first, poses_out, trans, passes = best
    music = song_features[first:first + len(poses_out)]
    shift = final_map - clock_map
    kept = clock.prominence >= min_prominence and agreement > 0.5
    reason = "aligned" if kept else (
        f"beat coherence only {clock.prominence:.2f}x background (< {min_prominence})" if agreement > 0.5
        else "left/right sides inconsistent")
    poses_out, trans, spikes = repair_spikes(poses_out, trans, fps)
    clip = Clip(name=dance.name, style=dance.style, fps=fps, smpl_poses=poses_out.astype(np.float32),
                smpl_trans=trans.astype(np.float32), contacts=contacts_from_motion(poses_out, trans, fps),
                audio=dance.audio, audio_start=first / fps)
    report = DanceReport(
        name=dance.name, style=dance.style, kept=bool(kept), reason=reason, clock=clock.to_dict(),
        scale=round(scale, 4),
        retarget_error_cm={"mean": round(100 * err["mean"], 2), "max": round(100 * err["max"], 2),
                           "per_joint_mean": {k: round(100 * v, 2) for k, v in err["per_joint_mean"].items()}},
        bone_direction_error_deg=round(dir_err, 2), ba_span=round(final_score(span_map), 4),
        ba_clock=round(ba_clock, 4), ba_warp=round(ba_final, 4), frames=clip.num_frames,
        seconds=round(clip.duration, 2), left_side_agreement=round(agreement, 4),
        extras={"glitch_frames_repaired": round(repaired, 4), "spike_frames_bridged": int(spikes), **heldout, "sides": side_evidence(raw_lm),
                "rotation_range_deg": {k: round(v, 1) for k, v in rotation_range(poses_out).items()},
                "warp_passes_kept": passes, "warp_max_abs_shift_s": round(float(np.abs(shift).max()), 4),
                "warp_mean_abs_shift_s": round(float(np.abs(shift).mean()), 4)},
    )
    clip.info = {"dataset": "tang2018", "report": asdict(report)}
    return clip, music, report
