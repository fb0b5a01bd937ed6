"""An SMPL dance on a character's own armature: the same pose whatever its rest pose, and back.

Every mapped bone turns in the world as its SMPL joint does (Δ_j = G_j Cᵀ: the
joint's world rotation against the standing rest, ``C`` = :data:`skeleton.Y_UP_TO_Z_UP`),
starting from the character's rest pose brought into SMPL's: turned to face as
SMPL's rest does (``F``, about the vertical for an upright rig) and each bone swung
along the shortest arc onto its SMPL segment (``S_j``: T-pose, A-pose, bent
limbs all become SMPL's pose; leaves keep their parent's swing). So with ``Y`` the
character's own heading and ``Q_b`` its bone's rest world rotation::

    W_b(t) = Y · A_j(t) · Δ_j(t) · S_j · F · Q_b

``A_j`` is the identity unless the character skips SMPL joints in a chain (one
spine bone for three): then it swings the bone to point where the chain does.
The hips travel as the SMPL pelvis does, scaled by the ratio of leg lengths, on
the character's floor. Key values follow Blender's pose maths: a bone's pose
matrix is ``P_parent · (R_parent⁻¹ R_b) · basis_b`` from the rest matrices
``R`` (armature space), where the parent is the bone of the nearest mapped SMPL
ancestor (bones between them stay at rest).

NumPy only: Blender's own process runs it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import skeleton as sk
from ..errors import M2DError
from .bone_map import CHAIN_PARENT, BoneMap
from .rotations import normalize, orthonormal, swing

AIM_CHILD = {
    "pelvis": "spine1", "spine1": "spine2", "spine2": "spine3", "spine3": "neck", "neck": "head",
    "left_hip": "left_knee", "left_knee": "left_ankle", "left_ankle": "left_foot",
    "right_hip": "right_knee", "right_knee": "right_ankle", "right_ankle": "right_foot",
    "left_collar": "left_shoulder", "left_shoulder": "left_elbow", "left_elbow": "left_wrist",
    "left_wrist": "left_hand",
    "right_collar": "right_shoulder", "right_shoulder": "right_elbow", "right_elbow": "right_wrist",
    "right_wrist": "right_hand",
}
"""The joint each joint's bone points at (SMPL's main child); chains continue through unmapped joints."""
TOE_FLOOR_HEIGHT = 0.025
"""Height (m) of SMPL's toe-base joints above the floor when a foot stands flat (the data's convention)."""
LEGS = (("left_hip", "left_knee", "left_ankle", "left_foot"),
        ("right_hip", "right_knee", "right_ankle", "right_foot"))


@dataclass(frozen=True)
class Character:
    """A character's armature as arrays: what the retarget needs of Blender's data."""

    bone_names: tuple
    parents: tuple
    """Index of each bone's parent, -1 for roots."""
    rest: np.ndarray
    """(B, 4, 4) rest matrices, armature space (``Bone.matrix_local``)."""
    tails: np.ndarray
    """(B, 3) rest tails, armature space."""
    world: np.ndarray
    """(4, 4) the armature object's world matrix."""
    rotation_modes: tuple = ()
    """Each bone's ``rotation_mode`` (default: all quaternions)."""
    inherit_rotation: tuple = ()
    """Each bone's ``use_inherit_rotation`` (default: all True)."""
    driven: tuple = ()
    """Names of the bones whose transform constraints or drivers set (keys on them would be overridden)."""

    def index(self, name: str) -> int:
        return self.bone_names.index(name)

    def parent_map(self) -> dict:
        return {n: (self.bone_names[p] if p >= 0 else None) for n, p in zip(self.bone_names, self.parents)}


def _body_frame(left: np.ndarray, up: np.ndarray) -> np.ndarray:
    """(3, 3) columns left, up, front of a body from its hips' left-right line and its trunk."""
    left = normalize(left)
    up = normalize(up - (up @ left) * left)
    return np.stack([left, up, np.cross(left, up)], axis=1)


def _heading(front: np.ndarray) -> float:
    """Angle (radians, about +Z) from -Y to the horizontal part of ``front``."""
    return float(np.arctan2(front[0], -front[1])) if np.hypot(front[0], front[1]) > 1e-6 else 0.0


def object_scale(world: np.ndarray) -> float:
    """The armature object's uniform scale; M2DError if it is not uniform."""
    scales = np.linalg.norm(world[:3, :3], axis=0)
    if np.ptp(scales) > 1e-4 * scales.max():
        raise M2DError(f"The armature object is scaled unevenly ({', '.join(f'{s:g}' for s in scales)}). "
                       "Apply the scale (Object > Apply > Scale) or make it the same on X, Y and Z.")
    return float(scales.mean())


class Retarget:
    """The alignment of one character to SMPL, computed once from its rest pose and bone map."""

    def __init__(self, character: Character, bone_map: BoneMap):
        self.character, self.bone_map = character, bone_map
        bone_map.check(character.bone_names)
        names = character.bone_names
        self.joints = [j for j in sk.JOINT_NAMES if bone_map.bone(j)]
        """The mapped SMPL joints, in SMPL order."""
        self.bones = [names.index(bone_map.bone(j)) for j in self.joints]
        self.slot = {j: i for i, j in enumerate(self.joints)}
        self.logical_parent = [self._mapped_ancestor(j) for j in self.joints]
        """Slot of each mapped joint's nearest mapped SMPL ancestor, -1 for none."""

        world = np.asarray(character.world, float)
        self.object_scale = object_scale(world)
        self.object_rotation = world[:3, :3] / self.object_scale
        rest = np.asarray(character.rest, float)
        self.rest_rotation = orthonormal(rest[:, :3, :3])  # (B, 3, 3) armature space
        self.rest_head = rest[:, :3, 3]
        self.rest_tail = np.asarray(character.tails, float)
        heads_w = self._to_world(self.rest_head)
        tails_w = self._to_world(self.rest_tail)
        self.q = self.object_rotation @ self.rest_rotation[self.bones]  # (M, 3, 3) Q_b, world
        self.h = heads_w[self.bones]  # (M, 3) rest heads, world
        self.t = tails_w[self.bones]
        smpl = sk.rest_joint_positions()  # standing rest, z-up, root at the origin

        # Facing: the character's front against SMPL's (-Y: SMPL's own hips are 2 degrees off symmetric).
        top = "neck" if "neck" in self.slot else "head"
        frame_c = _body_frame(self.h[self.slot["left_hip"]] - self.h[self.slot["right_hip"]],
                              self.h[self.slot[top]] - self.h[self.slot["pelvis"]])
        turn = _heading(frame_c[:, 2])
        if frame_c[2, 1] > np.cos(np.radians(45)):  # upright: turned about the vertical only
            self.facing = sk.axis_angle_to_matrix(np.array([0.0, 0.0, -turn]))  # F
        else:  # lying or upside down in its rest pose: stood up as SMPL stands
            frame_s = _body_frame(smpl[sk.JOINT_INDEX["left_hip"]] - smpl[sk.JOINT_INDEX["right_hip"]],
                                  smpl[sk.JOINT_INDEX[top]] - smpl[0])
            self.facing = frame_s @ frame_c.T
        self.heading = sk.axis_angle_to_matrix(np.array([0.0, 0.0, turn]))  # Y: -Y -> the character's front
        # Swings onto SMPL's segments.
        self.aim = [self._aim_joint(j) for j in self.joints]
        self.rest_aim = np.zeros((len(self.joints), 3))
        self.swing = np.empty((len(self.joints), 3, 3))
        for i, j in enumerate(self.joints):
            k = self.aim[i]
            if k is None:
                parent = self.logical_parent[i]
                self.swing[i] = self.swing[parent] if parent >= 0 else np.eye(3)
                continue
            d = smpl[sk.JOINT_INDEX[k]] - smpl[sk.JOINT_INDEX[j]]
            c = self.facing @ (self.h[self.slot[k]] - self.h[i])
            self.rest_aim[i] = normalize(d)
            self.swing[i] = swing(c, d)
        self.aligned = self.swing @ self.facing @ self.q  # (M, 3, 3) S_j F Q_b
        self.direct = [k is not None and sk.PARENTS[sk.JOINT_INDEX[k]] == sk.JOINT_INDEX[j]
                       for j, k in zip(self.joints, self.aim)]

        # Hips travel: scale, floor, where the dance starts.
        self.scale = self._leg_length_character() / self._leg_length_smpl(smpl)
        feet = self.foot_points_rest()
        self.sole = float(feet[..., 2].min())
        pelvis = self.h[self.slot["pelvis"]]
        self.hips_height = float(pelvis[2] - self.sole)
        toes = [sk.JOINT_INDEX["left_foot"], sk.JOINT_INDEX["right_foot"]]
        self.smpl_hips_height = float(smpl[0, 2] - smpl[toes, 2].min() + TOE_FLOOR_HEIGHT)
        self.origin = np.array([pelvis[0], pelvis[1], self.sole])
        self.floor_shift = 0.0
        """Metres the dance is raised on this character (set per take by :func:`feet.stand_on_floor`)."""

    # ------------------------------------------------------------------ set-up helpers
    def _to_world(self, points: np.ndarray) -> np.ndarray:
        w = np.asarray(self.character.world, float)
        return points @ w[:3, :3].T + w[:3, 3]

    def _mapped_ancestor(self, joint: str) -> int:
        parent = CHAIN_PARENT.get(joint)
        while parent is not None:
            if parent in self.slot:
                return self.slot[parent]
            parent = CHAIN_PARENT.get(parent)
        return -1

    def _aim_joint(self, joint: str):
        child = AIM_CHILD.get(joint)
        while child is not None and child not in self.slot:
            child = AIM_CHILD.get(child)
        return child

    def _leg_length_character(self) -> float:
        total = []
        for hip, knee, ankle, _ in LEGS:
            a, b, c = (self.h[self.slot[n]] for n in (hip, knee, ankle))
            total.append(np.linalg.norm(b - a) + np.linalg.norm(c - b))
        return float(np.mean(total))

    @staticmethod
    def _leg_length_smpl(smpl: np.ndarray) -> float:
        total = []
        for hip, knee, ankle, _ in LEGS:
            a, b, c = (smpl[sk.JOINT_INDEX[n]] for n in (hip, knee, ankle))
            total.append(np.linalg.norm(b - a) + np.linalg.norm(c - b))
        return float(np.mean(total))

    def foot_points_rest(self) -> np.ndarray:
        """(2, P, 3) world rest points of each foot: ankle head, toe head and toe tail (or foot tail)."""
        return np.stack([self._foot_points(self.h, self.t, side) for side in range(2)])

    def _foot_points(self, heads, tails, side: int):
        _, _, ankle, toe = LEGS[side]
        points = [heads[..., self.slot[ankle], :]]
        if toe in self.slot:
            points += [heads[..., self.slot[toe], :], tails[..., self.slot[toe], :]]
        else:
            points.append(tails[..., self.slot[ankle], :])
        return np.stack(points, axis=-2)

    # ------------------------------------------------------------------ SMPL -> character
    def world_pose(self, smpl_poses, smpl_trans) -> tuple[np.ndarray, np.ndarray]:
        """World rotations (F, M, 3, 3) of the mapped bones and the hips' head (F, 3) for an SMPL motion."""
        poses = np.asarray(smpl_poses, float)
        frames = len(poses)
        rot = sk.axis_angle_to_matrix(poses.reshape(frames, sk.NUM_JOINTS, 3))
        positions, world = sk.forward_kinematics(rot, np.asarray(smpl_trans, float))
        idx = [sk.JOINT_INDEX[j] for j in self.joints]
        delta = world[:, idx] @ sk.Y_UP_TO_Z_UP.T  # (F, M, 3, 3) Δ_j
        for i, j in enumerate(self.joints):
            k = self.aim[i]
            if k is None or self.direct[i]:
                continue
            actual = positions[:, sk.JOINT_INDEX[k]] - positions[:, sk.JOINT_INDEX[j]]
            delta[:, i] = swing(delta[:, i] @ self.rest_aim[i], actual) @ delta[:, i]
        rotations = self.heading @ delta @ self.aligned
        return rotations, self.hips_position(smpl_trans)

    def hips_position(self, smpl_trans) -> np.ndarray:
        """(F, 3) world position of the hips bone's head for SMPL root positions (F, 3)."""
        trans = np.asarray(smpl_trans, float) - np.array([0.0, 0.0, self.smpl_hips_height])
        up = np.array([0.0, 0.0, self.hips_height + self.floor_shift])
        return self.origin + up + (self.scale * trans) @ self.heading.T

    def smpl_trans(self, hips: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`hips_position`."""
        up = np.array([0.0, 0.0, self.hips_height + self.floor_shift])
        local = (np.asarray(hips, float) - self.origin - up) @ self.heading
        return local / self.scale + np.array([0.0, 0.0, self.smpl_hips_height])

    def heads(self, rotations: np.ndarray, hips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World heads and tails (F, M, 3) of the mapped bones posed by ``rotations`` (F, M, 3, 3)."""
        frames = len(rotations)
        heads = np.empty((frames, len(self.joints), 3))
        for i in range(len(self.joints)):
            parent = self.logical_parent[i]
            if parent < 0:
                heads[:, i] = hips if i == self.slot["pelvis"] else self.h[i]
            else:
                offset = self.q[parent].T @ (self.h[i] - self.h[parent])
                heads[:, i] = heads[:, parent] + rotations[:, parent] @ offset
        tails = heads + np.einsum("fmij,mj->fmi", rotations, np.einsum("mji,mj->mi", self.q, self.t - self.h))
        return heads, tails

    def foot_points(self, heads: np.ndarray, tails: np.ndarray, side: int) -> np.ndarray:
        """(F, P, 3) world points of one foot (ankle head, toe head, toe tail)."""
        return self._foot_points(heads, tails, side)

    # ------------------------------------------------------------------ key values
    def basis(self, rotations: np.ndarray, hips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pose-bone rotations (F, M, 3, 3) and the hips bone's location (F, 3): the keys' values."""
        rest = self.rest_rotation[self.bones]  # (M, 3, 3)
        armature = self.object_rotation.T @ rotations  # (F, M, 3, 3)
        out = np.empty_like(armature)
        inherit = self.character.inherit_rotation or (True,) * len(self.character.bone_names)
        for i in range(len(self.joints)):
            parent = self.logical_parent[i]
            if parent < 0 or not inherit[self.bones[i]]:
                out[:, i] = rest[i].T @ armature[:, i]
            else:
                out[:, i] = rest[i].T @ rest[parent] @ np.swapaxes(armature[:, parent], -1, -2) @ armature[:, i]
        pelvis = self.slot["pelvis"]
        w = np.asarray(self.character.world, float)
        local = (np.asarray(hips, float) - w[:3, 3]) @ self.object_rotation / self.object_scale
        location = (local - self.rest_head[self.bones[pelvis]]) @ rest[pelvis]
        return out, location

    def from_basis(self, basis: np.ndarray, location: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The inverse of :meth:`basis`: world rotations (F, M, 3, 3) and hips (F, 3)."""
        rest = self.rest_rotation[self.bones]
        armature = np.empty_like(np.asarray(basis, float))
        inherit = self.character.inherit_rotation or (True,) * len(self.character.bone_names)
        for i in range(len(self.joints)):  # parents come first in SMPL order
            parent = self.logical_parent[i]
            if parent < 0 or not inherit[self.bones[i]]:
                armature[:, i] = rest[i] @ basis[:, i]
            else:
                armature[:, i] = armature[:, parent] @ rest[parent].T @ rest[i] @ basis[:, i]
        pelvis = self.slot["pelvis"]
        local = np.asarray(location, float) @ rest[pelvis].T + self.rest_head[self.bones[pelvis]]
        w = np.asarray(self.character.world, float)
        hips = local @ w[:3, :3].T + w[:3, 3]
        return self.object_rotation @ armature, hips

    # ------------------------------------------------------------------ character -> SMPL
    def smpl_pose(self, rotations: np.ndarray, hips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """SMPL axis-angle poses (F, 72) and root positions (F, 3) that put the character in this pose.

        SMPL joints without a bone keep their rest rotation (relative to their parent).
        """
        frames = len(rotations)
        delta = self.heading.T @ rotations @ np.swapaxes(self.aligned, -1, -2)  # Δ_j
        world = np.empty((frames, sk.NUM_JOINTS, 3, 3))
        for j, name in enumerate(sk.JOINT_NAMES):
            if name in self.slot:
                world[:, j] = delta[:, self.slot[name]] @ sk.Y_UP_TO_Z_UP
            elif j == 0:
                world[:, j] = sk.Y_UP_TO_Z_UP
            else:
                world[:, j] = world[:, sk.PARENTS[j]]
        local = np.empty_like(world)
        local[:, 0] = world[:, 0]
        for j in range(1, sk.NUM_JOINTS):
            local[:, j] = np.swapaxes(world[:, sk.PARENTS[j]], -1, -2) @ world[:, j]
        poses = sk.matrix_to_axis_angle(local).reshape(frames, sk.NUM_JOINTS * 3)
        return poses, self.smpl_trans(hips)
