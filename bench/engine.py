"""Engine benchmark: speed against a plain EDGE-style loop, real-time factor, linearity, memory.

The engine runs at its default settings (the model's sampler and steps); the reference loop
is EDGE's: 50 DDIM steps. The engine with 50 DDIM steps is timed beside both, so the gain
from the sampler and the gain per step show apart.

Linearity is measured twice: for the sampler, and for the steps after it on whole dances.

Run from the repository root::

    python bench/engine.py            # all measurements, CPU (and CUDA when present)
    python bench/engine.py --quick    # shorter songs, fewer repeats

Everything is measured side by side in one run and printed as ratios; nothing
here is a pass/fail test (shared machines are noisy). Uses the shipped model in
weights/ when it exists, else a randomly initialised network of the shipped size
(speed does not depend on the weight values).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from inference.config import DDIM, PRESETS  # noqa: E402
from inference.generate import DanceGenerator  # noqa: E402
from inference.network.model import DanceDenoiser  # noqa: E402
from inference.network.weights import WeightsError, load_model, save_model  # noqa: E402
from inference.sampling.diffusion import cosine_alpha_bar, ddim_timesteps  # noqa: E402
from inference.sampling.sampler import plan_windows, sample_dance  # noqa: E402


def shipped_model(device) -> tuple[DanceDenoiser, str]:
    try:
        return load_model(None, device), "shipped weights"
    except WeightsError:
        torch.manual_seed(0)
        return DanceDenoiser(PRESETS["small"]).to(device).eval(), "random weights, 'small' preset"


def music_features(seconds: float, config, seed: int = 0) -> np.ndarray:
    """Plausible features without audio decoding (the sampler's cost does not depend on their values)."""
    rng = np.random.default_rng(seed)
    frames = int(seconds * config.fps)
    music = rng.normal(size=(frames, config.music_dim)).astype(np.float32)
    music[:, -1] = (np.arange(frames) % 15 == 0)
    return music


@torch.no_grad()
def reference_loop(model: DanceDenoiser, music: np.ndarray, steps: int, guidance: float, seed: int = 0):
    """A plain EDGE-equivalent sampler: windows one at a time, guidance as two forward passes,
    music re-encoded at every step, fp32, each window's first half inpainted from the one before.
    """
    cfg = model.config
    device = model.motion_mean.device
    plan = plan_windows(len(music), cfg.window_frames)
    padded = np.zeros((plan.padded_frames, cfg.music_dim), np.float32)
    padded[: len(music)] = music
    alpha_bar = cosine_alpha_bar(cfg.diffusion_steps).float()
    timesteps = ddim_timesteps(cfg.diffusion_steps, steps)
    gen = torch.Generator().manual_seed(seed)
    previous = None
    for start in plan.starts:
        m = torch.as_tensor(padded[start:start + cfg.window_frames])[None].to(device)
        x = torch.randn((1, cfg.window_frames, cfg.motion_dim), generator=gen).to(device)
        for i, t in enumerate(timesteps):
            tt = torch.full((1,), t, dtype=torch.long, device=device)
            cond = model(x, tt, model.encode_music(m))
            uncond = model(x, tt, model.null_tokens(1, cfg.window_frames))
            x0 = uncond + guidance * (cond - uncond)
            a_t = float(alpha_bar[t])
            a_prev = float(alpha_bar[timesteps[i + 1]]) if i + 1 < len(timesteps) else 1.0
            eps = (x - math.sqrt(a_t) * x0) / math.sqrt(1 - a_t)
            x = math.sqrt(a_prev) * x0 + math.sqrt(1 - a_prev) * eps
            if previous is not None and i + 1 < len(timesteps):
                noise = torch.randn(x[:, : plan.hop].shape, generator=gen).to(device)
                x[:, : plan.hop] = math.sqrt(a_prev) * previous + math.sqrt(1 - a_prev) * noise
        previous = x0[:, plan.hop:]
    return x0


def interleaved(fns: dict, repeats: int) -> dict:
    """Best wall time of each function, runs interleaved (a, b, a, b, ...) so load swings hit all alike."""
    best = {k: math.inf for k in fns}
    for _ in range(repeats):
        for key, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[key] = min(best[key], time.perf_counter() - t0)
    return best


REFERENCE_STEPS = 50
"""EDGE's DDIM steps: the reference loop's, and the engine's DDIM beside it."""
SAMPLER = None
"""The engine's sampler for "ours" (``--sampler``; None: the model's)."""


def speed(device, seconds: float, repeats: int) -> dict:
    model, source = shipped_model(device)
    cfg = model.config
    sampler, steps = cfg.sampling(SAMPLER)
    music = music_features(seconds, cfg)
    best = interleaved({"ours": lambda: sample_dance(model, music, sampler=SAMPLER, seed=0),
                        "ours_ddim": lambda: sample_dance(model, music, sampler=DDIM, steps=REFERENCE_STEPS, seed=0),
                        "reference": lambda: reference_loop(model, music, REFERENCE_STEPS, cfg.guidance)}, repeats)
    ours, ddim, ref = best["ours"], best["ours_ddim"], best["reference"]
    return {"device": str(device), "model": source, "width": cfg.width, "depth": cfg.depth,
            "song_s": seconds, "sampler": sampler, "steps": steps, "guidance": cfg.guidance,
            "ours_s": round(ours, 2), "ours_ddim_s": round(ddim, 2), "reference_s": round(ref, 2),
            "speedup_vs_reference": round(ref / ours, 2), "ddim_speedup_vs_reference": round(ref / ddim, 2),
            "realtime_factor": round(seconds / ours, 2)}


def end_to_end(device, audio: Path) -> dict:
    """Audio file to dance, as the CLI does it (features included), at default settings."""
    try:
        gen = DanceGenerator(device=str(device))
        source = "shipped weights"
    except WeightsError:
        tmp = ROOT / "out" / "bench-model"
        torch.manual_seed(0)
        save_model(DanceDenoiser(PRESETS["small"]), tmp)
        gen, source = DanceGenerator(tmp, device=str(device)), "random weights, 'small' preset"
    gen.generate(audio, duration=5.0, sampler=SAMPLER)  # warm-up: numba kernels, first allocations
    t0 = time.perf_counter()
    dance = gen.generate(audio, sampler=SAMPLER)
    took = time.perf_counter() - t0
    return {"device": str(device), "model": source, "audio": audio.name, "song_s": round(dance.duration, 1),
            "seconds": round(took, 2), "realtime_factor": round(dance.duration / took, 2)}


def linearity(device, lengths, repeats: int) -> list[dict]:
    model, _ = shipped_model(device)
    songs = {seconds: music_features(seconds, model.config) for seconds in lengths}
    best = interleaved({seconds: (lambda m=m: sample_dance(model, m, sampler=SAMPLER, seed=0))
                        for seconds, m in songs.items()},
                       repeats)
    return [{"song_s": seconds, "seconds": round(took, 2), "seconds_per_song_second": round(took / seconds, 4)}
            for seconds, took in best.items()]


def finishing(device, lengths) -> list[dict]:
    """Whole dances through the generator at default settings, timing what follows sampling.

    Settling, the limits, beat snap, foot lock and forward kinematics run once per dance after
    the sampler; a step among them that grows faster than the song does only shows on long songs.
    """
    try:
        gen = DanceGenerator(device=str(device))
    except WeightsError:  # the random-weights stand-in would not dance: nothing to time after sampling
        return []
    rows = []
    for seconds in lengths:
        stamps = {}

        def progress(stage, done, total):
            stamps.setdefault(stage, time.perf_counter())

        music = music_features(seconds, gen.config)
        t0 = time.perf_counter()
        gen.generate_from_features(music, seed=0, progress=progress)
        end = time.perf_counter()
        rows.append({"song_s": seconds, "sampling_s": round(stamps["finishing"] - t0, 2),
                     "finishing_s": round(end - stamps["finishing"], 3),
                     "finishing_per_song_second": round((end - stamps["finishing"]) / seconds, 5)})
    return rows


def _peak_child(seconds: float) -> dict:
    """Run one generation in this (fresh) process and report its memory."""
    model, _ = shipped_model(torch.device("cpu"))
    music = music_features(seconds, model.config)
    sample_dance(model, music[: model.config.window_frames], steps=2, seed=0)  # allocator warm-up
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sample_dance(model, music, steps=2, seed=0)  # memory does not depend on the step count
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"song_s": seconds, "peak_rss_mb": round(peak / 1024, 1), "above_baseline_mb": round((peak - base) / 1024, 1)}


def memory(lengths) -> list[dict]:
    rows = []
    for seconds in lengths:
        out = subprocess.run([sys.executable, __file__, "--peak-child", str(seconds)], capture_output=True,
                             text=True, check=True, cwd=ROOT)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sampler", default=None, help="the engine's sampler (default: the model's, ddim)")
    parser.add_argument("--peak-child", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peak_child:
        print(json.dumps(_peak_child(args.peak_child)))
        return
    global SAMPLER
    SAMPLER = args.sampler
    torch.set_grad_enabled(False)
    repeats = 2 if args.quick else 3
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, devices: {', '.join(map(str, devices))}")
    report = {"speed": [], "end_to_end": [], "linearity": [], "finishing": [], "memory": []}

    if len(devices) == 1:
        print("No GPU here (none was lent to this machine): the GPU figures are not measured.")
    for device, seconds in [(d, s) for d in devices
                            for s in (15.0 if args.quick else 30.0,) + ((300.0,) if d.type == "cuda" else ())]:
        row = speed(device, seconds, repeats)
        report["speed"].append(row)
        print(f"\n[{row['device']}] {row['model']}, width {row['width']} x {row['depth']} layers, "
              f"guidance {row['guidance']}, {row['song_s']:.0f} s of music, sampling only")
        print(f"  ours ({row['sampler']}, {row['steps']} steps) {row['ours_s']:.2f} s | "
              f"ours (ddim, {REFERENCE_STEPS} steps) {row['ours_ddim_s']:.2f} s | "
              f"reference loop (ddim, {REFERENCE_STEPS} steps) {row['reference_s']:.2f} s")
        print(f"  speed-up x{row['speedup_vs_reference']:.2f} (target >= 2; x{row['ddim_speedup_vs_reference']:.2f} "
              f"with the engine's DDIM) | real-time x{row['realtime_factor']:.2f}")

    demo = ROOT / "assets" / "demo_track.ogg"
    if demo.exists():
        for device in devices:
            row = end_to_end(device, demo)
            report["end_to_end"].append(row)
            print(f"\n[{row['device']}] end to end from {row['audio']} ({row['song_s']} s, features and clean-ups "
                  f"included, default settings): {row['seconds']:.2f} s, real-time x{row['realtime_factor']:.2f} "
                  f"(target >= 6 on a 2-core CPU)")

    lengths = [15.0, 30.0, 60.0] if args.quick else [30.0, 60.0, 120.0]
    rows = linearity(devices[0], lengths, repeats)
    report["linearity"] = rows
    print("\nTime against song length (sampling, " + str(devices[0]) + "):")
    for r in rows:
        print(f"  {r['song_s']:5.0f} s of music: {r['seconds']:7.2f} s  ({r['seconds_per_song_second']:.4f} s per second)")
    per_sampling = [r["seconds_per_song_second"] for r in rows]
    print(f"  longest / shortest time per second of music: x{per_sampling[-1] / per_sampling[0]:.2f} (linear = 1)")

    rows = finishing(devices[0], [15.0, 60.0] if args.quick else [30.0, 120.0])
    report["finishing"] = rows
    if rows:
        print("\nAfter sampling (limits, beat snap, foot lock, kinematics) against song length, shipped model, "
              + str(devices[0]) + ":")
        for r in rows:
            print(f"  {r['song_s']:5.0f} s of music: {r['finishing_s']:6.2f} s after {r['sampling_s']:.2f} s of "
                  f"sampling ({r['finishing_per_song_second']:.4f} s per second)")
        per = [r["finishing_per_song_second"] for r in rows]
        print(f"  longest / shortest time per second of music: x{per[-1] / per[0]:.2f} (linear = 1)")

    rows = memory([30.0, 300.0])
    report["memory"] = rows
    print("\nPeak memory (fresh process each, CPU):")
    for r in rows:
        print(f"  {r['song_s']:5.0f} s of music: peak RSS {r['peak_rss_mb']:.0f} MB, "
              f"{r['above_baseline_mb']:.0f} MB above the model's one-window baseline")
    print(f"  5 min / 30 s peak RSS: x{rows[1]['peak_rss_mb'] / rows[0]['peak_rss_mb']:.2f} (target <= 1.5)")

    cpu = report["speed"][0]
    bars = [(f"speed-up over the reference loop, {cpu['song_s']:.0f} s, CPU", cpu["speedup_vs_reference"], ">= 2",
             cpu["speedup_vs_reference"] >= 2)]
    bars += [(f"real time end to end, {r['song_s']:.0f} s, {r['device']}", r["realtime_factor"], ">= 6",
              r["realtime_factor"] >= 6) for r in report["end_to_end"] if r["device"] == "cpu"]
    bars.append(("sampling time per second of music, longest / shortest song", round(per_sampling[-1] / per_sampling[0], 2),
                 "about 1 (<= 1.15)", per_sampling[-1] / per_sampling[0] <= 1.15))
    ratio = rows[1]["peak_rss_mb"] / rows[0]["peak_rss_mb"]
    bars.append(("peak memory, 5 min / 30 s", round(ratio, 2), "<= 1.5", ratio <= 1.5))
    print("\nBars (measured above, in this run):")
    for name, value, target, met in bars:
        print(f"  [{'met' if met else 'MISSED'}] {name}: {value} (target {target})")
    report["bars"] = [{"bar": n, "value": v, "target": t, "met": bool(m)} for n, v, t, m in bars]

    out = ROOT / "out"
    out.mkdir(exist_ok=True)
    (out / "bench_engine.json").write_text(json.dumps(report, indent=2))
    print(f"\nWrote {out / 'bench_engine.json'}")


if __name__ == "__main__":
    os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "music2dance" / "numba"))
    main()
