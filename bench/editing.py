"""The editing quality bar on a real model: pins met, no visible seams, the music still followed.

Run from the repository root::

    python bench/editing.py                           # the shipped model in weights/, the demo track
    python bench/editing.py --weights runs/x/model --audio song.mp3 --seconds 20 --seeds 3
    python bench/editing.py --random-weights --quick  # the machinery only: an untrained net's motion is noise

Each edit is made the way the Blender extension makes it: a source dance (seed
``s``) is generated; pins are taken from it (whole poses, the legs over a range,
the horizontal root path, a kept range, everything outside a regenerated range)
and the dance is sampled again with another seed around them. For every edit it
prints the largest pin error (bar: 1e-4 rad, 0.1 mm); the velocity change across
every border against the 95th percentile of the unconstrained dance of the same
music and seed (bar: worst/p95 at most 1), next to the same figures for that
unconstrained dance at the same frames (how often undisturbed dancing exceeds its
own 95th percentile there) and "ease", the largest ratio on the free frames
within 8 frames of a border, beside the free dance's own on the same frames
(for information); and the beat alignment of the
free frames against the unconstrained dances' on the same frames (bar: not
lower, within seed-to-seed noise). The measurements are those of ``inference/evaluation/edit_quality.py``,
which the tests use as well. Nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / "cache" / "numba"))

import numpy as np  # noqa: E402

from inference.evaluation import edit_quality as E  # noqa: E402
from inference.sampling.constraints import Constraints, joint_indices  # noqa: E402

EDIT_SEED_OFFSET = 1000
"""The edit of source seed ``s`` samples with seed ``s + 1000``."""


def edits(source, fps: int) -> dict:
    """Name -> Constraints of the edits made on a ``source`` dance (frames scale with its length)."""
    n = source.num_frames
    poses, trans = source.smpl_poses, source.smpl_trans

    def at(fraction):
        return int(round(fraction * (n - 1)))

    out = {}
    c = Constraints.empty(n)  # in-betweening: key poses every few seconds
    keys = list(range(at(0.1), n, 3 * fps))
    c.pin_pose(keys, poses[keys], trans[keys])
    out["key poses"] = c
    a, b = at(0.3), at(0.55)
    legs = joint_indices("legs")
    out["legs range"] = Constraints.empty(n).pin_joints(range(a, b + 1), legs,
                                                        poses[a:b + 1].reshape(-1, 24, 3)[:, legs])
    out["root path xy"] = Constraints.empty(n).pin_root(range(a, b + 1), trans[a:b + 1], horizontal_only=True)
    out["keep range"] = Constraints.empty(n).pin_range(a, b, poses[a:b + 1], trans[a:b + 1])
    out["regenerate range"] = E.keep_outside(poses, trans, a, b)
    return out


def measure(generator, music: np.ndarray, beats: np.ndarray, seeds, steps, log=print, sampler=None) -> dict:
    """Generate the free dances and every edit for each seed; print and return the figures.

    Each edit (seed ``s + 1000``) is compared with the unconstrained dance of its own seed: the
    95th percentile of that dance's velocity change is its seam threshold, and the same
    dance's velocity change at the same border frames shows how often a frame of undisturbed
    dancing exceeds it (about 1 in 10 for the larger of two frames). Beat alignment is compared
    on the same free frames.
    """
    fps = generator.config.fps
    settings = {"sampler": sampler, "steps": steps}
    source = {s: generator.generate_from_features(music, seed=s, **settings) for s in seeds}
    free = {s: generator.generate_from_features(music, seed=s + EDIT_SEED_OFFSET, **settings) for s in seeds}
    log(f"{len(seeds)} seeds x {len(music) / fps:.1f} s; 95th percentile of velocity change (the seam "
        "threshold) of the unconstrained dances: "
        + ", ".join(f"{E.seam_threshold(d.joints) * 1000:.2f}" for d in free.values()) + " mm/frame^2")
    log(f"{'edit':<17}{'rot err':>9}{'root err':>10}{'borders':>8}{'worst/p95':>10}{'<=p95':>7}"
        f"{'free worst':>11}{'free<=p95':>10}{'ease':>6}{'free':>6}{'BA edit':>8}{'BA free':>8}  verdict")
    log(f"{'':<17}{'rad':>9}{'mm':>10}{'':>8}{'':>10}{'':>7}{'/p95':>11}{'':>10}{'/p95':>6}{'ease':>6}")
    results = {}
    for name in edits(source[seeds[0]], fps):
        rot = root = 0.0
        worst, share, free_worst, free_share, ease, free_ease, ba_edit, ba_free = [], [], [], [], [], [], [], []
        count = 0
        for s in seeds:
            c = edits(source[s], fps)[name]
            dance = generator.generate_from_features(music, seed=s + EDIT_SEED_OFFSET, constraints=c, **settings)
            err = E.pin_errors(dance.smpl_poses, dance.smpl_trans, c)
            rot, root = max(rot, err.rotation), max(root, err.root)
            open_frames = ~E.pinned_frames(c)
            borders = E.constraint_borders(c)
            report = E.seam_report(dance.joints, borders, free[s].joints, free=open_frames)
            baseline = E.seam_report(free[s].joints, borders, free[s].joints, free=open_frames)
            count += len(report.borders)
            worst.append(report.ratio)
            share.append(np.mean(report.values <= report.threshold))
            free_worst.append(baseline.ratio)
            free_share.append(np.mean(baseline.values <= baseline.threshold))
            ease.append(report.nearby.max() / report.threshold if len(report.nearby) else 0.0)
            free_ease.append(baseline.nearby.max() / baseline.threshold if len(baseline.nearby) else 0.0)
            ba_edit.append(E.free_beat_alignment(dance.joints, beats, fps, open_frames))
            ba_free.append(E.free_beat_alignment(free[s].joints, beats, fps, open_frames))
        ba_ok = E.beat_alignment_holds(ba_edit, ba_free)
        pins_ok = rot <= E.ROTATION_TOLERANCE and root <= E.ROOT_TOLERANCE
        seams_ok = max(worst) <= 1.0
        verdict = "meets the bar" if pins_ok and seams_ok and ba_ok else "misses: " + ", ".join(
            w for w, bad in (("pins", not pins_ok), ("seams", not seams_ok), ("beats", not ba_ok)) if bad)
        log(f"{name:<17}{rot:>9.1e}{root * 1000:>10.4f}{count:>8}{max(worst):>10.2f}{np.mean(share):>7.0%}"
            f"{max(free_worst):>11.2f}{np.mean(free_share):>10.0%}{max(ease):>6.2f}{max(free_ease):>6.2f}"
            f"{np.mean(ba_edit):>8.3f}{np.mean(ba_free):>8.3f}  {verdict}")
        results[name] = {"rotation_error": rot, "root_error": root, "seam_ratio": max(worst),
                         "borders_within": float(np.mean(share)), "free_seam_ratio": max(free_worst),
                         "free_within": float(np.mean(free_share)), "ease_ratio": max(ease),
                         "free_ease_ratio": max(free_ease),
                         "ba_edit": float(np.mean(ba_edit)), "ba_free": float(np.mean(ba_free)),
                         "ok": pins_ok and seams_ok and ba_ok}
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", default=None, help="model folder (default: the shipped weights/)")
    parser.add_argument("--random-weights", action="store_true",
                        help="a tiny untrained network: checks the machinery, the figures mean nothing")
    parser.add_argument("--audio", default=str(ROOT / "assets" / "demo_track.ogg"))
    parser.add_argument("--start", type=float, default=0.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--sampler", default=None, help="dpmpp_2m or ddim (default: the model's)")
    parser.add_argument("--steps", type=int, default=None, help="sampling steps (default: the sampler's)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--quick", action="store_true", help="8 s, 2 seeds, 10 steps")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.seeds, args.steps = 8.0, 2, args.steps or 10

    from inference.evaluation.evaluate import music_beats
    from inference.generate import DanceGenerator
    from inference.music.features import features_from_file

    weights = args.weights
    if args.random_weights:
        import tempfile

        import torch

        from inference.config import TINY_CONFIG
        from inference.network.model import DanceDenoiser
        from inference.network.weights import save_model

        torch.manual_seed(0)
        weights = save_model(DanceDenoiser(TINY_CONFIG), Path(tempfile.mkdtemp(prefix="m2d-bench-")))
    from inference.errors import M2DError

    try:
        generator = DanceGenerator(weights, device=args.device)
        music, clip = features_from_file(args.audio, generator.config, start=args.start, duration=args.seconds)
    except M2DError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    beats = music_beats(args.audio, clip.start, len(music), generator.config)
    print(f"model: {weights or 'weights/'} ({generator.device}); music: {args.audio} from {clip.start:.2f} s, "
          f"{len(music)} frames, {len(beats)} beats")
    if args.random_weights:
        print("random weights: the motion is noise, so these figures check the machinery only")
    started = time.perf_counter()
    sampler, steps = generator.config.sampling(args.sampler, args.steps)
    print(f"sampler {sampler}, {steps} steps")
    measure(generator, music, beats, list(range(args.seeds)), args.steps, sampler=args.sampler)
    print(f"{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
