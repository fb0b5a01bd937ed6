"""Reading music files: any rate, any channel count, WAV/FLAC/OGG/MP3 through soundfile.

The file is decoded block by block, mixed down to mono and resampled with a
streaming resampler, so decoding a long song never holds more than the mono
result in memory.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from ..errors import AudioError

MIN_SECONDS = 1.0
"""The shortest stretch of music a dance is made for."""

SUPPORTED = "WAV, FLAC, OGG/Vorbis or MP3"
_BLOCK_FRAMES = 1 << 16  # frames decoded at a time


@dataclass(frozen=True)
class AudioClip:
    """Mono samples of a stretch of a music file."""

    samples: np.ndarray
    """(S,) float32, mono."""
    sample_rate: int
    start: float
    """Where the clip starts in the file, seconds."""
    file_duration: float
    path: str
    truncated: bool = False
    """True when the file could be decoded only in part and the clip holds what could (see ``allow_truncated``)."""

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


@contextlib.contextmanager
def _quiet_stderr():
    """Silence the C decoders' chatter on file descriptor 2 (mpg123 prints resync notes)."""
    try:
        saved = os.dup(2)
    except OSError:  # no usable stderr (embedded interpreters)
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _fmt_time(seconds: float) -> str:
    minutes, sec = divmod(seconds, 60.0)
    return f"{int(minutes)}:{sec:04.1f}" if minutes else f"{sec:.2f} s"


def check_audio_path(path) -> Path:
    """Return ``path`` as a Path if it can be an audio file, else raise AudioError."""
    path = Path(path)
    if not path.exists():
        raise AudioError(f"Audio file not found: {path}. Check the path and try again.")
    if path.is_dir():
        raise AudioError(f"{path} is a folder, not an audio file. Give the path of a {SUPPORTED} file.")
    if path.stat().st_size == 0:
        raise AudioError(f"{path} is empty (0 bytes). Export or copy the song again.")
    return path


def audio_info(path, allow_truncated: bool = False) -> sf._SoundFileInfo:
    """soundfile's header information, or an AudioError saying why the file is unusable."""
    path = check_audio_path(path)
    try:
        with _quiet_stderr():
            info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        detail = str(exc).split(":", 1)[-1].strip() if "malformed" in str(exc) else "unknown format"
        raise AudioError(
            f"{path} is not a readable audio file ({detail}). "
            f"Use a {SUPPORTED} file; convert other formats first (e.g. with ffmpeg or Audacity)."
        ) from None
    if info.frames <= 0 or info.samplerate <= 0:
        raise AudioError(f"{path} holds no audio samples. Export or copy the song again.")
    # libsndfile notes a short data chunk as "data : N (should be M)".
    if not allow_truncated and re.search(r"^data\s*:.*should be", info.extra_info, flags=re.M):
        raise AudioError(
            f"{path} is truncated: its header promises more audio than the file holds. "
            "Copy or export the file again."
        )
    return info


def load_audio(path, sample_rate: int, start: float = 0.0, duration: float | None = None,
               allow_truncated: bool = False) -> AudioClip:
    """Decode ``duration`` seconds from ``start`` as mono float32 at ``sample_rate``.

    ``duration=None`` reads to the end of the file; a duration that runs past the
    end is cut at the end. Raises AudioError for anything unusable. A file that
    decodes only in part (truncated or damaged) is an AudioError too, unless
    ``allow_truncated``: then the clip holds what decoded (at least
    :data:`MIN_SECONDS`) and says so (``truncated``); whoever asks must check
    that it covers what they need.
    """
    info = audio_info(path, allow_truncated=allow_truncated)
    file_duration = info.frames / info.samplerate
    if not np.isfinite(start) or start < 0:
        raise AudioError(f"The start time must be 0 or more seconds; got {start}.")
    if duration is not None and (not np.isfinite(duration) or duration <= 0):
        raise AudioError(f"The duration must be a positive number of seconds; got {duration}.")
    if start >= file_duration:
        raise AudioError(
            f"The start time {_fmt_time(start)} is past the end of {path}, "
            f"which is {_fmt_time(file_duration)} long. Choose an earlier start."
        )
    first = int(round(start * info.samplerate))
    available = info.frames - first
    wanted = available if duration is None else min(available, int(round(duration * info.samplerate)))
    if wanted < MIN_SECONDS * info.samplerate:
        where = f" from {_fmt_time(start)}" if start > 0 else ""
        raise AudioError(
            f"Only {wanted / info.samplerate:.2f} s of music{where} in {path}; "
            f"a dance needs at least {MIN_SECONDS:g} s. Use a longer stretch of the song."
        )

    stream = soxr.ResampleStream(info.samplerate, sample_rate, 1, dtype="float32", quality="HQ")
    pieces = []
    decoded = 0
    try:
        with _quiet_stderr(), sf.SoundFile(str(path)) as f:
            if first:
                f.seek(first)
            while decoded < wanted:
                # Plain reads: a damaged stream comes back short, where a padded block would hide it.
                block = f.read(min(_BLOCK_FRAMES, wanted - decoded), dtype="float32", always_2d=True)
                if not len(block):
                    break
                decoded += len(block)
                with np.errstate(invalid="ignore"):  # damaged files decode to NaN: reported below
                    mono = block.mean(axis=1, dtype=np.float32)
                pieces.append(stream.resample_chunk(mono, last=False))
            pieces.append(stream.resample_chunk(np.zeros(0, np.float32), last=True))
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        if not allow_truncated:
            raise AudioError(
                f"{path} is damaged: decoding stopped after {_fmt_time(decoded / info.samplerate)} "
                f"({exc}). Copy or export the file again."
            ) from None
        pieces.append(stream.resample_chunk(np.zeros(0, np.float32), last=True))
    truncated = decoded < wanted - info.samplerate * 0.05
    if truncated and not (allow_truncated and decoded >= MIN_SECONDS * info.samplerate):
        raise AudioError(
            f"{path} is truncated or damaged: only {_fmt_time((first + decoded) / info.samplerate)} "
            f"of its {_fmt_time(file_duration)} could be decoded. Copy or export the file again."
        )
    samples = np.concatenate(pieces)
    if not np.all(np.isfinite(samples)):
        raise AudioError(f"{path} decodes to invalid sample values (NaN or infinity); the file is damaged.")
    return AudioClip(samples=samples, sample_rate=sample_rate, start=first / info.samplerate,
                     file_duration=file_duration, path=str(path), truncated=bool(truncated))
