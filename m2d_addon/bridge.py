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
LINEAR = 1  # index of 'LINEAR' in Keyframe.interpolation's enum


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


def smpl_from_channels(quats, loc, bone_rest: np.ndarray, pelvis_head: np.ndarray):
    """The inverse of :func:`pose_channels`: (F, 24, 4) pose-bone quaternions and (F, 3) root
    locations -> SMPL axis-angle (F, 72) and root positions (F, 3), float64.

    ``R_j = C^T B_j P_j B_j^T C`` (j > 0), ``R_0 = B_0 P_0 B_0^T C``, ``trans = B_0 loc + head_0``.
    Quaternions need not be unit length (F-curves between keys are not); Blender normalises them too.
    """
    frames = len(quats)
    c = sk.Y_UP_TO_Z_UP
    b = np.asarray(bone_rest, np.float64)
    local = sk.quat_to_matrix(np.asarray(quats, np.float64))  # (F, 24, 3, 3)
    world_delta = b[None] @ local @ np.swapaxes(b, -1, -2)[None]
    rot = c.T @ world_delta @ c
    rot[:, 0] = world_delta[:, 0] @ c
    poses = sk.matrix_to_axis_angle(rot).reshape(frames, sk.NUM_JOINTS * 3)
    trans = np.asarray(loc, np.float64) @ b[0].T + pelvis_head
    return poses, trans


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
    points.foreach_set("interpolation", np.full(n, LINEAR, np.int32))
    fcurve.update()


@dataclass(frozen=True)
class Channel:
    """One F-curve's worth of new keys: ``values`` (F,) on the keys' frames."""

    path: str
    index: int
    values: np.ndarray
    group: str


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

    def channels(self) -> list[Channel]:
        """Every F-curve of the take: per SMPL bone (the root's location first) its quaternion."""
        out = []
        for j, bone in enumerate(sk.JOINT_NAMES):
            if j == 0:
                out += [Channel(LOCATION_PATH.format(bone), i, self.loc[:, i], bone) for i in range(3)]
            out += [Channel(ROTATION_PATH.format(bone), i, self.quats[:, j, i], bone) for i in range(4)]
        return out

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
    """Writes a new take's F-curves a few at a time (slotted action API, bulk writes).

    ``keys``: anything with ``frames`` and ``channels()`` (:class:`Keys`, a character's keys).
    The action stays unassigned until the take is applied. Between steps it is
    looked up again by name and session id, so an undo in between is noticed.
    """

    def __init__(self, name: str, slot_name: str, keys):
        import bpy

        self.keys = keys
        self._channels = keys.channels()
        action = bpy.data.actions.new(name)
        action.slots.new(id_type="OBJECT", name=slot_name)
        action.layers.new("Dance").strips.new(type="KEYFRAME")
        self._name, self._uid = action.name, action.session_uid
        self._next = 0
        self._groups = {}

    @property
    def done(self) -> bool:
        return self._next >= len(self._channels)

    @property
    def written(self) -> int:
        """How many F-curves are written so far."""
        return self._next

    def action(self):
        import bpy

        action = bpy.data.actions.get(self._name)
        if action is None or action.session_uid != self._uid:
            raise M2DError("The new take was removed (by Undo?) before it was finished. Nothing was changed; "
                           "generate again.")
        return action

    def _group(self, channels, name: str):
        if name not in self._groups:
            self._groups[name] = channels.groups.new(name)
        return self._groups[name]

    def step(self, budget: float | None = None) -> bool:
        """Write F-curves until ``budget`` seconds have passed (at least one; all if None); True when done."""
        action = self.action()
        channels = action.layers[0].strips[0].channelbag(action.slots[0], ensure=True)
        frames, started = self.keys.frames, time.perf_counter()
        while not self.done:
            channel = self._channels[self._next]
            fc = channels.fcurves.new(channel.path, index=channel.index)
            fc.group = self._group(channels, channel.group)
            _set_keys(fc, frames, channel.values)
            self._next += 1
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


# Every stored field of a keyframe, with its foreach type and numbers per key.
KEY_FIELDS = (("co", np.float32, 2), ("handle_left", np.float32, 2), ("handle_right", np.float32, 2),
              ("interpolation", np.int32, 1), ("easing", np.int32, 1), ("handle_left_type", np.int32, 1),
              ("handle_right_type", np.int32, 1), ("type", np.int32, 1), ("back", np.float32, 1),
              ("amplitude", np.float32, 1), ("period", np.float32, 1))
CURVE_SETTINGS = ("extrapolation", "color_mode", "color", "auto_smoothing", "mute", "hide", "lock")


def read_keys(fcurve) -> dict:
    """All keyframes of ``fcurve`` as arrays (bulk reads)."""
    n = len(fcurve.keyframe_points)
    out = {}
    for name, dtype, width in KEY_FIELDS:
        out[name] = np.empty(n * width, dtype)
        fcurve.keyframe_points.foreach_get(name, out[name])
    return out


def key_frames(keys: dict) -> np.ndarray:
    return keys["co"][0::2]


def select_keys(keys: dict, chosen: np.ndarray) -> dict:
    """The keys where the (K,) boolean ``chosen`` is true."""
    return {name: keys[name].reshape(-1, width)[chosen].reshape(-1) for name, _, width in KEY_FIELDS}


def join_keys(*parts: dict) -> dict:
    """Keys of several parts, in time order."""
    joined = {name: np.concatenate([p[name] for p in parts]) for name, _, _ in KEY_FIELDS}
    order = np.argsort(key_frames(joined), kind="stable")
    return select_keys(joined, order)


def write_keys(fcurve, keys: dict) -> None:
    """Append keys to ``fcurve`` exactly as given (no handle recalculation: copies stay bit for bit)."""
    n = len(keys["co"]) // 2
    fcurve.keyframe_points.add(n)
    for name, _, _ in KEY_FIELDS:
        fcurve.keyframe_points.foreach_set(name, keys[name])


def linear_keys(fcurve, frames: np.ndarray, values: np.ndarray) -> dict:
    """Linear keys as :func:`_set_keys` makes them (Blender's own handles), via the empty ``fcurve``."""
    _set_keys(fcurve, frames, values)
    keys = read_keys(fcurve)
    fcurve.keyframe_points.clear()
    return keys


class SplicedTakeWriter(ActionWriter):
    """A new take made from a source take: its keys outside frames ``first..last`` copied bit for bit
    (positions, handles, interpolation, easing, key types), every other F-curve of it copied whole, and
    the new keys on ``first..last`` (every frame, linear).

    Where a sparse source has no key on ``first - 1`` (or ``last + 1``) but keys beyond it, a linear key
    holding the source's value there is added, so the motion outside the range stays the source's.
    Without a source the take holds the new keys only. ``keep_outside=False``: the new channels hold the
    new keys only (a fresh take on a character that keeps its other animation, fingers, face …).
    """

    def __init__(self, name: str, slot_name: str, keys, source=None, keep_outside: bool = True):
        super().__init__(name, slot_name, keys)
        self._source = None if source is None else (source.name, source.session_uid)
        self._new = {(c.path, c.index): c for c in self._channels}
        self._generated = set(self._new)
        self._keep_outside = keep_outside
        existing = [(fc.data_path, fc.array_index) for fc in action_channels(source)] if source else []
        self._items = existing + [g for g in self._new if g not in set(existing)]

    @property
    def done(self) -> bool:
        return self._next >= len(self._items)

    def source(self):
        import bpy

        if self._source is None:
            return None
        action = bpy.data.actions.get(self._source[0])
        if action is None or action.session_uid != self._source[1]:
            raise M2DError("The take being regenerated was removed (by Undo?) before the new one was finished. "
                           "Nothing was changed; regenerate again.")
        return action

    def step(self, budget: float | None = None) -> bool:
        action, source = self.action(), self.source()
        channels = action.layers[0].strips[0].channelbag(action.slots[0], ensure=True)
        old = {(fc.data_path, fc.array_index): fc for fc in action_channels(source)} if source else {}
        frames, started = self.keys.frames, time.perf_counter()
        first, last = float(frames[0]), float(frames[-1])
        while not self.done:
            path, index = self._items[self._next]
            src = old.get((path, index))
            fc = channels.fcurves.new(path, index=index)
            group = src.group.name if src is not None and src.group is not None else None
            if group is None and (path, index) in self._generated:
                group = self._new[(path, index)].group
            if group:
                fc.group = self._group(channels, group)
            if src is not None and (self._keep_outside or (path, index) not in self._generated):
                for setting in CURVE_SETTINGS:
                    setattr(fc, setting, getattr(src, setting))
            if (path, index) not in self._generated:
                write_keys(fc, read_keys(src))
            else:
                parts = [linear_keys(fc, frames, self._new[(path, index)].values)]
                if src is not None and self._keep_outside:
                    kept = read_keys(src)
                    at = key_frames(kept)
                    parts.append(select_keys(kept, (at < first) | (at > last)))
                    for edge, beyond in ((first - 1, at < first - 1), (last + 1, at > last + 1)):
                        if beyond.any() and not np.any(np.abs(at - edge) < 1e-4):
                            parts.append(linear_keys(fc, np.array([edge]), np.array([src.evaluate(edge)])))
                write_keys(fc, join_keys(*parts))
            self._next += 1
            if budget is not None and time.perf_counter() - started > budget:
                break
        if self.done:
            lo, hi = first, last
            if source is not None and self._keep_outside:
                lo, hi = min(lo, source.frame_range[0]), max(hi, source.frame_range[1])
            action.use_frame_range = True
            action.frame_start, action.frame_end = lo, hi
        return self.done


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
