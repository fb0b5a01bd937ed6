"""Beat snap: accents move onto the music's beats, poses and pins stay as they were."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic import noise_features

from inference import analysis
from inference import skeleton as sk
from inference.cleanup.retime import SNAP_SECONDS, SPEED_RANGE, beat_time_map, retime
from inference.evaluation import metrics
from inference.generate import DanceGenerator
from inference.sampling.constraints import PIN_CLEARANCE_SECONDS, Constraints

FPS = 30
PERIOD = 15  # frames between accents: 120 BPM


def pulsing(n: int, first_accent: int, period: int = PERIOD) -> np.ndarray:
    """(n, 24, 3) joints travelling along x with speed dipping every ``period`` frames from ``first_accent``."""
    t = np.arange(n, dtype=np.float64)
    speed = 1.0 - 0.8 * np.cos(2 * np.pi * (t - first_accent) / period)  # m/s, lowest on the accents
    x = np.concatenate([[0.0], np.cumsum((speed[1:] + speed[:-1]) / 2)]) / FPS
    joints = np.tile(sk.rest_joint_positions()[None], (n, 1, 1))
    joints[..., 0] += x[:, None]
    return joints


def resampled(joints: np.ndarray, source: np.ndarray) -> np.ndarray:
    i0 = np.clip(np.floor(source).astype(int), 0, len(joints) - 2)
    f = (source - i0)[:, None, None]
    return joints[i0] * (1 - f) + joints[i0 + 1] * f


def test_accents_near_the_beats_move_onto_them():
    n = 300
    joints = pulsing(n, first_accent=9)  # accents at 9, 24, 39, ...
    beats = np.arange(7, n, PERIOD)  # two frames earlier
    before = metrics.beat_alignment(beats, analysis.kinematic_beats(joints, FPS), FPS)
    source = beat_time_map(joints, beats, FPS)
    after_joints = resampled(joints, source)
    after = metrics.beat_alignment(beats, analysis.kinematic_beats(after_joints, FPS), FPS)
    assert before < 0.85 and after > 0.97, (before, after)
    np.testing.assert_array_equal(source[beats[1:-1]], beats[1:-1] + 2.0)  # beat frame shows its accent
    steps = np.diff(source)
    assert steps.min() > 0.5 and steps.max() < 1.5  # monotone, gently varying speed
    assert source[0] == 0 and source[-1] == n - 1


def test_accents_too_far_from_any_beat_are_left_alone():
    n = 200
    joints = pulsing(n, first_accent=7)
    far = int(SNAP_SECONDS * FPS) + 2
    beats = np.arange(7 + far, n, PERIOD * 2)  # every other period, each beat `far` frames late
    np.testing.assert_array_equal(beat_time_map(joints, beats, FPS), np.arange(n))
    np.testing.assert_array_equal(beat_time_map(joints, [], FPS), np.arange(n))


def test_one_early_beat_does_not_shut_out_the_later_ones():
    """Accents every 10 frames; the first beat's accent is 3 frames late, every later one's 3 early.
    Snapping the first beat would leave too little time to catch up with the next two (taking beats
    one by one snapped 5 of 7); snapping all the later ones instead puts 6 on their beats."""
    n = 120
    joints = pulsing(n, first_accent=0, period=10)
    accents = analysis.kinematic_beats(joints, FPS)
    assert {20, 30, 40, 50, 60, 70, 80} <= set(accents.tolist())
    beats = np.array([17, 33, 43, 53, 63, 73, 83])
    source = beat_time_map(joints, beats, FPS)
    np.testing.assert_array_equal(source[beats[1:]], beats[1:] - 3.0)


def test_pinned_frames_keep_their_time():
    n = 300
    joints = pulsing(n, first_accent=9)
    beats = np.arange(7, n, PERIOD)
    fixed = np.zeros(n, bool)
    fixed[100:160] = True
    fixed[[70, 71, 250]] = True
    source = beat_time_map(joints, beats, FPS, fixed)
    np.testing.assert_array_equal(source[fixed], np.flatnonzero(fixed))
    clear = int(round(PIN_CLEARANCE_SECONDS * FPS))
    near = np.r_[70 - clear:72 + clear, 100 - clear:160 + clear, 250 - clear:251 + clear]
    np.testing.assert_array_equal(source[near], near)  # the easing into a pin keeps its timing
    assert not np.array_equal(source[:50], np.arange(50))  # free stretches are still snapped
    assert np.all(np.diff(source) > 0)
    # Between two anchors the average speed stays within the range.
    slow, fast = SPEED_RANGE
    steps = np.diff(source)
    assert steps.min() >= 1.5 * slow - 0.5 - 1e-9 and steps.max() <= 1.5 * fast - 0.5 + 1e-9


def test_retime_copies_whole_frames_and_interpolates_smoothly_between():
    rng = np.random.default_rng(0)
    n = 20
    poses = rng.normal(scale=0.3, size=(n, 72)).astype(np.float32)
    trans = rng.normal(size=(n, 3)).astype(np.float32)
    p, t = retime(poses, trans, np.arange(n, dtype=np.float64))
    assert np.array_equal(p, poses) and np.array_equal(t, trans)
    # A root moving along a cubic in time is reproduced exactly between frames (Catmull-Rom
    # is exact for quadratics and keeps frame-to-frame detail that a linear blend averages away).
    times = np.arange(n, dtype=np.float64)
    trans = np.stack([0.01 * times ** 2, np.sin(times), np.zeros(n)], axis=1).astype(np.float32)
    source = times.copy()
    source[5] = 4.5
    p, t = retime(poses, trans, source)
    assert abs(t[5, 0] - 0.01 * 4.5 ** 2) < 1e-6
    assert abs(t[5, 1] - np.sin(4.5)) < abs((np.sin(4) + np.sin(5)) / 2 - np.sin(4.5))
    # Rotations: a joint turning steadily about one axis is half way at the half frame.
    steady = np.zeros((n, 72), np.float32)
    steady[:, 3 * 5 + 2] = 0.1 * times
    p, _ = retime(steady, trans, source)
    np.testing.assert_allclose(p[5].reshape(24, 3)[5], [0, 0, 0.45], atol=1e-6)
    assert np.array_equal(np.delete(p, 5, 0), np.delete(steady, 5, 0))


@pytest.fixture(scope="module")
def generator(tiny_weights):
    return DanceGenerator(tiny_weights, device="cpu")


def test_generator_snaps_only_the_timing_and_keeps_pins(generator):
    n = 240
    music = noise_features(generator.config, n)  # a beat every 15 frames
    plain = generator.generate_from_features(music, seed=1, steps=4, beat_snap=False)
    snapped = generator.generate_from_features(music, seed=1, steps=4)
    assert snapped.extras["beat_snap"] and not plain.extras["beat_snap"]
    moved = np.abs(snapped.smpl_trans - plain.smpl_trans).max(axis=1) > 0
    assert moved.any(), "an untrained model's accents should meet some beats within reach"
    # Same poses, other timing: every snapped root position lies on the plain path's segments.
    reach = int(np.ceil(SNAP_SECONDS * FPS)) + 1
    for i in np.flatnonzero(moved):
        near = plain.smpl_trans[max(i - reach, 0):i + reach + 1]
        gap = np.linalg.norm(near - snapped.smpl_trans[i], axis=1).min()
        step = np.linalg.norm(np.diff(near, axis=0), axis=1).max()
        assert gap <= step, i
    c = Constraints.empty(n)
    c.pin_pose(range(60, 90), plain.smpl_poses[60:90], plain.smpl_trans[60:90])
    pinned = generator.generate_from_features(music, seed=1, steps=4, constraints=c)
    np.testing.assert_array_equal(pinned.smpl_poses[60:90], plain.smpl_poses[60:90])
    np.testing.assert_array_equal(pinned.smpl_trans[60:90], plain.smpl_trans[60:90])
