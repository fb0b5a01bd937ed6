"""The retarget's quality bar, per rig: the shipped model's dance on characters the bench builds itself.

    python bench/retarget.py                      # 20 s dance for the bar, 60 s for the timing
    python bench/retarget.py --seconds 10 --timing-seconds 30

Rigs: a real Rigify rig (Blender's bundled Rigify add-on, from its human metarig) and
Mixamo-, Unreal- and VRM-named armatures in T and A pose, with other proportions than
SMPL's, rolled bones and an FBX-style armature scaled 0.01 with y-up bones
(tests/humanoids.py). For each, as Blender evaluates the keyed character on every frame:

* limb directions (upper arms, forearms, thighs, shins, and the spine: hips to neck)
  against the SMPL dance's: mean and max angle (bar: mean <= 3 degrees, max <= 10);
* foot skating (the project's measure, inference/evaluation/metrics.foot_skating, on the
  character's ankle and ball heads) against the SMPL dance's (bar: <= + 0.02). The measure's
  thresholds are SMPL-sized (5 cm, 0.5 m/s) and the hips travel scaled by leg length, so the
  character is measured at SMPL's size (its positions divided by that scale; "skate"); in
  metres as it stands ("skate m") the measure counts a tall character's ordinary steps as slides;
* the lowest foot point (ankle, ball, toe tip) against the character's floor (bar: >= -1 cm);
* main-thread time to retarget 60 s (reading the armature, writing the keys; the transfer
  itself runs on a thread) (bar: < 1 s), and the thread's time.

The dance is made once by the engine (CPU) and kept in cache/bench/ (git-ignored).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TMP = Path(tempfile.mkdtemp(prefix="m2d-bench-retarget-"))
os.environ["BLENDER_USER_RESOURCES"] = str(TMP / "blender-user")
os.environ["XDG_CACHE_HOME"] = str(TMP / "cache")
os.environ.setdefault("NUMBA_CACHE_DIR", str(REPO / "cache" / "numba"))
sys.path[:0] = [str(REPO), str(REPO / "tests" / "addon")]

import bpy  # noqa: E402
import numpy as np  # noqa: E402

ADDON = "bl_ext.user_default.music2dance"
LIMBS = {"upper arm": [("left_shoulder", "left_elbow"), ("right_shoulder", "right_elbow")],
         "forearm": [("left_elbow", "left_wrist"), ("right_elbow", "right_wrist")],
         "thigh": [("left_hip", "left_knee"), ("right_hip", "right_knee")],
         "shin": [("left_knee", "left_ankle"), ("right_knee", "right_ankle")],
         "spine": [("pelvis", "neck")]}


def dance(seconds: float, seed: int) -> Path:
    """The shipped model's dance of the demo track's first ``seconds``, made once."""
    path = REPO / "cache" / "bench" / f"retarget-demo-{seconds:g}s-seed{seed}.npz"
    if not path.is_file():
        from inference.generate import DanceGenerator

        path.parent.mkdir(parents=True, exist_ok=True)
        DanceGenerator(REPO / "weights", device="cpu").generate(
            str(REPO / "assets" / "demo_track.ogg"), duration=seconds, seed=seed).save(path)
    return path


def install():
    from tools.build_extension import build

    bpy.ops.extensions.package_install_files(filepath=str(build(TMP / "dist")), repo="user_default",
                                             enable_on_install=True)


def module(name):
    return sys.modules[f"{ADDON}.m2d_addon.{name}"]


def rigs_to_test():
    import rigs

    return [
        ("Rigify (generated)", lambda: rigs.rigify(TMP)),
        ("Mixamo T", lambda: rigs.create(rigs.build("MIXAMO", prefix="mixamorig:"))),
        ("Mixamo A, 0.01, y-up, rolled", lambda: rigs.create(rigs.centimetres_y_up(
            rigs.build("MIXAMO", pose="A", roll=1.5, leg=1.1, arm=0.9, prefix="mixamorig:")))),
        ("UE5 T", lambda: rigs.create(rigs.build("UE5", leg=1.05))),
        ("UE5 A, rolled, long thighs", lambda: rigs.create(rigs.build("UE5", pose="A", roll=1.5, leg=1.15,
                                                                      knee=1.15))),
        ("VRM T", lambda: rigs.create(rigs.build("VRM", torso=0.85, leg=0.9))),
        ("VRM A, short legs, Euler", lambda: rigs.create(rigs.build("VRM", pose="A", leg=0.8, torso=0.9),
                                                         rotation_mode="YXZ")),
        ("Blender metarig", lambda: rigs.create(rigs.build("METARIG", pose="A"))),
    ]


def keys_for(obj, npz: Path, fps: float):
    """What Generate Dance does after the engine, timed: (keys, main-thread seconds, thread seconds)."""
    from inference.dance import Dance

    character, bridge, generation = module("character"), module("bridge"), module("generation")
    d = Dance.load(npz)
    frames = np.arange(1, d.num_frames + 1)
    seconds = d.audio_start + (frames - 1) / fps
    t = time.perf_counter()
    retarget = character.retarget_for(obj)  # main thread: read the armature, find the bone map
    main = time.perf_counter() - t
    t = time.perf_counter()
    poses, trans = bridge.sample_at_times(d, seconds)
    contacts = character.sample_contacts(d.contacts, d.fps, d.audio_start, seconds)
    keys = character.character_keys(retarget, character.family_of(retarget.bone_map), frames, poses, trans,
                                    contacts, fps, d.audio_start)
    thread = time.perf_counter() - t
    t = time.perf_counter()
    current = obj.animation_data.action if obj.animation_data else None
    writer = bridge.SplicedTakeWriter("Dance", obj.name, keys, current, keep_outside=False)
    writer.step()
    character.store_map(obj, retarget.bone_map)
    generation.add_take(obj, writer.action())
    main += time.perf_counter() - t
    return retarget, main, thread


def measure(obj, retarget, npz: Path, fps: float) -> dict:
    from inference import skeleton as sk
    from inference.evaluation import metrics
    from inference.retarget.rotations import angle_between

    d = np.load(npz)
    joints = d["joints"]
    names = retarget.character.bone_names
    mapped = {j: names[b] for j, b in zip(retarget.joints, retarget.bones)}
    order = list(mapped)
    scene = bpy.context.scene
    heads = np.empty((len(joints), len(order), 3))
    tips = np.empty((len(joints), 2, 3))
    toe = [mapped.get(j) for j in ("left_foot", "right_foot")]
    for f in range(len(joints)):
        scene.frame_set(f + 1)
        m = np.array(obj.matrix_world)
        pose = obj.pose.bones
        heads[f] = np.array([pose[mapped[j]].head for j in order]) @ m[:3, :3].T + m[:3, 3]
        tip_bones = [t or mapped[a] for t, a in zip(toe, ("left_ankle", "right_ankle"))]
        tips[f] = np.array([pose[b].tail for b in tip_bones]) @ m[:3, :3].T + m[:3, 3]
    at = {j: i for i, j in enumerate(order)}
    row = {}
    for limb, pairs in LIMBS.items():
        angles = np.concatenate([np.degrees(angle_between(heads[:, at[b]] - heads[:, at[a]],
                                                          joints[:, sk.JOINT_INDEX[b]] - joints[:, sk.JOINT_INDEX[a]]))
                                 for a, b in pairs if a in at and b in at])
        row[limb] = (angles.mean(), angles.max())
    feet = np.zeros_like(joints)
    for j in ("left_ankle", "right_ankle", "left_foot", "right_foot"):
        feet[:, sk.JOINT_INDEX[j]] = heads[:, at[j]] if j in at else heads[:, at[j.replace("foot", "ankle")]]
    row["skating"] = metrics.foot_skating(feet / retarget.scale, fps)
    row["skating m"] = metrics.foot_skating(feet, fps)
    row["skating smpl"] = metrics.foot_skating(joints, fps)
    points = [heads[:, at[j]] for j in ("left_ankle", "right_ankle", "left_foot", "right_foot") if j in at]
    row["lowest"] = min(np.stack(points + [tips[:, 0], tips[:, 1]])[..., 2].min() - retarget.sole, 0.0)
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="the dance the bar is measured on")
    parser.add_argument("--timing-seconds", type=float, default=60.0, help="the dance the timing uses")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    fps = 30.0
    bar_npz, timing_npz = dance(args.seconds, args.seed), dance(args.timing_seconds, args.seed)
    install()
    print(f"Shipped model, demo track, seed {args.seed}: bar on {args.seconds:g} s, timing on "
          f"{args.timing_seconds:g} s at {fps:g} fps. Angles in degrees (mean/max), lowest foot in cm.")
    head = (f"{'rig':30s} " + " ".join(f"{k:>11s}" for k in LIMBS)
            + f" {'scale':>5s} {'skate':>6s} {'skate m':>7s} {'smpl+.02':>8s} {'lowest':>7s} {'main ms':>8s}"
            + f" {'thread ms':>9s}  bar")
    print(head)
    print("-" * len(head))
    for label, make in rigs_to_test():
        bpy.ops.wm.read_homefile(use_empty=True)
        bpy.context.scene.render.fps = int(fps)
        obj = make()
        _, main_s, thread_s = keys_for(obj, timing_npz, fps)  # 60 s: the timing
        obj.animation_data.action = None
        obj.m2d.takes.clear()
        retarget, _, _ = keys_for(obj, bar_npz, fps)  # 20 s: the bar
        row = measure(obj, retarget, bar_npz, fps)
        ok = (all(m <= 3.0 and x <= 10.0 for m, x in (row[k] for k in LIMBS))
              and row["skating"] <= row["skating smpl"] + 0.02 and row["lowest"] >= -0.01 and main_s < 1.0)
        print(f"{label:30s} " + " ".join(f"{row[k][0]:5.2f}/{row[k][1]:5.2f}" for k in LIMBS)
              + f" {retarget.scale:5.2f} {row['skating']:6.3f} {row['skating m']:7.3f}"
            + f" {row['skating smpl'] + 0.02:8.3f} {100 * row['lowest']:7.2f}"
              + f" {1000 * main_s:8.0f} {1000 * thread_s:9.0f}  {'meets' if ok else 'MISSES'}", flush=True)
    import addon_utils

    addon_utils.disable(ADDON, default_set=True)
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)  # a bpy process with registered classes can hang at exit
