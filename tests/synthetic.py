"""Synthetic music and dances for the engine tests (importable: ``from synthetic import ...``)."""

from __future__ import annotations

import numpy as np

from inference import motion as mo
from inference import skeleton as sk
from inference.config import M2DConfig

SR = 22050


def click_track(seconds: float, bpm: float = 120.0, sr: int = SR, offset: float = 0.5) -> np.ndarray:
    """Mono clicks (1 kHz, 30 ms, decaying) every beat from ``offset`` seconds."""
    y = np.zeros(int(seconds * sr), np.float32)
    n = int(0.03 * sr)
    click = (np.sin(2 * np.pi * 1000 * np.arange(n) / sr) * np.exp(-np.arange(n) / (0.005 * sr))).astype(np.float32)
    for t in np.arange(offset, seconds, 60.0 / bpm):
        i = int(t * sr)
        y[i:i + n] += click[: len(y) - i]
    return 0.8 * y


def music_like(seconds: float, bpm: float = 120.0, sr: int = SR, seed: int = 0) -> np.ndarray:
    """Clicks on the beat, a bass note per bar and a little noise: enough for every feature."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    bass = 0.2 * np.sin(2 * np.pi * 110 * t) * (0.5 + 0.5 * np.cos(2 * np.pi * t * bpm / 240))
    return (click_track(seconds, bpm, sr) + bass + 0.01 * rng.normal(size=len(t))).astype(np.float32)


def noise_features(config: M2DConfig, n: int, beat_every: int = 15, first_beat: int = 10,
                   seed: int = 3) -> np.ndarray:
    """(n, music_dim) random music features whose beat column marks every ``beat_every`` frames."""
    music = np.random.default_rng(seed).normal(size=(n, config.music_dim)).astype(np.float32)
    music[:, -1] = 0
    music[np.arange(first_beat, n, beat_every), -1] = 1
    return music


class SyntheticDances:
    """A window source of smooth, beat-synchronous motion with matching music features.

    Every joint swings sinusoidally with the beat; the root sways and travels; the
    music features carry the beat one-hot and an onset pulse on the same frames.
    """

    def __init__(self, config: M2DConfig, seed: int = 0):
        self.config = config
        rng = np.random.default_rng(seed)
        self.amplitude = rng.uniform(0.05, 0.4, size=(sk.NUM_JOINTS, 3))
        self.phase = rng.uniform(0, 2 * np.pi, size=(sk.NUM_JOINTS, 3))

    def _window(self, rng, frames):
        fps = self.config.fps
        period = fps * 60.0 / rng.uniform(100, 130)  # frames per beat
        shift = rng.uniform(0, period)
        t = np.arange(frames)
        phase = 2 * np.pi * (t - shift) / period  # (T,)
        poses = self.amplitude[None] * np.sin(phase[:, None, None] / 2 + self.phase[None])  # (T, 24, 3)
        poses[:, 0] = sk.Y_UP_TO_Z_UP_AXIS_ANGLE + 0.1 * np.sin(phase / 4)[:, None]
        heading = rng.uniform(-np.pi, np.pi)
        speed = rng.uniform(0, 0.15)
        trans = np.stack([speed * np.cos(heading) * t / fps + 0.05 * np.sin(phase),
                          speed * np.sin(heading) * t / fps, 0.92 + 0.03 * np.cos(phase)], axis=1)
        motion = mo.from_smpl(poses.reshape(frames, -1), trans, fps)
        music = rng.normal(0, 0.1, size=(frames, self.config.music_dim)).astype(np.float32)
        beats = (np.mod(t - shift, period) < 1.0).astype(np.float32)
        music[:, 0] = 3 * beats + 0.2
        music[:, -1] = beats
        music[:, -2] = beats
        return mo.to_window_frame(motion)[0], music

    def sample(self, batch, rng):
        pairs = [self._window(rng, self.config.window_frames) for _ in range(batch)]
        return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs]), np.zeros(batch, np.int64)

    def validation(self):
        return self.sample(16, np.random.default_rng(99))
