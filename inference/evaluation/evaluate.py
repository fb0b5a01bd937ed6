"""``python -m inference evaluate``: score sets of dances against ground truth, in one table.

Each set (generated dances, held-out ground truth, ...) becomes a row; the
columns are the metrics of :mod:`inference.evaluation.metrics`: PFC, beat alignment with
the dance's own music and with another song (the music-following control),
diversity and Fréchet distance of kinetic and geometric features against a
reference set of ground-truth dances, foot skating and ground penetration.

Every score is computed on the non-overlapping 5 s clips of every dance (a
shorter tail is left out) and averaged over all the clips of a set; Div and FID
treat each clip as one sample. Kinematic beats and the skating floor are found
on the whole dance, so a clip's music beat may meet a kinematic beat just
outside the clip. Motion is scored at the config's frame rate (30 fps); dances
at another rate are resampled first.

Music beats are the beat column of :mod:`inference.music.features`, recomputed from
the stretch of audio the dance was made for (``audio_start`` and the dance's
duration), or taken from a ``music_features`` array stored in the npz.
"""

from __future__ import annotations

import json
import math
import sys
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping, Optional, Sequence

import numpy as np

from .. import analysis
from .. import skeleton as sk
from ..config import M2DConfig
from ..errors import DataError, M2DError
from ..files import atomic_path, output_path
from ..music.features import beats_from_features, features_from_file
from . import metrics

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
"""Extensions tried for a music file beside a dance npz (same stem)."""
FEATURES_KEY = "music_features"
"""Optional npz array of (N, music_dim) music features at the dance's fps; its beat column is used as is."""
DEFAULT_LABEL = "generated"
REFERENCE_LABEL = "ground truth"
FORMAT = "music2dance-evaluation/1"

# Table columns: attribute of SetScores, header, format.
COLUMNS = (
    ("pfc", "PFC", "{:.3f}"),
    ("ba", "BA", "{:.3f}"),
    ("ba_other", "BA other song", "{:.3f}"),
    ("div_k", "Div_k", "{:.2f}"),
    ("div_g", "Div_g", "{:.2f}"),
    ("fid_k", "FID_k", "{:.2f}"),
    ("fid_g", "FID_g", "{:.2f}"),
    ("skate", "skate", "{:.3f}"),
    ("penetration", "penetr. cm", "{:.2f}"),
)


@dataclass
class EvalDance:
    """One dance ready to score."""

    name: str
    """Where it came from, for messages (a file path)."""
    joints: np.ndarray
    """(N, 24, 3) world joint positions, metres, z-up."""
    fps: float
    beats: Optional[np.ndarray] = None
    """Frame indices of the music beats, or None when the music is unknown."""
    music: Optional[str] = None
    """Which song (e.g. the audio file); dances on another song serve as the beat control."""


@dataclass
class SetScores:
    """A set's row of the table; NaN where a score is undefined (see :func:`evaluate_sets`)."""

    dances: int
    clips: int
    pfc: float
    ba: float
    ba_other: float
    div_k: float
    div_g: float
    fid_k: float
    fid_g: float
    skate: float
    penetration: float
    """Mean depth of the lowest foot joint below z = 0, centimetres."""
    penetration_frames: float
    """Fraction of frames with a foot joint below z = 0."""

    def as_dict(self) -> dict:
        """JSON-ready: NaN becomes None."""
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


# ----------------------------------------------------------------------------- music


def music_beats(audio, start: float, num_frames: int, config: M2DConfig) -> np.ndarray:
    """Beat frames of ``num_frames`` frames of music from ``start`` seconds into ``audio``."""
    features, _ = features_from_file(audio, config, start=start, duration=num_frames / config.fps)
    beats = beats_from_features(features, config)
    return beats[beats < num_frames]


# ----------------------------------------------------------------------------- loading


def find_dances(path) -> list[Path]:
    """The npz files named by ``path``: the file itself, or every ``*.npz`` in a folder (sorted)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"Dance file or folder not found: {path}. Check the path.")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".npz" and p.is_file())
        if not files:
            raise DataError(f"The folder {path} holds no .npz dances. Give a folder of dances made by "
                            "`python -m inference generate`, or the npz files themselves.")
        return files
    if path.suffix.lower() != ".npz":
        raise DataError(f"{path} is not an npz dance file. Give .npz files (see the README's npz contract) "
                        "or folders of them.")
    return [path]


def _read_npz(path: Path) -> dict:
    if not path.is_file():
        raise DataError(f"Dance file not found: {path}. Check the path.")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path} is not a readable npz file ({exc}). Write it again with "
                        "`python -m inference generate` or numpy.savez.") from None


def _find_music(path: Path, data: dict, audio) -> Optional[Path]:
    """The music of a dance: ``audio`` if given, else its recorded ``audio_path``, else a sibling file."""
    if audio is not None:
        return Path(audio)
    if "audio_path" in data:
        recorded = Path(str(data["audio_path"]))
        if recorded.is_file():
            return recorded
    for suffix in AUDIO_SUFFIXES:
        for candidate in (path.with_suffix(suffix), path.with_suffix(suffix.upper())):
            if candidate.is_file():
                return candidate
    return None


def load_dance(path, config: M2DConfig, audio=None, need_music: bool = True, beat_cache: Optional[dict] = None
               ) -> EvalDance:
    """Read a dance npz (our contract) and find its music beats; resampled to ``config.fps``.

    Music, in order: ``audio`` (any file, for all dances), the npz's
    ``music_features`` beat column, its ``audio_path``, a sibling audio file with
    the same stem. Without music, ``need_music`` raises, else beats are None.
    ``beat_cache`` (a dict) shares beat tracking between dances on the same music.
    """
    path = Path(path)
    data = _read_npz(path)
    for key in ("joints", "fps"):
        if key not in data:
            raise DataError(f"{path} has no '{key}' array, so it is not a Music2Dance dance (npz contract: fps, "
                            "smpl_poses, smpl_trans, joints, contacts, audio_start). Make it with "
                            "`python -m inference generate`, or add world joint positions (N, 24, 3) as 'joints'.")
    joints = np.asarray(data["joints"], np.float64)
    try:
        fps = float(np.asarray(data["fps"]).reshape(-1)[0])
    except (IndexError, TypeError, ValueError):
        fps = float("nan")
    if joints.ndim != 3 or joints.shape[1:] != (sk.NUM_JOINTS, 3):
        raise DataError(f"{path}: 'joints' has shape {joints.shape}; expected (frames, {sk.NUM_JOINTS}, 3) "
                        "world positions in metres, z-up.")
    if not np.all(np.isfinite(joints)):
        raise DataError(f"{path}: 'joints' holds NaN or infinite values; the dance is damaged. Generate it again.")
    if not (math.isfinite(fps) and fps > 0):
        raise DataError(f"{path}: 'fps' is {fps}; it must be a positive frame rate (30 for our dances).")
    seconds = len(joints) / fps
    joints = metrics.resample_joints(joints, fps, config.fps)
    if not metrics.clip_slices(len(joints), config.fps):
        clip = metrics.CLIP_SECONDS
        raise DataError(f"{path} lasts {seconds:.2f} s; the metrics are computed on {clip:g} s clips, so every "
                        f"dance must last at least {clip:g} s. Generate longer dances (--duration) or leave "
                        "this one out.")
    n = len(joints)
    name = str(path)

    if audio is None and FEATURES_KEY in data:
        features = np.asarray(data[FEATURES_KEY])
        if features.ndim != 2 or features.shape[1] != config.music_dim:
            raise DataError(f"{path}: '{FEATURES_KEY}' has shape {features.shape}; expected (frames, "
                            f"{config.music_dim}) music features. Remove it to recompute beats from the audio.")
        beats = beats_from_features(features, config) * config.fps / fps  # to the evaluation frame rate
        beats = np.round(beats).astype(int)
        return EvalDance(name, joints, config.fps, beats[beats < n], music=f"features:{path}")

    music = _find_music(path, data, audio)
    if music is None:
        if not need_music:
            return EvalDance(name, joints, config.fps)
        recorded = f" its recorded audio_path {data['audio_path']} does not exist," if "audio_path" in data else ""
        raise DataError(f"No music for {path}:{recorded} and there is no {path.stem}"
                        f"{{{','.join(AUDIO_SUFFIXES)}}} beside it. Pass --audio SONG, or put the song beside "
                        "the npz with the same name.")
    start = float(data["audio_start"]) if "audio_start" in data else 0.0
    key = (str(music.resolve()), round(start, 3), n)
    cache = {} if beat_cache is None else beat_cache
    if key not in cache:
        cache[key] = music_beats(music, start, n, config)
    return EvalDance(name, joints, config.fps, cache[key], music=str(music.resolve()))


def load_set(paths: Sequence, config: M2DConfig, audio=None, need_music: bool = True,
             beat_cache: Optional[dict] = None) -> list[EvalDance]:
    """Every dance of the given npz files and folders."""
    cache = {} if beat_cache is None else beat_cache
    return [load_dance(f, config, audio=audio, need_music=need_music, beat_cache=cache)
            for p in paths for f in find_dances(p)]


def load_reference(path, config: M2DConfig, beat_cache: Optional[dict] = None,
                   split: Optional[str] = "test") -> list[EvalDance]:
    """The ground-truth dances Div and FID are measured against.

    Either a folder (or file) of npz dances — music is optional there, BA of the
    reference row is then n/a — or a training cache from ``preprocess``, whose
    dances of ``split`` (None: all) come with their music's beats.
    """
    path = Path(path)
    if path.is_file() and _is_cache(path):
        from ..training.data.cache import DanceCache

        cache = DanceCache(path)
        cache.check_config(config)
        dances = cache.split(split)
        if not dances:
            raise DataError(f"{path} holds no '{split}' dances; choose another --reference-split.")
        return [EvalDance(name=f"{path.name}:{d.name}", joints=sk.joint_positions(d.smpl_poses, d.smpl_trans),
                          fps=cache.fps, beats=np.flatnonzero(d.music[:, -1]), music=d.source)
                for d in dances]
    return load_set([path], config, need_music=False, beat_cache=beat_cache)


def _is_cache(path: Path) -> bool:
    from ..training.data.cache import CACHE_FORMAT

    try:
        with np.load(path, allow_pickle=False) as data:
            return "format" in data.files and str(data["format"]) == CACHE_FORMAT
    except (ValueError, OSError, EOFError, zipfile.BadZipFile):
        return False


# ----------------------------------------------------------------------------- scoring


@dataclass
class _ClipScores:
    """Per-clip numbers of one dance."""

    clips: list
    pfc: np.ndarray
    ba: np.ndarray
    skate: np.ndarray
    depth: np.ndarray
    below: np.ndarray
    kinetic: np.ndarray  # (clips, 72)
    geometric: np.ndarray  # (clips, 32)
    motion_beats: np.ndarray


def _score_dance(dance: EvalDance) -> _ClipScores:
    clips = metrics.clip_slices(len(dance.joints), dance.fps)
    if not clips:
        raise DataError(f"{dance.name} lasts {len(dance.joints) / dance.fps:.2f} s; every dance must last at "
                        f"least {metrics.CLIP_SECONDS:g} s to be scored.")
    floor = analysis.estimate_floor(dance.joints)
    motion_beats = analysis.kinematic_beats(dance.joints, dance.fps)
    rows = []
    for c in clips:
        j = dance.joints[c]
        pen = metrics.ground_penetration(j)
        ba = (float("nan") if dance.beats is None else
              metrics.beat_alignment(dance.beats[(dance.beats >= c.start) & (dance.beats < c.stop)],
                                     motion_beats, dance.fps))
        rows.append((metrics.physical_foot_contact(j, dance.fps), ba,
                     metrics.foot_skating(j, dance.fps, floor=floor), pen.depth, pen.frames,
                     metrics.kinetic_features(j, dance.fps), metrics.geometric_features(j, dance.fps)))
    cols = list(zip(*rows))
    return _ClipScores(clips, *(np.array(v, np.float64) for v in cols[:5]), np.stack(cols[5]), np.stack(cols[6]),
                       motion_beats)


def _other_song_ba(dance: EvalDance, scores: _ClipScores, other: EvalDance) -> np.ndarray:
    """BA of each clip against the beats of the same-numbered clip of another song (wrapping round)."""
    other_clips = metrics.clip_slices(len(other.joints), other.fps)
    out = []
    for k, c in enumerate(scores.clips):
        o = other_clips[k % len(other_clips)]
        beats = other.beats[(other.beats >= o.start) & (other.beats < o.stop)] - o.start + c.start
        out.append(metrics.beat_alignment(beats, scores.motion_beats, dance.fps))
    return np.array(out)


def _nanmean(values) -> float:
    values = np.asarray(values, np.float64)
    values = values[~np.isnan(values)]
    return float(values.mean()) if len(values) else float("nan")


def evaluate_sets(sets: Mapping[str, Sequence[EvalDance]], reference: Sequence[EvalDance]) -> dict[str, SetScores]:
    """Score every set against ``reference`` (ground truth); one :class:`SetScores` per set, same order.

    Averages are over all 5 s clips of a set. BA is NaN for a set whose music is
    unknown; the other-song BA pairs each dance with the next song (in order of
    first appearance across all sets and the reference) that differs from its
    own, and is NaN when only one song is present. Div and FID need at least
    two clips in the set and in the reference (else NaN). Kinetic and
    geometric features are standardised by the reference's statistics first.
    """
    everything = [d for ds in sets.values() for d in ds] + list(reference)
    if not reference:
        raise DataError("The reference set is empty; give ground-truth dances for Div and FID.")
    rates = {d.fps for d in everything}
    if len(rates) > 1:
        raise DataError(f"Dances at different frame rates ({sorted(rates)}); resample them to one rate first "
                        "(load_dance does this).")
    cache: dict[int, _ClipScores] = {}

    def scored(d: EvalDance) -> _ClipScores:
        if id(d) not in cache:
            cache[id(d)] = _score_dance(d)
        return cache[id(d)]

    songs: dict[str, EvalDance] = {}  # one dance per song, in order of first appearance
    for d in everything:
        if d.beats is not None:
            songs.setdefault(d.music or d.name, d)
    song_list = list(songs.items())

    def other_song(d: EvalDance) -> Optional[EvalDance]:
        own = d.music or d.name
        keys = [k for k, _ in song_list]
        start = keys.index(own) if own in keys else -1
        for step in range(1, len(song_list) + 1):
            key, candidate = song_list[(start + step) % len(song_list)]
            if key != own:
                return candidate
        return None

    ref_scores = [scored(d) for d in reference]
    ref_k = np.concatenate([s.kinetic for s in ref_scores])
    ref_g = np.concatenate([s.geometric for s in ref_scores])

    results = {}
    for label, dances in sets.items():
        if not dances:
            raise DataError(f"The set '{label}' holds no dances.")
        per = [scored(d) for d in dances]
        ba_other = []
        for d, s in zip(dances, per):
            other = other_song(d) if d.beats is not None else None
            ba_other.append(_other_song_ba(d, s, other) if other is not None else np.full(len(s.clips), np.nan))
        has_music = all(d.beats is not None for d in dances)
        kin, ref_kin = metrics.normalise(np.concatenate([s.kinetic for s in per]), ref_k)
        geo, ref_geo = metrics.normalise(np.concatenate([s.geometric for s in per]), ref_g)
        results[label] = SetScores(
            dances=len(dances),
            clips=sum(len(s.clips) for s in per),
            pfc=float(np.concatenate([s.pfc for s in per]).mean()),
            ba=_nanmean(np.concatenate([s.ba for s in per])) if has_music else float("nan"),
            ba_other=_nanmean(np.concatenate(ba_other)) if has_music else float("nan"),
            div_k=metrics.diversity(kin),
            div_g=metrics.diversity(geo),
            fid_k=metrics.frechet_distance(kin, ref_kin),
            fid_g=metrics.frechet_distance(geo, ref_geo),
            skate=float(np.concatenate([s.skate for s in per]).mean()),
            penetration=float(np.concatenate([s.depth for s in per]).mean()) * 100.0,
            penetration_frames=float(np.concatenate([s.below for s in per]).mean()),
        )
    return results


def fid_to_groups(sets: Mapping[str, Sequence[EvalDance]], groups: Mapping[str, Sequence[EvalDance]],
                  reference: Sequence[EvalDance]) -> dict[str, dict[str, tuple[float, float]]]:
    """(FID_k, FID_g) of every set against every group of reference dances (e.g. each style's held-out
    dances): ``{set: {group: (fid_k, fid_g)}}``.

    All features are standardised by the whole ``reference``'s statistics (not each group's own), so a
    set's distances to the different groups compare.
    """
    cache: dict[int, _ClipScores] = {}

    def feats(dances):
        per = [cache.setdefault(id(d), _score_dance(d)) for d in dances]
        return np.concatenate([s.kinetic for s in per]), np.concatenate([s.geometric for s in per])

    ref_k, ref_g = feats(reference)
    groups_n = {}
    for name, dances in groups.items():
        k, g = feats(dances)
        groups_n[name] = (metrics.normalise(k, ref_k)[0], metrics.normalise(g, ref_g)[0])
    out = {}
    for label, dances in sets.items():
        k, g = feats(dances)
        k, g = metrics.normalise(k, ref_k)[0], metrics.normalise(g, ref_g)[0]
        out[label] = {name: (metrics.frechet_distance(k, gk), metrics.frechet_distance(g, gg))
                      for name, (gk, gg) in groups_n.items()}
    return out


# ----------------------------------------------------------------------------- output


def settings() -> dict:
    """The constants behind the numbers, for the JSON report."""
    return {
        "clip_seconds": metrics.CLIP_SECONDS,
        "pfc": {"frame_seconds": metrics.PFC_FRAME_SECONDS, "scale": metrics.PFC_SCALE,
                "still_accel": metrics.PFC_STILL_ACCEL},
        "beat_alignment": {"definition": "Bailando: mean over music beats of exp(-d^2/2 sigma^2)",
                           "sigma_seconds": metrics.BEAT_SIGMA_SECONDS,
                           "speed_smoothing_seconds": analysis.SPEED_SMOOTHING_SECONDS},
        "kinetic_window_frames": metrics.KINETIC_WINDOW,
        "skating": {"floor_percentile": analysis.FLOOR_PERCENTILE, "contact_height_m": analysis.SKATE_HEIGHT,
                    "speed_m_s": analysis.SKATE_SPEED},
        "penetration": {"floor_z": metrics.FLOOR_Z, "unit": "cm"},
    }


def format_table(results: Mapping[str, SetScores]) -> str:
    """The rows as a fixed-width text table."""
    header = ["set", "dances", "clips"] + [h for _, h, _ in COLUMNS]
    rows = []
    for label, s in results.items():
        cells = [label, str(s.dances), str(s.clips)]
        for attr, _, fmt in COLUMNS:
            value = getattr(s, attr)
            cells.append("n/a" if math.isnan(value) else fmt.format(value))
        rows.append(cells)
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in [header] + rows]
    lines += [
        f"PFC: x10^4 as in EDGE, lower is better. BA: Bailando's beat-align score (sigma "
        f"{metrics.BEAT_SIGMA_SECONDS:g} s); 'other song': the same motion against another song's beats (control).",
        f"Div/FID: kinetic (k) and geometric (g) features of {metrics.CLIP_SECONDS:g} s clips, standardised by the "
        "reference set.",
        f"skate: fraction of frames with a planted foot sliding faster than {analysis.SKATE_SPEED:g} m/s. "
        "penetr.: mean depth of the lowest foot joint below z = 0.",
    ]
    return "\n".join(lines)


def to_json(results: Mapping[str, SetScores], reference: Optional[str] = None) -> dict:
    return {"format": FORMAT, "settings": settings(), "reference": reference,
            "sets": {label: s.as_dict() for label, s in results.items()}}


# ----------------------------------------------------------------------------- command line


def _parse_sets(items: Sequence[str]) -> dict[str, str]:
    """``[LABEL=]PATH`` arguments -> {label: path}; one unlabelled set is called "generated"."""
    sets: dict[str, str] = {}
    for item in items:
        label, sep, path = item.partition("=")
        if not sep or not label or Path(item).exists():
            label, path = (DEFAULT_LABEL if len(items) == 1 else Path(item).stem or item), item
        if label in sets:
            raise M2DError(f"Two sets are called '{label}'; name them, e.g. seed1={path}.")
        sets[label] = path
    return sets


def _cmd_evaluate(args) -> int:
    out = output_path(args.json, ".json", "JSON report") if args.json else None
    if args.audio is not None:
        from ..music.audio import check_audio_path

        check_audio_path(args.audio)
    config = M2DConfig()
    started = time.monotonic()
    beat_cache: dict = {}
    named = _parse_sets(args.dances)
    sets = {label: load_set([path], config, audio=args.audio, beat_cache=beat_cache)
            for label, path in named.items()}
    reference = load_reference(args.reference, config, beat_cache=beat_cache,
                               split=None if args.reference_split == "all" else args.reference_split)
    if args.reference_label in sets:
        raise M2DError(f"A set is already called '{args.reference_label}'; choose another --reference-label.")
    results = evaluate_sets({**sets, args.reference_label: reference}, reference)
    print(format_table(results), flush=True)
    ref_clips = results[args.reference_label].clips
    if ref_clips < metrics.KINETIC_DIMS:
        print(f"Note: the reference has {ref_clips} clips, fewer than the {metrics.KINETIC_DIMS} kinetic features; "
              "FID is unreliable with so few. Use a larger ground-truth set.", file=sys.stderr)
    if out is not None:
        with atomic_path(out) as tmp:
            tmp.write_text(json.dumps(to_json(results, str(args.reference)), indent=2) + "\n")
    count = sum(r.dances for r in results.values())
    print(f"Scored {count} dances in {time.monotonic() - started:.1f} s"
          + (f"; wrote {out}." if out else "."), file=sys.stderr)
    return 0


def add_subcommand(subparsers) -> None:
    """Add ``evaluate`` to the CLI's subparsers."""
    e = subparsers.add_parser(
        "evaluate", help="score dances against ground truth (PFC, beat alignment, Div, FID, skating)",
        description="Score sets of dances (npz files or folders of them) against ground-truth dances and print "
                    "one table: PFC, beat alignment with the own music and with another song, Div_k/Div_g, "
                    "FID_k/FID_g, foot skating and ground penetration, on 5 s clips.")
    e.add_argument("dances", nargs="+", metavar="[LABEL=]PATH",
                   help="a dance npz or a folder of them; each argument is one row, named LABEL if given")
    e.add_argument("--reference", required=True,
                   help="ground truth for Div and FID (and a row): a folder of dance npz files, "
                        "or a training cache from `preprocess`")
    e.add_argument("--reference-split", default="test", choices=("test", "train", "all"),
                   help="with a cache: which dances are the reference (default test, the held-out ones)")
    e.add_argument("--reference-label", default=REFERENCE_LABEL,
                   help=f"name of the reference row (default '{REFERENCE_LABEL}')")
    e.add_argument("--audio", default=None,
                   help="music of every dance to score (default: each npz's audio_path, or a song beside it "
                        "with the same name)")
    e.add_argument("--json", default=None, help="also write the numbers and settings to this .json file")
    e.set_defaults(func=_cmd_evaluate)
