"""Per-step cost of the shipped network on this machine's CPU: what each way of calling it saves.

One sampling step is one call of ``DanceDenoiser.denoise`` on a chunk of windows with
guidance (the music's half and the null half in one batch), exactly as the sampler makes
it. The variants are timed round-robin in one process, so a busy machine slows them all
alike, and printed as ratios against the engine's own way (``torch.no_grad``, PyTorch's
default thread count):

- ``inference_mode``: ``torch.inference_mode`` instead of ``no_grad``;
- ``threads=1``: one intra-op thread instead of the default;
- ``bf16``: bfloat16 autocast on the CPU (changes the numbers: the largest difference
  to fp32 is printed);
- ``trace``: ``torch.jit.trace`` + ``torch.jit.freeze`` of the denoiser (the weights become
  constants of the graph), and ``trace_unfrozen`` without the freeze;
- ``compile``: ``torch.compile`` (inductor) of the denoiser.

For ``trace`` and ``compile`` the one-off cost (tracing or compiling plus warm-up calls) is
printed with the number of sampling steps it takes to earn back. Then whole songs are sampled
(``sample_dance``, default settings) with the traced network the sampler uses on the CPU and
with the model's own ``denoise``, interleaved: a fresh model's first song (tracing included)
and the best of the repeats. Run from the repository root::

    python bench/per_step.py                 # every variant
    python bench/per_step.py --variants inference_mode threads=1
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from inference.network.model import MusicContext  # noqa: E402
from inference.network.traced import FlatDenoiser, TracedDenoiser  # noqa: E402
from inference.network.weights import load_model  # noqa: E402
from inference.sampling import sampler as sampler_module  # noqa: E402

VARIANTS = ("no_grad", "inference_mode", "threads=1", "bf16", "trace", "trace_unfrozen", "compile")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--rounds", type=int, default=8, help="timed calls per variant, round-robin")
    parser.add_argument("--songs", nargs="*", type=float, default=[10.0, 30.0, 120.0],
                        help="song lengths (s) sampled whole, traced and not")
    parser.add_argument("--out", default=str(ROOT / "out" / "per_step.json"))
    args = parser.parse_args()
    variants = ["no_grad"] + [v for v in args.variants if v != "no_grad"]

    model = load_model(None, "cpu")
    config = model.config
    windows = config.chunk_windows  # the sampler's chunk: a 40 s song is one chunk of windows
    rng = np.random.default_rng(0)
    music = torch.as_tensor(rng.normal(size=(windows, config.window_frames, config.music_dim)).astype(np.float32))
    with torch.no_grad():
        context = MusicContext.cat(model.music_context(model.encode_music(music)),
                                   model.music_context(model.null_tokens(windows, config.window_frames)))
    x = torch.randn(2 * windows, config.window_frames, config.motion_dim)
    t = torch.full((2 * windows,), config.diffusion_steps // 2, dtype=torch.long)
    flat = FlatDenoiser.arguments(context)
    threads = torch.get_num_threads()
    with torch.no_grad():
        reference = model.denoise(x, t, context)

    one_off, calls, differences = {}, {}, {}

    def with_threads(n, fn):
        def call():
            torch.set_num_threads(n)
            try:
                return fn()
            finally:
                torch.set_num_threads(threads)
        return call

    for v in variants:
        began = time.perf_counter()
        if v == "no_grad":
            calls[v] = lambda: torch.no_grad()(model.denoise)(x, t, context)
        elif v == "inference_mode":
            calls[v] = lambda: torch.inference_mode()(model.denoise)(x, t, context)
        elif v == "threads=1":
            calls[v] = with_threads(1, lambda: torch.no_grad()(model.denoise)(x, t, context))
        elif v == "bf16":
            def bf16():
                with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
                    return model.denoise(x, t, context).float()
            calls[v] = bf16
        elif v == "trace":  # what the sampler uses
            traced = TracedDenoiser(model)
            with torch.no_grad():
                traced(x, t, context)
                traced(x, t, context)  # the profiling executor optimises on the second call
            calls[v] = lambda: torch.no_grad()(traced)(x, t, context)
        elif v == "trace_unfrozen":
            with torch.no_grad():
                plain = torch.jit.trace(FlatDenoiser(model).eval(), (x, t, *flat), check_trace=False)
                plain(x, t, *flat)
                plain(x, t, *flat)
            calls[v] = lambda: torch.no_grad()(plain)(x, t, *flat)
        elif v == "compile":
            compiled = torch.compile(model.denoise)
            with torch.no_grad():
                compiled(x, t, context)
            calls[v] = lambda: torch.no_grad()(compiled)(x, t, context)
        out = calls[v]()
        one_off[v] = time.perf_counter() - began
        differences[v] = float((out.float() - reference).abs().max())
        print(f"  {v}: ready in {one_off[v]:.1f} s, largest difference to no_grad {differences[v]:.2e}", flush=True)

    times = {v: [] for v in variants}
    for _ in range(args.rounds):
        for v in variants:
            began = time.perf_counter()
            calls[v]()
            times[v].append(time.perf_counter() - began)
    base = statistics.median(times["no_grad"])
    print(f"\nOne sampling step, batch {2 * windows} x {config.window_frames} frames, {threads} threads by default "
          f"(median of {args.rounds}, round-robin):")
    report = {"threads": threads, "batch": 2 * windows, "rounds": args.rounds, "variants": {}}
    for v in variants:
        median = statistics.median(times[v])
        gain = base - median
        line = f"  {v:<15} {1000 * median:8.1f} ms   x{base / median:.2f} of no_grad   max diff {differences[v]:.1e}"
        if v in ("trace", "trace_unfrozen", "compile"):
            earn = f"{one_off[v] / gain:.0f} steps" if gain > 0 else "never"
            line += f"   one-off {one_off[v]:.1f} s, earned back after {earn}"
        print(line)
        report["variants"][v] = {"ms": round(1000 * median, 2), "speedup": round(base / median, 3),
                                 "max_diff": differences[v], "one_off_s": round(one_off[v], 2)}
    report["songs"] = whole_songs(args.songs)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nWrote {args.out}")


def whole_songs(lengths: list[float], repeats: int = 3) -> list[dict]:
    """Seconds to sample each song with the traced network and with the model's own ``denoise``."""
    traced_denoiser = sampler_module.sampling_denoiser

    def sample(model, music, traced: bool):
        sampler_module.sampling_denoiser = traced_denoiser if traced else (lambda m, device: m.denoise)
        try:
            began = time.perf_counter()
            sampler_module.sample_dance(model, music, seed=0)
            return time.perf_counter() - began
        finally:
            sampler_module.sampling_denoiser = traced_denoiser

    rows = []
    print("\nWhole songs, sample_dance at default settings (first: a fresh model's first song; best of "
          f"{repeats} after):")
    for seconds in lengths:
        config = load_model(None, "cpu").config
        music = np.random.default_rng(0).normal(size=(int(seconds * config.fps), config.music_dim)).astype(np.float32)
        first = {traced: sample(load_model(None, "cpu"), music, traced) for traced in (False, True)}
        model = load_model(None, "cpu")
        best = {True: float("inf"), False: float("inf")}
        for _ in range(repeats):
            for traced in (False, True):
                best[traced] = min(best[traced], sample(model, music, traced))
        row = {"song_s": seconds, "eager_first_s": round(first[False], 2), "traced_first_s": round(first[True], 2),
               "eager_best_s": round(best[False], 2), "traced_best_s": round(best[True], 2)}
        rows.append(row)
        print(f"  {seconds:5.0f} s: first {first[False]:.2f} s eager, {first[True]:.2f} s traced "
              f"(x{first[False] / first[True]:.2f}); best {best[False]:.2f} s eager, {best[True]:.2f} s traced "
              f"(x{best[False] / best[True]:.2f})", flush=True)
    return rows


if __name__ == "__main__":
    main()
