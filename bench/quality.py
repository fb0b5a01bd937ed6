"""Model quality: generate for held-out and unheard music, score against held-out ground truth.

    python bench/quality.py --cache cache/ballroom.npz [--weights weights/] [--unheard-seconds 30]
    python bench/quality.py --sampler ddim --steps 50 --first-seed 2   # another sampler, other seeds

Every song is danced with ``--seeds`` seeds (2 by default) and every bar is judged on the
dances of all of them together: one seed moves a wrist's range by up to 11 degrees and beat
alignment by a few hundredths, more than two models often differ (the table also has each
seed's row). Prints one metric table (``inference.evaluation.evaluate``), then each bar of the model
card with its measured value: beat alignment against held-out ground truth and
against another song, PFC, foot skating, feet through the floor, collar and wrist
motion against the data's, frozen stretches, NaN, determinism, diversity across seeds and
speed. For a model with styles, every held-out song is also danced in each style, and
each set's FID_k/FID_g to each style's held-out dances is printed (all standardised by
the whole held-out set). The style bar reads the table by column: of the dances made in
each style, those made in style S should be nearest S's held-out dances. (Rows are not
ranked: the styles' held-out sets differ in size, 1 to 4 dances here, and in a trial run
every set, whatever its style, was about 4 times further from cha-cha's single held-out
dance than from waltz's four, so a row's nearest names the reference, not the dances.) Writes
everything to ``out/quality/report.json``, with a stick-figure GIF and an image strip of
the first held-out dance (``preview.gif``, ``preview_strip.png``). ``--baseline
REPORT.json`` (another model's report, from the same sitting) adds the "PFC at most the
baseline's" bar.

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
from inference.evaluation.evaluate import (EvalDance, evaluate_sets, fid_to_groups, format_table,  # noqa: E402
                                           load_reference)
from inference.evaluation.metrics import CLIP_SECONDS, EXTREMITY_JOINTS, rotation_range  # noqa: E402
from inference.generate import DanceGenerator  # noqa: E402
from inference.music.features import beats_from_features, features_from_file  # noqa: E402
from inference.preview import write_gif, write_strip  # noqa: E402
from inference.training.data.cache import DanceCache  # noqa: E402

FLOOR_TOLERANCE = 0.01
"""Metres: no ankle or toe joint may be further than this below its dance's floor."""
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


def floor_sink(joints: np.ndarray) -> float:
    """Deepest (m) any ankle or toe joint goes below the dance's own floor (0 when never)."""
    floor = analysis.estimate_floor(joints)
    return float(max(0.0, (floor - joints[:, analysis.FOOT_JOINTS, analysis.UP].min(axis=1)).max()))


class Generated:
    """Every dance a model makes on the bench, with what the bars need beyond the metric table."""

    def __init__(self, gen: DanceGenerator, out: Path, post: dict):
        self.gen, self.out, self.post = gen, out, post
        self.ranges: dict[str, list] = {}  # set -> per dance {joint: degrees}
        self.sink: list[float] = []
        self.music_seconds = self.wall_seconds = 0.0

    def __call__(self, audio, start: float, seconds: float, seed: int, name: str, group: str, style: str = "any"):
        began = time.monotonic()
        dance = self.gen.generate(audio, start=start, duration=seconds, seed=seed, style=style, **self.post)
        self.wall_seconds += time.monotonic() - began
        self.music_seconds += dance.duration
        dance.save(self.out / f"{name}.npz")
        self.ranges.setdefault(group, []).append(rotation_range(dance.smpl_poses))
        self.sink.append(floor_sink(dance.joints))
        beats = beats_from_features(features_from_file(audio, self.gen.config, start=start, duration=seconds)[0],
                                    self.gen.config)
        return dance, EvalDance(name=name, joints=dance.joints, fps=dance.fps, beats=beats, music=str(audio))


def median_ranges(per_dance: list) -> dict:
    return {j: round(float(np.median([r[j] for r in per_dance])), 1) for j in EXTREMITY_JOINTS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", default=str(ROOT / "cache" / "ballroom.npz"))
    parser.add_argument("--weights", default=None, help="model folder (default: weights/)")
    parser.add_argument("--unheard-seconds", type=float, default=30.0)
    parser.add_argument("--max-seconds", type=float, default=60.0, help="longest stretch generated per held-out dance")
    parser.add_argument("--out", default=str(ROOT / "out" / "quality"))
    parser.add_argument("--seeds", type=int, default=2,
                        help="seeds per song; every bar is judged on the dances of all of them (default 2)")
    parser.add_argument("--first-seed", type=int, default=0, help="the first of each song's seeds (default 0)")
    parser.add_argument("--sampler", default=None, help="dpmpp_2m or ddim (default: the model's)")
    parser.add_argument("--steps", type=int, default=None, help="sampling steps (default: the sampler's)")
    parser.add_argument("--guidance", type=float, default=None, help="guidance weight (default: the model's)")
    parser.add_argument("--style-guidance", type=float, default=None,
                        help="the extra push toward a chosen style (default: the model's config), as its "
                             "config.json would set it")
    parser.add_argument("--no-beat-snap", action="store_true", help="the network's timing, without beat snap")
    parser.add_argument("--no-foot-lock", action="store_true", help="the network's feet, without foot lock")
    parser.add_argument("--styles", nargs="*", default=None,
                        help="styles to dance every held-out song in (default: all the model knows)")
    parser.add_argument("--baseline", default=None, help="another model's report.json: adds 'PFC at most its'")
    args = parser.parse_args()
    if args.seeds < 1:
        parser.error(f"--seeds must be at least 1 (got {args.seeds})")
    for name in ("max_seconds", "unheard_seconds"):  # checked before generating: scoring would stop at the end
        if getattr(args, name) < CLIP_SECONDS:
            parser.error(f"--{name.replace('_', '-')} must be at least {CLIP_SECONDS:g} s, the length of one scored "
                         f"clip (got {getattr(args, name):g})")
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    held_label, unheard_label = "generated, held-out music", "generated, unheard music"
    baseline = None
    if args.baseline:  # read before generating: a mismatch would otherwise surface only after the whole run
        report = json.loads(Path(args.baseline).read_text())
        if report.get("seeds") != seeds:
            parser.error(f"{args.baseline} was measured with seeds {report.get('seeds', 'of an older bench')}, "
                         f"this run uses {seeds}, and PFC compares only on the same dances: pass its --seeds and "
                         f"--first-seed, or make the baseline's report again with these")
        baseline = report["table"]
    post = {"beat_snap": not args.no_beat_snap, "foot_lock": not args.no_foot_lock,
            "sampler": args.sampler, "steps": args.steps, "guidance": args.guidance}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    gen = DanceGenerator(args.weights, device="auto")
    if args.style_guidance is not None:  # the sampler reads its defaults from the model's config
        gen.model.config = gen.config.replace(style_guidance=args.style_guidance)
    config = gen.model.config
    cache = DanceCache(args.cache)
    arrays = cache.arrays
    audio_of = {str(n): (Path(str(a)), float(s)) for n, a, s in zip(arrays["names"], arrays["audio"], arrays["audio_start"])}
    truth = load_reference(args.cache, config, split="test")
    test = cache.split("test")
    style_of = {f"{cache.path.name}:{d.name}": d.style for d in test}
    truth_by_style = {}
    for ev in truth:
        truth_by_style.setdefault(style_of[ev.name], []).append(ev)
    # The data's wrists and collars over the same stretch of each held-out dance as the dance generated for
    # it (a range grows with a dance's length: whole dances are printed too, not compared).
    def data_ranges_over(seconds):
        return median_ranges([rotation_range(d.smpl_poses[:round(min(d.num_frames / cache.fps, seconds) * cache.fps)])
                              for d in test])

    data_ranges = data_ranges_over(args.max_seconds)
    data_ranges_unheard = data_ranges_over(args.unheard_seconds)  # the unheard dances' length
    whole_ranges = median_ranges([rotation_range(d.smpl_poses) for d in test])
    styles = list(config.styles) if args.styles is None else args.styles
    generated = Generated(gen, out, post)

    held_out, unheard, checks = [], [], {"nan": 0, "frozen_s": [], "dances": 0}  # (seed, EvalDance) pairs
    styled: dict[str, list] = {s: [] for s in styles}
    any_by_song_style: dict[str, list] = {}
    for d in test:
        audio, start = audio_of[d.name]
        seconds = min(d.num_frames / cache.fps, args.max_seconds)
        for seed in seeds:
            dance, ev = generated(audio, start, seconds, seed, f"heldout_{d.name}_{seed}", "held-out")
            held_out.append((seed, ev))
            any_by_song_style.setdefault(d.style, []).append(ev)
            for style in styles:
                styled[style].append(generated(audio, start, seconds, seed, f"heldout_{d.name}_{style}_{seed}",
                                               f"style {style}", style)[1])
        print(f"  {d.name}: {seconds:.0f} s generated{' in ' + str(len(styles) + 1) + ' styles' if styles else ''}, "
              f"{len(seeds)} seeds ({time.monotonic() - started:.0f} s)", flush=True)

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
        for seed in seeds:
            dance, ev = generated(audio, start, args.unheard_seconds, seed, f"unheard_{audio.parent.name}_{seed}",
                                  "unheard")
            ev.music = f"{audio}@{start}"
            unheard.append((seed, ev))
        print(f"  unheard {audio.parent.name if audio != demo else 'demo'}: {args.seeds} seeds "
              f"({time.monotonic() - started:.0f} s)", flush=True)

    # A look at the first held-out dance, for the model card.
    first = held_out[0][1]
    write_gif(first.joints, out / "preview.gif", first.fps, max_seconds=10.0)
    write_strip(first.joints, out / "preview_strip.png", first.fps, count=8, seconds=4.0)

    for ev in [ev for _, ev in held_out + unheard] + [ev for evs in styled.values() for ev in evs]:
        checks["dances"] += 1
        checks["nan"] += int(not np.isfinite(ev.joints).all())
        checks["frozen_s"].append(frozen_stretch(ev.joints, ev.fps))

    sets = {held_label: [ev for _, ev in held_out], unheard_label: [ev for _, ev in unheard]}
    if len(seeds) > 1:  # each seed on its own, to see how far one seed moves a figure
        for label, pairs in ((held_label, held_out), (unheard_label, unheard)):
            sets.update({f"{label} (seed {seed})": [ev for s, ev in pairs if s == seed] for seed in seeds})
    sets.update({f"style {s}, held-out music": evs for s, evs in styled.items()})
    sets["ground truth, held-out"] = truth
    results = evaluate_sets(sets, truth)
    print()
    print(format_table(results))

    # Style: each set's distance to each style's held-out dances.
    style_sets = {f"any, {s} songs": evs for s, evs in sorted(any_by_song_style.items())}
    style_sets.update({f"style {s}, all held-out songs": evs for s, evs in styled.items()})
    by_style = fid_to_groups(style_sets, truth_by_style, truth)
    names = sorted(truth_by_style)
    print("\nFID_k / FID_g to each style's held-out dances (" + ", ".join(
        f"{n}: {len(truth_by_style[n])} dances" for n in names) + ")")
    print(f"  {'set':<34}" + "".join(f"{n:>18}" for n in names))
    for label, row in by_style.items():
        print(f"  {label:<34}" + "".join(f"{row[n][0]:>9.1f} /{row[n][1]:>6.1f}" for n in names))
    ranges = {group: median_ranges(r) for group, r in generated.ranges.items()}
    print("\nRotation range (degrees; median over dances of the 95th percentile of the angle from the mean):")
    print(f"  {'':<22}" + "".join(f"{j:>14}" for j in EXTREMITY_JOINTS))
    for group, r in [("held-out data", data_ranges), (f"(first {args.unheard_seconds:g} s)", data_ranges_unheard),
                     ("(whole dances)", whole_ranges)] + list(ranges.items()):
        print(f"  {group:<22}" + "".join(f"{r[j]:>14.1f}" for j in EXTREMITY_JOINTS))
    sink = max(generated.sink)
    speed = generated.music_seconds / max(generated.wall_seconds, 1e-9)

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

    for label in (held_label, unheard_label):
        r = results[label]
        bar(f"BA {label} >= ground truth", round(r.ba, 3), f">= {gt.ba:.3f}", r.ba >= gt.ba)
        bar(f"BA {label}: own music > other song", f"{r.ba:.3f} vs {r.ba_other:.3f}", "clearly above",
            r.ba > r.ba_other + 0.02)
        bar(f"PFC {label} <= 1.5 x ground truth", round(r.pfc, 3), f"<= {1.5 * gt.pfc:.3f}", r.pfc <= 1.5 * gt.pfc)
        bar(f"skating {label} <= ground truth + 0.05", round(r.skate, 3), f"<= {gt.skate + 0.05:.3f}",
            r.skate <= gt.skate + 0.05)
        bar(f"skating {label} <= ground truth + 0.03 (model v2)", round(r.skate, 3), f"<= {gt.skate + 0.03:.3f}",
            r.skate <= gt.skate + 0.03)
    if baseline:
        for label in (held_label, unheard_label):
            bar(f"PFC {label} <= baseline's", round(results[label].pfc, 3), f"<= {baseline[label]['pfc']:.3f}",
                results[label].pfc <= baseline[label]["pfc"])
    for group, data in (("held-out", data_ranges), ("unheard", data_ranges_unheard)):  # data as long as the dances
        for j in EXTREMITY_JOINTS:
            bar(f"{j} moves ({group} music): range >= half the data's", ranges[group][j],
                f">= {0.5 * data[j]:.1f}", ranges[group][j] >= 0.5 * data[j])
    bar("no foot through the floor (ankle and toe within 1 cm of the floor or above)",
        f"deepest {100 * sink:.2f} cm", f"<= {100 * FLOOR_TOLERANCE:.0f} cm", sink <= FLOOR_TOLERANCE)
    # Per style, the styled sets compared against that style's held-out dances (one column of the table):
    # the references differ in size (a style with fewer held-out dances is further from everything), so
    # distances to different references (a row) are printed but not ranked.
    for s in styles:
        if s not in truth_by_style:
            continue
        column = {t: by_style[f"style {t}, all held-out songs"][s][0] for t in styles}
        nearest = min(column, key=column.get)
        bar(f"style {s}: of the styled dances, the {s} ones are nearest {s}'s held-out dances (FID_k)",
            f"nearest: {nearest} ({', '.join(f'{t} {column[t]:.1f}' for t in styles)})", s, nearest == s)
    diverse = results[unheard_label]
    bar("Div_k across seeds >= 0.8 x ground truth", round(diverse.div_k, 3), f">= {0.8 * gt.div_k:.3f}",
        diverse.div_k >= 0.8 * gt.div_k)
    longest = max(checks["frozen_s"])
    bar("never frozen (no 2 s without motion)", f"longest still stretch {longest:.2f} s", "< 2 s", longest < FROZEN_SECONDS)
    bar("never NaN", f"{checks['nan']} of {checks['dances']} dances", "0", checks["nan"] == 0)
    bar("same seed, same dance", same, "True", same)
    bar("other seed, other dance", f"mean joint distance {differ_cm:.1f} cm", "visibly different", differ_cm > 5)
    bar("at least real time on this machine", f"{speed:.2f}x ({generated.music_seconds:.0f} s of music in "
        f"{generated.wall_seconds:.0f} s)", ">= 1x", speed >= 1.0)
    print()
    for b in bars:
        print(f"  [{'met' if b['met'] else 'MISSED'}] {b['bar']}: {b['value']} (target {b['target']})")
    report = {"table": {k: v.as_dict() for k, v in results.items()}, "bars": bars, "post": post,
              "styles": {label: {n: [round(k, 2), round(g, 2)] for n, (k, g) in row.items()}
                         for label, row in by_style.items()},
              "rotation_range_deg": {"held-out data": data_ranges,
                                     f"held-out data, first {args.unheard_seconds:g} s": data_ranges_unheard,
                                     "held-out data, whole dances": whole_ranges, **ranges},
              "floor_sink_cm": round(100 * sink, 2), "speed_x_real_time": round(speed, 3),
              "seconds": round(time.monotonic() - started, 1), "seeds": seeds,
              "weights": str(args.weights or "weights/"),
              "style_guidance": config.style_guidance}
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nWrote {out / 'report.json'} in {report['seconds']:.0f} s")


if __name__ == "__main__":
    main()
