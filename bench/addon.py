"""Benchmarks of the Blender extension: keyframe writing, and how long the interface is ever blocked.

    python bench/addon.py                 # Blender 4.5 (the .venv's bpy)
    .venv-bpy5/bin/python bench/addon.py  # Blender 5.0

1. **Keys**: one take of 60 s × 24 joints (+ root location) at 30 fps, written by
   the extension's bridge (slotted action API, ``keyframe_points.add`` +
   ``foreach_set``) and by a ``keyframe_insert`` loop, side by side; target ratio ≥ 20×.
2. **Blocking**: a generation along the panel's non-blocking path (plan and start,
   then a poll every 0.1 s as the modal operator's timer does, then applying the
   result), with the longest single piece of main-thread work; target < 100 ms.
   The engine runs a tiny random network (the figure is about the main thread,
   not the network), on songs of 30 s and 60 s at 30 and 60 fps.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TMP = Path(tempfile.mkdtemp(prefix="m2d-bench-"))
os.environ["BLENDER_USER_RESOURCES"] = str(TMP / "blender-user")
os.environ["XDG_CACHE_HOME"] = str(TMP / "cache")
os.environ.setdefault("NUMBA_CACHE_DIR", str(REPO / "cache" / "numba"))
sys.path.insert(0, str(REPO))

import bpy  # noqa: E402
import numpy as np  # noqa: E402

ADDON = "bl_ext.user_default.music2dance"
SECONDS, FPS = 60.0, 30


def install():
    import torch

    from inference.config import TINY_CONFIG
    from inference.network.model import DanceDenoiser
    from inference.network.weights import save_model
    from tools.build_extension import build

    bpy.ops.extensions.package_install_files(filepath=str(build(TMP / "dist")), repo="user_default",
                                             enable_on_install=True)
    torch.manual_seed(0)
    prefs = bpy.context.preferences.addons[ADDON].preferences
    prefs.weights_path = str(save_model(DanceDenoiser(TINY_CONFIG), TMP / "weights"))


def module(name):
    return sys.modules[f"{ADDON}.m2d_addon.{name}"]


def fresh_scene(fps=30):
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = fps, 1.0
    return scene


def bench_keys() -> None:
    from inference import skeleton as sk

    bridge, rig = module("bridge"), module("rig")
    scene = fresh_scene(FPS)
    arm = rig.create_armature(bpy.context)
    frames = np.arange(1, int(SECONDS * FPS) + 1)
    rng = np.random.default_rng(0)
    quats = sk.quat_continuous(sk.quat_normalize(rng.normal(size=(len(frames), 24, 4))), axis=0)
    loc = rng.normal(size=(len(frames), 3)) * 0.1

    t = time.perf_counter()
    action = bridge.write_action(arm, "Fast", frames, quats, loc)
    bridge.assign_action(arm, action)
    fast = time.perf_counter() - t

    arm.animation_data.action = None
    pose = arm.pose.bones
    t = time.perf_counter()
    for i, frame in enumerate(frames):
        for j, name in enumerate(sk.JOINT_NAMES):
            pb = pose[name]
            pb.rotation_quaternion = quats[i, j]
            pb.keyframe_insert("rotation_quaternion", frame=float(frame), group=name)
        pose[sk.JOINT_NAMES[0]].location = loc[i]
        pose[sk.JOINT_NAMES[0]].keyframe_insert("location", frame=float(frame), group=sk.JOINT_NAMES[0])
    slow = time.perf_counter() - t
    keys = len(frames) * (24 * 4 + 3)
    print(f"Keys, {SECONDS:.0f} s x 24 joints at {FPS} fps ({keys} keys on 99 F-curves):")
    print(f"  foreach_set (bridge.write_action): {fast * 1000:8.1f} ms")
    print(f"  keyframe_insert loop:              {slow * 1000:8.1f} ms")
    print(f"  ratio: {slow / fast:.0f}x (target >= 20x)")
    del scene


def write_song(path, seconds):
    import soundfile as sf

    sr = 22050
    t = np.arange(int(seconds * sr)) / sr
    y = 0.3 * np.exp(-((t % 0.5) * 40.0)) * np.sin(2 * np.pi * 1000 * t) + 0.1 * np.sin(2 * np.pi * 110 * t)
    sf.write(str(path), y.astype(np.float32), sr)
    return path


def bench_blocking(seconds: float, fps: int) -> dict:
    """One generation along the modal path; the longest main-thread step of each kind, in ms."""
    generation, jobs = module("generation"), module("jobs")
    scene = fresh_scene(fps)
    scene.m2d.steps = 8
    scene.sequence_editor_create().strips.new_sound("Song", str(write_song(TMP / f"song{seconds}.wav", seconds)),
                                                   channel=1, frame_start=1)
    prefs = bpy.context.preferences.addons[ADDON].preferences
    t = time.perf_counter()
    plan = generation.make_plan(bpy.context)
    run = generation.Generation(plan, prefs.python_path).start()
    start_ms = (time.perf_counter() - t) * 1000
    ticks = []
    while True:
        time.sleep(0.1)  # the modal operator's timer interval
        t = time.perf_counter()
        finished = run.poll()
        ticks.append((time.perf_counter() - t) * 1000)
        if finished:
            break
    assert run.error is None, run.error
    t = time.perf_counter()
    run.finish(bpy.context)
    apply_ms = (time.perf_counter() - t) * 1000
    run.close()
    jobs.SESSION.release(True)
    return {"start": start_ms, "poll": max(ticks), "ticks": len(ticks), "apply": apply_ms,
            "frames": plan.frames.last - plan.frames.first + 1}


def bench_one_tick_apply(seconds: float, fps: int) -> float:
    """For comparison: everything after the engine in one main-thread step (as a blocking script does)."""
    generation, jobs = module("generation"), module("jobs")
    scene = fresh_scene(fps)
    scene.m2d.steps = 8
    scene.sequence_editor_create().strips.new_sound("Song", str(TMP / f"song{seconds}.wav"), channel=1,
                                                   frame_start=1)
    run = generation.Generation(generation.make_plan(bpy.context), "").start()
    while not run.engine_done:
        run.results.append(run.job.wait())
    t = time.perf_counter()
    run.keys = module("bridge").prepare_keys(*run._prepare_args())
    run.writer = module("bridge").ActionWriter("Dance", "Dancer", run.keys)
    run.writer.step()
    run.finish(bpy.context)
    ms = (time.perf_counter() - t) * 1000
    run.close()
    jobs.SESSION.release(True)
    return ms


def main() -> int:
    import addon_utils

    print(f"Blender {bpy.app.version_string}, Python {sys.version.split()[0]}")
    install()
    try:
        bench_keys()
        print("Main-thread blocking along the panel's path (longest single step):")
        bench_blocking(6.0, 30)  # starts the engine process and warms it up; not reported
        for seconds, fps in ((30.0, 30), (60.0, 30), (60.0, 60)):
            r = bench_blocking(seconds, fps)
            worst = max(r["start"], r["poll"], r["apply"])
            single = bench_one_tick_apply(seconds, fps)
            print(f"  {seconds:.0f} s song at {fps} fps ({r['frames']} frames): start {r['start']:.1f} ms, "
                  f"longest of {r['ticks']} timer polls {r['poll']:.1f} ms, final apply (new rig, assign) "
                  f"{r['apply']:.1f} ms -> longest block {worst:.1f} ms (target < 100 ms); "
                  f"all in one step it would be {single:.0f} ms")
    finally:
        addon_utils.disable(ADDON, default_set=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
