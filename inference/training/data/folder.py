"""A studio's own dances: one npz per clip in the engine's output contract, its music beside it.

Format (one folder, any number of clips)::

    <stem>.npz    fps            ()      int, frames per second (any; resampled to the model's)
                  smpl_poses     (N, 72) axis-angle, SMPL joint order (root orientation in the z-up world)
                  smpl_trans     (N, 3)  root (pelvis) position, metres, z-up
                  contacts       (N, 4)  optional, 0..1: left/right ankle, left/right toe (else from foot speed)
                  audio_start    ()      optional, seconds into the music of frame 0 (default 0)
                  style          ()      optional, a label such as "salsa" (default "custom")
    <stem>.wav    the music (or .flac / .ogg / .mp3), same stem
    test.txt      optional: stems held out for validation, one per line
                  (without it, a fixed ~10% of stems by name hash is held out)

This is exactly what ``python -m inference generate`` writes (its extra
``joints`` array is ignored), so generated and captured dances mix freely.
Heights are used as given; pass ``--ground`` to put the feet on the floor.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from ...errors import DataError
from .clip import Clip, contacts_from_motion, ground, resample_clip_arrays

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
TEST_SHARE = 10
"""Without test.txt, a clip is held out when the CRC-32 of its stem is divisible by this."""


def default_split(stem: str) -> str:
    """A fixed, name-based split: about one clip in :data:`TEST_SHARE` is "test"."""
    return "test" if zlib.crc32(stem.encode("utf-8")) % TEST_SHARE == 0 else "train"


def read_clip(path, fps: int, split: str = "train", do_ground: bool = False) -> Clip:
    """One ``<stem>.npz`` and its music as a :class:`Clip` at ``fps``; DataError naming the problem."""
    path = Path(path)
    try:
        data = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"Clip file not found: {path}.") from None
    except (ValueError, OSError) as exc:
        raise DataError(f"{path} is not a readable npz file ({exc}).") from None
    with data:
        for key in ("fps", "smpl_poses", "smpl_trans"):
            if key not in data.files:
                raise DataError(f"{path} has no {key!r} array (it has: {', '.join(data.files) or 'nothing'}).")
        src_fps = float(data["fps"])
        poses = np.asarray(data["smpl_poses"], np.float64)
        trans = np.asarray(data["smpl_trans"], np.float64)
        contacts = np.asarray(data["contacts"], np.float32) if "contacts" in data.files else None
        audio_start = float(data["audio_start"]) if "audio_start" in data.files else 0.0
        style = str(data["style"]) if "style" in data.files else "custom"
    if not src_fps > 0:
        raise DataError(f"{path}: fps is {src_fps}, expected a positive number.")
    if poses.ndim != 2 or poses.shape[1] != 72 or trans.shape != (len(poses), 3):
        raise DataError(f"{path}: smpl_poses {poses.shape} / smpl_trans {trans.shape}; expected (N, 72) / (N, 3).")
    if contacts is not None and contacts.shape != (len(poses), 4):
        raise DataError(f"{path}: contacts has shape {contacts.shape}, expected ({len(poses)}, 4).")
    if len(poses) < 2 or not (np.isfinite(poses).all() and np.isfinite(trans).all()):
        raise DataError(f"{path}: fewer than 2 frames, or NaN/infinite values.")
    if audio_start < 0:
        raise DataError(f"{path}: audio_start is {audio_start}, expected 0 or more seconds.")
    audio = next((path.with_suffix(s) for s in AUDIO_SUFFIXES if path.with_suffix(s).is_file()), None)
    if audio is None:
        raise DataError(f"{path} has no music beside it: expected {path.stem}.wav (or .flac/.ogg/.mp3).")
    if abs(src_fps - fps) > 1e-9:
        poses, trans = resample_clip_arrays(poses, trans, src_fps, fps)
        contacts = None  # re-measured at the new rate
    shift = 0.0
    if do_ground:
        trans, shift = ground(poses, trans, fps)
    if contacts is None:
        contacts = contacts_from_motion(poses, trans, fps)
    return Clip(name=path.stem, style=style, fps=fps, smpl_poses=poses.astype(np.float32),
                smpl_trans=trans.astype(np.float32), contacts=np.clip(contacts, 0, 1).astype(np.float32),
                audio=audio, audio_start=audio_start, split=split,
                info={"dataset": "folder", "source": str(path), "source_fps": src_fps,
                      "height_shift_m": round(shift, 4)})


def load_folder(root, fps: int, do_ground: bool = False) -> list[Clip]:
    """Every ``*.npz`` clip in ``root`` with its split (test.txt, else :func:`default_split`)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"Clip folder not found: {root}.")
    files = sorted(root.glob("*.npz"))
    if not files:
        raise DataError(f"{root} holds no .npz clips (see inference/training/data/folder.py for the format).")
    listed = None
    if (root / "test.txt").is_file():
        listed = {line.strip() for line in (root / "test.txt").read_text().splitlines() if line.strip()}
        unknown = sorted(listed - {f.stem for f in files})
        if unknown:
            raise DataError(f"{root / 'test.txt'} names clips that are not in the folder: {', '.join(unknown)}.")
    return [read_clip(f, fps, ("test" if f.stem in listed else "train") if listed is not None
                      else default_split(f.stem), do_ground) for f in files]
