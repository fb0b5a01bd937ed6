"""Which audio time each scene frame shows, for a sound strip in the Video Sequencer.

Blender plays a sound strip's file from its time 0 at scene frame
``frame_start - animation_offset_start + sound_offset * fps`` (the strip's start
frame, shifted by a hard cut and by the strip's sound offset in seconds); trims
(``frame_offset_start`` / ``frame_offset_end``) only hide part of it. Frame ``f``
is shown at scene time ``f / fps``, so frame ``f`` shows file time
``(f - frame_zero) / fps``. ``fps`` is ``render.fps / render.fps_base``
(29.97 for NTSC).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..inference.errors import M2DError

MIN_SECONDS = 1.0
"""The shortest stretch of music a dance is made for (the engine's limit)."""

AUDIO_PAD_SECONDS = 0.1
"""Extra music asked for past the last frame, so the model's last frame is not before it."""


def scene_fps(scene) -> float:
    return scene.render.fps / scene.render.fps_base


@dataclass(frozen=True)
class StripTiming:
    """How a sound strip's file maps onto scene frames."""

    fps: float
    frame_zero: float
    """Scene frame (fractional) at which the file's time 0 is heard."""
    first_frame: int
    """First scene frame on which the strip is heard."""
    last_frame: int
    """Last scene frame on which the strip is heard."""

    def seconds_at(self, frames) -> np.ndarray:
        """File time (s) shown on each of ``frames``."""
        return (np.asarray(frames, np.float64) - self.frame_zero) / self.fps

    def frame_at(self, seconds: float) -> float:
        return self.frame_zero + seconds * self.fps


def strip_timing(strip, scene) -> StripTiming:
    fps = scene_fps(scene)
    frame_zero = (strip.frame_start - getattr(strip, "animation_offset_start", 0)
                  + getattr(strip, "sound_offset", 0.0) * fps)
    first = max(int(strip.frame_final_start), math.ceil(frame_zero - 1e-6))
    return StripTiming(fps=fps, frame_zero=frame_zero, first_frame=first, last_frame=int(strip.frame_final_end) - 1)


@dataclass(frozen=True)
class FramePlan:
    """The frames to key and the stretch of music to ask the engine for."""

    first: int
    last: int
    audio_start: float
    """Seconds into the file of the first frame."""
    audio_duration: float
    """Seconds of music to generate for (a little past the last frame)."""

    @property
    def frames(self) -> np.ndarray:
        return np.arange(self.first, self.last + 1)


def plan_frames(timing: StripTiming, strip_name: str, whole_strip: bool = True,
                frame_start: int = 0, frame_end: int = 0) -> FramePlan:
    """The frames to generate: the whole audible strip, or ``frame_start..frame_end`` within it."""
    first, last = timing.first_frame, timing.last_frame
    if not whole_strip:
        if frame_end < frame_start:
            raise M2DError(f"The frame range {frame_start}-{frame_end} is empty: the end is before the start.")
        if frame_end < first or frame_start > last:
            raise M2DError(
                f"Frames {frame_start}-{frame_end} lie outside the strip '{strip_name}', "
                f"which is heard on frames {first}-{last}. Choose a range within it."
            )
        first, last = max(first, frame_start), min(last, frame_end)
    seconds = (last - first + 1) / timing.fps
    if last < first or seconds < MIN_SECONDS:
        span = f"The strip '{strip_name}' is heard" if whole_strip else f"Frames {first}-{last} of '{strip_name}' last"
        raise M2DError(
            f"{span} for only {max(seconds, 0):.2f} s; a dance needs at least {MIN_SECONDS:g} s of music. "
            "Use a longer strip or range."
        )
    start = float(timing.seconds_at(first))
    duration = (last - first) / timing.fps + AUDIO_PAD_SECONDS
    return FramePlan(first=first, last=last, audio_start=start, audio_duration=duration)
