"""Model quality: generate for held-out and unheard music, score against held-out ground truth.

    python bench/quality.py --cache cache/ballroom.npz [--weights weights/] [--unheard-seconds 30]
    python bench/quality.py --sampler ddim --steps 50 --first-seed 2   # another sampler, other seeds

Prints one metric table (``inference.evaluation.evaluate``), then each bar of the model
card with its measured value: beat alignment against held-out ground truth and
against another song, PFC, foot skating, frozen stretches, NaN, determinism and
diversity across seeds. Writes everything to ``out/quality/report.json``, with a
stick-figure GIF and an image strip of the first held-out dance (``preview.gif``,
``preview_strip.png``).

Unheard music: the songs of the dances the preprocessing dropped (their motion
never reached the cache) and the bundled demo track.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / "cache" / "numba"))

import numpy as np  # noqa: E402

from inference import analysis  # noqa: E402
from inference.evaluation.evaluate import EvalDance, evaluate_sets, format_table, load_reference  # noqa: E402
from inference.generate import DanceGenerator  # noqa: E402
from inference.music.features import beats_from_features, features_from_file  # noqa: E402
from inference.preview import write_gif, write_strip  # noqa: E402
from inference.training.data.cache import DanceCache  # noqa: E402

FROZEN_SECONDS = 2.0
FROZEN_SPEED = 0.05
"""m/s: mean joint speed below this for FROZEN_SECONDS counts as a frozen stretch."""


def frozen_stretch(joints: np.ndarray, fps: float) -> float:
    """Longest stretch (s) in which the mean joint speed stays below :data:`FROZEN_SPEED`."""
    still = analysis.mean_joint_speed(joints, fps) < FROZEN_SPEED
    longest = run = 0
    for s in still:
        run = run + 1 if s else 0
        longest = max(longest, run)
    return longest / fps


def generated(gen: DanceGenerator, audio, start: float, seconds: float, seed: int, name: str, out: Path,
              post: dict):
    dance = gen.generate(audio, start=start, duration=seconds, seed=seed, **post)
    dance.save(out / f"{name}.npz")
    beats = beats_from_features(features_from_file(audio, gen.config, start=start, duration=seconds)[0], gen.config)
    return dance, EvalDance(name=name, joints=dance.joints, fps=dance.fps, beats=beats, music=str(audio))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", default=str(ROOT / "cache" / "ballroom.npz"))
    parser.add_argument("--weights", default=None, help="model folder (default: weights/)")
    parser.add_argument("--unheard-seconds", type=float, default=30.0)
    parser.add_argument("--max-seconds", type=float, default=60.0, help="longest stretch generated per held-out dance")
    parser.add_argument("--out", default=str(ROOT / "out" / "quality"))
    parser.add_argument("--seeds", type=int, default=3, help="seeds per song for the diversity check")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="seed of the held-out dances and the first of each unheard song's (default 0)")
    parser.add_argument("--sampler", default=None, help="dpmpp_2m or ddim (default: the model's)")
    parser.add_argument("--steps", type=int, default=None, help="sampling steps (default: the sampler's)")
    parser.add_argument("--no-beat-snap", action="store_true", help="the network's timing, without beat snap")
    parser.add_argument("--no-foot-lock", action="store_true", help="the network's feet, without foot lock")
    args = parser.parse_args()
    post = {"beat_snap": not args.no_beat_snap, "foot_lock": not args.no_foot_lock,
            "sampler": args.sampler, "steps": args.steps}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    gen = DanceGenerator(args.weights, device="auto")
    config = gen.config
    cache = DanceCache(args.cache)
    arrays = cache.arrays
    audio_of = {str(n): (Path(str(a)), float(s)) for n, a, s in zip(arrays["names"], arrays["audio"], arrays["audio_start"])}
    truth = load_reference(args.cache, config, split="test")

    held_out, unheard, checks = [], [], {"nan": 0, "frozen_s": [], "dances": 0}
    for d in cache.split("test"):
        audio, start = audio_of[d.name]
        seconds = min(d.num_frames / cache.fps, args.max_seconds)
        dance, ev = generated(gen, audio, start, seconds, args.first_seed, f"heldout_{d.name}", out, post)
        held_out.append(ev)
        print(f"  {d.name}: {seconds:.0f} s generated ({time.monotonic() - started:.0f} s)", flush=True)

    kept = {str(n) for n in arrays["names"]}
    dropped = [d["name"] for d in cache.report.get("dropped", []) if d["name"] not in kept]
    sources = Path(str(arrays["audio"][0])).parent.parent
    songs = [(sources / name / "audio.mp3", 30.0) for name in dropped]
    demo = ROOT / "assets" / "demo_track.ogg"
    if demo.exists():
        songs.append((demo, 0.0))
    for audio, start in songs:
        if not audio.exists():
            continue
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            dance, ev = generated(gen, audio, start, args.unheard_seconds, seed,
                                  f"unheard_{audio.parent.name}_{seed}", out, post)
            ev.music = f"{audio}@{start}"
            unheard.append((seed, ev))
        print(f"  unheard {audio.parent.name if audio != demo else 'demo'}: {args.seeds} seeds "
              f"({time.monotonic() - started:.0f} s)", flush=True)

    # A look at the first held-out dance, for the model card.
    first = held_out[0]
    write_gif(first.joints, out / "preview.gif", first.fps, max_seconds=10.0)
    write_strip(first.joints, out / "preview_strip.png", first.fps, count=8, seconds=4.0)

    for ev in held_out + [ev for _, ev in unheard]:
        checks["dances"] += 1
        checks["nan"] += int(not np.isfinite(ev.joints).all())
        checks["frozen_s"].append(frozen_stretch(ev.joints, ev.fps))

    sets = {"generated, held-out music": held_out,
            f"generated, unheard music (seed {args.first_seed})": [ev for seed, ev in unheard if seed == args.first_seed],
            "generated, unheard music (all seeds)": [ev for _, ev in unheard],
            "ground truth, held-out": truth}
    results = evaluate_sets(sets, truth)
    print()
    print(format_table(results))

    # Same seed, same dance; other seeds, other dances.
    audio, start = songs[-1]
    a = gen.generate(audio, start=start, duration=10.0, seed=5, **post)
    b = gen.generate(audio, start=start, duration=10.0, seed=5, **post)
    c = gen.generate(audio, start=start, duration=10.0, seed=6, **post)
    same = bool(np.array_equal(a.joints, b.joints))
    differ_cm = float(np.linalg.norm(a.joints - c.joints, axis=-1).mean() * 100)

    gt = results["ground truth, held-out"]
    bars = []

    def bar(name, value, target, ok):
        bars.append({"bar": name, "value": value, "target": target, "met": bool(ok)})

    for label in ("generated, held-out music", f"generated, unheard music (seed {args.first_seed})"):
        r = results[label]
        bar(f"BA {label} >= ground truth", round(r.ba, 3), f">= {gt.ba:.3f}", r.ba >= gt.ba)
        bar(f"BA {label}: own music > other song", f"{r.ba:.3f} vs {r.ba_other:.3f}", "clearly above",
            r.ba > r.ba_other + 0.02)
        bar(f"PFC {label} <= 1.5 x ground truth", round(r.pfc, 3), f"<= {1.5 * gt.pfc:.3f}", r.pfc <= 1.5 * gt.pfc)
        bar(f"skating {label} <= ground truth + 0.05", round(r.skate, 3), f"<= {gt.skate + 0.05:.3f}",
            r.skate <= gt.skate + 0.05)
    diverse = results["generated, unheard music (all seeds)"]
    bar("Div_k across seeds >= 0.8 x ground truth", round(diverse.div_k, 3), f">= {0.8 * gt.div_k:.3f}",
        diverse.div_k >= 0.8 * gt.div_k)
    longest = max(checks["frozen_s"])
    bar("never frozen (no 2 s without motion)", f"longest still stretch {longest:.2f} s", "< 2 s", longest < FROZEN_SECONDS)
    bar("never NaN", f"{checks['nan']} of {checks['dances']} dances", "0", checks["nan"] == 0)
    bar("same seed, same dance", same, "True", same)
    bar("other seed, other dance", f"mean joint distance {differ_cm:.1f} cm", "visibly different", differ_cm > 5)
    print()
    for b in bars:
        print(f"  [{'met' if b['met'] else 'MISSED'}] {b['bar']}: {b['value']} (target {b['target']})")
    report = {"table": {k: v.as_dict() for k, v in results.items()}, "bars": bars, "post": post,
              "seconds": round(time.monotonic() - started, 1), "weights": str(args.weights or "weights/")}
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nWrote {out / 'report.json'} in {report['seconds']:.0f} s")


if __name__ == "__main__":
    main()
