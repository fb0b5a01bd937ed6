"""Metrics on motions with known answers, and the evaluate command end to end on synthetic files."""

import argparse
import json
import math

import numpy as np
import pytest
import soundfile as sf
from synthetic import SR, click_track

from inference import analysis
from inference import skeleton as sk
from inference.config import M2DConfig
from inference.errors import DataError, M2DError
from inference.evaluation import metrics as M
from inference.evaluation.evaluate import (EvalDance, add_subcommand, evaluate_sets, format_table, load_dance,
                                load_reference)

FPS = 30
PERIOD = 15  # frames between beats: 120 BPM at 30 fps


def standing(frames: int) -> np.ndarray:
    """(T, 24, 3) rest pose, motionless, its lowest foot joint on z = 0."""
    rest = sk.rest_joint_positions()
    rest[:, 2] -= rest[list(analysis.FOOT_JOINTS), 2].min()
    return np.repeat(rest[None], frames, axis=0)


def translated(joints: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Move every joint by the (T, 3) offsets."""
    return joints + offsets[:, None, :]


def sliding(frames: int, speed: float) -> np.ndarray:
    """The standing body gliding along x at ``speed`` m/s, feet on the floor."""
    x = np.arange(frames) / FPS * speed
    return translated(standing(frames), np.stack([x, 0 * x, 0 * x], axis=1))


def dipping(frames: int, beats_start: int, period: int = PERIOD, step: float = 0.02) -> np.ndarray:
    """A body travelling along x whose speed (1 - cos) is zero exactly on frames beats_start + k * period."""
    t = np.arange(frames) - beats_start
    x = step * (t - period / (2 * np.pi) * np.sin(2 * np.pi * t / period))
    return translated(standing(frames), np.stack([x, 0 * x, 0 * x], axis=1))


# ----------------------------------------------------------------------------- physics


def test_motionless_body_scores_zero():
    joints = standing(150)
    assert M.physical_foot_contact(joints, FPS) == 0.0
    assert M.foot_skating(joints, FPS) == 0.0
    assert len(analysis.kinematic_beats(joints, FPS)) == 0
    assert M.beat_alignment(np.arange(5, 150, PERIOD), analysis.kinematic_beats(joints, FPS), FPS) == 0.0
    assert M.ground_penetration(joints) == M.Penetration(depth=0.0, frames=0.0)
    assert np.allclose(M.kinetic_features(joints, FPS), 0.0)


def test_sliding_feet_skate():
    assert M.foot_skating(sliding(150, 1.0), FPS) == pytest.approx(1.0)
    assert M.foot_skating(sliding(150, 0.2), FPS) == 0.0  # slower than SKATE_SPEED
    # Gliding 30 cm above the floor of the contract is flying, not skating, when the floor is given.
    high = sliding(150, 1.0) + np.array([0.0, 0.0, 0.3])
    assert M.foot_skating(high, FPS, floor=0.0) == 0.0
    assert M.foot_skating(high, FPS) == pytest.approx(1.0)  # floor estimated from the motion itself


def test_pfc_matches_edge_formula():
    # Root bouncing (sinusoid) while both feet glide at 1 m/s: mean of the rectified, normalised
    # acceleration is 1/pi, and each foot moves 1/30 m per 30 fps frame.
    frames = 150
    t = np.arange(frames) / FPS
    offsets = np.stack([t * 1.0, 0 * t, 0.05 * np.sin(2 * np.pi * 2.0 * t)], axis=1)
    pfc = M.physical_foot_contact(translated(standing(frames), offsets), FPS)
    assert pfc == pytest.approx((1 / 30) ** 2 * 1e4 / np.pi, rel=0.03)
    # The same bounce on planted feet is physically fine: PFC 0.
    planted = translated(standing(frames), offsets * [0, 0, 1])
    assert M.physical_foot_contact(planted, FPS) == pytest.approx(0.0, abs=1e-9)
    # Gliding without acceleration: no root acceleration, PFC 0 (EDGE would divide by zero).
    assert M.physical_foot_contact(sliding(frames, 1.0), FPS) == 0.0


def test_penetration_of_sunk_body():
    sunk = standing(60) - np.array([0.0, 0.0, 0.05])
    pen = M.ground_penetration(sunk)
    assert pen.depth == pytest.approx(0.05)
    assert pen.frames == 1.0
    half = standing(60)
    half[:30] -= np.array([0.0, 0.0, 0.02])
    assert M.ground_penetration(half).depth == pytest.approx(0.01)
    assert M.ground_penetration(half).frames == pytest.approx(0.5)


# ----------------------------------------------------------------------------- beats


def test_speed_dips_on_beats_align():
    frames, start = 300, 7
    joints = dipping(frames, start)
    motion = analysis.kinematic_beats(joints, FPS)
    beats = np.arange(start + PERIOD, frames - PERIOD, PERIOD)  # away from the ends
    assert set(beats) <= set(motion)
    assert M.beat_alignment(beats, motion, FPS) == pytest.approx(1.0)
    shifted = M.beat_alignment(beats + PERIOD // 2, motion, FPS)
    other_tempo = M.beat_alignment(np.arange(start + 20, frames - 20, 20), motion, FPS)
    assert shifted < 0.1
    assert other_tempo < 0.6
    assert math.isnan(M.beat_alignment([], motion, FPS))


def test_beat_alignment_definition():
    sigma = M.BEAT_SIGMA_SECONDS * FPS
    assert sigma == pytest.approx(3.0)
    # Music beats at 10 and 40, kinematic beats at 13 and 40: (exp(-9/18) + 1) / 2.
    assert M.beat_alignment([10, 40], [13, 40, 70], FPS) == pytest.approx((math.exp(-0.5) + 1) / 2)


# ----------------------------------------------------------------------------- features


def test_kinetic_features_of_constant_velocity():
    v = np.array([0.3, -0.4, 0.2])
    t = np.arange(90) / FPS
    feats = M.kinetic_features(translated(standing(90), t[:, None] * v), FPS).reshape(sk.NUM_JOINTS, 3)
    assert np.allclose(feats[:, 0], 0.3 ** 2 + 0.4 ** 2)  # horizontal energy |v_xy|^2
    assert np.allclose(feats[:, 1], 0.2 ** 2)  # vertical energy v_z^2
    assert np.allclose(feats[:, 2], 0.0, atol=1e-9)  # no acceleration


def test_kinetic_features_of_constant_acceleration():
    a = np.array([0.0, 1.5, -2.0])
    t = np.arange(90) / FPS
    feats = M.kinetic_features(translated(standing(90), 0.5 * t[:, None] ** 2 * a), FPS).reshape(-1, 3)
    assert np.allclose(feats[:, 2], np.linalg.norm(a))


def test_geometric_features_known_cases():
    still = M.geometric_features(standing(60), FPS)
    assert still.shape == (len(M.GEOMETRIC_FEATURES),) == (32,)
    assert set(np.unique(still)) <= {0.0, 1.0}  # a still pose: each relation holds always or never
    fast = [i for i, f in enumerate(M.GEOMETRIC_FEATURES) if f[0] == "fast"]
    assert np.all(still[fast] == 0.0)
    # Gliding at 1 m/s: hands, ankles and root are all "fast" (thresholds 0.59-0.64 m/s).
    assert np.all(M.geometric_features(sliding(60, 1.0), FPS)[fast] == 1.0)
    # Relations are between body parts: moving the dancer across the floor changes nothing else.
    moved = M.geometric_features(standing(60) + np.array([3.0, -2.0, 0.0]), FPS)
    assert np.array_equal(moved, still)


def test_frechet_distance_and_diversity():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(40, 6))
    assert M.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    shift = np.full(6, 0.5)
    assert M.frechet_distance(a + shift, a) == pytest.approx(shift @ shift)
    distances = [M.frechet_distance(a + s, a) for s in (0.1, 0.5, 1.0, 2.0)]
    assert distances == sorted(distances) and distances[0] > 0
    assert M.frechet_distance(a * 2.0, a) > M.frechet_distance(a * 1.1, a)
    assert M.diversity(np.ones((5, 6))) == 0.0
    assert M.diversity(np.array([[0.0, 0.0], [3.0, 4.0]])) == pytest.approx(5.0)
    assert math.isnan(M.diversity(a[:1]))


def test_normalise_by_reference_statistics():
    reference = np.array([[0.0, 1.0, 5.0], [2.0, 3.0, 5.0]])  # third dimension never varies
    gen, ref = M.normalise(np.array([[1.0, 2.0, 6.0]]), reference)
    assert np.allclose(ref, [[-1.0, -1.0, 0.0], [1.0, 1.0, 0.0]])
    assert np.allclose(gen, [[0.0, 0.0, 1.0]])


def test_clips_and_resampling():
    assert M.clip_slices(12 * FPS, FPS) == [slice(0, 150), slice(150, 300)]
    assert M.clip_slices(149, FPS) == []
    joints = np.random.default_rng(1).normal(size=(61, 24, 3))
    assert np.allclose(M.resample_joints(joints, 60, 30), joints[::2])


# ----------------------------------------------------------------------------- evaluate


def test_evaluate_sets_in_memory():
    beats = np.arange(7, 300, PERIOD)
    ref = [EvalDance(f"gt{i}", dipping(300, 7, step=0.02 + 0.01 * i), FPS, beats, music="song") for i in range(3)]
    other = EvalDance("other", dipping(300, 7), FPS, np.arange(3, 300, 20), music="other song")
    gen = [EvalDance("still", standing(300), FPS, beats, music="song"), other]
    results = evaluate_sets({"generated": gen, "ground truth": ref}, ref)
    gt, g = results["ground truth"], results["generated"]
    assert gt.clips == 6 and g.clips == 4
    assert gt.fid_k == pytest.approx(0.0, abs=1e-6) and gt.fid_g == pytest.approx(0.0, abs=1e-6)
    assert g.fid_k > 1.0
    assert gt.ba > 0.9 and gt.ba_other < 0.6
    assert gt.skate > 0.5  # these dancers glide on their feet
    assert gt.penetration == 0.0 and gt.penetration_frames == 0.0
    assert "n/a" not in format_table(results)


def _write_clicks(path, bpm: float, seconds: float):
    sf.write(str(path), click_track(seconds, bpm, offset=0.0), SR)


def _write_dance(path, joints, fps=FPS, **extras):
    n = len(joints)
    np.savez(path, fps=np.int32(fps), smpl_poses=np.zeros((n, 72), np.float32),
             smpl_trans=joints[:, 0].astype(np.float32), joints=joints.astype(np.float32),
             contacts=np.ones((n, 4), np.float32), audio_start=np.float64(0.0),
             **{k: np.asarray(v) for k, v in extras.items()})


def _run(argv):
    parser = argparse.ArgumentParser()
    add_subcommand(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["evaluate", *argv])
    return args.func(args)


def test_evaluate_command_end_to_end(tmp_path, capsys):
    seconds = 10.0
    n = int(seconds * FPS)
    gen, ref = tmp_path / "gen", tmp_path / "ref"
    gen.mkdir()
    ref.mkdir()
    _write_clicks(tmp_path / "song120.wav", 120, seconds)
    _write_clicks(ref / "gt_a.wav", 100, seconds)  # sibling audio
    _write_clicks(ref / "gt_b.wav", 80, seconds)
    # Speed dips on the clicks (every 15 frames from 0); librosa marks them about a frame late.
    _write_dance(gen / "seed0.npz", dipping(n, 0), audio_path=str(tmp_path / "song120.wav"))
    _write_dance(gen / "seed1.npz", dipping(n, 0, step=0.03), audio_path=str(tmp_path / "song120.wav"))
    _write_dance(ref / "gt_a.npz", dipping(n, 0, period=18, step=0.025))
    _write_dance(ref / "gt_b.npz", dipping(n, 0, period=22.5, step=0.03))
    out = tmp_path / "scores.json"
    assert _run([str(gen), "--reference", str(ref), "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split()[:4] == ["set", "dances", "clips", "PFC"]
    assert "generated" in table and "ground truth" in table
    report = json.loads(out.read_text())
    g = report["sets"]["generated"]
    assert g["dances"] == 2 and g["clips"] == 4
    assert g["ba"] > 0.8 > g["ba_other"]
    assert report["sets"]["ground truth"]["fid_k"] == pytest.approx(0.0, abs=1e-6)
    assert report["settings"]["beat_alignment"]["sigma_seconds"] == M.BEAT_SIGMA_SECONDS
    # The same dances scored with an explicit --audio give the same beats.
    assert _run(["gen=" + str(gen), "--reference", str(ref), "--audio", str(tmp_path / "song120.wav")]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("gen ")


def test_bad_input_errors(tmp_path):
    config = M2DConfig()
    with pytest.raises(DataError, match="not found"):
        load_dance(tmp_path / "missing.npz", config)
    np.savez(tmp_path / "nojoints.npz", fps=np.int32(30), smpl_poses=np.zeros((200, 72)))
    with pytest.raises(DataError, match="no 'joints'"):
        load_dance(tmp_path / "nojoints.npz", config)
    _write_dance(tmp_path / "short.npz", standing(100))
    with pytest.raises(DataError, match="at least 5 s"):
        load_dance(tmp_path / "short.npz", config)
    _write_dance(tmp_path / "silent.npz", standing(200))
    with pytest.raises(DataError, match="--audio"):
        load_dance(tmp_path / "silent.npz", config)
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable npz"):
        load_dance(tmp_path / "broken.npz", config)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no .npz"):
        load_reference(tmp_path / "empty", config)
    with pytest.raises(M2DError):
        _run([str(tmp_path / "silent.npz"), "--reference", str(tmp_path / "empty")])
    # A reference without music is fine: its BA is simply not available.
    assert load_reference(tmp_path / "silent.npz", config)[0].beats is None
