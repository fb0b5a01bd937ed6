"""One dance with its music, in the engine's own form, as every dataset reader returns it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ... import motion as mo
from ... import skeleton as sk

FOOT_FLOOR_HEIGHT = 0.025
"""Height (m) of SMPL's toe-base joints above the floor when a foot stands flat (estimate)."""
SPIKE_ROOT_SPEED = 3.0
"""m/s: a root step faster than this, out and straight back, is a capture glitch, not dancing."""
SPIKE_JOINT_SPEED = 10.0
"""m/s: the same for any joint."""
SPIKE_FRAMES = 3
"""Longest glitch (frames) that :func:`repair_spikes` bridges."""
FLOOR_PERCENTILE = 5.0
"""Used by :func:`ground` when no toe ever stands still: this percentile of the lowest toe goes on the floor."""


@dataclass
class Clip:
    """A dance at ``fps`` in the engine's output contract, and where its music is.

    Frame ``i`` plays at ``audio_start + i / fps`` seconds into ``audio``.
    """

    name: str
    style: str
    fps: int
    smpl_poses: np.ndarray  # (N, 72) axis-angle, SMPL joint order
    smpl_trans: np.ndarray  # (N, 3) root (pelvis) position, metres, z-up
    contacts: np.ndarray  # (N, 4) in [0, 1]: left/right ankle, left/right toe
    audio: Path
    audio_start: float = 0.0
    split: str = "train"
    info: dict = field(default_factory=dict)  # provenance and quality figures, JSON-able

    @property
    def num_frames(self) -> int:
        return len(self.smpl_poses)

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps

    def joints(self) -> np.ndarray:
        """(N, 24, 3) world joint positions."""
        return sk.joint_positions(self.smpl_poses, self.smpl_trans)

    def trimmed(self, frames: int) -> "Clip":
        """The first ``frames`` frames."""
        return Clip(self.name, self.style, self.fps, self.smpl_poses[:frames], self.smpl_trans[:frames],
                    self.contacts[:frames], self.audio, self.audio_start, self.split, dict(self.info))


def ground(smpl_poses: np.ndarray, smpl_trans: np.ndarray, fps: float = 30.0) -> tuple[np.ndarray, float]:
    """Shift the root height so the feet stand on the floor z = 0; returns (trans, shift in m).

    The median height of the toe-base joints while they stand still (slower than
    :data:`inference.motion.CONTACT_SPEED`) is put at :data:`FOOT_FLOOR_HEIGHT`.
    """
    joints = sk.joint_positions(smpl_poses, smpl_trans)
    toes = joints[:, [sk.JOINT_INDEX["left_foot"], sk.JOINT_INDEX["right_foot"]]]  # (N, 2, 3)
    speed = np.zeros(toes.shape[:2])
    speed[1:] = np.linalg.norm(np.diff(toes, axis=0), axis=-1) * fps
    speed[0] = speed[1] if len(speed) > 1 else 0.0
    still = speed < mo.CONTACT_SPEED
    if still.any():
        level = float(np.median(toes[..., 2][still]))
    else:
        level = float(np.percentile(toes[..., 2].min(axis=1), FLOOR_PERCENTILE))
    shift = FOOT_FLOOR_HEIGHT - level
    out = np.array(smpl_trans, np.float64, copy=True)
    out[:, 2] += shift
    return out, shift


def resample_clip_arrays(smpl_poses, smpl_trans, src_fps: float, dst_fps: int):
    """Poses and root positions resampled to ``dst_fps`` (slerp; no-op when the rates match)."""
    if abs(src_fps - dst_fps) < 1e-9:
        return np.asarray(smpl_poses, np.float64), np.asarray(smpl_trans, np.float64)
    return mo.resample_fps(smpl_poses, smpl_trans, src_fps, dst_fps)


def contacts_from_motion(smpl_poses, smpl_trans, fps: float) -> np.ndarray:
    """(N, 4) float32 foot contacts from foot speed (:func:`inference.motion.foot_contacts`)."""
    return mo.foot_contacts(sk.joint_positions(smpl_poses, smpl_trans), fps)


def repair_spikes(smpl_poses: np.ndarray, smpl_trans: np.ndarray, fps: float):
    """Bridge capture glitches: up to :data:`SPIKE_FRAMES` frames that jump away and straight back.

    A glitch opens with an impossibly fast step (root faster than
    :data:`SPIKE_ROOT_SPEED` or any joint faster than :data:`SPIKE_JOINT_SPEED`)
    and closes with another within a few frames; its frames are replaced by
    slerp/lerp between the good frames on either side. Returns (poses, trans, frames repaired).
    """
    poses = np.array(smpl_poses, np.float64, copy=True)
    trans = np.array(smpl_trans, np.float64, copy=True)
    joints = sk.joint_positions(poses, trans)
    step = np.linalg.norm(np.diff(joints, axis=0), axis=-1) * fps  # (N-1, 24) m/s
    fast = (step[:, 0] > SPIKE_ROOT_SPEED) | (step.max(axis=1) > SPIKE_JOINT_SPEED)  # step i: frame i -> i+1
    steps = np.nonzero(fast)[0]
    repaired = 0
    used = set()
    for k, a in enumerate(steps):
        if a in used:
            continue
        closing = [b for b in steps[k + 1:] if b - a <= SPIKE_FRAMES and b + 1 < len(poses)]
        if not closing:
            continue
        # The glitch ends with the step that comes back closest to where it left.
        b = min(closing, key=lambda b: np.linalg.norm(joints[b + 1, 0] - joints[a, 0]))
        # frames a+1 .. b are the glitch; a and b+1 are good
        times = (np.arange(a + 1, b + 1) - a) / (b + 1 - a)
        p, t = mo.resample(poses[[a, b + 1]], trans[[a, b + 1]], 1.0, times)
        poses[a + 1:b + 1], trans[a + 1:b + 1] = p, t
        used.update(int(i) for i in steps if a <= i <= b)
        repaired += b - a
    return poses, trans, repaired
