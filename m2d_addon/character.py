"""The animator's own character as the dancer: reading its armature, its bone map, its keys.

Any humanoid armature that is not Music2Dance's SMPL armature is a *character*.
The engine's dance (SMPL) is carried onto it by :mod:`inference.retarget`; this
module is the Blender side of that: the armature as arrays, the bone map stored
on the object (``object.m2d.bone_map``), the take's F-curves as key values, and a
*view* that shows the character to pins and edits as if it were an SMPL dancer
(its poses turned into SMPL rotations), so the editing code serves both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..inference import skeleton as sk
from ..inference.errors import M2DError
from ..inference.retarget.bone_map import BoneMap, RigFamily, auto_map, families
from ..inference.retarget.character import Character, Retarget
from ..inference.retarget.rotations import ROTATION_MODES, from_key_values
from ..inference.retarget.transfer import CharacterMotion, channel_values, transfer
from . import bridge, rig

ROTATION_PROPERTY = {"QUATERNION": "rotation_quaternion", "AXIS_ANGLE": "rotation_axis_angle"}
"""The pose-bone property each rotation mode keys (every Euler order keys ``rotation_euler``)."""
LOCATION = 'pose.bones["{}"].location'


def rotation_path(bone: str, mode: str) -> str:
    return f'pose.bones["{bone}"].{ROTATION_PROPERTY.get(mode, "rotation_euler")}'


def is_character(obj) -> bool:
    """An armature that is not Music2Dance's SMPL armature (which keeps its own exact path)."""
    return obj is not None and obj.type == "ARMATURE" and bool(rig.missing_bones(obj))


def driven_bones(obj) -> tuple:
    """Bones whose transform enabled constraints or drivers set: keys on them would be overridden."""
    out = {pb.name for pb in obj.pose.bones
           if any(c.enabled and c.influence > 0 and c.type not in ("LIMIT_ROTATION", "LIMIT_LOCATION",
                                                                  "LIMIT_SCALE") for c in pb.constraints)}
    anim = obj.animation_data
    if anim is not None:
        for fc in anim.drivers:
            path = fc.data_path
            if path.startswith('pose.bones["') and path.rsplit(".", 1)[-1] in (
                    "rotation_quaternion", "rotation_euler", "rotation_axis_angle", "location"):
                out.add(path.split('"')[1])
    return tuple(sorted(out))


def read_character(obj) -> Character:
    """The armature's rest pose, object transform and bone settings as arrays (main thread)."""
    bones = obj.data.bones
    names = tuple(b.name for b in bones)
    index = {n: i for i, n in enumerate(names)}
    return Character(
        bone_names=names,
        parents=tuple(index[b.parent.name] if b.parent else -1 for b in bones),
        rest=np.array([np.array(b.matrix_local) for b in bones]),
        tails=np.array([tuple(b.tail_local) for b in bones]),
        world=np.array(obj.matrix_world),
        rotation_modes=tuple(obj.pose.bones[n].rotation_mode for n in names),
        inherit_rotation=tuple(b.use_inherit_rotation for b in bones),
        driven=driven_bones(obj),
    )


def check_editable(obj) -> None:
    """M2DError for an armature whose animation cannot be changed here (linked from a library)."""
    override = obj.override_library
    if obj.library is not None or (override is not None and override.is_system_override):
        raise M2DError(f"'{obj.name}' is linked from {obj.library.filepath if obj.library else 'a library'} "
                       "and cannot be animated here. Make it local (Object > Relations > Make Local) or add a "
                       "library override (Object > Library Override > Make), then generate again.")


# ----------------------------------------------------------------------------- the stored bone map


def stored_map(obj) -> BoneMap | None:
    """The bone map saved on the armature, or None when it has none."""
    items = obj.m2d.bone_map
    if not len(items):
        return None
    return BoneMap({item.joint: item.bone for item in items if item.bone}, obj.m2d.bone_map_family or "CUSTOM")


def store_map(obj, bone_map: BoneMap) -> None:
    """Save ``bone_map`` on the armature: one row per SMPL joint, in SMPL order (empty where unmapped)."""
    items = obj.m2d.bone_map
    items.clear()
    for joint in sk.JOINT_NAMES:
        item = items.add()
        item.joint, item.bone = joint, bone_map.bone(joint) or ""
    obj.m2d.bone_map_family = bone_map.family


def find_map(obj, family: str = "AUTO") -> BoneMap:
    """The bone map a table or the name matcher finds for ``obj`` (nothing is stored)."""
    character = read_character(obj)
    heads = {n: character.rest[i, :3, 3] for i, n in enumerate(character.bone_names)}
    return auto_map(character.bone_names, character.parent_map(), heads, family, character.driven)


def bone_map_of(obj) -> BoneMap:
    """The stored bone map when it maps every required joint, else one found now (stored by the caller)."""
    stored = stored_map(obj)
    if stored is not None and not stored.missing():
        return stored
    return find_map(obj)


def family_of(bone_map: BoneMap) -> RigFamily | None:
    return families().get(bone_map.family)


def retarget_for(obj, bone_map: BoneMap | None = None) -> Retarget:
    """The retarget of ``obj`` (checked: humanoid, editable, evenly scaled); M2DError saying why not."""
    check_editable(obj)
    bone_map = bone_map or bone_map_of(obj)
    return Retarget(read_character(obj), bone_map)


def warnings(retarget: Retarget) -> list[str]:
    """What the animator should know before keys go on: mapped bones that something else moves."""
    names = [retarget.character.bone_names[b] for b in retarget.bones]
    driven = [n for n in names if n in retarget.character.driven]
    if not driven:
        return []
    return [f"{', '.join(driven[:5])}{' …' if len(driven) > 5 else ''} of the bone map "
            f"{'is' if len(driven) == 1 else 'are'} moved by constraints or drivers, which override keys. "
            "Map the bones the animator keys (FK controls), or mute those constraints."]


# ----------------------------------------------------------------------------- keys


def held_bones(retarget: Retarget, family: RigFamily | None) -> list[int]:
    """Bones keyed at rest in every take: unmapped bones between mapped ones (a chain's extra spine
    bones; the retarget assumes them at rest) and the table's ``hold`` controls."""
    character = retarget.character
    names = character.bone_names
    mapped = set(retarget.bones)
    out = []
    for i, b in enumerate(retarget.bones):
        parent = retarget.logical_parent[i]
        if parent < 0:
            continue
        stop = retarget.bones[parent]
        p = character.parents[b]
        chain = []
        while p >= 0 and p != stop:
            chain.append(p)
            p = character.parents[p]
        if p == stop:
            out += [c for c in chain if c not in mapped and names[c] not in character.driven]
    if family is not None:
        out += [names.index(n) for n in family.hold if n in names]
    return sorted(set(out))


@dataclass
class CharacterKeys:
    """A take's key values for a character, ready to write (made off the main thread)."""

    frames: np.ndarray
    """(F,) scene frames."""
    motion: CharacterMotion
    audio_start: float
    _channels: list

    def channels(self) -> list[bridge.Channel]:
        return self._channels


def make_channels(retarget: Retarget, motion: CharacterMotion, family: RigFamily | None) -> list[bridge.Channel]:
    """The F-curves of a take on the character: mapped bones in their own rotation modes, the hips'
    location, bones held at rest and the table's settings (e.g. Rigify's limbs switched to FK)."""
    character = retarget.character
    names = character.bone_names
    modes = character.rotation_modes or ("QUATERNION",) * len(names)
    rotations, location = channel_values(retarget, motion)
    frames = len(location)
    out = []
    pelvis = retarget.bones[retarget.slot["pelvis"]]
    for i, b in enumerate(retarget.bones):
        name = names[b]
        if b == pelvis:
            out += [bridge.Channel(LOCATION.format(name), k, location[:, k], name) for k in range(3)]
        out += [bridge.Channel(rotation_path(name, modes[b]), k, rotations[i][:, k], name)
                for k in range(rotations[i].shape[1])]
    for b in held_bones(retarget, family):
        name = names[b]
        rest = {"QUATERNION": (1.0, 0.0, 0.0, 0.0), "AXIS_ANGLE": (0.0, 0.0, 1.0, 0.0)}.get(modes[b], (0.0,) * 3)
        out += [bridge.Channel(rotation_path(name, modes[b]), k, np.full(frames, v), name)
                for k, v in enumerate(rest)]
        out += [bridge.Channel(LOCATION.format(name), k, np.zeros(frames), name) for k in range(3)]
    if family is not None:
        for bone, values in family.settings.items():
            if bone in names:
                out += [bridge.Channel(f'pose.bones["{bone}"]["{prop}"]', 0, np.full(frames, float(v)), bone)
                        for prop, v in values.items()]
    return out


def character_keys(retarget: Retarget, family: RigFamily | None, frames, poses, trans, contacts, fps: float,
                   audio_start: float, hold=None, floor_shift: float | None = None) -> CharacterKeys:
    """Key values for SMPL motion (F, 72), (F, 3) sampled on scene ``frames`` (numbers only)."""
    motion = transfer(retarget, poses, trans, contacts, fps, hold, floor_shift)
    return CharacterKeys(np.asarray(frames, np.float64), motion, audio_start,
                         make_channels(retarget, motion, family))


def hold_weights(overrides, fps: float) -> np.ndarray:
    """(W, 3) how free each leg and the hips are on the written frames: 0 where the pins hold them (and
    within their clearance), rising to 1 away from them, as the engine's clean-ups treat pins."""
    from ..inference.retarget.character import LEGS
    from ..inference.sampling.constraints import clear_of_pins

    frames = len(overrides.mask)
    legs = [clear_of_pins(overrides.mask, frames, fps, [sk.JOINT_INDEX[j] for j in leg]) for leg in LEGS]
    root = clear_of_pins(overrides.trans_mask.any(axis=1)[:, None], frames, fps, [0])
    return np.stack(legs + [root], axis=1)


def sample_contacts(contacts: np.ndarray, fps: float, audio_start: float, seconds) -> np.ndarray:
    """The dance's (N, 4) contacts at file times ``seconds``: those of the nearest model frame."""
    index = np.clip(np.round((np.asarray(seconds, float) - audio_start) * fps).astype(int), 0, len(contacts) - 1)
    return np.asarray(contacts, float)[index]


# ----------------------------------------------------------------------------- reading takes


def read_values(obj, action, frames, retarget: Retarget) -> tuple[np.ndarray, np.ndarray]:
    """The mapped bones' pose rotations (F, M, 3, 3) and the hips' location (F, 3) that ``action`` gives
    at scene ``frames`` (a bone or axis it does not animate holds the pose's current value)."""
    from .pins import curve_values

    frames = np.atleast_1d(np.asarray(frames, np.float64))
    names = retarget.character.bone_names
    curves = {}
    if action is not None:
        curves = {(fc.data_path, fc.array_index): fc for fc in bridge.action_channels(action)
                  if not fc.mute and len(fc.keyframe_points)}
    basis = np.empty((len(frames), len(retarget.bones), 3, 3))
    for i, b in enumerate(retarget.bones):
        pb = obj.pose.bones[names[b]]
        mode = pb.rotation_mode
        prop = ROTATION_PROPERTY.get(mode, "rotation_euler")
        now = np.array(tuple(getattr(pb, prop)), np.float64)
        path = rotation_path(names[b], mode)
        values = np.stack([curve_values(curves[(path, k)], frames) if (path, k) in curves else np.full(len(frames), v)
                           for k, v in enumerate(now)], axis=-1)
        basis[:, i] = from_key_values(values, mode if mode in ROTATION_MODES else "QUATERNION")
    pelvis = names[retarget.bones[retarget.slot["pelvis"]]]
    now = np.array(tuple(obj.pose.bones[pelvis].location), np.float64)
    path = LOCATION.format(pelvis)
    location = np.stack([curve_values(curves[(path, k)], frames) if (path, k) in curves else np.full(len(frames), v)
                         for k, v in enumerate(now)], axis=-1)
    return basis, location


class CharacterView:
    """A character shown to pins and edits as an SMPL dancer: its poses as SMPL pose-bone rotations of
    Music2Dance's own armature (:func:`rig.rest_matrices`), and back."""

    def __init__(self, obj, retarget: Retarget | None = None, floor_shift: float = 0.0):
        self.obj = obj
        self.retarget = retarget or retarget_for(obj)
        self.retarget.floor_shift = floor_shift
        self.rest, self.pelvis = rig.rest_matrices()

    @classmethod
    def of(cls, obj) -> "CharacterView":
        """The view of ``obj`` with the height its current take was made at."""
        from ..inference.protocol import TAKE_KEY, TakeInfo

        action = obj.animation_data.action if obj.animation_data is not None else None
        info = TakeInfo.from_dict(action.get(TAKE_KEY)) if action is not None else None
        return cls(obj, floor_shift=info.floor_shift if info is not None else 0.0)

    def keyed_frames(self, action) -> list[int]:
        """Scene frames (whole) on which ``action`` keys a mapped bone."""
        names = self.retarget.character.bone_names
        bones = {names[b] for b in self.retarget.bones}
        found = set()
        for fc in bridge.action_channels(action):
            if fc.data_path.startswith('pose.bones["') and fc.data_path.split('"')[1] in bones \
                    and len(fc.keyframe_points):
                co = np.empty(2 * len(fc.keyframe_points), np.float32)
                fc.keyframe_points.foreach_get("co", co)
                found.update(int(round(x)) for x in co[0::2])
        return sorted(found)

    def bone_of_joint(self, joint: str) -> str | None:
        return self.retarget.bone_map.bone(joint)

    def to_smpl_channels(self, basis: np.ndarray, location: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        world, hips = self.retarget.from_basis(basis, location)
        poses, trans = self.retarget.smpl_pose(world, hips)
        return bridge.pose_channels(poses, trans, self.rest, self.pelvis)

    def sample(self, action, frames) -> tuple[np.ndarray, np.ndarray]:
        """(F, 24, 4) SMPL pose-bone quaternions and (F, 3) root locations of the take at scene ``frames``."""
        return self.to_smpl_channels(*read_values(self.obj, action, frames, self.retarget))

    def current_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """The pose the scene shows now, as (24, 4) quaternions and the (3,) root location."""
        names = self.retarget.character.bone_names
        basis = np.array([[np.array(self.obj.pose.bones[names[b]].matrix_basis)[:3, :3]
                           for b in self.retarget.bones]])
        pelvis = names[self.retarget.bones[self.retarget.slot["pelvis"]]]
        location = np.array([tuple(self.obj.pose.bones[pelvis].location)])
        quats, loc = self.to_smpl_channels(basis, location)
        return quats[0], loc[0]

    def joints_of_bones(self, bone_names) -> list[str]:
        """SMPL joints played by the character's bones ``bone_names`` (unmapped bones are left out)."""
        by_bone = {b: j for j, b in self.retarget.bone_map.bones.items() if b}
        return [by_bone[n] for n in bone_names if n in by_bone]
