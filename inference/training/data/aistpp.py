"""AIST++ (Li et al., ICCV 2021) in its official layout, converted to the engine's world.

Layout (``aist_plusplus_final``)::

    motions/<name>.pkl      smpl_poses (N, 72), smpl_trans (N, 3), smpl_scaling (1,) optional; 60 fps, y-up
    splits/crossmodal_{train,val,test}.txt, ignore_list.txt   (optional; also looked for at the top level)
    <music folder>/<music id>.wav   e.g. mBR0.wav; the id is the 5th "_" field of the motion name

Conversion: ``smpl_trans / smpl_scaling`` is in metres; the root orientation is
premultiplied by :data:`inference.skeleton.Y_UP_TO_Z_UP` and the translation
turned likewise; 60 fps becomes 30 by slerp.

About ``smpl_trans``: it is SMPL's ``transl``, so the pelvis stands at
``J_0(beta) + transl`` (``J_0`` the rest pelvis of the body shape, about 0.22 m
below and 0.03 m in front of the model origin for the neutral shape), whereas
our ``trans`` is the pelvis itself. The skeleton module holds no absolute
``J_0``, and the file holds no shape, so ``transl`` is used as the root
position and the constant difference is removed where it matters: the height
by :func:`inference.training.data.clip.ground` (feet onto the floor, as for every data
set) and the horizontal part by the window frame (windows start at the origin).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from ... import skeleton as sk
from ...errors import DataError
from .clip import Clip, contacts_from_motion, ground, resample_clip_arrays

AIST_FPS = 60
GENRES = {
    "gBR": "break", "gPO": "pop", "gLO": "lock", "gMH": "middle hip-hop", "gLH": "LA hip-hop",
    "gHO": "house", "gWA": "waack", "gKR": "krump", "gJS": "street jazz", "gJB": "ballet jazz",
}
AUDIO_SUFFIXES = (".wav", ".mp3", ".flac", ".ogg")
MUSIC_DIRS = ("wav", "music", "audio", "all_musics")
"""Folders (inside the data set, or beside it) searched for the music when none is given."""


def read_motion(path) -> tuple[np.ndarray, np.ndarray]:
    """(N, 72) poses and (N, 3) translation in metres, y-up, as stored; DataError naming the problem."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = pickle.load(f)  # the official format is a pickle; only open files you trust
    except FileNotFoundError:
        raise DataError(f"AIST++ motion file not found: {path}.") from None
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError) as exc:
        raise DataError(f"{path} is not a readable AIST++ motion pickle ({exc}).") from None
    if not isinstance(data, dict):
        raise DataError(f"{path} holds a {type(data).__name__}, expected a dict with smpl_poses and smpl_trans.")
    for key in ("smpl_poses", "smpl_trans"):
        if key not in data:
            raise DataError(f"{path} has no {key!r} (keys: {', '.join(map(str, data))}).")
    poses = np.asarray(data["smpl_poses"], np.float64)
    trans = np.asarray(data["smpl_trans"], np.float64)
    if poses.ndim != 2 or poses.shape[1] != 72 or trans.shape != (len(poses), 3):
        raise DataError(f"{path}: smpl_poses {poses.shape} / smpl_trans {trans.shape}; expected (N, 72) / (N, 3).")
    scaling = np.asarray(data.get("smpl_scaling", [1.0]), np.float64).reshape(-1)
    if len(scaling) != 1 or not scaling[0] > 0:
        raise DataError(f"{path}: smpl_scaling is {scaling}, expected one positive number.")
    if len(poses) < 2 or not (np.isfinite(poses).all() and np.isfinite(trans).all()):
        raise DataError(f"{path}: fewer than 2 frames, or NaN/infinite values.")
    return poses, trans / scaling[0]


def to_world(poses: np.ndarray, trans: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """y-up AIST++ arrays -> z-up: the root orientation premultiplied by Y_UP_TO_Z_UP, trans turned likewise."""
    poses = np.array(poses, np.float64, copy=True)
    root = sk.axis_angle_to_matrix(poses[:, :3])
    poses[:, :3] = sk.matrix_to_axis_angle(sk.Y_UP_TO_Z_UP @ root)
    return poses, np.asarray(trans, np.float64) @ sk.Y_UP_TO_Z_UP.T


def music_id(name: str) -> str:
    """``gBR_sBM_cAll_d04_mBR0_ch01`` -> ``mBR0``."""
    parts = name.split("_")
    if len(parts) < 5 or not parts[4].startswith("m"):
        raise DataError(f"{name}: not an AIST++ motion name (expected g.._s.._c.._d.._m.._ch..).")
    return parts[4]


def _read_list(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def official_splits(root: Path) -> tuple[dict, set]:
    """``{name: "train"|"test"}`` from crossmodal_*.txt (val counts as test) and the ignore list, if present."""
    split, ignore = {}, set()
    for folder in (root / "splits", root):
        for part, label in (("train", "train"), ("val", "test"), ("test", "test")):
            f = folder / f"crossmodal_{part}.txt"
            if f.is_file():
                split.update({n: label for n in _read_list(f)})
        f = folder / "ignore_list.txt"
        if f.is_file():
            ignore.update(_read_list(f))
    return split, ignore


def find_music_dir(root: Path, music_dir=None) -> Path:
    if music_dir is not None:
        music_dir = Path(music_dir)
        if not music_dir.is_dir():
            raise DataError(f"Music folder not found: {music_dir}.")
        return music_dir
    for base in (root, root.parent):
        for name in MUSIC_DIRS:
            if (base / name).is_dir():
                return base / name
    raise DataError(f"No music folder found for {root} (looked for {', '.join(MUSIC_DIRS)}); "
                    "give it with --music.")


def find_audio(music_dir: Path, stem: str) -> Path:
    for suffix in AUDIO_SUFFIXES:
        if (music_dir / f"{stem}{suffix}").is_file():
            return music_dir / f"{stem}{suffix}"
    raise DataError(f"No music file {stem}.wav (or .mp3/.flac/.ogg) in {music_dir}.")


def clip_from_motion(path, fps: int, audio: Path, split: str = "train") -> Clip:
    """One AIST++ motion file as a :class:`Clip` at ``fps`` (z-up, grounded, contacts from foot speed)."""
    path = Path(path)
    poses, trans = to_world(*read_motion(path))
    poses, trans = resample_clip_arrays(poses, trans, AIST_FPS, fps)
    trans, shift = ground(poses, trans, fps)
    genre = path.stem.split("_")[0]
    return Clip(name=path.stem, style=GENRES.get(genre, genre), fps=fps, smpl_poses=poses.astype(np.float32),
                smpl_trans=trans.astype(np.float32), contacts=contacts_from_motion(poses, trans, fps),
                audio=audio, audio_start=0.0, split=split,
                info={"dataset": "aistpp", "source": str(path), "height_shift_m": round(shift, 4)})


def load_aistpp(root, fps: int, music_dir=None, log=print) -> list[Clip]:
    """Every usable motion under ``root/motions`` as clips, with the official split where given."""
    root = Path(root)
    motions = root / "motions"
    if not motions.is_dir():
        raise DataError(f"{root} has no motions/ folder; point at the AIST++ top folder (aist_plusplus_final).")
    files = sorted(motions.glob("*.pkl"))
    if not files:
        raise DataError(f"{motions} holds no .pkl motion files.")
    music_dir = find_music_dir(root, music_dir)
    split, ignore = official_splits(root)
    clips = []
    for f in files:
        if f.stem in ignore:
            log(f"skip {f.stem}: in the official ignore list")
            continue
        clips.append(clip_from_motion(f, fps, find_audio(music_dir, music_id(f.stem)), split.get(f.stem, "train")))
    if split and not any(c.split == "test" for c in clips):
        log("note: no motion of the official test/val lists is present")
    return clips
