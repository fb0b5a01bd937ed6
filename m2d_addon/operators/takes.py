"""The take operators: play the next or previous take, remove one, export the active one (FBX, BVH, GLB)."""

from bpy.props import BoolProperty, EnumProperty, IntProperty, StringProperty
from bpy.types import Operator
from bpy_extras.io_utils import ExportHelper

from ...inference.errors import M2DError
from .. import export, fbx
from ..common import reports_errors

class M2D_OT_switch_take(Operator):
    """Play the next (or previous) take of the active armature"""

    bl_idname = "m2d.switch_take"
    bl_label = "Switch Take"
    bl_options = {"REGISTER", "UNDO"}

    step: IntProperty(name="Step", description="1: the next take, -1: the previous one", default=1)

    @classmethod
    def poll(cls, context):
        obj = context.active_object
        if obj is None or obj.type != "ARMATURE" or len(obj.m2d.takes) < 2:
            cls.poll_message_set("The active armature has fewer than two takes")
            return False
        return True

    def execute(self, context):
        rig_props = context.active_object.m2d
        rig_props.active_take = (rig_props.active_take + self.step) % len(rig_props.takes)
        return {"FINISHED"}


class M2D_OT_remove_take(Operator):
    """Remove a take from the armature's list; its action is deleted when the file is saved, unless used"""

    bl_idname = "m2d.remove_take"
    bl_label = "Remove Take"
    bl_options = {"REGISTER", "UNDO"}

    index: IntProperty(name="Index", description="Take to remove (-1: the active one)", default=-1)

    @classmethod
    def poll(cls, context):
        obj = context.active_object
        if obj is None or obj.type != "ARMATURE" or not len(obj.m2d.takes):
            cls.poll_message_set("The active object has no takes")
            return False
        return True

    @reports_errors
    def execute(self, context):
        rig = context.active_object.m2d
        index = rig.active_take if self.index < 0 else self.index
        if not 0 <= index < len(rig.takes):
            raise M2DError(f"There is no take {index}.")
        action = rig.takes[index].action
        if action is not None:
            action.use_fake_user = False
        playing = rig.id_data.animation_data.action if rig.id_data.animation_data else None
        rig.takes.remove(index)
        if action is not None and action == playing:
            rig.id_data.animation_data.action = None
            rig.active_take = max(0, min(index, len(rig.takes) - 1))
        elif rig.active_take >= len(rig.takes):
            rig.active_take = max(0, len(rig.takes) - 1)
        return {"FINISHED"}


class _ExportDancer(ExportHelper):
    """What the export operators share: the dancer, its checks and the call to :mod:`..export`."""

    bl_options = {"REGISTER"}

    filepath: StringProperty(name="File Path", description="The file to write ('//': beside the .blend file); the "
                             "format's extension is added when it has another", maxlen=1024, subtype="FILE_PATH",
                             options={"PATH_SUPPORTS_BLEND_RELATIVE"})
    filter_glob: StringProperty(default="*.fbx;*.bvh;*.glb", options={"HIDDEN"})
    preset: EnumProperty(name="Preset", description="FBX only: axes, units and root bone for the program that "
                         "imports the file", items=fbx.PRESET_ITEMS, default="GENERIC")
    root_motion: BoolProperty(
        name="Root Motion",
        description="On: the dancer travels as generated (the hips carry the travel; with the Unreal preset, the "
                    "rig's root bone when it has one). Off, in place: the hips' travel on the floor goes to the "
                    "rig's root bone, or is removed when the rig has none. The take itself is never changed",
        default=True)

    def chosen_format(self) -> str:
        return "FBX"

    @property
    def filename_ext(self):
        return export.extension(self.chosen_format())

    @classmethod
    def poll(cls, context):
        dancer = fbx.dancer_of(context.active_object)
        if dancer is None:
            cls.poll_message_set("Select an SMPL armature or a character (or its mesh) to export")
            return False
        if dancer.animation_data is None or dancer.animation_data.action is None:
            cls.poll_message_set("The armature has no take yet; generate a dance first")
            return False
        if context.mode not in ("OBJECT", "POSE"):
            cls.poll_message_set("Switch to Object or Pose Mode to export")
            return False
        return True

    @reports_errors
    def execute(self, context):
        dancer = fbx.dancer_of(context.active_object)
        take = dancer.animation_data.action.name
        path = export.export(context, dancer, self.filepath, self.chosen_format(), self.preset, self.root_motion)
        self.report({"INFO"}, f"Exported {dancer.name} ({take}) to {path}")
        return {"FINISHED"}


class M2D_OT_export(_ExportDancer, Operator):
    """Export the selected dancer (SMPL armature or character) with its active take: FBX or glTF with the meshes
    it deforms, or BVH"""

    bl_idname = "m2d.export"
    bl_label = "Export Dance"

    format: EnumProperty(name="Format", description="File format", items=export.FORMAT_ITEMS, default="FBX")

    def chosen_format(self) -> str:
        return self.format

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        layout.prop(self, "format")
        row = layout.row()
        row.enabled = self.format == "FBX"
        row.prop(self, "preset")
        layout.prop(self, "root_motion")


class M2D_OT_export_fbx(_ExportDancer, Operator):
    """Export the selected dancer (armature, the meshes it deforms and its active take, baked) as FBX"""

    bl_idname = "m2d.export_fbx"
    bl_label = "Export Dance FBX"


classes = (M2D_OT_switch_take, M2D_OT_remove_take, M2D_OT_export, M2D_OT_export_fbx)
