"""Raw data set -> one training cache: ``python -m inference preprocess KIND SOURCE -o CACHE.npz``.

KIND is ``tang2018`` (the ballroom set: timing fit, beat check, retargeting),
``aistpp`` (official AIST++ layout) or ``folder`` (a studio's own clips, see
:mod:`.folder`). Music features are computed once per song with the model
config's settings and sliced to each dance; the cache records those settings.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ...config import M2DConfig
from ...errors import DataError, M2DError
from . import splits as sp
from .cache import write_cache
from .clip import Clip

KINDS = ("tang2018", "aistpp", "folder")


class _SongFeatures:
    """Whole-song features, computed once per music file.

    A file that decodes only in part gives the features of the part that decodes and a
    warning; :attr:`truncated` maps it to its decodable and full lengths (seconds), so a
    dance whose span runs past the decodable part can be skipped.
    """

    def __init__(self, config: M2DConfig, log: Callable[[str], None] = print):
        self.config, self.log = config, log
        self.songs: dict[str, np.ndarray] = {}
        self.truncated: dict[str, tuple[float, float]] = {}
        self.skipped: list[dict] = []

    def __call__(self, audio) -> np.ndarray:
        from ...music.features import features_from_file

        key = str(audio)
        if key not in self.songs:
            features, clip = features_from_file(audio, self.config, allow_truncated=True)
            self.songs[key] = features
            if clip.truncated:
                self.truncated[key] = (len(features) / self.config.fps, clip.file_duration)
                self.log(f"WARNING: {audio} is truncated: only {self.truncated[key][0]:.1f} s of its "
                         f"{clip.file_duration:.1f} s decode; dances are cut to that or skipped.")
        return self.songs[key]

    def decodable(self, audio) -> float:
        """Seconds of ``audio`` that decode (the whole song unless it is truncated)."""
        features = self(audio)
        return self.truncated.get(str(audio), (len(features) / self.config.fps,))[0]


def _slice_music(clip: Clip, song: np.ndarray, fps: int):
    """The clip and its (n, 35) features, both cut to the frames the song covers."""
    first = int(round(clip.audio_start * fps))
    music = song[first:first + clip.num_frames]
    if len(music) < 2:
        raise DataError(f"{clip.name}: its music {clip.audio} ends before the dance starts "
                        f"({clip.audio_start:.2f} s).")
    return (clip.trimmed(len(music)) if len(music) < clip.num_frames else clip), music


def _tang2018(source, config, features, options, log):
    from . import tang2018 as tg

    out, reports = [], []
    for folder in tg.dance_folders(source):
        dance = tg.read_dance(folder)
        song = features(dance.audio)
        if str(dance.audio) in features.truncated:
            decodable = features.decodable(dance.audio)
            if dance.end > decodable:
                log(f"WARNING: {dance.name} SKIPPED: its music runs to {dance.end:.1f} s but only "
                    f"{decodable:.1f} s of {dance.audio} decode.")
                features.skipped.append({"name": dance.name, "reason": f"truncated audio: the dance runs to "
                                         f"{dance.end:.1f} s, {decodable:.1f} s decode"})
                continue
            log(f"{dance.name}: its span ({dance.start:.1f}-{dance.end:.1f} s) lies within the "
                f"{decodable:.1f} s that decode; kept.")
        clip, music, report = tg.process_dance(dance, song, config.fps,
                                               min_prominence=options.get("min_prominence", tg.MIN_PROMINENCE),
                                               warp=options.get("warp", True))
        clip.split = sp.tang2018_split(clip.name)
        reports.append(report)
        keep = report.kept or options.get("keep_unaligned", False)
        log(f"{clip.name:<11} {'kept   ' if keep else 'DROPPED'} {report.reason}; clock {report.clock['hypothesis']} "
            f"rate {report.clock['rate']:.4f} offset {report.clock['offset']:+.3f} s; BA {report.ba_span:.3f} -> "
            f"{report.ba_clock:.3f} -> {report.ba_warp:.3f}; retarget {report.retarget_error_cm['mean']:.1f}/"
            f"{report.retarget_error_cm['max']:.1f} cm; {clip.num_frames} frames")
        if keep:
            out.append((clip, music))
    return out, [r.__dict__ for r in reports]


def _stretched(clip: Clip, factor: float, config: M2DConfig) -> tuple[Clip, np.ndarray]:
    from ...music.audio import load_audio
    from ...music.features import extract_features
    from .augment import time_stretch
    from .clip import contacts_from_motion

    audio = load_audio(clip.audio, config.audio_sample_rate, start=clip.audio_start, duration=clip.duration)
    poses, trans, samples = time_stretch(clip.smpl_poses, clip.smpl_trans, audio.samples, clip.fps, factor)
    music = extract_features(samples, config)
    n = min(len(poses), len(music))
    out = Clip(name=f"{clip.name}@x{factor:g}", style=clip.style, fps=clip.fps,
               smpl_poses=poses[:n].astype(np.float32), smpl_trans=trans[:n].astype(np.float32),
               contacts=contacts_from_motion(poses[:n], trans[:n], clip.fps), audio=clip.audio,
               audio_start=clip.audio_start, split=clip.split,
               info={"stretch_of": clip.name, "factor": factor})
    return out, music[:n]


def build_cache(kind: str, source, output, config: Optional[M2DConfig] = None, music_dir=None,
                stretch=(), log: Callable[[str], None] = print, **options) -> dict:
    """Read a data set, compute its music features and write the cache; returns the summary.

    ``options``: ``keep_unaligned`` / ``min_prominence`` / ``warp`` (tang2018),
    ``ground`` (folder).
    """
    config = config or M2DConfig()
    if kind not in KINDS:
        raise DataError(f"Unknown data set kind {kind!r}; choose one of {', '.join(KINDS)}.")
    output = Path(output)
    if output.suffix != ".npz":
        raise DataError(f"The cache file must end in .npz; got {output.name}.")
    if not output.parent.is_dir():
        raise DataError(f"The folder {output.parent} does not exist; create it first.")
    started = time.monotonic()
    features = _SongFeatures(config, log)
    reports: list = []
    if kind == "tang2018":
        pairs, reports = _tang2018(source, config, features, options, log)
    else:
        if kind == "aistpp":
            from .aistpp import load_aistpp

            clips = load_aistpp(source, config.fps, music_dir=music_dir, log=log)
        else:
            from .folder import load_folder

            clips = load_folder(source, config.fps, do_ground=options.get("ground", False))
        pairs = []
        for c in clips:
            song = features(c.audio)
            if str(c.audio) in features.truncated and c.audio_start + c.duration > features.decodable(c.audio):
                if c.audio_start + 2.0 / config.fps >= features.decodable(c.audio):
                    log(f"WARNING: {c.name} SKIPPED: its music starts after the part of {c.audio} that decodes.")
                    features.skipped.append({"name": c.name, "reason": "truncated audio"})
                    continue
                log(f"WARNING: {c.name} is cut to the {features.decodable(c.audio):.1f} s of {c.audio} that decode.")
            pairs.append(_slice_music(c, song, config.fps))
        for clip, _ in pairs:
            log(f"{clip.name}: {clip.num_frames} frames, {clip.style}, {clip.split}")
    for factor in stretch:
        for clip, _ in [p for p in pairs if p[0].split == "train" and "stretch_of" not in p[0].info]:
            pairs.append(_stretched(clip, factor, config))
    dances = [{"name": c.name, "style": c.style, "split": c.split, "source": c.info.get("stretch_of", c.name),
               "smpl_poses": c.smpl_poses, "smpl_trans": c.smpl_trans, "contacts": c.contacts, "music": m,
               "audio": c.audio, "audio_start": c.audio_start} for c, m in pairs]
    summary = {
        "kind": kind, "source": str(source), "dances": len(dances),
        "frames": {s: int(sum(len(d["smpl_poses"]) for d in dances if d["split"] == s)) for s in ("train", "test")},
        "dropped": [{"name": r["name"], "reason": r["reason"]} for r in reports
                    if not r["kept"] and not options.get("keep_unaligned", False)] + features.skipped,
        "truncated_audio": {k: {"decodable_s": round(a, 2), "file_s": round(b, 2)}
                            for k, (a, b) in features.truncated.items()},
        "per_dance": reports or [{"name": c.name, **{k: v for k, v in c.info.items() if k != "report"}}
                                 for c, _ in pairs],
        "feature_settings": {"fps": config.fps, "hop_length": config.hop_length, "n_mfcc": config.n_mfcc,
                             "n_chroma": config.n_chroma},
        "stretch": list(stretch),
    }
    if reports:
        kept = [r for r in reports if r["kept"]]
        summary["beat_alignment"] = {
            "definition": "inference.evaluation.metrics.beat_alignment (Bailando BA, sigma 3 frames at 30 fps) over all music "
                          "beats of each dance, kinematic beats from inference.analysis.kinematic_beats",
            **{f"{stage}_mean_kept": round(float(np.mean([r[f"ba_{stage}"] for r in kept])), 4) if kept else None
               for stage in ("span", "clock", "warp")},
        }
    write_cache(output, dances, config, report=summary)
    summary["cache_bytes"] = output.stat().st_size
    summary["seconds"] = round(time.monotonic() - started, 1)
    return summary


def _cmd_preprocess(args) -> int:
    config = M2DConfig.load(args.config) if args.config else M2DConfig()
    stretch = tuple(float(f) for f in args.stretch) if args.stretch else ()
    if any(not 0.5 <= f <= 2.0 for f in stretch):
        raise M2DError("Stretch factors must lie between 0.5 and 2.")
    summary = build_cache(args.kind, args.source, args.output, config=config, music_dir=args.music,
                          stretch=stretch, keep_unaligned=args.keep_unaligned, warp=not args.no_warp,
                          ground=args.ground, **({"min_prominence": args.min_prominence}
                                                 if args.min_prominence is not None else {}))
    if args.report:
        Path(args.report).write_text(json.dumps(summary, indent=2) + "\n")
    dropped = ", ".join(d["name"] for d in summary["dropped"]) or "none"
    print(f"Wrote {args.output}: {summary['dances']} dances, {summary['frames']['train']} train and "
          f"{summary['frames']['test']} test frames, {summary['cache_bytes'] / 1e6:.1f} MB in "
          f"{summary['seconds']:.0f} s; dropped: {dropped}.")
    return 0


def add_subcommand(subparsers) -> None:
    """Add ``preprocess`` to the CLI's subparsers."""
    p = subparsers.add_parser(
        "preprocess", help="turn a dance data set into a training cache",
        description="Read a dance data set, retarget and time it, compute music features and write one "
                    "compact cache (.npz) for training.")
    p.add_argument("kind", choices=KINDS, help="tang2018 (ballroom set), aistpp (AIST++) or folder (own clips)")
    p.add_argument("source", help="the data set's top folder")
    p.add_argument("-o", "--output", required=True, help="cache file to write (.npz)")
    p.add_argument("--config", default=None, help="model config JSON whose feature settings to use (default: built-in)")
    p.add_argument("--music", default=None, help="AIST++ music folder (default: wav/ or music/ next to motions/)")
    p.add_argument("--stretch", nargs="*", default=None, metavar="F",
                   help="also add time-stretched copies of training dances, e.g. 0.95 1.05")
    p.add_argument("--keep-unaligned", action="store_true", help="tang2018: keep dances that fail the beat check")
    p.add_argument("--min-prominence", type=float, default=None,
                   help="tang2018: beat-coherence threshold for keeping a dance (default 2.5)")
    p.add_argument("--no-warp", action="store_true", help="tang2018: no beat-synchronous re-timing")
    p.add_argument("--ground", action="store_true", help="folder: put the feet on the floor (z = 0)")
    p.add_argument("--report", default=None, help="also write the preprocessing report (JSON)")
    p.set_defaults(func=_cmd_preprocess)
