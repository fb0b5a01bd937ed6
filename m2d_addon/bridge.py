"""Motion arrays to actions and back: the one place where the engine's numbers meet Blender's data.

Bone rotations. With ``C`` = :data:`skeleton.Y_UP_TO_Z_UP`, SMPL local rotations
``R_j`` (joint 0's includes ``C``) and bone rest orientations ``B_j`` (the
rotation of ``bone.matrix_local``; the armature object is the world frame), the
pose-bone rotation that reproduces the engine's forward kinematics is

    P_j = B_j^T C R_j C^T B_j     (j > 0)
    P_0 = B_0^T R_0 C^T B_0

because the rest armature is the SMPL rest pose turned by ``C``, so bone ``j``
must turn by ``A_j = G_j C^T`` in the world (``G_j`` its FK world rotation) and
Blender composes ``W_j = W_parent B_parent^T B_j P_j``. The root's location key
is ``B_0^T (trans - head_0)``, ``head_0`` being the rest pelvis head.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..inference import motion
from ..inference import skeleton as sk
from ..inference.dance import Dance
from ..inference.errors import M2DError

ROTATION_PATH = 'pose.bones["{}"].rotation_quaternion'
LOCATION_PATH = 'pose.bones["{}"].location'
ROOT = sk.JOINT_NAMES[0]
_LINEAR = 1  # index of 'LINEAR' in Keyframe.interpolation's enum


# ----------------------------------------------------------------------------- numbers only


def sample_at_times(dance: Dance, seconds) -> tuple[np.ndarray, np.ndarray]:
    """The dance at file times ``seconds`` (slerp between the model's frames): (F, 72), (F, 3)."""
    times = np.asarray(seconds, np.float64) - dance.audio_start
    return motion.resample(dance.smpl_poses, dance.smpl_trans, dance.fps, times)


def pose_channels(smpl_poses, smpl_trans, bone_rest: np.ndarray, pelvis_head: np.ndarray):
    """Pose-bone quaternions (F, 24, 4), one hemisphere along time, and root locations (F, 3).

    ``bone_rest``: (24, 3, 3) rest rotations ``B_j`` in SMPL joint order;
    ``pelvis_head``: (3,) rest head of the root bone, armature space.
    """
    frames = len(smpl_poses)
    c = sk.Y_UP_TO_Z_UP
    rot = sk.axis_angle_to_matrix(np.asarray(smpl_poses, np.float64).reshape(frames, sk.NUM_JOINTS, 3))
    world_delta = c @ rot @ c.T  # (F, 24, 3, 3): each joint's turn, in z-up coordinates
    world_delta[:, 0] = rot[:, 0] @ c.T
    b = np.asarray(bone_rest, np.float64)
    local = np.swapaxes(b, -1, -2)[None] @ world_delta @ b[None]  # (F, 24, 3, 3)
    quats = sk.quat_continuous(sk.matrix_to_quat(local), axis=0)
    loc = (np.asarray(smpl_trans, np.float64) - pelvis_head) @ b[0]  # row form of B_0^T (trans - head)
    return quats, loc


# ----------------------------------------------------------------------------- Blender data


def bone_rest(armature_obj) -> tuple[np.ndarray, np.ndarray]:
    """Rest rotations (24, 3, 3) of the SMPL bones and the pelvis head (3,), armature space."""
    bones = armature_obj.data.bones
    rest = np.array([np.array(bones[name].matrix_local.to_3x3()) for name in sk.JOINT_NAMES])
    return rest, np.array(bones[ROOT].head_local)


def _set_keys(fcurve, frames: np.ndarray, values: np.ndarray) -> None:
    n = len(frames)
    points = fcurve.keyframe_points
    points.add(n)
    co = np.empty(2 * n, np.float32)
    co[0::2], co[1::2] = frames, values
    points.foreach_set("co", co)
    points.foreach_set("interpolation", np.full(n, _LINEAR, np.int32))
    fcurve.update()


@dataclass
class Keys:
    """A take's key values for one armature rest pose, ready to write (made off the main thread)."""

    frames: np.ndarray  # (F,) scene frames
    quats: np.ndarray  # (F, 24, 4) pose-bone quaternions, SMPL joint order
    loc: np.ndarray  # (F, 3) root location
    rest: np.ndarray  # (24, 3, 3) the bone rest rotations they were made for
    pelvis: np.ndarray  # (3,) the rest pelvis head they were made for
    poses: np.ndarray  # (F, 72) the motion at the frames' times, to redo the keys for another rest pose
    trans: np.ndarray  # (F, 3)
    audio_start: float

    def for_rest(self, rest: np.ndarray, pelvis: np.ndarray) -> "Keys":
        """These keys for an armature whose rest pose is ``rest``/``pelvis`` (recomputed if it differs)."""
        if np.allclose(rest, self.rest, atol=1e-5) and np.allclose(pelvis, self.pelvis, atol=1e-6):
            return self
        quats, loc = pose_channels(self.poses, self.trans, rest, pelvis)
        return Keys(self.frames, quats, loc, rest, pelvis, self.poses, self.trans, self.audio_start)


def prepare_keys(npz_path, frames, seconds, rest: np.ndarray, pelvis: np.ndarray) -> Keys:
    """Load the engine's dance, sample it at the frames' file times and convert it to key values."""
    dance = Dance.load(npz_path)
    poses, trans = sample_at_times(dance, seconds)
    quats, loc = pose_channels(poses, trans, rest, pelvis)
    return Keys(np.asarray(frames, np.float64), quats, loc, rest, pelvis, poses, trans, dance.audio_start)


class ActionWriter:
    """Writes a new take's F-curves a few bones at a time (slotted action API, bulk writes).

    The action stays unassigned until the take is applied. Between steps it is
    looked up again by name and session id, so an undo in between is noticed.
    """

    def __init__(self, name: str, slot_name: str, keys: Keys):
        import bpy

        self.keys = keys
        action = bpy.data.actions.new(name)
        action.slots.new(id_type="OBJECT", name=slot_name)
        action.layers.new("Dance").strips.new(type="KEYFRAME")
        self._name, self._uid = action.name, action.session_uid
        self.next_joint = 0

    @property
    def done(self) -> bool:
        return self.next_joint >= sk.NUM_JOINTS

    def action(self):
        import bpy

        action = bpy.data.actions.get(self._name)
        if action is None or action.session_uid != self._uid:
            raise M2DError("The new take was removed (by Undo?) before it was finished. Nothing was changed; "
                           "generate again.")
        return action

    def step(self, budget: float | None = None) -> bool:
        """Write bones until ``budget`` seconds have passed (at least one; all if None); True when done."""
        action = self.action()
        channels = action.layers[0].strips[0].channelbag(action.slots[0], ensure=True)
        frames, started = self.keys.frames, time.perf_counter()
        while not self.done:
            j = self.next_joint
            bone = sk.JOINT_NAMES[j]
            group = channels.groups.new(bone)
            if j == 0:
                for i in range(3):
                    fc = channels.fcurves.new(LOCATION_PATH.format(bone), index=i)
                    fc.group = group
                    _set_keys(fc, frames, self.keys.loc[:, i])
            for i in range(4):
                fc = channels.fcurves.new(ROTATION_PATH.format(bone), index=i)
                fc.group = group
                _set_keys(fc, frames, self.keys.quats[:, j, i])
            self.next_joint += 1
            if budget is not None and time.perf_counter() - started > budget:
                break
        if self.done:
            action.use_frame_range = True
            action.frame_start, action.frame_end = float(frames[0]), float(frames[-1])
        return self.done

    def discard(self) -> None:
        """Remove the unfinished action (cancel, failure)."""
        import bpy

        action = bpy.data.actions.get(self._name)
        if action is not None and action.session_uid == self._uid:
            bpy.data.actions.remove(action)


def write_action(obj, name: str, frames, quats: np.ndarray, loc: np.ndarray):
    """A new action keyed on ``frames`` in one go; not yet assigned.

    ``quats`` (F, 24, 4) per SMPL bone, ``loc`` (F, 3) for the root.
    """
    keys = Keys(np.asarray(frames, np.float64), quats, loc, None, None, None, None, 0.0)
    writer = ActionWriter(name, obj.name, keys)
    writer.step()
    return writer.action()


def assign_action(obj, action) -> None:
    """Make ``action`` the object's active action, on its first slot."""
    anim = obj.animation_data or obj.animation_data_create()
    if anim.action != action:
        anim.action = action
    slot = action.slots[0] if len(action.slots) else None
    # Re-assigning the slot that is already assigned crashes Blender 4.5 and 5.0: compare first.
    if slot is not None and anim.action_slot != slot:
        anim.action_slot = slot


def action_channels(action):
    """The F-curves of an action's first slot, for reading keys back."""
    if not len(action.slots) or not len(action.layers):
        return []
    bag = action.layers[0].strips[0].channelbag(action.slots[0])
    return list(bag.fcurves) if bag is not None else []


def read_joint_positions(obj, frames, scene=None) -> np.ndarray:
    """World positions (F, 24, 3) of the SMPL pose bones' heads, evaluated by Blender on each frame."""
    import bpy

    scene = scene or bpy.context.scene
    depsgraph = bpy.context.evaluated_depsgraph_get()
    current = scene.frame_current, scene.frame_subframe
    out = np.empty((len(frames), sk.NUM_JOINTS, 3))
    try:
        for i, frame in enumerate(frames):
            scene.frame_set(int(frame))
            evaluated = obj.evaluated_get(depsgraph)
            world = np.array(evaluated.matrix_world)
            heads = np.array([evaluated.pose.bones[name].head for name in sk.JOINT_NAMES])
            out[i] = heads @ world[:3, :3].T + world[:3, 3]
    finally:
        scene.frame_set(current[0], subframe=current[1])
    return out
