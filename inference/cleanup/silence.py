"""When the music stops, the dancer settles.

The network has never heard silence (dance data starts with the music), so on
silent stretches its motion is arbitrary. Silent frames are found from the
music features' loudness (MFCC 0 is the mean log-mel energy, scaled), and there
the motion is blended — with smooth ramps in and out — toward a heavily
low-passed version of itself: a calm sway that stays where the dance was.
Pinned values are written back exactly afterwards (:mod:`inference.generate`).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from .. import motion as mo
from .. import skeleton as sk

SILENCE_DB = -60.0
"""Mean mel-band level (dB, absolute) below which a frame counts as silent."""
MIN_SILENCE_SECONDS = 0.5
"""Shorter quiet moments (rests, breaks) are part of the music and are danced."""
SETTLE_SECONDS = 1.0
"""Width (Gaussian sigma) of the low-pass that calms the motion."""
RAMP_SECONDS = 0.4
"""How long the dancer takes to settle, and to start again."""


def silent_frames(music: np.ndarray, fps: float, n_mels: int = 128) -> np.ndarray:
    """(N, music_dim) features -> (N,) bool: silent for at least :data:`MIN_SILENCE_SECONDS`.

    MFCC 0 (column 1) is ``sqrt(n_mels)`` times the mean of the mel bands' dB
    values (librosa's orthonormal DCT); ``n_mels`` is librosa's default.
    """
    quiet = music[:, 1] / np.sqrt(n_mels) < SILENCE_DB
    shortest = int(round(MIN_SILENCE_SECONDS * fps))
    out = np.zeros_like(quiet)
    start = None
    for i, q in enumerate(np.append(quiet, False)):
        if q and start is None:
            start = i
        elif not q and start is not None:
            if i - start >= shortest:
                out[start:i] = True
            start = None
    return out


def settle(x: np.ndarray, music: np.ndarray, fps: float, hold_path: bool = True) -> np.ndarray:
    """Calm (N, motion_dim) metric motion over the silent stretches of (N, music_dim) features.

    ``hold_path``: stop travelling in silence; this moves the later path as a
    whole, so pass False when root positions are pinned.
    """
    quiet = silent_frames(music, fps)
    if not quiet.any():
        return x
    # (N,) 0 dancing .. 1 settled; half-way where the music stops or starts.
    weight = gaussian_filter1d(quiet.astype(np.float64), RAMP_SECONDS * fps / 2, mode="nearest")
    sigma = SETTLE_SECONDS * fps
    calm = gaussian_filter1d(np.asarray(x, np.float64), sigma, axis=0, mode="nearest")
    # Low-passed 6D vectors are no longer rotations: project them back.
    rot = calm[:, mo.ROTATIONS].reshape(len(x), sk.NUM_JOINTS, mo.ROT6D_DIMS)
    calm[:, mo.ROTATIONS] = sk.matrix_to_rot6d(sk.rot6d_to_matrix(rot)).reshape(len(x), -1)
    out = x + weight[:, None] * (calm - x)
    # Blend rotations properly (slerp) rather than through 6D coordinates.
    qa = sk.matrix_to_quat(sk.rot6d_to_matrix(np.asarray(x, np.float64)[:, mo.ROTATIONS].reshape(rot.shape)))
    qb = sk.matrix_to_quat(sk.rot6d_to_matrix(rot))
    q = sk.quat_slerp(qa, qb, np.broadcast_to(weight[:, None], qa.shape[:-1]))
    out[:, mo.ROTATIONS] = sk.matrix_to_rot6d(sk.quat_to_matrix(q)).reshape(len(x), -1)
    out[:, mo.CONTACTS] = np.where(weight[:, None] > 0.5, 1.0, x[:, mo.CONTACTS])  # settled feet rest
    if hold_path:
        xy = np.asarray(x, np.float64)[:, mo.ROOT_XY]
        steps = np.diff(xy, axis=0) * (1.0 - weight[1:, None])
        out[:, mo.ROOT_XY] = xy[0] + np.concatenate([np.zeros((1, 2)), np.cumsum(steps, axis=0)])
    return out.astype(x.dtype)
