"""Pins for editing a dance: whole poses, chosen joints, the root path, on any frames.

A :class:`Constraints` object holds target values and masks on the frames of
one generation (frame 0 is the audio start, at the model's frame rate). The
sampler meets them by inpainting (:mod:`inference.sampling.sampler`); afterwards
every pinned value is written into the output exactly and the free frames next
to each pinned stretch are bent toward it (:mod:`inference.sampling.easing`),
matching position and velocity, so borders carry neither a jump nor a kink.

The file form is an npz with the output's arrays — ``smpl_poses`` (N, 72),
``smpl_trans`` (N, 3) — plus ``pose_mask`` (N, 24) and ``root_mask`` (N, 3).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

import numpy as np

from .. import skeleton as sk
from ..errors import ConstraintsError
from ..files import save_npz

_SAME_TOLERANCE = 1e-5
"""Two pins on one value agree when they differ by less than this (radians / metres)."""
PIN_CLEARANCE_SECONDS = 0.5
"""After sampling, beat snap and foot lock leave the frames this close to a pin as the sampler made them:
the motion eased into a pin is untouched (:func:`frames_to_pin`)."""


PIN_EASE_SECONDS = 0.25
"""Beyond a pin's clearance, a clean-up (foot lock, head turn limit) fades in over this long."""


def frames_to_pin(pinned) -> np.ndarray:
    """(N,) distance in frames from each frame to the nearest ``pinned`` (N,) frame; inf when none is."""
    pinned = np.asarray(pinned, bool)
    if not pinned.any():
        return np.full(len(pinned), np.inf)
    at = np.flatnonzero(pinned)
    frames = np.arange(len(pinned))
    after = np.minimum(np.searchsorted(at, frames), len(at) - 1)  # first pin at or after each frame
    before = np.maximum(after - 1, 0)
    return np.minimum(np.abs(at[after] - frames), np.abs(frames - at[before])).astype(float)


def clear_of_pins(pose_mask: Optional[np.ndarray], num_frames: int, fps: float, joints) -> np.ndarray:
    """(N,) weights for a clean-up of ``joints`` (indices): 0 on and within :data:`PIN_CLEARANCE_SECONDS`
    of a frame where one of them is pinned, rising smoothly to 1 over :data:`PIN_EASE_SECONDS`."""
    if pose_mask is None:
        return np.ones(num_frames)
    distance = frames_to_pin(np.asarray(pose_mask)[:, list(joints)].any(axis=1))
    x = np.clip((distance - PIN_CLEARANCE_SECONDS * fps) / max(1.0, PIN_EASE_SECONDS * fps), 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _frames_array(frames, num_frames: int) -> np.ndarray:
    f = np.atleast_1d(np.asarray(frames))
    if f.dtype == bool:
        f = np.nonzero(f)[0]
    if not np.issubdtype(f.dtype, np.integer):
        if not np.all(np.isfinite(f)) or np.any(f != np.round(f)):
            raise ConstraintsError(f"Pinned frames must be whole frame numbers; got {frames!r}.")
        f = f.astype(int)
    if f.size and (f.min() < 0 or f.max() >= num_frames):
        raise ConstraintsError(
            f"Pinned frame {int(f.min() if f.min() < 0 else f.max())} is outside the dance, "
            f"which has frames 0 to {num_frames - 1}. Pin frames inside the music's span."
        )
    return f


def joint_indices(joints: Iterable) -> list[int]:
    """Joint names, indices or group names (see :data:`skeleton.JOINT_GROUPS`) -> indices."""
    if isinstance(joints, (str, int, np.integer)):
        joints = [joints]
    out: list[int] = []
    for j in joints:
        if isinstance(j, str) and j in sk.JOINT_GROUPS:
            out.extend(sk.JOINT_INDEX[n] for n in sk.JOINT_GROUPS[j])
        elif isinstance(j, str):
            if j not in sk.JOINT_INDEX:
                raise ConstraintsError(
                    f"{j!r} is not an SMPL joint. Use one of: {', '.join(sk.JOINT_NAMES)}; "
                    f"or a group: {', '.join(sk.JOINT_GROUPS)}."
                )
            out.append(sk.JOINT_INDEX[j])
        else:
            if not 0 <= int(j) < sk.NUM_JOINTS:
                raise ConstraintsError(f"Joint index {j} is out of range 0..{sk.NUM_JOINTS - 1}.")
            out.append(int(j))
    return sorted(set(out))


@dataclass
class Constraints:
    """Target values and masks on ``num_frames`` frames."""

    smpl_poses: np.ndarray  # (N, 72) axis-angle targets, SMPL joint order
    smpl_trans: np.ndarray  # (N, 3) root position targets, metres, z-up
    pose_mask: np.ndarray  # (N, 24) bool: this joint's rotation is pinned on this frame
    root_mask: np.ndarray  # (N, 3) bool: this root axis is pinned on this frame

    @classmethod
    def empty(cls, num_frames: int) -> "Constraints":
        return cls(
            smpl_poses=np.zeros((num_frames, sk.NUM_JOINTS * 3), np.float32),
            smpl_trans=np.zeros((num_frames, 3), np.float32),
            pose_mask=np.zeros((num_frames, sk.NUM_JOINTS), bool),
            root_mask=np.zeros((num_frames, 3), bool),
        )

    @property
    def num_frames(self) -> int:
        return len(self.pose_mask)

    def __bool__(self) -> bool:
        return bool(self.pose_mask.any() or self.root_mask.any())

    # ------------------------------------------------------------------ building
    def _set(self, target: np.ndarray, mask: np.ndarray, frames, cols, values, what: str):
        """Write ``values`` (F, C) at ``frames`` x ``cols``, refusing contradictions."""
        rows = np.asarray(frames)[:, None]
        old = target[rows, cols]
        clash = mask[rows, cols] & (np.abs(old - values) > _SAME_TOLERANCE)
        if clash.any():
            f = int(np.asarray(frames)[np.nonzero(clash)[0][0]])
            raise ConstraintsError(
                f"Frame {f} already has a different {what} pinned. Remove or change the earlier "
                "pin first; two pins on one frame must agree."
            )
        target[rows, cols] = values
        mask[rows, cols] = True

    def pin_joints(self, frames, joints, rotations) -> "Constraints":
        """Pin the local rotations of ``joints`` on ``frames``.

        ``rotations``: axis-angle, (F, J, 3), or (J, 3) / (3,) repeated on every frame.
        """
        f = _frames_array(frames, self.num_frames)
        idx = joint_indices(joints)
        rot = np.asarray(rotations, np.float64)
        if rot.ndim == 2 and rot.shape == (len(f), 3 * len(idx)):
            rot = rot.reshape(len(f), len(idx), 3)
        try:
            rot = np.broadcast_to(rot, (len(f), len(idx), 3))
        except ValueError:
            raise ConstraintsError(
                f"Rotations of shape {rot.shape} do not fit {len(f)} frames x {len(idx)} joints "
                "(axis-angle, 3 numbers each)."
            ) from None
        self._check_finite(rot, "rotations")
        self._check_duplicate_frames(f)
        for k, j in enumerate(idx):
            cols = np.arange(3 * j, 3 * j + 3)
            values = rot[:, k, :]
            # Compare rotations, not axis-angle numbers: one rotation has many axis-angle forms.
            pinned = self.pose_mask[f, j]
            if pinned.any():
                a = sk.axis_angle_to_matrix(self.smpl_poses[f[pinned]][:, cols])
                b = sk.axis_angle_to_matrix(values[pinned])
                if np.abs(a - b).max() > _SAME_TOLERANCE:
                    raise ConstraintsError(
                        f"Frame {int(f[pinned][0])} already has a different {sk.JOINT_NAMES[j]} "
                        "rotation pinned. Remove or change the earlier pin first; two pins on "
                        "one frame must agree."
                    )
            self.smpl_poses[f[:, None], cols] = values
            self.pose_mask[f, j] = True
        return self

    def pin_pose(self, frames, smpl_poses, smpl_trans=None) -> "Constraints":
        """Pin whole poses: every joint's rotation, and the root position when given."""
        poses = np.asarray(smpl_poses, np.float64).reshape(-1, sk.NUM_JOINTS, 3)
        self.pin_joints(frames, range(sk.NUM_JOINTS), poses)
        if smpl_trans is not None:
            self.pin_root(frames, smpl_trans)
        return self

    def pin_root(self, frames, smpl_trans, horizontal_only: bool = False) -> "Constraints":
        """Pin the root position on ``frames``: all axes, or only x and y (the floor plane)."""
        f = _frames_array(frames, self.num_frames)
        self._check_duplicate_frames(f)
        trans = np.broadcast_to(np.asarray(smpl_trans, np.float64), (len(f), 3))
        self._check_finite(trans, "root positions")
        cols = np.arange(2 if horizontal_only else 3)
        self._set(self.smpl_trans, self.root_mask, f, cols, trans[:, cols], "root position")
        return self

    def pin_range(self, first: int, last: int, smpl_poses, smpl_trans) -> "Constraints":
        """Keep everything on frames ``first..last`` (inclusive) as given by (F, 72), (F, 3)."""
        if first > last:
            raise ConstraintsError(f"The range starts at frame {first}, after its end {last}.")
        frames = np.arange(first, last + 1)
        return self.pin_pose(frames, smpl_poses, smpl_trans)

    @staticmethod
    def _check_finite(values: np.ndarray, what: str):
        if not np.all(np.isfinite(values)):
            raise ConstraintsError(f"The pinned {what} contain NaN or infinite values.")

    @staticmethod
    def _check_duplicate_frames(frames: np.ndarray):
        if len(np.unique(frames)) != len(frames):
            raise ConstraintsError("The same frame is listed twice in one pin.")

    # ------------------------------------------------------------------ checks and files
    def validate(self, num_frames: int | None = None) -> "Constraints":
        """Check shapes and values; with ``num_frames``, that every pin lies inside the dance."""
        n = self.num_frames
        shapes = {"smpl_poses": (n, sk.NUM_JOINTS * 3), "smpl_trans": (n, 3),
                  "pose_mask": (n, sk.NUM_JOINTS), "root_mask": (n, 3)}
        for name, shape in shapes.items():
            got = np.shape(getattr(self, name))
            if got != shape:
                raise ConstraintsError(f"Constraint array {name} has shape {got}; expected {shape}.")
        poses = self.smpl_poses.reshape(n, sk.NUM_JOINTS, 3)
        if not np.all(np.isfinite(poses[self.pose_mask])):
            raise ConstraintsError("The pinned rotations (smpl_poses) contain NaN or infinite values.")
        if not np.all(np.isfinite(self.smpl_trans[self.root_mask])):
            raise ConstraintsError("The pinned root positions (smpl_trans) contain NaN or infinite values.")
        if num_frames is not None:
            pinned = np.nonzero(self.pose_mask.any(1) | self.root_mask.any(1))[0]
            if pinned.size and pinned.max() >= num_frames:
                raise ConstraintsError(
                    f"Pins reach frame {int(pinned.max())}, but the music gives only {num_frames} "
                    f"frames (0 to {num_frames - 1}). Remove those pins or use more of the song."
                )
        return self

    def resized(self, num_frames: int) -> "Constraints":
        """The same pins on ``num_frames`` frames (pins beyond the end must not exist)."""
        self.validate(num_frames)
        out = Constraints.empty(num_frames)
        n = min(num_frames, self.num_frames)
        for name in ("smpl_poses", "smpl_trans", "pose_mask", "root_mask"):
            getattr(out, name)[:n] = getattr(self, name)[:n]
        return out

    def save(self, path) -> None:
        """Write the pins as an npz (".npz" added when missing, as NumPy does); atomic."""
        path = str(path) if str(path).endswith(".npz") else f"{path}.npz"
        save_npz(path, smpl_poses=self.smpl_poses.astype(np.float32), smpl_trans=self.smpl_trans.astype(np.float32),
                 pose_mask=self.pose_mask, root_mask=self.root_mask)

    @classmethod
    def load(cls, path, fps: int | None = None) -> "Constraints":
        """Read a constraints npz; raise ConstraintsError naming any problem."""
        path = Path(path)
        if not path.is_file():
            raise ConstraintsError(f"Constraints file not found: {path}.")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except Exception as exc:  # zip and npy parsing raise many kinds
            raise ConstraintsError(f"{path} is not a readable .npz file ({exc}).") from None
        need = ("smpl_poses", "smpl_trans", "pose_mask", "root_mask")
        missing = [k for k in need if k not in arrays]
        if missing:
            raise ConstraintsError(f"{path} lacks the arrays {', '.join(missing)}; it needs {', '.join(need)}.")
        if fps is not None and "fps" in arrays and int(np.asarray(arrays["fps"])) != fps:
            raise ConstraintsError(
                f"{path} is at {int(np.asarray(arrays['fps']))} fps; constraints must be at the model's {fps} fps."
            )
        for k in ("pose_mask", "root_mask"):
            if arrays[k].dtype != bool:
                raise ConstraintsError(f"{k} in {path} must be boolean; it is {arrays[k].dtype}.")
        out = cls(smpl_poses=np.asarray(arrays["smpl_poses"], np.float32),
                  smpl_trans=np.asarray(arrays["smpl_trans"], np.float32),
                  pose_mask=arrays["pose_mask"], root_mask=arrays["root_mask"])
        try:
            return out.validate()
        except ConstraintsError as exc:
            raise ConstraintsError(f"{path}: {exc}") from None
