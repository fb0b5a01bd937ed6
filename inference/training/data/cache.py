"""The training cache: one npz of per-frame arrays over all dances, and windows drawn from it.

Contents (``np.savez_compressed``; no pickled objects, read with ``allow_pickle=False``)::

    format        ()        "music2dance-cache/1"
    smpl_poses    (F, 72)   float32  axis-angle, all dances concatenated at ``fps``
    smpl_trans    (F, 3)    float32  root position, metres, z-up
    contacts      (F, 4)    uint8    0/1 foot contacts
    music         (F, 35)   float16  :func:`inference.music.features.extract_features`
    offsets       (D + 1,)  int64    dance d is frames offsets[d]:offsets[d+1]
    names, styles, split, sources   (D,) str   (split "train"/"test"; source = the original dance)
    audio, audio_start              (D,) str / float64   where each dance's music starts
    fps, hop_length, n_mfcc, n_chroma, music_dim    ()  int   the feature settings used
    report        ()        str      JSON: per-dance provenance and quality figures

Writing (:func:`write_cache`) belongs to preprocessing; reading
(:class:`DanceCache`) and window sampling (:class:`WindowSampler`) need only
NumPy and the motion layout, so training runs anywhere the cache is copied.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ... import motion as mo
from ... import skeleton as sk
from ...config import M2DConfig
from ...errors import DataError
from ...files import atomic_path
from .augment import random_augment
from .splits import check_disjoint

CACHE_FORMAT = "music2dance-cache/1"
FEATURE_SETTINGS = ("fps", "hop_length", "n_mfcc", "n_chroma")
VALIDATION_WINDOWS = 256
"""Most held-out windows :meth:`WindowSampler.validation` returns (evenly spaced)."""


@dataclass
class Dance:
    """One dance of the cache (views into the concatenated arrays)."""

    name: str
    style: str
    split: str
    source: str
    smpl_poses: np.ndarray  # (N, 72) float32
    smpl_trans: np.ndarray  # (N, 3) float32
    contacts: np.ndarray  # (N, 4) uint8
    music: np.ndarray  # (N, 35) float16

    @property
    def num_frames(self) -> int:
        return len(self.smpl_poses)


def write_cache(path, dances: list[dict], config: M2DConfig, report: Optional[dict] = None) -> Path:
    """Write the cache atomically. Each dance is a dict with name, style, split, source, smpl_poses,
    smpl_trans, contacts, music, audio, audio_start (arrays of equal length N)."""
    if not dances:
        raise DataError("No dances to write: every clip was dropped or none was found.")
    check_disjoint([d["name"] for d in dances], [d["source"] for d in dances], [d["split"] for d in dances])
    for d in dances:
        n = len(d["smpl_poses"])
        for key, width in (("smpl_poses", 72), ("smpl_trans", 3), ("contacts", 4), ("music", config.music_dim)):
            if np.shape(d[key]) != (n, width):
                raise DataError(f"{d['name']}: {key} has shape {np.shape(d[key])}, expected ({n}, {width}).")
    lengths = [len(d["smpl_poses"]) for d in dances]
    arrays = {
        "format": np.array(CACHE_FORMAT),
        "smpl_poses": np.concatenate([d["smpl_poses"] for d in dances]).astype(np.float32),
        "smpl_trans": np.concatenate([d["smpl_trans"] for d in dances]).astype(np.float32),
        "contacts": (np.concatenate([d["contacts"] for d in dances]) > 0.5).astype(np.uint8),
        "music": np.concatenate([d["music"] for d in dances]).astype(np.float16),
        "offsets": np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        "names": np.array([d["name"] for d in dances]),
        "styles": np.array([d["style"] for d in dances]),
        "split": np.array([d["split"] for d in dances]),
        "sources": np.array([d["source"] for d in dances]),
        "audio": np.array([str(d["audio"]) for d in dances]),
        "audio_start": np.array([float(d["audio_start"]) for d in dances], np.float64),
        "music_dim": np.int64(config.music_dim),
        "report": np.array(json.dumps(report or {}, sort_keys=True)),
        **{k: np.int64(getattr(config, k)) for k in FEATURE_SETTINGS},
    }
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    return path


class DanceCache:
    """A cache file loaded into memory."""

    def __init__(self, path):
        path = Path(path)
        if not path.is_file():
            raise DataError(f"Cache file not found: {path}. Run `python -m inference preprocess` first.")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (ValueError, OSError, EOFError) as exc:
            raise DataError(f"{path} is not a readable cache ({exc}).") from None
        if str(arrays.get("format", "")) != CACHE_FORMAT:
            raise DataError(f"{path} is not a {CACHE_FORMAT} cache (format {arrays.get('format')!r}).")
        self.path = path
        self.arrays = arrays
        self.settings = {k: int(arrays[k]) for k in FEATURE_SETTINGS + ("music_dim",)}
        self.report = json.loads(str(arrays["report"]))
        o = arrays["offsets"]
        self.dances = [
            Dance(name=str(arrays["names"][i]), style=str(arrays["styles"][i]), split=str(arrays["split"][i]),
                  source=str(arrays["sources"][i]), smpl_poses=arrays["smpl_poses"][o[i]:o[i + 1]],
                  smpl_trans=arrays["smpl_trans"][o[i]:o[i + 1]], contacts=arrays["contacts"][o[i]:o[i + 1]],
                  music=arrays["music"][o[i]:o[i + 1]])
            for i in range(len(o) - 1)
        ]

    @property
    def fps(self) -> int:
        return self.settings["fps"]

    def check_config(self, config: M2DConfig) -> None:
        """Raise DataError if the cache's frame rate or music features differ from the model's."""
        wrong = [f"{k} {self.settings[k]} (model: {getattr(config, k)})" for k in FEATURE_SETTINGS + ("music_dim",)
                 if self.settings[k] != getattr(config, k)]
        if wrong:
            raise DataError(f"{self.path} was made with other feature settings: {', '.join(wrong)}. "
                            "Preprocess again with the model's config.")

    def split(self, split: Optional[str]) -> list[Dance]:
        return [d for d in self.dances if split is None or d.split == split]

    def frames(self, split: Optional[str] = None) -> int:
        return sum(d.num_frames for d in self.split(split))


def window(dance: Dance, start: int, frames: int, fps: int) -> tuple[np.ndarray, np.ndarray]:
    """(frames, 151) window-frame motion and (frames, 35) float32 music from ``start``."""
    sl = slice(start, start + frames)
    x = mo.from_smpl(dance.smpl_poses[sl], dance.smpl_trans[sl], fps, contacts=dance.contacts[sl])
    return mo.to_window_frame(x)[0], dance.music[sl].astype(np.float32)


def sample_windows(dances: list[Dance], window_frames: int, fps: int, batch: int, rng: np.random.Generator,
                   weights: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(B, T, 151) window-frame motion, (B, T, 35) music and (B,) the dances' style names: random
    windows of the given dances.

    Dances are drawn with ``weights`` (default: in proportion to their possible starts).
    """
    if weights is None:
        starts = np.array([max(0, d.num_frames - window_frames + 1) for d in dances], np.float64)
        weights = starts / starts.sum()
    pairs, styles = [], []
    for i in rng.choice(len(dances), size=batch, p=weights):
        d = dances[i]
        pairs.append(window(d, int(rng.integers(0, d.num_frames - window_frames + 1)), window_frames, fps))
        styles.append(d.style)
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs]), np.array(styles)


def style_indices(names, config: M2DConfig) -> np.ndarray:
    """(B,) style names -> the config's style indices; a style the config does not name is 0 (any)."""
    return np.array([config.style_index(n) if n in config.styles else 0 for n in names], np.int64)


def unmeasured_joints(cache: "DanceCache") -> tuple:
    """Joints the cache's source does not measure in full (by its report's ``kind``); () if it measures all."""
    if cache.report.get("kind") == "tang2018":
        from .tang2018 import UNMEASURED_JOINTS

        return UNMEASURED_JOINTS
    return ()


def cache_styles(cache: "DanceCache", split: str = "train") -> tuple:
    """The style labels of a split's dances, sorted (a model's ``styles`` when trained on them)."""
    return tuple(sorted({d.style for d in cache.split(split) if d.style and d.style != "custom"}))


class WindowSampler:
    """Random training windows from a cache: a :class:`inference.training.train.WindowSource`.

    A window starts anywhere in a dance long enough (dances drawn in proportion
    to their possible starts), is mirrored with ``mirror_prob`` and turned to a
    random heading; it carries its dance's style as the config's index. The
    rotations of the ``unmeasured`` joints (names) are NaN in its windows, so
    training leaves them out; mirroring carries the NaN to the other side, so a
    measured joint teaches its unmeasured partner. :meth:`validation` gives fixed
    windows of the test split, as they are.
    """

    def __init__(self, cache: DanceCache, config: M2DConfig, split: str = "train", augment: bool = True,
                 mirror_prob: float = 0.5, heading: bool = True, unmeasured: tuple = ()):
        cache.check_config(config)
        self.cache, self.config, self.augment = cache, config, augment
        self.unmeasured = [mo.rotation_dims(sk.JOINT_INDEX[name]) for name in unmeasured]
        self.mirror_prob, self.heading = mirror_prob, heading
        self.frames = config.window_frames
        self.dances = [d for d in cache.split(split) if d.num_frames >= self.frames]
        if not self.dances:
            raise DataError(f"No {split} dance in {cache.path} has {self.frames} frames "
                            f"({config.window_seconds:.1f} s) for a window.")
        starts = np.array([d.num_frames - self.frames + 1 for d in self.dances], np.float64)
        self.weights = starts / starts.sum()
        self.held_out = [d for d in cache.split("test") if d.num_frames >= self.frames]

    def sample(self, batch: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        motion, music, styles = sample_windows(self.dances, self.frames, self.cache.fps, batch, rng, self.weights)
        for dims in self.unmeasured:
            motion[..., dims] = np.nan
        if self.augment:
            motion = random_augment(motion, rng, self.mirror_prob, self.heading).astype(np.float32)
        return motion, music, style_indices(styles, self.config)

    def validation(self) -> Optional[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Half-overlapping windows of the held-out dances (at most :data:`VALIDATION_WINDOWS`), or None."""
        if not self.held_out:
            return None
        starts = [(d, s) for d in self.held_out for s in range(0, d.num_frames - self.frames + 1, self.frames // 2)]
        keep = np.linspace(0, len(starts) - 1, min(len(starts), VALIDATION_WINDOWS)).round().astype(int)
        pairs = [window(starts[k][0], starts[k][1], self.frames, self.cache.fps) for k in keep]
        styles = style_indices([starts[k][0].style for k in keep], self.config)
        return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs]), styles
