"""The pin operators: add, remove and update a pin, and export the pins for the command line."""

import dataclasses

import bpy
import numpy as np
from bpy.props import BoolProperty, EnumProperty, IntProperty, StringProperty
from bpy.types import Operator
from bpy_extras.io_utils import ExportHelper

from ...inference.errors import M2DError
from .. import pin_display, pins, regenerate, timing
from ..common import passes, reports_errors
from ..props import chosen_strip

_dancer = regenerate.dancer


def _pin_poll(cls, context) -> bool:
    if not passes(cls, _dancer, context):
        return False
    if context.mode not in ("OBJECT", "POSE"):
        cls.poll_message_set("Switch to Object or Pose Mode")
        return False
    return True


def _selected_bones(obj) -> list[str]:
    def selected(pose_bone):  # Blender 5.0 keeps selection on the pose bone, 4.5 on the bone
        return pose_bone.select if hasattr(pose_bone, "select") else pose_bone.bone.select

    return [b.name for b in obj.pose.bones if selected(b)]


def _check_in_strip(context, obj, first: int, last: int) -> None:
    """M2DError unless frames first..last are heard (when there is music to hear)."""
    if chosen_strip(context.scene) is None:
        return
    action = obj.animation_data.action if obj.animation_data is not None else None
    strip = regenerate.music_strip(context, action)
    t = timing.strip_timing(strip, context.scene)
    if first < t.first_frame or last > t.last_frame:
        raise M2DError(f"Frames {first}-{last} lie outside the strip '{strip.name}', which is heard on frames "
                       f"{t.first_frame}-{t.last_frame}. Pin frames within it.")


def _unique(name: str, taken: set) -> str:
    """``name``, or ``name.001``, ``name.002`` … (as Blender names data) when taken."""
    n = 0
    candidate = name
    while candidate in taken:
        n += 1
        candidate = f"{name}.{n:03d}"
    return candidate


class M2D_OT_pin_add(Operator):
    """Pin what the active armature does now: a pose, bones, the root path or everything over a range"""

    bl_idname = "m2d.pin_add"
    bl_label = "Add Pin"
    bl_options = {"REGISTER", "UNDO"}

    kind: EnumProperty(name="Kind", description="What to keep", items=pins.KINDS, default="POSE")
    frame_start: IntProperty(name="Start", description="The pose's frame, or the range's first frame "
                                                       "(default: the current frame)", options={"SKIP_SAVE"})
    frame_end: IntProperty(name="End", description="The range's last frame (default: the preview range's "
                                                   "end, else one second on)", options={"SKIP_SAVE"})
    preset: EnumProperty(name="Bones", description="Which bones a Bones pin keeps", items=pins.PRESETS,
                         default="SELECTED")
    bones: StringProperty(name="Bone Names", description="SMPL bone names separated by commas (overrides the "
                                                         "preset)", options={"SKIP_SAVE"})
    horizontal_only: BoolProperty(name="Floor Only", description="Root Path: keep the path on the floor only "
                                                                 "(x, y)", default=False)
    name: StringProperty(name="Name", description="The pin's name (default: made from what it keeps)",
                         options={"SKIP_SAVE"})

    poll = classmethod(_pin_poll)

    def _frames(self, context) -> tuple[int, int]:
        scene = context.scene
        first = self.frame_start if self.properties.is_property_set("frame_start") else scene.frame_current
        if self.kind == "POSE":
            return first, first
        if self.properties.is_property_set("frame_end"):
            return first, self.frame_end
        if scene.use_preview_range and scene.frame_preview_end >= first:
            return first, scene.frame_preview_end
        return first, first + max(1, round(timing.scene_fps(scene))) - 1

    def _bone_names(self, obj, view) -> str:
        if self.bones.strip():  # SMPL names, or the character's own bone names
            given = [n.strip() for n in self.bones.replace(";", ",").split(",") if n.strip()]
            joints = view.joints_of_bones(given)
            names = pins.parse_bones(", ".join(joints if len(joints) == len(given) else given))
        elif self.preset == "SELECTED":
            names = pins.parse_bones(", ".join(view.joints_of_bones(_selected_bones(obj))))
        else:
            names = pins.parse_bones(pins.PRESET_GROUPS[self.preset])
        return ", ".join(names)

    def _default_name(self, first: int, last: int, bones: str) -> str:
        if self.kind == "POSE":
            return f"Pose {first}"
        if self.kind == "ROOT":
            label = "Root path (floor)" if self.horizontal_only else "Root path"
        elif self.kind == "KEEP":
            label = "Keep"
        elif self.bones.strip() or self.preset == "SELECTED":
            label = bones if len(bones) <= 24 else "Bones"
        else:
            label = {k: n for k, n, _ in pins.PRESETS}[self.preset]
        return f"{label} {first}-{last}"

    @reports_errors
    def execute(self, context):
        obj = _dancer(context)
        view = pins.view_of(obj)
        first, last = self._frames(context)
        if first > last:
            raise M2DError(f"The range starts at frame {first}, after its end {last}.")
        _check_in_strip(context, obj, first, last)
        bones = self._bone_names(obj, view) if self.kind == "BONES" else ""
        action = obj.animation_data.action if obj.animation_data is not None else None
        name = self.name or _unique(self._default_name(first, last, bones), {p.name for p in obj.m2d.pins})
        if self.kind == "POSE":
            if first == context.scene.frame_current:
                pose, location = view.current_pose()  # as posed, keyed or not
            else:
                quats, loc = view.sample(action, [first])
                pose, location = quats[0], loc[0]
            spec = pins.PinSpec.pose_at(name, first, pose, location)
        else:
            if action is None:
                raise M2DError(f"'{obj.name}' has no take yet: a range pin keeps the animation of the "
                               "current take. Generate a dance first (or pin a pose).")
            spec = pins.PinSpec.from_take(name, self.kind, first, last, action, bones, self.horizontal_only)
        pins.check_contradictions(obj, pins.enabled_specs(obj) + [spec])
        with pin_display.quiet(obj):
            pin = obj.m2d.pins.add()
            pin.name, pin.kind, pin.frame_start, pin.frame_end = name, self.kind, first, last
            pin.bones, pin.horizontal_only = bones, self.horizontal_only
            if self.kind == "POSE":
                pin.pose = pose.astype(np.float32)
                pin.location = location.astype(np.float32)
            else:
                pin.action = action
            obj.m2d.active_pin = len(obj.m2d.pins) - 1
        self.report({"INFO"}, f"Pinned '{name}' ({pin_display.describe(pin)}) on {obj.name}")
        return {"FINISHED"}

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        layout.prop(self, "name")
        layout.prop(self, "frame_start", text="Frame" if self.kind == "POSE" else "Start")
        if self.kind != "POSE":
            layout.prop(self, "frame_end")
        if self.kind == "BONES":
            layout.prop(self, "preset")
            layout.prop(self, "bones")
        if self.kind == "ROOT":
            layout.prop(self, "horizontal_only")

    def invoke(self, context, event):
        if self.kind in pins.RANGE_KINDS and not bpy.app.background and context.window is not None:
            first, last = self._frames(context)
            self.frame_start, self.frame_end = first, last
            return context.window_manager.invoke_props_dialog(self)
        return self.execute(context)


class _OnePin:
    """What the operators on one of the active armature's pins (``index``; -1: the selected one) share:
    finding the pin, and reporting what stops them. Subclasses give ``change(context, obj, pin_index)``."""

    bl_options = {"REGISTER", "UNDO"}
    poll = classmethod(_pin_poll)

    @reports_errors
    def execute(self, context):
        obj = _dancer(context)
        index = obj.m2d.active_pin if self.index < 0 else self.index
        if not 0 <= index < len(obj.m2d.pins):
            raise M2DError(f"'{obj.name}' has no pin {index}.")
        return self.change(context, obj, index)


class M2D_OT_pin_remove(_OnePin, Operator):
    """Remove a pin (its markers and bone colours go with it)"""

    bl_idname = "m2d.pin_remove"
    bl_label = "Remove Pin"

    index: IntProperty(name="Index", description="Pin to remove (-1: the selected one)", default=-1)

    def change(self, context, obj, index: int) -> set:
        with pin_display.quiet(obj):
            obj.m2d.pins.remove(index)
            obj.m2d.active_pin = max(0, min(index, len(obj.m2d.pins) - 1))
        return {"FINISHED"}


class M2D_OT_pin_update(_OnePin, Operator):
    """Take a pin's values from the scene again: a pose pin reads the pose at its frame, a range pin the \
current take"""

    bl_idname = "m2d.pin_update"
    bl_label = "Update Pin"

    index: IntProperty(name="Index", description="Pin to update (-1: the selected one)", default=-1)

    def change(self, context, obj, index: int) -> set:
        pin = obj.m2d.pins[index]
        view = pins.view_of(obj)
        action = obj.animation_data.action if obj.animation_data is not None else None
        if pin.kind == "POSE":
            if pin.frame_start == context.scene.frame_current:
                pose, location = view.current_pose()
            else:
                quats, loc = view.sample(action, [pin.frame_start])
                pose, location = quats[0], loc[0]
            spec = pins.PinSpec.pose_at(pin.name, pin.frame_start, pose, location)
        else:
            if action is None:
                raise M2DError(f"'{obj.name}' has no take to keep.")
            spec = dataclasses.replace(pins.spec_of(pin), action=action)
        others = [pins.spec_of(p) for p in obj.m2d.pins if p.enabled and p != pin]
        pins.check_contradictions(obj, others + ([spec] if pin.enabled else []))
        with pin_display.quiet(obj):
            if pin.kind == "POSE":
                pin.pose, pin.location = pose.astype(np.float32), location.astype(np.float32)
            else:
                pin.action = action
        self.report({"INFO"}, f"Updated '{pin.name}' from the scene")
        return {"FINISHED"}


class M2D_OT_export_constraints(Operator, ExportHelper):
    """Save the active armature's enabled pins as the engine's constraints file, for \
`python -m inference generate --constraints` on the same music and frames"""

    bl_idname = "m2d.export_constraints"
    bl_label = "Export Pins"
    bl_options = {"REGISTER"}

    filename_ext = ".npz"
    filter_glob: StringProperty(default="*.npz", options={"HIDDEN"})

    poll = classmethod(_pin_poll)

    @reports_errors
    def execute(self, context):
        command = regenerate.export_constraints(context, self.filepath)
        self.report({"INFO"}, f"Saved the pins. Generate with: {command}")
        return {"FINISHED"}


classes = (M2D_OT_pin_add, M2D_OT_pin_remove, M2D_OT_pin_update, M2D_OT_export_constraints)
