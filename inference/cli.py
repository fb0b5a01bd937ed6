"""The command line: ``python -m inference generate AUDIO -o OUT.npz`` and friends.

Every problem with the user's input, and every output that cannot be written,
ends with a one-line explanation on stderr and exit status 2; no output file is
written unless the whole job succeeds (all outputs are written to temporary files
first and moved into place together).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
import time
from pathlib import Path

from .config import SAMPLERS
from .errors import M2DError
from .files import atomic_paths, output_path, write_failed
from .protocol import FEATURES, FINISHING, SAMPLING, STYLE_CHOICES, stage as stage_of

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130

DEVELOPMENT_COMMANDS = (
    ("preprocess", "training", "data.preprocess"),
    ("train", "training", "commands"),
    ("evaluate", "evaluation", "evaluate"),
)
"""(command, sub-package, module with its ``add_subcommand``): the commands the Blender extension leaves out."""
NOT_INSTALLED = ("not part of the Blender extension; use a checkout of the repository "
                 "(see the README's Training section)")


def _default_cache_dirs() -> None:
    """Keep numba's compiled librosa kernels between runs (the first call compiles for ~20 s)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "music2dance"
    os.environ.setdefault("NUMBA_CACHE_DIR", str(base / "numba"))


class TerminalProgress:
    """A one-line progress bar on stderr (plain lines every 10 % when not a terminal)."""

    LABEL_WIDTH = max(len(s.label) for s in (FEATURES, SAMPLING, FINISHING))
    """Labels of the stages a generation reports (:data:`inference.protocol.STAGES`) are padded to this."""

    def __init__(self, stream=None, width: int = 30):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.width = width
        self.started = time.monotonic()
        self.stage_started = self.started
        self.stage = None
        self.last_tenth = -1

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if stage != self.stage:
            if self.tty and self.stage is not None:
                self.stream.write("\n")
            self.stage, self.stage_started, self.last_tenth = stage, now, -1
        frac = done / total if total else 1.0
        label = stage_of(stage).label
        if stage == SAMPLING.name and done:
            eta = (now - self.stage_started) / done * (total - done)
            detail = f" step {done}/{total}, {eta:4.0f} s left"
        else:
            detail = ""
        if self.tty:
            fill = int(frac * self.width)
            self.stream.write(f"\r{label:<{self.LABEL_WIDTH}} [{'#' * fill}{'.' * (self.width - fill)}] {frac:4.0%}{detail}  ")
        elif int(frac * 10) != self.last_tenth:
            self.last_tenth = int(frac * 10)
            self.stream.write(f"{label}: {frac:4.0%}{detail}\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self.stage is not None:
            self.stream.write("\n")
        self.stream.flush()


def _cmd_generate(args) -> int:
    out = output_path(args.output, ".npz", "output")
    preview = output_path(args.preview, ".gif", "preview") if args.preview else None
    from .generate import DanceGenerator
    from .music.audio import audio_info
    from .sampling.constraints import Constraints

    audio_info(args.audio)  # a broken file is reported before the model loads
    generator = DanceGenerator(weights=args.weights, device=args.device)
    constraints = Constraints.load(args.constraints, fps=generator.config.fps) if args.constraints else None
    progress = TerminalProgress()
    try:
        dance = generator.generate(
            args.audio, start=args.start, duration=args.duration, seed=args.seed, sampler=args.sampler,
            steps=args.steps, guidance=args.guidance, eta=args.eta, style=args.style, constraints=constraints,
            beat_snap=not args.no_beat_snap,
            foot_lock=not args.no_foot_lock, progress=progress,
        )
    finally:
        progress.close()
    outputs = [out] if preview is None else [out, preview]
    try:
        with atomic_paths(*outputs) as temps:
            dance.save(temps[0])
            if preview is not None:
                from .preview import write_gif

                write_gif(dance.joints, temps[1], dance.fps)
    except OSError as exc:
        raise write_failed(exc, *outputs) from None
    message = f"Wrote {out}: {dance.num_frames} frames ({dance.duration:.1f} s at {dance.fps} fps)"
    if preview is not None:
        message += f"; preview {preview}"
    print(message + f" in {time.monotonic() - progress.started:.1f} s.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m inference", description="Music2Dance engine.")
    sub = parser.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="make a dance for a music file",
                       description="Generate a dance for a music file and save it as an npz "
                                   "(fps, smpl_poses, smpl_trans, joints, contacts, audio_start).")
    g.add_argument("audio", help="music file: WAV, FLAC, OGG or MP3")
    g.add_argument("-o", "--output", required=True, help="where to write the dance (.npz)")
    g.add_argument("--start", type=float, default=0.0, help="seconds into the song to start (default 0)")
    g.add_argument("--duration", type=float, default=None, help="seconds of music to dance to (default: to the end)")
    g.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same dance")
    g.add_argument("--sampler", choices=SAMPLERS, default=None,
                   help="ddim, or dpmpp_2m (DPM-Solver++(2M): about 2.5x faster, for drafts; "
                        "default from the model, ddim)")
    g.add_argument("--steps", type=int, default=None,
                   help="sampling steps (default from the model: 50 for ddim; 20 for dpmpp_2m)")
    g.add_argument("--guidance", type=float, default=None, help="classifier-free guidance weight (default 2)")
    g.add_argument("--eta", type=float, default=None,
                   help="with --sampler ddim: 0 deterministic, 1 stochastic (default 0)")
    g.add_argument("--style", default="any", metavar="STYLE",
                   help="dance style: any (default: the network chooses), or one the model was trained on "
                        f"(the shipped model knows the ballroom styles: {', '.join(STYLE_CHOICES[1:])}; weights "
                        "trained without styles know only any)")
    g.add_argument("--no-beat-snap", action="store_true",
                   help="keep the network's own timing (by default accents within 0.1 s of a beat move onto it)")
    g.add_argument("--no-foot-lock", action="store_true",
                   help="keep the network's own feet (by default a foot resting on the floor is held still)")
    g.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    g.add_argument("--weights", default=None, help="model folder or .safetensors file (default: weights/)")
    g.add_argument("--constraints", default=None, help="npz of pins to meet (see the README)")
    g.add_argument("--preview", default=None, help="also write a stick-figure animation (.gif)")
    g.set_defaults(func=_cmd_generate)

    _add_development_commands(sub)
    return parser


def _add_development_commands(sub) -> None:
    """Register preprocess, train and evaluate where their sub-packages are installed (a checkout of the
    repository); where they are not (the Blender extension ships without them), a command that says so."""
    for name, package, module in DEVELOPMENT_COMMANDS:
        if importlib.util.find_spec(f"{__package__}.{package}") is not None:
            importlib.import_module(f".{package}.{module}", __package__).add_subcommand(sub)
            continue
        stub = sub.add_parser(name, help=f"not installed: {NOT_INSTALLED}", add_help=False, prefix_chars="\0")
        stub.add_argument("args", nargs="*")
        stub.set_defaults(func=_not_installed, package=package)


def _not_installed(args) -> int:
    raise M2DError(f"`{args.command}` is a development command (inference/{args.package}/), {NOT_INSTALLED}.")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    _default_cache_dirs()
    try:
        return args.func(args)
    except M2DError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as exc:  # a file that could not be read or written, past the checks
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}; nothing was written.", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("\nInterrupted; nothing was written.", file=sys.stderr)
        return EXIT_INTERRUPTED
