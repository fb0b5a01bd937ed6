"""A whole take onto a character: transfer, feet on the floor and planted, key values.

NumPy only: Blender's own process runs it (on a thread, off the main one).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import skeleton as sk
from .character import Retarget
from .feet import flex_feet, plant_feet, stand_on_floor
from .rotations import key_values


@dataclass
class CharacterMotion:
    """An SMPL motion on a character: what its mapped bones do, frame by frame."""

    rotations: np.ndarray
    """(F, M, 3, 3) world rotations of the mapped bones, in :attr:`Retarget.joints` order."""
    hips: np.ndarray
    """(F, 3) world position of the hips bone's head."""
    floor_shift: float
    """Metres the dance was raised to stand the character's planted feet on its floor."""

    def basis(self, retarget: Retarget) -> tuple[np.ndarray, np.ndarray]:
        return retarget.basis(self.rotations, self.hips)


def transfer(retarget: Retarget, smpl_poses, smpl_trans, contacts, fps: float, hold=None,
             floor_shift: float | None = None) -> CharacterMotion:
    """The motion on the character: every mapped bone turned as its joint, the hips travelling as the
    pelvis (scaled by leg length), feet planted where ``contacts`` (F, 4) say and never below the floor.

    ``hold``: (F, 3) 1 where the legs / the hips may be corrected, 0 on pins; ``floor_shift``: keep the
    height of an earlier take (edits) instead of standing this dance on the floor afresh.
    """
    poses = np.asarray(smpl_poses, float)
    trans = np.asarray(smpl_trans, float)
    frames = len(poses)
    joints, _ = sk.forward_kinematics(sk.axis_angle_to_matrix(poses.reshape(frames, sk.NUM_JOINTS, 3)), trans)
    contacts = np.asarray(contacts, float)
    rotations, hips = retarget.world_pose(poses, trans)
    if floor_shift is None:
        retarget.floor_shift = 0.0
        stand_on_floor(retarget, rotations, hips, contacts)
    else:
        retarget.floor_shift = floor_shift
    hips = retarget.hips_position(trans)
    rotations = flex_feet(retarget, rotations, hips, hold)
    rotations, hips = plant_feet(retarget, rotations, hips, joints, contacts, fps, hold)
    rotations = flex_feet(retarget, rotations, hips, hold)  # a moved foot may have met the floor anew
    return CharacterMotion(rotations, hips, retarget.floor_shift)


def channel_values(retarget: Retarget, motion: CharacterMotion) -> tuple[list[np.ndarray], np.ndarray]:
    """Key values per mapped bone ((F, n) in that bone's rotation mode) and the hips' location (F, 3)."""
    basis, location = motion.basis(retarget)
    modes = retarget.character.rotation_modes or ("QUATERNION",) * len(retarget.character.bone_names)
    return [key_values(basis[:, i], modes[b]) for i, b in enumerate(retarget.bones)], location
