"""The character operators: find, save and load a bone map; carry an SMPL take onto a character."""

import dataclasses
import os

import bpy
import numpy as np
from bpy.props import EnumProperty, StringProperty
from bpy.types import Operator
from bpy_extras.io_utils import ExportHelper, ImportHelper

from ...inference import analysis
from ...inference import skeleton as sk
from ...inference.errors import M2DError
from ...inference import files
from ...inference.protocol import TAKE_KEY
from ...inference.retarget.bone_map import BoneMap, families
from .. import bridge, character, generation, pins, rig, timing
from ..common import passes, reports_errors

PRESETS = (("AUTO", "Automatic", "The rig table that maps the most joints, else the bone names"),
           *((key, f.name, f.description) for key, f in families().items()),
           ("NAMES", "By Name", "Match bone names (left/right and body-part words) whatever the rig"))


def _character(context):
    """The active character (an armature that is not Music2Dance's SMPL one); M2DError saying why not."""
    obj = context.active_object
    if obj is None or obj.type != "ARMATURE":
        raise M2DError("Select your character's armature first.")
    if not character.is_character(obj):
        raise M2DError(f"'{obj.name}' is Music2Dance's SMPL armature: it needs no bone map.")
    return obj


def _character_poll(cls, context) -> bool:
    return passes(cls, _character, context)


def _describe(obj, bone_map: BoneMap) -> str:
    mapped = sum(1 for j in sk.JOINT_NAMES if bone_map.bone(j))
    missing = bone_map.missing()
    text = f"'{obj.name}': {mapped} of {sk.NUM_JOINTS} SMPL joints mapped ({bone_map.family})"
    if missing:
        text += f"; map {', '.join(missing)} by hand in the bone map"
    return text


class M2D_OT_map_bones(Operator):
    """Find which bone of the active character plays each SMPL joint, from a rig table or the bone names"""

    bl_idname = "m2d.map_bones"
    bl_label = "Map Bones"
    bl_options = {"REGISTER", "UNDO"}

    preset: EnumProperty(name="Rig", description="The rig family to map as", items=PRESETS, default="AUTO")

    poll = classmethod(_character_poll)

    @reports_errors
    def execute(self, context):
        obj = _character(context)
        bone_map = character.find_map(obj, self.preset)
        character.store_map(obj, bone_map)
        self.report({"WARNING"} if bone_map.missing() else {"INFO"}, _describe(obj, bone_map))
        return {"FINISHED"}


class _BoneMapFile:
    """What the bone map's file operators share: a JSON file, and an active character."""

    filename_ext = ".json"
    filter_glob: StringProperty(default="*.json", options={"HIDDEN"})

    poll = classmethod(_character_poll)


class M2D_OT_bone_map_save(_BoneMapFile, Operator, ExportHelper):
    """Save the active character's bone map as a JSON preset, to load on other characters of its rig"""

    bl_idname = "m2d.bone_map_save"
    bl_label = "Save Bone Map"

    @reports_errors
    def execute(self, context):
        obj = _character(context)
        bone_map = character.stored_map(obj)
        if bone_map is None:
            raise M2DError(f"'{obj.name}' has no bone map yet. Click Map Bones first.")
        path = files.output_path(bpy.path.abspath(self.filepath), ".json", "bone map")
        try:
            with files.atomic_path(path) as tmp:
                tmp.write_text(bone_map.to_json(), encoding="utf-8")
        except OSError as exc:
            raise files.write_failed(exc, path) from None
        self.report({"INFO"}, f"Saved the bone map of '{obj.name}' to {path}")
        return {"FINISHED"}


class M2D_OT_bone_map_load(_BoneMapFile, Operator, ImportHelper):
    """Load a bone map JSON preset onto the active character"""

    bl_idname = "m2d.bone_map_load"
    bl_label = "Load Bone Map"
    bl_options = {"REGISTER", "UNDO"}

    @reports_errors
    def execute(self, context):
        obj = _character(context)
        path = bpy.path.abspath(self.filepath)
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as exc:
            raise M2DError(f"Cannot read {path} ({exc.strerror or exc}).") from None
        bone_map = BoneMap.from_json(text)
        absent = [f"{j} -> {b}" for j, b in bone_map.bones.items() if b not in obj.data.bones]
        if absent:
            raise M2DError(f"The bone map in {os.path.basename(path)} names bones '{obj.name}' does not have "
                           f"({'; '.join(absent[:6])}). It was made for another rig; use Map Bones instead.")
        bone_map.check(obj.data.bones.keys(), owner=f"'{obj.name}'", require=False)
        character.store_map(obj, bone_map)
        self.report({"WARNING"} if bone_map.missing() else {"INFO"}, _describe(obj, bone_map))
        return {"FINISHED"}


def _smpl_dancers(context, exclude):
    return [o for o in context.scene.objects if o.type == "ARMATURE" and o != exclude and not rig.missing_bones(o)]


class M2D_OT_retarget(Operator):
    """Carry a take of an SMPL dancer onto the active character, as a new take of the character"""

    bl_idname = "m2d.retarget"
    bl_label = "Dance Like the SMPL Dancer"
    bl_options = {"REGISTER", "UNDO"}

    source: StringProperty(name="SMPL Dancer", description="The SMPL armature whose take is carried over "
                                                           "(default: the selected one, else the scene's only one)")
    take: StringProperty(name="Take", description="The take (action) to carry over (default: the dancer's "
                                                  "current take)")

    poll = classmethod(_character_poll)

    def _source(self, context, obj):
        if self.source:
            src = bpy.data.objects.get(self.source)
            if src is None or src.type != "ARMATURE" or rig.missing_bones(src):
                raise M2DError(f"'{self.source}' is not an SMPL armature of Music2Dance.")
            return src
        candidates = [o for o in context.selected_objects if o in _smpl_dancers(context, obj)]
        candidates = candidates or _smpl_dancers(context, obj)
        if len(candidates) != 1:
            raise M2DError("Name the SMPL dancer to copy (source=…), or select it together with the character: "
                           f"found {len(candidates)}.")
        return candidates[0]

    @reports_errors
    def execute(self, context):
        obj = _character(context)
        src = self._source(context, obj)
        action = bpy.data.actions.get(self.take) if self.take else (
            src.animation_data.action if src.animation_data else None)
        if action is None:
            raise M2DError(f"'{src.name}' has no take{' named ' + repr(self.take) if self.take else ''} to carry "
                           "over. Generate a dance on it first.")
        retarget = character.retarget_for(obj)
        info = generation.take_info(action)
        first, last = info.frames if info is not None and info.frames else (
            int(action.frame_range[0]), int(action.frame_range[1]))
        frames = np.arange(first, last + 1)
        quats, loc = pins.SmplView(src).sample(action, frames)
        rest, pelvis = bridge.bone_rest(src)
        poses, trans = bridge.smpl_from_channels(quats, loc, rest, pelvis)
        fps = timing.scene_fps(context.scene)
        contacts = analysis.floor_contacts(sk.joint_positions(poses, trans), fps)
        keys = character.character_keys(retarget, character.family_of(retarget.bone_map), frames, poses, trans,
                                        contacts, fps, info.audio_start if info else 0.0)
        current = obj.animation_data.action if obj.animation_data else None
        writer = bridge.SplicedTakeWriter(generation.TAKE_NAME, obj.name, keys, current, keep_outside=False)
        writer.step()
        new = writer.action()
        if info is not None:
            new[TAKE_KEY] = dataclasses.replace(info, floor_shift=float(keys.motion.floor_shift)).to_dict()
        character.store_map(obj, retarget.bone_map)
        generation.add_take(obj, new)
        warnings = character.warnings(retarget)
        self.report({"WARNING"} if warnings else {"INFO"},
                    f"{new.name} on {obj.name}: {action.name} of {src.name}, frames {first}-{last}"
                    + (f". {' '.join(warnings)}" if warnings else ""))
        return {"FINISHED"}


classes = (M2D_OT_map_bones, M2D_OT_bone_map_save, M2D_OT_bone_map_load, M2D_OT_retarget)
