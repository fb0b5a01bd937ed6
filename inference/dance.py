"""A dance in the engine's output contract, and its npz file (see the README).

NumPy only, so Blender's own Python (which has no PyTorch) can read and write it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .files import save_npz

CORE_ARRAYS = ("fps", "smpl_poses", "smpl_trans", "joints", "contacts", "audio_start")


@dataclass
class Dance:
    """A generated dance in the npz contract (see the README)."""

    fps: int
    smpl_poses: np.ndarray  # (N, 72) float32 axis-angle, SMPL joint order
    smpl_trans: np.ndarray  # (N, 3) float32 root position, metres, z-up
    joints: np.ndarray  # (N, 24, 3) float32 world joint positions (project FK)
    contacts: np.ndarray  # (N, 4) float32 in [0, 1]: left/right ankle, left/right toe (analysis.floor_contacts)
    audio_start: float  # seconds into the music file of frame 0
    extras: dict = field(default_factory=dict)  # provenance: seed, steps, guidance, audio path

    @property
    def num_frames(self) -> int:
        return len(self.smpl_poses)

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps

    def arrays(self) -> dict:
        return {
            "fps": np.int32(self.fps),
            "smpl_poses": self.smpl_poses.astype(np.float32),
            "smpl_trans": self.smpl_trans.astype(np.float32),
            "joints": self.joints.astype(np.float32),
            "contacts": self.contacts.astype(np.float32),
            "audio_start": np.float64(self.audio_start),
            **{k: np.asarray(v) for k, v in self.extras.items()},
        }

    def save(self, path) -> Path:
        """Write the npz atomically: a failed write leaves no partial file."""
        return save_npz(path, **self.arrays())

    @classmethod
    def load(cls, path) -> "Dance":
        with np.load(path, allow_pickle=False) as data:
            return cls(
                fps=int(data["fps"]), smpl_poses=data["smpl_poses"], smpl_trans=data["smpl_trans"],
                joints=data["joints"], contacts=data["contacts"], audio_start=float(data["audio_start"]),
                extras={k: data[k] for k in data.files if k not in CORE_ARRAYS},
            )
