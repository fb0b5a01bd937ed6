"""Tests of the training-data package: readers, retargeting, timing, augmentation, cache, splits.

Every fixture is synthesised here; tests that read /work/shared/data run only when it is present.
"""

from __future__ import annotations

import argparse
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from inference import motion as mo
from inference import skeleton as sk
from inference.config import M2DConfig
from inference.errors import DataError
from inference.training.data import aistpp, augment, beats, cache, folder, retarget, splits, tang2018
from inference.training.data.clip import FOOT_FLOOR_HEIGHT, ground

SHARED = Path("/work/shared/data")
J = sk.JOINT_INDEX
FPS = 30


# ----------------------------------------------------------------------------- synthetic motion


def synthetic_smpl(n: int, fps: float, seed: int = 0, bpm: float = 120.0):
    """A smooth SMPL dance: knees, hips and arms swing with the beat, the body turns and travels.

    Spine rotations are equal thirds and collars, wrists, hands, head and toes stay at rest,
    as the retargeting assumes. Returns (N, 72) poses and (N, 3) root positions, z-up.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(n) / fps
    beat = 2 * np.pi * t * bpm / 60.0
    aa = np.zeros((n, sk.NUM_JOINTS, 3))
    yaw = 0.4 * np.sin(beat / 8) + rng.uniform(-np.pi, np.pi)
    turn = augment.heading_matrix(yaw)  # (N, 3, 3)
    aa[:, 0] = sk.matrix_to_axis_angle(turn @ sk.Y_UP_TO_Z_UP @ sk.axis_angle_to_matrix(
        np.stack([0.1 * np.sin(beat / 2), np.zeros(n), 0.05 * np.cos(beat / 2)], -1)))
    for name in ("spine1", "spine2", "spine3"):
        aa[:, J[name]] = np.stack([0.05 * np.sin(beat / 2), 0.1 * np.sin(beat / 4), np.zeros(n)], -1)
    for side, sign in (("left", 1.0), ("right", -1.0)):
        phase = 0.0 if side == "left" else np.pi
        aa[:, J[f"{side}_hip"]] = np.stack([-0.3 - 0.25 * np.sin(beat / 2 + phase), np.zeros(n),
                                            sign * 0.1 * np.ones(n)], -1)
        aa[:, J[f"{side}_knee"]] = np.stack([0.5 + 0.4 * np.sin(beat / 2 + phase), np.zeros(n), np.zeros(n)], -1)
        aa[:, J[f"{side}_ankle"]] = np.stack([-0.2 * np.sin(beat / 2 + phase), np.zeros(n), np.zeros(n)], -1)
        aa[:, J[f"{side}_shoulder"]] = np.stack([0.3 * np.sin(beat / 2), 0.2 * np.ones(n),
                                                 -sign * (1.0 + 0.2 * np.sin(beat / 2 + phase))], -1)
        aa[:, J[f"{side}_elbow"]] = np.stack([np.zeros(n), -sign * (0.9 + 0.4 * np.sin(beat / 2)), np.zeros(n)], -1)
    aa[:, J["neck"]] = np.stack([0.1 * np.sin(beat / 2), 0.3 * np.sin(beat / 8), np.zeros(n)], -1)
    trans = np.stack([0.3 * t, 0.2 * np.sin(t), 0.93 + 0.02 * np.sin(beat)], -1)
    return aa.reshape(n, -1), trans


def tang_points(poses, trans):
    """The 23 source points of the Tang 2018 layout (world, metres) placed on an SMPL motion."""
    rot = sk.axis_angle_to_matrix(poses.reshape(len(poses), sk.NUM_JOINTS, 3))
    joints, world = sk.forward_kinematics(rot, trans)
    p = np.zeros((len(poses), 23, 3))
    up = lambda j, v: joints[:, j] + (world[:, j] @ np.asarray(v, float))  # noqa: E731  (body-frame offset)
    idx = tang2018.POINTS
    p[:, idx["spine"]] = up(0, [0, 0.17, 0])
    p[:, idx["head_left"]] = up(J["head"], [0.055, 0.04, 0])
    p[:, idx["head_right"]] = up(J["head"], [-0.055, 0.04, 0])
    for side in ("left", "right"):
        for name in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle"):
            p[:, idx[f"{side}_{name}"]] = joints[:, J[f"{side}_{name}"]]
        p[:, idx[f"{side}_forearm"] if side == "left" else idx["right_forearm"]] = 0.5 * (
            joints[:, J[f"{side}_elbow"]] + joints[:, J[f"{side}_wrist"]])
        sole = sk.REST_OFFSETS[J[f"{side}_foot"]] * np.array([1.0, 0.0, 1.0])
        sole = sole / np.linalg.norm(sole)
        heel = up(J[f"{side}_ankle"], -0.06 * sole + np.array([0, -0.06, 0]))
        p[:, idx[f"{side}_heel"]] = heel
        p[:, idx[f"{side}_toe"]] = heel + (world[:, J[f"{side}_ankle"]] @ (0.22 * sole))
    p[:, idx["left_hand"]] = joints[:, J["left_hand"]]
    p[:, idx["right_forearm_2"]] = joints[:, J["right_hand"]]
    return p, joints


def write_tang_dance(folder: Path, poses, trans, start_units=50, end_units=None, audio: Path | None = None):
    """A Tang 2018 dance folder (source convention: y-up, left-handed, centimetres)."""
    folder.mkdir(parents=True, exist_ok=True)
    points, _ = tang_points(poses, trans)
    to_src = np.linalg.inv(tang2018.SOURCE_TO_WORLD)
    center = trans @ to_src.T
    skel = points @ to_src.T - center[:, None]
    n = len(poses)
    end_units = start_units + n if end_units is None else end_units
    (folder / "skeletons.json").write_text(json.dumps({"length": n, "center": center.tolist(),
                                                        "skeletons": skel.tolist()}))
    (folder / "config.json").write_text(json.dumps({"start_position": start_units, "end_position": end_units}))
    if audio is not None:
        (folder / "audio.mp3").write_bytes(audio.read_bytes())
    else:
        (folder / "audio.mp3").write_bytes(b"")
    return folder


def beat_features(seconds: float, bpm: float, offset: float = 0.5, dim: int = 35) -> np.ndarray:
    """Song features (T, dim) whose beat column (the last) marks a steady beat."""
    feats = np.zeros((int(seconds * FPS), dim), np.float32)
    beats_s = np.arange(offset, seconds, 60.0 / bpm)
    feats[np.round(beats_s * FPS).astype(int).clip(0, len(feats) - 1), -1] = 1.0
    return feats


def write_wav(path: Path, seconds: float, sr: int = 22050, bpm: float = 120.0):
    t = np.arange(int(seconds * sr)) / sr
    y = 0.1 * np.sin(2 * np.pi * 220 * t)
    for b in np.arange(0.25, seconds, 60.0 / bpm):
        i = int(b * sr)
        y[i:i + 600] += 0.8 * np.exp(-np.arange(len(y[i:i + 600])) / 120.0)
    sf.write(path, y.astype(np.float32), sr)
    return path


# ----------------------------------------------------------------------------- retargeting


def test_retarget_recovers_smpl_joints_from_synthetic_tang_skeleton(tmp_path):
    poses, trans = synthetic_smpl(120, 25.0, seed=1)
    folder = write_tang_dance(tmp_path / "DANCE_C_1", poses, trans)
    dance = tang2018.read_dance(folder)
    lm = dance.landmarks(smoothing_seconds=0.0)
    assert tang2018.left_side_agreement(lm) > 0.95  # the mirrored source reads back right-handed
    rot = retarget.fit_rotations(lm, scale=1.0)
    ours = sk.forward_kinematics(rot, lm["root"])[0]
    truth = sk.joint_positions(poses, trans)
    err = np.linalg.norm(ours - truth, axis=-1)  # (N, 24): every joint, hands and toes included
    assert err.mean() < 0.01 and err.max() < 0.03, (err.mean(), err.max())
    limbs = [J[f"{s}_{p}"] for s in ("left", "right") for p in ("elbow", "wrist", "knee", "ankle")]
    assert np.linalg.norm(ours[:, limbs] - truth[:, limbs], axis=-1).max() < 0.03
    report = retarget.retarget_error(rot, lm, 1.0)
    assert report["mean"] < 0.01 and report["max"] < 0.03
    assert retarget.bone_direction_error(rot, lm, 1.0) < 1.0


def _angle_deg(a, b):
    """(N,) angles between rotation matrices a and b (N, 3, 3)."""
    return np.degrees(np.linalg.norm(sk.matrix_to_axis_angle(np.swapaxes(a, -1, -2) @ b), axis=-1))


def test_retarget_recovers_known_wrist_and_collar_bends():
    """Collars rise and drop, wrists twist and bend on 40 % of the frames (rest elsewhere, as the
    fit's neutral is the sequence's median); a forearm marker off the elbow-wrist line turns with the hand's
    twist and a hand marker with the hand. The fit recovers every bend to a few degrees."""
    n = 150
    poses, trans = synthetic_smpl(n, 30.0, seed=3)
    aa = poses.reshape(n, sk.NUM_JOINTS, 3).copy()
    t = np.linspace(0.0, 1.0, n)
    active = (np.arange(n) % 5) < 2  # 40 % of frames bent
    wave = np.sin(2 * np.pi * 3 * t) * active
    twist_axes, twists = {}, {}
    for side, sign in (("left", 1.0), ("right", -1.0)):
        lift = 0.3 * wave if side == "left" else -0.25 * np.abs(np.roll(wave, 4))  # shrugs and drops
        aa[:, J[f"{side}_collar"]] = np.stack([np.zeros(n), np.zeros(n), sign * lift], -1)
        axis = retarget._unit(sk.REST_OFFSETS[J[f"{side}_wrist"]])
        hand_dir = retarget._unit(sk.REST_OFFSETS[J[f"{side}_hand"]])
        bend_axis = retarget._unit(np.cross(hand_dir, [0.0, 0.0, 1.0]))
        twist = 0.6 * wave
        bend = 0.5 * np.roll(wave, 7) * active
        r = sk.axis_angle_to_matrix(axis * twist[:, None]) @ sk.axis_angle_to_matrix(bend_axis * bend[:, None])
        aa[:, J[f"{side}_wrist"]] = sk.matrix_to_axis_angle(r)
        twist_axes[side], twists[side] = axis, twist
    poses = aa.reshape(n, -1)
    rot_true = sk.axis_angle_to_matrix(aa)
    joints, world = sk.forward_kinematics(rot_true, trans)
    lm = {k: v for k, v in _landmarks_on_smpl(joints, world).items()}
    for side in ("left", "right"):
        e, w = J[f"{side}_elbow"], J[f"{side}_wrist"]
        off = retarget._unit(np.cross(twist_axes[side], [0.0, 0.0, 1.0])) * 0.04  # 4 cm off the line
        turn = sk.axis_angle_to_matrix(twist_axes[side] * twists[side][:, None])
        lm[f"{side}_forearm"] = 0.5 * (joints[:, e] + joints[:, w]) + (world[:, e] @ turn @ off[:, None])[..., 0]
    lm["left_hand"] = joints[:, J["left_hand"]]
    rot = retarget.fit_rotations(lm, scale=1.0)
    ours, ours_world = sk.forward_kinematics(rot, lm["root"])
    for name in ("left_collar", "right_collar", "left_wrist", "right_wrist"):
        assert np.degrees(np.linalg.norm(aa[:, J[name]], axis=-1)).max() > 10  # the bends are there to find
    # Collars, local: a shoulder rising moves the shoulders' midpoint and so tilts the chest a little,
    # which the other collar takes up (up to 5 degrees here).
    for name in ("left_collar", "right_collar"):
        assert np.percentile(_angle_deg(rot[:, J[name]], rot_true[:, J[name]]), 95) < 6.0, name
    # Hands, in the world (the arm's own twist is fitted from its bend plane, a few degrees off the truth,
    # and the wrist makes up for most of it): the left hand has a hand marker, so its whole orientation is known.
    assert np.percentile(_angle_deg(ours_world[:, J["left_wrist"]], world[:, J["left_wrist"]]), 95) < 8.0
    # The right hand has none, so only its twist is: compare with the forearm turned by the twist alone.
    twisted = world[:, J["right_elbow"]] @ sk.axis_angle_to_matrix(twist_axes["right"] * twists["right"][:, None])
    assert np.percentile(_angle_deg(ours_world[:, J["right_wrist"]], twisted), 95) < 8.0
    without = retarget.fit_rotations({k: v for k, v in lm.items() if not k.endswith("_forearm")}, scale=1.0)
    assert np.percentile(_angle_deg(sk.forward_kinematics(without, lm["root"])[1][:, J["right_wrist"]], twisted),
                         95) > 10  # without the forearm marker the twist is lost
    for name in ("left_shoulder", "right_shoulder", "left_wrist", "left_hand"):
        assert np.linalg.norm(ours[:, J[name]] - joints[:, J[name]], axis=-1).max() < 0.02, name
    still = retarget.fit_rotations(lm, scale=1.0, extremities=False)  # the first model's data: at rest
    assert np.allclose(still[:, [J["left_collar"], J["left_wrist"]]], np.eye(3))
    report = retarget.retarget_error(rot, lm, 1.0)
    assert report["per_joint_mean"]["left_shoulder"] < 0.008
    assert retarget.retarget_error(still, lm, 1.0)["per_joint_mean"]["left_shoulder"] > 0.01


def _landmarks_on_smpl(joints, world):
    """The retarget's landmarks placed exactly on an SMPL motion (world joints and rotations)."""
    up = lambda j, v: joints[:, j] + (world[:, j] @ np.asarray(v, float))  # noqa: E731
    lm = {"root": joints[:, 0], "spine": up(0, [0, retarget.SPINE_LANDMARK_HEIGHT, 0]),
          "head": up(J["head"], [0, retarget.HEAD_LANDMARK_HEIGHT, 0])}
    for side in ("left", "right"):
        for name in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle"):
            lm[f"{side}_{name}"] = joints[:, J[f"{side}_{name}"]]
        sole = sk.REST_OFFSETS[J[f"{side}_foot"]] * np.array([1.0, 0.0, 1.0])
        sole = sole / np.linalg.norm(sole)
        lm[f"{side}_heel"] = up(J[f"{side}_ankle"], -0.06 * sole)
        lm[f"{side}_toe"] = lm[f"{side}_heel"] + (world[:, J[f"{side}_ankle"]] @ (0.22 * sole))
    lm["left_hip"], lm["right_hip"] = joints[:, J["left_hip"]], joints[:, J["right_hip"]]
    lm["neck"] = 0.5 * (lm["left_shoulder"] + lm["right_shoulder"])
    return lm


def test_retarget_keeps_the_head_facing_forward_when_the_head_points_swap(tmp_path):
    poses, trans = synthetic_smpl(60, 25.0, seed=1)
    lm = tang2018.read_dance(write_tang_dance(tmp_path / "DANCE_C_1", poses, trans)).landmarks(smoothing_seconds=0.0)
    lm["head_left"], lm["head_right"] = lm["head_right"], lm["head_left"]  # as if the head turned round
    rot = retarget.fit_rotations(lm, scale=1.0)
    q = sk.matrix_to_quat(rot[:, J["neck"]])
    turn = (2.0 * np.arctan2(q[:, 1:] @ sk.HEAD_TURN_AXIS, q[:, 0]) + np.pi) % (2.0 * np.pi) - np.pi
    assert np.abs(turn).max() <= 1.0 + 1e-9  # sin of the fitted turn: never past 57 degrees
    ours = sk.forward_kinematics(rot, lm["root"])[0]
    truth = sk.joint_positions(poses, trans)
    assert np.linalg.norm(ours[:, J["head"]] - truth[:, J["head"]], axis=-1).max() < 0.03


def test_two_vector_alignment_is_a_rotation_onto_the_targets():
    rng = np.random.default_rng(0)
    a_r, b_r, a_t, b_t = (rng.normal(size=(50, 3)) for _ in range(4))
    r = retarget.align(a_r, b_r, a_t, b_t)
    assert np.allclose(r @ np.swapaxes(r, -1, -2), np.eye(3), atol=1e-9)
    assert np.allclose(np.linalg.det(r), 1.0)
    a_r_u = a_r / np.linalg.norm(a_r, axis=-1, keepdims=True)
    a_t_u = a_t / np.linalg.norm(a_t, axis=-1, keepdims=True)
    assert np.allclose((r @ a_r_u[..., None])[..., 0], a_t_u, atol=1e-9)


def test_root_path_keeps_planted_feet_still():
    poses, trans = synthetic_smpl(90, FPS, seed=2)
    rot = sk.axis_angle_to_matrix(poses.reshape(90, 24, 3))
    guide = trans * np.array([1.1, 1.1, 1.0])  # a guide slightly off scale: feet would slide on it
    solved = retarget.solve_root_path(rot, guide, FPS)
    feet = sk.forward_kinematics(rot, solved)[0][:, list(sk.CONTACT_INDICES)]
    w = retarget.planted_weights(sk.forward_kinematics(rot, guide)[0][:, list(sk.CONTACT_INDICES)], FPS)
    step = np.linalg.norm(np.diff(feet[..., :2], axis=0), axis=-1)
    planted = np.minimum(w[1:], w[:-1]) > 0.99
    assert planted.any()
    guide_feet = sk.forward_kinematics(rot, guide)[0][:, list(sk.CONTACT_INDICES)]
    guide_step = np.linalg.norm(np.diff(guide_feet[..., :2], axis=0), axis=-1)
    assert step[planted].mean() < 0.5 * guide_step[planted].mean()
    assert np.abs(solved - guide)[:, :2].max() < 0.5


def still_toe_height(poses, trans):
    """Median height of the toe-base joints while they stand still."""
    toes = sk.joint_positions(poses, trans)[:, [J["left_foot"], J["right_foot"]]]
    speed = np.linalg.norm(np.diff(toes, axis=0), axis=-1) * FPS
    return float(np.median(toes[1:, :, 2][speed < mo.CONTACT_SPEED]))


def test_ground_puts_toes_on_the_floor():
    poses, trans = synthetic_smpl(60, FPS)
    out, shift = ground(poses, trans + np.array([0, 0, 3.0]), FPS)
    assert abs(still_toe_height(poses, out) - FOOT_FLOOR_HEIGHT) < 0.01 and shift < -2.0


# ----------------------------------------------------------------------------- Tang 2018 reading and timing


def test_read_dance_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        tang2018.read_dance(tmp_path / "DANCE_C_9")
    poses, trans = synthetic_smpl(20, 25.0)
    folder = write_tang_dance(tmp_path / "DANCE_C_3", poses, trans)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(DataError, match="config.json is not valid JSON"):
        tang2018.read_dance(folder)
    (folder / "config.json").unlink()
    with pytest.raises(DataError, match="lacks config.json"):
        tang2018.read_dance(folder)
    (folder / "config.json").write_text(json.dumps({"start_position": 0, "end_position": 20}))
    (folder / "skeletons.json").write_text(json.dumps({"length": 2, "center": [[0, 0, 0]] * 2,
                                                        "skeletons": [[[0, 0, 0]] * 22] * 2}))
    with pytest.raises(DataError, match=r"skeletons\.json: skeletons has shape"):
        tang2018.read_dance(folder)
    (folder / "audio.mp3").unlink()
    with pytest.raises(DataError, match="lacks audio.mp3"):
        tang2018.read_dance(folder)
    with pytest.raises(DataError, match="no DANCE_"):
        tang2018.dance_folders(tmp_path / "DANCE_C_3")


def test_glitch_repair_restores_a_collapsed_upper_body():
    poses, trans = synthetic_smpl(60, 25.0, seed=3)
    points, _ = tang_points(poses, trans)
    broken = points.copy()
    arms = list(tang2018._ARMS)
    broken[30, arms] = trans[30] + 0.1 * (points[30, arms] - trans[30])  # arms shrink towards the root
    assert tang2018.glitch_frames(broken)[30].any()
    repaired = tang2018.repair_glitches(broken, trans)
    assert np.abs(repaired[30, arms] - points[30, arms]).max() < 0.05
    assert np.allclose(repaired[:25], points[:25])


def test_beat_warp_moves_near_beats_only_and_stays_monotone():
    music = np.arange(0.5, 20, 0.5)
    motion = music[::2] + np.where(np.arange(len(music[::2])) % 2, 0.08, -0.3)  # near ones 80 ms late
    t, d = beats.beat_warp(motion, music, max_shift=0.15, max_rate_change=0.15)
    assert len(t) == (np.abs(motion - np.round(motion * 2) / 2) <= 0.15).sum()
    assert np.allclose(np.abs(d), 0.08, atol=0.03)
    times = np.linspace(0, 20, 2001)
    warped = beats.apply_warp(times, (t, d))
    assert np.all(np.diff(warped) > 0) and np.abs(warped - times).max() <= 0.15 + 1e-9


def test_clock_fit_recovers_a_rate_error_and_the_dance_is_kept(tmp_path):
    bpm, true_rate, fps_src = 120.0, 1.02, 25.0
    n = 1000  # 40 s of dataset time
    # Frame i truly plays at 2.0 + 1.02 i / 25 s: the whole motion moves with that clock (beats at k/2 s).
    poses, trans = synthetic_smpl(n, fps_src / true_rate, seed=4, bpm=bpm)
    # The span claims 25 fps from 2.0 s, but the frames really play 2 % slower.
    folder = write_tang_dance(tmp_path / "DANCE_C_5", poses, trans, start_units=50, end_units=50 + n)
    dance = tang2018.read_dance(folder)
    song = beat_features(50.0, bpm)
    clip, music, report = tang2018.process_dance(dance, song, FPS)
    assert report.clock["rate"] == pytest.approx(true_rate, abs=0.006)
    assert report.kept and report.reason == "aligned"
    assert report.ba_warp >= report.ba_clock > report.ba_span + 0.05
    assert clip.fps == FPS and clip.smpl_poses.shape == (len(music), 72) and clip.contacts.shape == (len(music), 4)
    assert clip.audio_start == pytest.approx(round(clip.audio_start * FPS) / FPS)
    assert abs(clip.duration - (n - 1) / fps_src * true_rate) < 0.5
    assert report.extras["ba_clock_second_half"] > report.extras["ba_span_second_half"]
    pelvis_up = sk.axis_angle_to_matrix(clip.smpl_poses[:, :3])[:, :, 1]  # body y axis in the world
    assert pelvis_up[:, 2].min() > 0.8  # upright in the z-up world
    assert 0.8 < np.median(clip.smpl_trans[:, 2]) < 1.1


# ----------------------------------------------------------------------------- AIST++


def _aist_pkl(path: Path, n=120, scaling=None, drop=None):
    poses, trans = synthetic_smpl(n, 60.0, seed=5)
    # Back to AIST++'s y-up frame: undo the z-up turn of the root and the translation.
    root = sk.axis_angle_to_matrix(poses[:, :3])
    poses = poses.copy()
    poses[:, :3] = sk.matrix_to_axis_angle(sk.Y_UP_TO_Z_UP.T @ root)
    trans_y = trans @ sk.Y_UP_TO_Z_UP
    data = {"smpl_poses": poses, "smpl_trans": trans_y * (scaling or 1.0)}
    if scaling is not None:
        data["smpl_scaling"] = np.array([scaling])
    if drop:
        data.pop(drop)
    path.write_bytes(pickle.dumps(data))
    return poses, trans


def test_aistpp_layout_converts_to_z_up_30fps_with_official_splits(tmp_path):
    root = tmp_path / "aist_plusplus_final"
    (root / "motions").mkdir(parents=True)
    (root / "splits").mkdir()
    (root / "wav").mkdir()
    names = ["gBR_sBM_cAll_d04_mBR0_ch01", "gPO_sBM_cAll_d10_mPO1_ch02", "gHO_sBM_cAll_d19_mHO2_ch03"]
    _, trans = _aist_pkl(root / "motions" / f"{names[0]}.pkl", scaling=93.5)
    _aist_pkl(root / "motions" / f"{names[1]}.pkl")
    _aist_pkl(root / "motions" / f"{names[2]}.pkl")
    for m in ("mBR0", "mPO1", "mHO2"):
        write_wav(root / "wav" / f"{m}.wav", 3.0)
    (root / "splits" / "crossmodal_train.txt").write_text(names[0] + "\n")
    (root / "splits" / "crossmodal_test.txt").write_text(names[1] + "\n")
    (root / "splits" / "ignore_list.txt").write_text(names[2] + "\n")
    clips = aistpp.load_aistpp(root, FPS, log=lambda m: None)
    assert [c.name for c in clips] == names[:2]
    assert [c.split for c in clips] == ["train", "test"]
    c = clips[0]
    assert c.num_frames == 60 and c.style == "break" and c.audio.name == "mBR0.wav"
    pelvis_up = sk.axis_angle_to_matrix(c.smpl_poses[:, :3])[:, :, 1]
    assert pelvis_up[:, 2].min() > 0.8
    # Horizontal travel in metres survives the scaling and the y-up -> z-up turn.
    assert np.allclose(c.smpl_trans[:, :2] - c.smpl_trans[0, :2], trans[::2, :2] - trans[0, :2], atol=2e-3)
    assert abs(still_toe_height(c.smpl_poses, c.smpl_trans) - FOOT_FLOOR_HEIGHT) < 0.01


def test_aistpp_bad_inputs(tmp_path):
    _aist_pkl(tmp_path / "x.pkl", drop="smpl_poses")
    with pytest.raises(DataError, match="x.pkl has no 'smpl_poses'"):
        aistpp.read_motion(tmp_path / "x.pkl")
    (tmp_path / "y.pkl").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="y.pkl is not a readable"):
        aistpp.read_motion(tmp_path / "y.pkl")
    with pytest.raises(DataError, match="no motions/ folder"):
        aistpp.load_aistpp(tmp_path, FPS)


@pytest.mark.skipif(not (SHARED / "aistpp_sample" / "sample.pkl").is_file(), reason="shared data absent")
def test_real_aistpp_sample_stands_upright():
    poses, trans = aistpp.to_world(*aistpp.read_motion(SHARED / "aistpp_sample" / "sample.pkl"))
    up = sk.axis_angle_to_matrix(poses[:, :3])[:, :, 1]
    assert up[:, 2].mean() > 0.8
    joints = sk.joint_positions(poses, trans)
    assert (joints[:, J["head"], 2] - joints[:, J["left_ankle"], 2]).mean() > 1.0  # head above feet


# ----------------------------------------------------------------------------- own folder format


def test_folder_clips_read_resample_and_split(tmp_path):
    poses, trans = synthetic_smpl(60, 60.0)
    np.savez(tmp_path / "take1.npz", fps=np.int32(60), smpl_poses=poses.astype(np.float32),
             smpl_trans=trans.astype(np.float32), audio_start=np.float64(0.5), style=np.array("salsa"))
    write_wav(tmp_path / "take1.wav", 3.0)
    np.savez(tmp_path / "take2.npz", fps=np.int32(30), smpl_poses=poses[:30], smpl_trans=trans[:30],
             contacts=np.ones((30, 4), np.float32))
    write_wav(tmp_path / "take2.wav", 3.0)
    (tmp_path / "test.txt").write_text("take2\n")
    clips = folder.load_folder(tmp_path, FPS)
    assert [(c.name, c.split, c.style) for c in clips] == [("take1", "train", "salsa"), ("take2", "test", "custom")]
    assert clips[0].num_frames == 30 and clips[0].audio_start == 0.5
    assert (clips[1].contacts == 1).all()
    (tmp_path / "take2.wav").unlink()
    with pytest.raises(DataError, match="take2.npz has no music beside it"):
        folder.load_folder(tmp_path, FPS)
    np.savez(tmp_path / "bad.npz", fps=np.int32(30), smpl_trans=trans)
    with pytest.raises(DataError, match="bad.npz has no 'smpl_poses'"):
        folder.read_clip(tmp_path / "bad.npz", FPS)
    assert folder.default_split("a") in ("train", "test")


# ----------------------------------------------------------------------------- augmentation


def _motion(seed=0, n=40):
    poses, trans = synthetic_smpl(n, FPS, seed=seed)
    return mo.from_smpl(poses, trans, FPS)


def _joints(x):
    _, trans, rot6d = mo.unpack(x.astype(np.float64))
    return sk.forward_kinematics(sk.rot6d_to_matrix(rot6d), trans)[0]


def test_mirroring_twice_is_the_identity_and_reflects_the_body():
    x = _motion()
    assert np.allclose(augment.mirror_motion(augment.mirror_motion(x)), x, atol=1e-6)
    mirrored = _joints(augment.mirror_motion(x))
    reflected = _joints(x)[:, list(sk.MIRROR_INDICES)] * np.array([-1.0, 1.0, 1.0])
    assert np.abs(mirrored - reflected).max() < 0.03  # SMPL's rest skeleton is only nearly symmetric
    assert np.array_equal(augment.mirror_motion(x)[:, mo.CONTACTS], x[:, [1, 0, 3, 2]])
    poses, trans = synthetic_smpl(40, FPS)
    p2, t2, _ = augment.mirror_smpl(poses, trans)
    assert np.allclose(mo.from_smpl(p2, t2, FPS)[:, 4:], augment.mirror_motion(x)[:, 4:], atol=1e-5)


def test_heading_turn_keeps_heights_and_distances():
    x = _motion(1)
    turned = augment.rotate_heading(x, 1.234)
    a, b = _joints(x), _joints(turned)
    assert np.allclose(a[..., 2], b[..., 2], atol=1e-5)
    da = np.linalg.norm(a[:, :, None, :2] - a[:, None, :, :2], axis=-1)
    db = np.linalg.norm(b[:, :, None, :2] - b[:, None, :, :2], axis=-1)
    assert np.allclose(da, db, atol=1e-5)
    batch = np.stack([x, x])
    out = augment.rotate_heading(batch, np.array([0.0, np.pi]))
    assert np.allclose(out[0], x, atol=1e-6)
    assert np.allclose(out[1, :, 4:6], -x[:, 4:6], atol=1e-5)


# ----------------------------------------------------------------------------- cache and windows


def _dance_dict(name, split, n, seed, source=None):
    poses, trans = synthetic_smpl(n, FPS, seed=seed)
    rng = np.random.default_rng(seed)
    return {"name": name, "style": "test", "split": split, "source": source or name,
            "smpl_poses": poses.astype(np.float32), "smpl_trans": trans.astype(np.float32),
            "contacts": (rng.random((n, 4)) > 0.5).astype(np.float32),
            "music": rng.normal(size=(n, 35)).astype(np.float32), "audio": f"{name}.wav", "audio_start": 1.5}


def test_cache_round_trip_and_windows(tmp_path):
    config = M2DConfig(window_frames=40)
    dances = [_dance_dict("a", "train", 100, 0), _dance_dict("b", "test", 90, 1), _dance_dict("c", "train", 30, 2)]
    path = cache.write_cache(tmp_path / "c.npz", dances, config, report={"note": "x"})
    loaded = cache.DanceCache(path)
    assert [d.name for d in loaded.dances] == ["a", "b", "c"] and loaded.report == {"note": "x"}
    assert loaded.frames("train") == 130 and loaded.frames("test") == 90
    for d, src in zip(loaded.dances, dances):
        assert np.allclose(d.smpl_poses, src["smpl_poses"]) and d.contacts.dtype == np.uint8
        assert np.allclose(d.music, src["music"], atol=1e-2)
    sampler = cache.WindowSampler(loaded, config)
    assert [d.name for d in sampler.dances] == ["a"]  # c is shorter than a window; b is held out
    motion, music, _ = sampler.sample(8, np.random.default_rng(0))
    assert motion.shape == (8, 40, 151) and music.shape == (8, 40, 35) and motion.dtype == np.float32
    assert np.allclose(motion[:, 0, mo.ROOT_XY], 0.0, atol=1e-6)
    val = sampler.validation()
    assert val[0].shape[1:] == (40, 151) and len(val[0]) == 3  # starts 0, 20, 40 of dance b
    plain = cache.WindowSampler(loaded, config, augment=False)
    m1, _, _ = plain.sample(2, np.random.default_rng(5))
    m2, _, _ = plain.sample(2, np.random.default_rng(5))
    assert np.array_equal(m1, m2)
    with pytest.raises(DataError, match="hop_length 512 \\(model: 256\\)"):
        cache.WindowSampler(loaded, config.replace(hop_length=256))


def test_unmeasured_joints_are_nan_in_windows_and_mirror_to_the_other_side(tmp_path):
    config = M2DConfig(window_frames=40)
    path = cache.write_cache(tmp_path / "c.npz", [_dance_dict("a", "train", 100, 0)], config,
                             report={"kind": "tang2018"})
    loaded = cache.DanceCache(path)
    assert cache.unmeasured_joints(loaded) == ("right_wrist",)
    assert cache.unmeasured_joints(cache.DanceCache(cache.write_cache(
        tmp_path / "d.npz", [_dance_dict("a", "train", 100, 0)], config, report={"kind": "aistpp"}))) == ()
    sampler = cache.WindowSampler(loaded, config, unmeasured=("right_wrist",))
    motion, _, _ = sampler.sample(64, np.random.default_rng(0))
    right, left = mo.rotation_dims(sk.JOINT_INDEX["right_wrist"]), mo.rotation_dims(sk.JOINT_INDEX["left_wrist"])
    on_right, on_left = np.isnan(motion[..., right]).all((1, 2)), np.isnan(motion[..., left]).all((1, 2))
    assert (on_right ^ on_left).all() and 10 < on_left.sum() < 54  # mirrored windows carry it to the left
    assert np.isnan(motion).sum() == 64 * 40 * 6  # nothing else
    plain = cache.WindowSampler(loaded, config, augment=False, unmeasured=("right_wrist",))
    assert np.isnan(plain.sample(4, np.random.default_rng(0))[0][..., right]).all()
    assert not np.isnan(sampler.validation()[0]).any() if sampler.validation() else True


def test_splits_never_share_a_dance(tmp_path):
    config = M2DConfig()
    dances = [_dance_dict("a", "train", 20, 0), _dance_dict("a@x1.05", "test", 20, 1, source="a")]
    with pytest.raises(DataError, match="both the train and the test"):
        cache.write_cache(tmp_path / "c.npz", dances, config)
    assert not (tmp_path / "c.npz").exists()
    styles = {n.split("_")[1] for n in splits.TANG2018_TEST}
    assert styles == {"C", "R", "W"} and splits.tang2018_split("DANCE_W_22") == "test"
    assert splits.tang2018_split("DANCE_W_1") == "train"


def test_bad_cache_files(tmp_path):
    with pytest.raises(DataError, match="Cache file not found"):
        cache.DanceCache(tmp_path / "none.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(DataError, match="is not a music2dance-cache/1 cache"):
        cache.DanceCache(tmp_path / "other.npz")


def test_preprocess_uses_the_decodable_part_of_a_truncated_song_or_skips_the_dance(tmp_path):
    """Like DANCE_R_6's audio.mp3 (only 4:09 of 4:13 decode): a dance whose span lies within the part
    that decodes is kept on it; one whose span runs past it is skipped with a warning naming why."""
    from inference.training.data.preprocess import build_cache

    song = write_wav(tmp_path / "song.wav", 30.0, sr=44100)
    y, sr = sf.read(song, dtype="float32")
    sf.write(tmp_path / "song.mp3", y, sr, format="MP3")
    data = (tmp_path / "song.mp3").read_bytes()
    (tmp_path / "cut.mp3").write_bytes(data[:int(len(data) * 0.6)])  # about 18 of 30 s decode
    root = tmp_path / "tang"
    poses, trans = synthetic_smpl(250, 25.0, seed=2)  # 10 s
    write_tang_dance(root / "DANCE_C_1", poses, trans, start_units=50, audio=tmp_path / "cut.mp3")  # 2-12 s
    write_tang_dance(root / "DANCE_C_3", poses, trans, start_units=300, audio=tmp_path / "cut.mp3")  # 12-22 s
    lines = []
    summary = build_cache("tang2018", root, tmp_path / "c.npz", keep_unaligned=True, log=lines.append)
    assert [d["name"] for d in summary["dropped"]] == ["DANCE_C_3"]
    assert "truncated audio" in summary["dropped"][0]["reason"]
    assert any(line.startswith("WARNING: DANCE_C_3 SKIPPED") and "decode" in line for line in lines)
    assert any("is truncated" in line for line in lines)
    assert len(summary["truncated_audio"]) == 2  # each folder's copy
    for seconds in summary["truncated_audio"].values():
        assert 15 < seconds["decodable_s"] < 20 and seconds["file_s"] == pytest.approx(30.0, abs=0.1)
    loaded = cache.DanceCache(tmp_path / "c.npz")
    assert [d.name for d in loaded.dances] == ["DANCE_C_1"] and loaded.dances[0].num_frames > 200


def test_preprocess_folder_end_to_end_through_the_subcommand(tmp_path):
    from inference.training.data.preprocess import add_subcommand

    src = tmp_path / "clips"
    src.mkdir()
    poses, trans = synthetic_smpl(150, FPS)
    np.savez(src / "take.npz", fps=np.int32(FPS), smpl_poses=poses, smpl_trans=trans)
    write_wav(src / "take.wav", 6.0)
    parser = argparse.ArgumentParser()
    add_subcommand(parser.add_subparsers(dest="command"))
    out, report = tmp_path / "cache.npz", tmp_path / "report.json"
    args = parser.parse_args(["preprocess", "folder", str(src), "-o", str(out), "--report", str(report)])
    assert args.func(args) == 0
    loaded = cache.DanceCache(out)
    (dance,) = loaded.dances
    assert dance.num_frames == 150 and dance.music.shape == (150, 35) and dance.music.dtype == np.float16
    assert np.nonzero(dance.music[:, -1])[0].size > 3  # beats found in the clicks
    assert json.loads(report.read_text())["dances"] == 1
    bad = parser.parse_args(["preprocess", "folder", str(tmp_path / "missing"), "-o", str(out)])
    with pytest.raises(DataError, match="Clip folder not found"):
        bad.func(bad)


def test_real_tang_dance_sides_and_retarget_error():
    dance = tang2018.read_dance(SHARED / "tang2018" / "DANCE_C_2")
    lm = dance.landmarks(smoothing_seconds=0.0)
    assert tang2018.left_side_agreement(lm) > 0.9
    scale = retarget.source_scale(lm["root"], np.stack([lm["left_toe"], lm["right_toe"]], 1))
    assert 0.9 < scale < 1.2
    err = retarget.retarget_error(retarget.fit_rotations(lm, scale), lm, scale)
    assert err["mean"] < 0.09


def test_spike_repair_bridges_out_and_back_glitches_only():
    from inference.training.data.clip import repair_spikes

    n = 60
    poses = np.zeros((n, 72))
    poses[:, :3] = sk.Y_UP_TO_Z_UP_AXIS_ANGLE
    trans = np.stack([np.linspace(0, 1, n), np.zeros(n), np.full(n, 0.9)], 1)
    glitched = trans.copy()
    glitched[20:22, 2] = 0.35  # the body drops half a metre for two frames and comes back
    glitched[40:, 2] -= 0.3  # a real (if fast) change that stays: not a glitch
    p, t, repaired = repair_spikes(poses, glitched, 30.0)
    assert repaired == 2
    np.testing.assert_allclose(t[20:22], trans[20:22], atol=1e-9)
    np.testing.assert_allclose(t[40:], glitched[40:])
