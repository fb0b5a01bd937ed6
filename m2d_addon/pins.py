"""Pins, from the scene to the engine: what the animator keeps, as a :class:`~inference.sampling.constraints.Constraints`.

A pin (``object.m2d.pins``, see :class:`~.props.M2D_PG_pin`) is made from what
the scene shows when it is added:

* **POSE** — the whole pose at frame ``frame_start``, copied from the pose bones
  (posed or keyed) into the pin itself (``pose``, ``location``).
* **BONES** / **ROOT** / **KEEP** — over frames ``frame_start..frame_end`` the
  chosen bones' rotations / the root position (all axes or the floor plane) /
  everything keep the animation of the take that was current (``action``). The
  take's F-curves are read when the engine is asked, at the model's frame times
  (any key spacing, any interpolation, any scene frame rate).

Turning pins into engine input happens here and only here:

1. Every pin is read at its own *scene* frames and the pins are checked against
   each other there (two pins that give one bone two rotations on one frame
   contradict). The same values later overwrite the keys of those frames, so a
   pinned key is exactly what the pin holds, at any frame rate (:class:`Overrides`).
2. Model frame ``k`` shows file time ``audio_start + k / fps_model``; a range pin
   pins the model frames inside its span, read from the take at the fractional
   scene frames of those times; a pose pin pins the model frame nearest its frame.

How pins are shown (markers, bone colours, the band in time editors) is :mod:`.pin_display`.
"""

from __future__ import annotations

import math
import dataclasses
from dataclasses import dataclass, field

import numpy as np

from ..inference import skeleton as sk
from ..inference.errors import M2DError
from ..inference.sampling.constraints import Constraints
from . import bridge

KINDS = (
    ("POSE", "Pose", "The whole pose at one frame, as posed or keyed there"),
    ("BONES", "Bones", "Chosen bones keep their animation over a frame range"),
    ("ROOT", "Root Path", "The root position keeps its path over a frame range"),
    ("KEEP", "Keep Range", "Everything stays as it is over a frame range"),
)
RANGE_KINDS = ("BONES", "ROOT", "KEEP")

EDIT_MODES = (
    ("RANGE", "Range", "Sample frames Start to End again; everything outside them stays as it is"),
    ("UNPINNED", "Unpinned", "Sample the whole take again around the pins"),
    ("INBETWEEN", "In-between", "A dance through the poses keyed on the armature (and the pins)"),
)

PRESETS = (
    ("SELECTED", "Selected Bones", "The bones selected in Pose Mode"),
    ("LEGS", "Legs", "Hips, knees, ankles and feet"),
    ("UPPER_BODY", "Upper Body", "Spine, neck, head, collars and arms"),
    ("LEFT_ARM", "Left Arm", "Left collar, shoulder, elbow, wrist and hand"),
    ("RIGHT_ARM", "Right Arm", "Right collar, shoulder, elbow, wrist and hand"),
    ("SPINE_HEAD", "Spine and Head", "Spine, neck and head"),
)
PRESET_GROUPS = {"LEGS": "legs", "UPPER_BODY": "upper_body", "LEFT_ARM": "left_arm",
                 "RIGHT_ARM": "right_arm", "SPINE_HEAD": "spine_head"}

SAME_ANGLE = 1e-5
"""Radians: two pins on one bone and frame agree when their rotations are closer than this."""
SAME_POSITION = 1e-5
"""Metres: likewise for root positions."""


# ----------------------------------------------------------------------------- what a pin holds


def parse_bones(text: str) -> list[str]:
    """Comma-separated SMPL bone names (or group names) -> bone names; M2DError naming the strangers."""
    names = [n.strip() for n in text.replace(";", ",").split(",") if n.strip()]
    out, unknown = [], []
    for name in names:
        if name in sk.JOINT_GROUPS:
            out.extend(sk.JOINT_GROUPS[name])
        elif name in sk.JOINT_INDEX:
            out.append(name)
        else:
            unknown.append(name)
    if unknown:
        listed = ", ".join(f"'{n}'" for n in unknown)
        raise M2DError(f"{listed} {'is not an SMPL bone' if len(unknown) == 1 else 'are not SMPL bones'}. "
                       f"Pin SMPL bones ({', '.join(sk.JOINT_NAMES)}) or a preset "
                       f"({', '.join(sk.JOINT_GROUPS)}).")
    if not out:
        raise M2DError("No bones are given to pin. Select bones in Pose Mode, or choose a preset.")
    return sorted(set(out), key=sk.JOINT_INDEX.get)


def pinned_joints(kind: str, bones: str = "") -> list[int]:
    """Joints whose rotation a pin of ``kind`` holds (``bones``: a BONES pin's names, see :func:`parse_bones`)."""
    if kind in ("POSE", "KEEP"):
        return list(range(sk.NUM_JOINTS))
    if kind == "BONES":
        return [sk.JOINT_INDEX[n] for n in parse_bones(bones)]
    return []


def root_axes(kind: str, horizontal_only: bool = False) -> int:
    """How many root axes a pin of ``kind`` holds: 3 (x, y, z), 2 (x, y: the floor plane) or 0."""
    if kind in ("POSE", "KEEP"):
        return 3
    if kind == "ROOT":
        return 2 if horizontal_only else 3
    return 0


def frame_span(pin) -> tuple[int, int]:
    return (pin.frame_start, pin.frame_start) if pin.kind == "POSE" else (pin.frame_start, pin.frame_end)


# ----------------------------------------------------------------------------- reading the scene


def check_quaternion_bones(obj) -> None:
    """Pins read quaternion rotations; other rotation modes are refused with the bone's name."""
    others = [n for n in sk.JOINT_NAMES if obj.pose.bones[n].rotation_mode != "QUATERNION"]
    if others:
        raise M2DError(f"The bone{'s' if len(others) > 1 else ''} {', '.join(others[:4])} of '{obj.name}' "
                       "use Euler or axis-angle rotation. Set Rotation Mode to Quaternion (Pose Mode, "
                       "Bone properties) to pin or regenerate.")


def current_pose(obj) -> tuple[np.ndarray, np.ndarray]:
    """The pose bones' rotations (24, 4) and the root's location (3,) as the scene shows them now."""
    bones = obj.pose.bones
    quats = np.array([tuple(bones[n].rotation_quaternion) for n in sk.JOINT_NAMES], np.float64)
    return quats, np.array(tuple(bones[bridge.ROOT].location), np.float64)


def curve_values(fcurve, frames) -> np.ndarray:
    """An F-curve at (fractional) scene ``frames``, as Blender evaluates it.

    Curves of linear keys without modifiers (every generated take) are read in
    one go; any other curve is evaluated frame by frame.
    """
    frames = np.asarray(frames, np.float64)
    points = fcurve.keyframe_points
    n = len(points)
    if n and not len(fcurve.modifiers) and fcurve.extrapolation == "CONSTANT":
        interp = np.empty(n, np.int32)
        points.foreach_get("interpolation", interp)
        if np.all(interp[:-1] == bridge.LINEAR):
            co = np.empty(2 * n, np.float32)
            points.foreach_get("co", co)
            return np.interp(frames, co[0::2].astype(np.float64), co[1::2].astype(np.float64))
    return np.array([fcurve.evaluate(float(f)) for f in frames], np.float64)


def sample_take(obj, action, frames) -> tuple[np.ndarray, np.ndarray]:
    """The take's pose-bone quaternions (F, 24, 4) and root locations (F, 3) at scene ``frames``.

    A channel the take does not animate (or mutes) holds the pose bone's current value.
    """
    frames = np.atleast_1d(np.asarray(frames, np.float64))
    quats = np.empty((len(frames), sk.NUM_JOINTS, 4))
    loc = np.empty((len(frames), 3))
    pose_q, pose_loc = current_pose(obj)
    curves = {}
    if action is not None:
        curves = {(fc.data_path, fc.array_index): fc for fc in bridge.action_channels(action)
                  if not fc.mute and len(fc.keyframe_points)}
    for j, name in enumerate(sk.JOINT_NAMES):
        for i in range(4):
            fc = curves.get((bridge.ROTATION_PATH.format(name), i))
            quats[:, j, i] = curve_values(fc, frames) if fc is not None else pose_q[j, i]
    for i in range(3):
        fc = curves.get((bridge.LOCATION_PATH.format(bridge.ROOT), i))
        loc[:, i] = curve_values(fc, frames) if fc is not None else pose_loc[i]
    return quats, loc


def keyed_frames(action) -> list[int]:
    """Scene frames (whole) on which the take has a key on any SMPL bone channel."""
    paths = {bridge.ROTATION_PATH.format(n) for n in sk.JOINT_NAMES} | {bridge.LOCATION_PATH.format(bridge.ROOT)}
    found = set()
    for fc in bridge.action_channels(action):
        if fc.data_path in paths and len(fc.keyframe_points):
            co = np.empty(2 * len(fc.keyframe_points), np.float32)
            fc.keyframe_points.foreach_get("co", co)
            found.update(int(round(x)) for x in co[0::2])
    return sorted(found)


class SmplView:
    """Music2Dance's own SMPL armature, read as it is (the counterpart of
    :class:`~.character.CharacterView`, which shows a character the same way)."""

    def __init__(self, obj):
        self.obj = obj
        self.rest, self.pelvis = bridge.bone_rest(obj)

    def sample(self, action, frames) -> tuple[np.ndarray, np.ndarray]:
        return sample_take(self.obj, action, frames)

    def current_pose(self) -> tuple[np.ndarray, np.ndarray]:
        return current_pose(self.obj)

    def keyed_frames(self, action) -> list[int]:
        return keyed_frames(action)

    def joints_of_bones(self, bone_names) -> list[str]:
        return [n for n in bone_names if n in sk.JOINT_INDEX]

    def bone_of_joint(self, joint: str) -> str | None:
        return joint


def view_of(obj):
    """How pins and edits read ``obj``: as SMPL pose-bone quaternions, whatever armature it is."""
    from . import character

    if character.is_character(obj):
        return character.CharacterView.of(obj)
    check_quaternion_bones(obj)
    return SmplView(obj)


# ----------------------------------------------------------------------------- the model's frames


@dataclass(frozen=True)
class FrameMap:
    """Model frame ``k`` shows file time ``audio_start + k / fps``; scene frames map through the strip."""

    timing: object  # timing.StripTiming
    audio_start: float
    fps: int
    last_scene_frame: int

    def position(self, scene_frames) -> np.ndarray:
        """Model-frame positions (fractional) of scene frames."""
        return (self.timing.seconds_at(scene_frames) - self.audio_start) * self.fps

    def scene_frames(self, model_frames) -> np.ndarray:
        return self.timing.frame_zero + (self.audio_start + np.asarray(model_frames, np.float64) / self.fps) \
            * self.timing.fps

    @property
    def num_frames(self) -> int:
        """Model frames the engine surely makes for the span (the pins' frames are among them).

        It makes ``round(seconds * fps)`` frames and hears the music at least to the last scene
        frame's time, so ``round`` of that frame's position is safe. (At the very end of a strip the
        last model frame may stay unpinned; the key of the last scene frame is written from the pin.)
        """
        return max(1, int(math.floor(float(self.position(self.last_scene_frame)) + 0.5 - 1e-9)))


# ----------------------------------------------------------------------------- pins -> engine


@dataclass
class PinSpec:
    """One pin, or one stretch the edit keeps, in plain data (scene frames, inclusive)."""

    name: str
    first: int
    last: int
    joints: list
    axes: int  # root axes held: 0, 2 (x, y) or 3
    action: object = None  # the take read for range pins (None: the pose below)
    pose: np.ndarray | None = None  # (24, 4) pose-bone quaternions of a pose pin
    location: np.ndarray | None = None  # (3,) root location of a pose pin

    @classmethod
    def pose_at(cls, name: str, frame: int, pose: np.ndarray, location: np.ndarray) -> "PinSpec":
        """A whole pose on one scene frame: (24, 4) pose-bone quaternions and the (3,) root location."""
        return cls(name, frame, frame, pinned_joints("POSE"), root_axes("POSE"), pose=pose, location=location)

    @classmethod
    def from_take(cls, name: str, kind: str, first: int, last: int, action, bones: str = "",
                  horizontal_only: bool = False) -> "PinSpec":
        """A range pin (BONES, ROOT or KEEP) that keeps ``action``'s animation on scene frames ``first..last``."""
        return cls(name, first, last, pinned_joints(kind, bones), root_axes(kind, horizontal_only), action=action)

    @classmethod
    def keep(cls, name: str, first: int, last: int, action) -> "PinSpec":
        """Everything of ``action`` on scene frames ``first..last`` (what a Keep Range pin holds)."""
        return cls.from_take(name, "KEEP", first, last, action)

    @property
    def is_pose(self) -> bool:
        return self.pose is not None

    def clipped(self, first: int, last: int) -> "PinSpec | None":
        """The part of the pin on frames ``first..last``, or None."""
        a, b = max(self.first, first), min(self.last, last)
        if a > b:
            return None
        return dataclasses.replace(self, first=a, last=b)

    def scene_values(self, view) -> tuple[np.ndarray, np.ndarray]:
        """(F, 24, 4) quaternions and (F, 3) root locations on the pin's whole scene frames."""
        frames = np.arange(self.first, self.last + 1)
        if self.is_pose:
            return np.repeat(self.pose[None], len(frames), 0), np.repeat(self.location[None], len(frames), 0)
        return view.sample(self.action, frames)


def spec_of(pin) -> PinSpec:
    """A stored pin as plain data; M2DError if it cannot be used as it is."""
    first, last = frame_span(pin)
    if first > last:
        raise M2DError(f"The pin '{pin.name}' starts at frame {first}, after its end {last}. Edit its frames.")
    if pin.kind == "POSE":
        return PinSpec.pose_at(pin.name, first, np.array(pin.pose, np.float64).reshape(sk.NUM_JOINTS, 4),
                               np.array(pin.location, np.float64))
    if pin.action is None:
        raise M2DError(f"The take that the pin '{pin.name}' keeps was deleted. Remove the pin, or add it "
                       "again from the current take.")
    return PinSpec.from_take(pin.name, pin.kind, first, last, pin.action, pin.bones, pin.horizontal_only)


def enabled_specs(obj) -> list[PinSpec]:
    return [spec_of(p) for p in obj.m2d.pins if p.enabled]


@dataclass
class Overrides:
    """Key values that pins dictate on the written scene frames.

    Rotations are pose-bone quaternions. The root is held per *world* axis (a
    floor-only path pins x and y); where all three are held the pinned location
    keys are copied as they are, otherwise the held axes replace the engine's.
    """

    frames: np.ndarray  # (W,) scene frames
    quats: np.ndarray  # (W, 24, 4)
    mask: np.ndarray  # (W, 24) bool
    trans: np.ndarray  # (W, 3) root position, armature space
    trans_mask: np.ndarray  # (W, 3) bool, per world axis
    loc: np.ndarray  # (W, 3) root location keys (pose-bone space) where one pin holds all three axes
    loc_valid: np.ndarray  # (W,) bool: where ``loc`` holds them
    rest: np.ndarray  # (3, 3) the root bone's rest rotation B_0
    head: np.ndarray  # (3,) its rest head
    anchor: np.ndarray | None = None  # (24, 4) the source take's rotations on the frame before, for signs

    @classmethod
    def empty(cls, frames, rest: np.ndarray, head: np.ndarray) -> "Overrides":
        w = len(frames)
        return cls(np.asarray(frames), np.zeros((w, sk.NUM_JOINTS, 4)), np.zeros((w, sk.NUM_JOINTS), bool),
                   np.zeros((w, 3)), np.zeros((w, 3), bool), np.zeros((w, 3)), np.zeros(w, bool),
                   np.asarray(rest), np.asarray(head))

    def apply(self, quats: np.ndarray, loc: np.ndarray, trans: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Keys (W, 24, 4), (W, 3) with the pinned values written in, one hemisphere along time.

        ``trans``: (W, 3) the engine's root positions on the same frames (for the free axes).
        """
        quats, loc = quats.copy(), loc.copy()
        quats[self.mask] = self.quats[self.mask]
        full = self.loc_valid & self.trans_mask.all(axis=1)
        loc[full] = self.loc[full]
        partial = self.trans_mask.any(axis=1) & ~full
        if partial.any():
            mixed = np.where(self.trans_mask[partial], self.trans[partial], trans[partial])
            loc[partial] = (mixed - self.head) @ self.rest  # row form of B_0^T (trans - head)
        quats = sk.quat_continuous(quats, axis=0)
        if self.anchor is not None and len(quats):
            flip = (quats[0] * self.anchor).sum(-1) < 0  # (24,) start on the source's side
            quats[:, flip] *= -1
        return quats, loc


@dataclass
class _SceneTable:
    """Pinned values per scene frame, and which pin set each, to find contradictions."""

    first: int
    quats: np.ndarray  # (R, 24, 4)
    owner: np.ndarray  # (R, 24) index of the spec, -1 where free
    trans: np.ndarray  # (R, 3) root positions, armature space
    trans_owner: np.ndarray  # (R, 3) per world axis
    loc: np.ndarray  # (R, 3) the root location keys, where one pin holds all three axes
    loc_valid: np.ndarray  # (R,) bool
    rest: np.ndarray  # (3, 3) B_0
    head: np.ndarray  # (3,)
    names: list = field(default_factory=list)

    @classmethod
    def over(cls, specs, rest: np.ndarray, head: np.ndarray) -> "_SceneTable":
        first = min(s.first for s in specs)
        rows = max(s.last for s in specs) - first + 1
        return cls(first, np.zeros((rows, sk.NUM_JOINTS, 4)), np.full((rows, sk.NUM_JOINTS), -1),
                   np.zeros((rows, 3)), np.full((rows, 3), -1), np.zeros((rows, 3)), np.zeros(rows, bool),
                   rest, head)

    def add(self, index: int, spec: PinSpec, quats: np.ndarray, loc: np.ndarray) -> None:
        """Record what ``spec`` holds on its frames; M2DError if an earlier spec holds something else."""
        rows = slice(spec.first - self.first, spec.last - self.first + 1)
        mine = np.zeros(sk.NUM_JOINTS, bool)
        mine[np.asarray(spec.joints, int)] = True
        owner, held = self.owner[rows], self.quats[rows]  # views
        taken = (owner >= 0) & mine[None]
        if taken.any():
            a = quats[taken] / np.linalg.norm(quats[taken], axis=-1, keepdims=True)
            b = held[taken] / np.linalg.norm(held[taken], axis=-1, keepdims=True)
            angle = np.zeros(taken.shape)
            angle[taken] = 2 * np.arccos(np.clip(np.abs((a * b).sum(-1)), 0.0, 1.0))
            bad = np.argwhere(angle > SAME_ANGLE)
            if len(bad):
                r, j = bad[0]
                self._clash(spec, owner[r, j], spec.first + r, f"rotations of {sk.JOINT_NAMES[j]}")
        free = ~taken & mine[None]
        held[free] = quats[free]
        owner[free] = index
        trans = loc @ self.rest.T + self.head
        axes = np.arange(3) < spec.axes
        trans_owner, trans_held = self.trans_owner[rows], self.trans[rows]
        taken = (trans_owner >= 0) & axes[None]
        bad = np.argwhere(taken & (np.abs(trans - trans_held) > SAME_POSITION))
        if len(bad):
            r, a = bad[0]
            self._clash(spec, trans_owner[r, a], spec.first + r, "root positions")
        if spec.axes == 3:
            fresh = ~taken.any(axis=1)
            loc_held, valid = self.loc[rows], self.loc_valid[rows]
            loc_held[fresh] = loc[fresh]
            valid[fresh] = True
        free = ~taken & axes[None]
        trans_held[free] = trans[free]
        trans_owner[free] = index
        self.names.append(spec.name)

    def _clash(self, spec, other: int, frame: int, what: str):
        raise M2DError(f"The pins '{self.names[other]}' and '{spec.name}' contradict each other on frame "
                       f"{frame}: they hold different {what}. Disable, edit or remove one of them.")


def _table(view, specs) -> "_SceneTable":
    table = _SceneTable.over(specs, view.rest[0], view.pelvis)
    for i, spec in enumerate(specs):
        table.add(i, spec, *spec.scene_values(view))
    return table


def check_contradictions(obj, specs) -> None:
    """M2DError when two pins hold different values for one bone (or the root) on one scene frame."""
    if specs:
        _table(view_of(obj), specs)


def _model_frames(spec: PinSpec, fmap: FrameMap, count: int) -> np.ndarray:
    """Model frames a spec pins: those inside its span (at least the nearest one); a pose: the nearest."""
    lo, hi = fmap.position([spec.first, spec.last])
    nearest = np.array([min(count - 1, max(0, int(math.floor(lo + 0.5))))])
    if spec.is_pose:
        return nearest
    frames = np.arange(max(0, math.ceil(lo - 1e-6)), min(count - 1, math.floor(hi + 1e-6)) + 1)
    return frames if len(frames) else nearest


def build(view, specs, fmap: FrameMap, written: tuple[int, int], source=None):
    """The engine's Constraints on ``fmap``'s model frames, and the key values pins dictate on ``written``.

    ``view``: the armature as :func:`view_of` reads it. ``specs`` are checked against each other first
    (:func:`check_contradictions`). ``source``: the take whose rotations on the frame before ``written``
    set the signs of the new keys.
    """
    rest, pelvis = view.rest, view.pelvis
    count = fmap.num_frames
    constraints = Constraints.empty(count)
    frames = np.arange(written[0], written[1] + 1)
    overrides = Overrides.empty(frames, rest[0], pelvis)
    if source is not None:
        overrides.anchor = view.sample(source, [written[0] - 1])[0][0]
    if not specs:
        return constraints, overrides
    table = _table(view, specs)
    # Range pins first, then poses on the model frames still free ("first wins": they agree on scene frames).
    for spec in sorted(specs, key=lambda s: s.is_pose):
        k = _model_frames(spec, fmap, count)
        if spec.is_pose:
            quats, loc = np.repeat(spec.pose[None], len(k), 0), np.repeat(spec.location[None], len(k), 0)
        else:
            quats, loc = view.sample(spec.action, fmap.scene_frames(k))
        poses, trans = bridge.smpl_from_channels(quats, loc, rest, pelvis)
        poses = poses.reshape(len(k), sk.NUM_JOINTS, 3)
        for j in spec.joints:
            free = ~constraints.pose_mask[k, j]
            constraints.smpl_poses[k[free], 3 * j:3 * j + 3] = poses[free, j]
            constraints.pose_mask[k[free], j] = True
        for axis in range(spec.axes):
            free = ~constraints.root_mask[k, axis]
            constraints.smpl_trans[k[free], axis] = trans[free, axis]
            constraints.root_mask[k[free], axis] = True
    # What the pins hold on the written frames goes into the keys exactly.
    lo, hi = max(written[0], table.first), min(written[1], table.first + len(table.owner) - 1)
    if lo <= hi:
        rows, out = slice(lo - table.first, hi - table.first + 1), slice(lo - written[0], hi - written[0] + 1)
        overrides.mask[out] = table.owner[rows] >= 0
        overrides.quats[out] = table.quats[rows]
        overrides.trans_mask[out] = table.trans_owner[rows] >= 0
        overrides.trans[out] = table.trans[rows]
        overrides.loc[out] = table.loc[rows]
        overrides.loc_valid[out] = table.loc_valid[rows]
    return constraints.validate(), overrides
