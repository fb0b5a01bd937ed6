"""Training-time augmentation of motion windows, and the preprocessing-time time stretch.

* Mirroring: reflect the world across the x = 0 plane and swap left and right.
  With ``S = diag(-1, 1, 1)`` (a reflection of the body's left axis and of the
  world's x alike) every local rotation becomes ``S R_mirror(j) S`` and the
  root position ``S p``; contacts swap sides. It is an involution: twice is the
  identity. SMPL's rest skeleton is nearly, not exactly, symmetric, so mirrored
  joint positions match the reflected ones to about a centimetre or two.
* Heading: a turn about world z of the root orientation and the root position.
  In the window frame the turn is about the window's first root position.
* Time stretch (preprocessing only, since the music features must be
  recomputed): motion resampled, music time-stretched by a phase vocoder.
"""

from __future__ import annotations

import numpy as np

from ... import motion as mo
from ... import skeleton as sk

_S = np.diag([-1.0, 1.0, 1.0])
_CONTACT_SWAP = [sk.CONTACT_JOINTS.index(n.replace("left_", "@").replace("right_", "left_").replace("@", "right_"))
                 for n in sk.CONTACT_JOINTS]


def _reflect_rot6d(rot6d: np.ndarray) -> np.ndarray:
    """(..., 6) 6D of R -> 6D of S R S (S = diag(-1, 1, 1))."""
    c1, c2 = rot6d[..., 0:3], rot6d[..., 3:6]  # first two columns of R
    return np.concatenate([c1 * np.array([1.0, -1.0, -1.0]), c2 * np.array([-1.0, 1.0, 1.0])], axis=-1)


def mirror_motion(x: np.ndarray) -> np.ndarray:
    """(..., T, 151) motion -> its left-right mirror image."""
    contacts, trans, rot6d = mo.unpack(np.asarray(x))
    rot6d = _reflect_rot6d(rot6d[..., list(sk.MIRROR_INDICES), :])
    return mo.pack(contacts[..., _CONTACT_SWAP], trans * np.array([-1.0, 1.0, 1.0]), rot6d).astype(x.dtype)


def mirror_smpl(smpl_poses: np.ndarray, smpl_trans: np.ndarray, contacts=None):
    """Mirror (N, 72) axis-angle poses, (N, 3) root positions and optional (N, 4) contacts."""
    aa = np.asarray(smpl_poses, np.float64).reshape(len(smpl_poses), sk.NUM_JOINTS, 3)
    aa = aa[:, list(sk.MIRROR_INDICES)] * np.array([1.0, -1.0, -1.0])  # axis-angle of S R S
    out = (aa.reshape(len(aa), -1), np.asarray(smpl_trans, np.float64) @ _S)
    return out + ((None if contacts is None else np.asarray(contacts)[:, _CONTACT_SWAP]),)


def heading_matrix(angle) -> np.ndarray:
    """(..., 3, 3) turns by ``angle`` radians about world z."""
    c, s = np.cos(angle), np.sin(angle)
    z, o = np.zeros_like(c), np.ones_like(c)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


def rotate_heading(x: np.ndarray, angle) -> np.ndarray:
    """(..., T, 151) motion turned by ``angle`` (scalar or (...,)) radians about world z through the origin."""
    contacts, trans, rot6d = mo.unpack(np.asarray(x))
    r = heading_matrix(np.asarray(angle, np.float64))[..., None, :, :]  # (..., 1, 3, 3)
    root = rot6d[..., 0, :]
    root = np.concatenate([(r @ root[..., 0:3, None])[..., 0], (r @ root[..., 3:6, None])[..., 0]], axis=-1)
    rot6d = rot6d.copy()
    rot6d[..., 0, :] = root
    return mo.pack(contacts, (r @ trans[..., None])[..., 0], rot6d).astype(x.dtype)


def random_augment(x: np.ndarray, rng: np.random.Generator, mirror_prob: float = 0.5,
                   heading: bool = True) -> np.ndarray:
    """A batch (B, T, 151) in the window frame, each mirrored with ``mirror_prob`` and turned at random."""
    out = np.array(x, copy=True)
    flip = rng.random(len(out)) < mirror_prob
    if flip.any():
        out[flip] = mirror_motion(out[flip])
    if heading:
        out = rotate_heading(out, rng.uniform(-np.pi, np.pi, size=len(out)))
    return out


def time_stretch(smpl_poses: np.ndarray, smpl_trans: np.ndarray, samples: np.ndarray, fps: int, factor: float):
    """Play a clip ``factor`` times as fast: motion resampled (slerp), music by phase vocoder (librosa).

    Returns (poses, trans, samples) at the same frame and sample rates.
    """
    import librosa

    duration = (len(smpl_poses) - 1) / fps
    times = np.arange(int(np.floor(duration / factor * fps + 1e-9)) + 1) / fps * factor
    poses, trans = mo.resample(smpl_poses, smpl_trans, fps, times)
    return poses, trans, librosa.effects.time_stretch(np.asarray(samples, np.float32), rate=factor)
