"""The take operators: play the next or previous take, remove one, export the active one as FBX."""

from bpy.props import EnumProperty, IntProperty, StringProperty
from bpy.types import Operator
from bpy_extras.io_utils import ExportHelper

from ...inference.errors import M2DError
from .. import fbx
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


class M2D_OT_export_fbx(Operator, ExportHelper):
    """Export the selected dancer (armature, body and its active take, baked) as FBX"""

    bl_idname = "m2d.export_fbx"
    bl_label = "Export Dance FBX"
    bl_options = {"REGISTER"}

    filename_ext = ".fbx"
    filter_glob: StringProperty(default="*.fbx", options={"HIDDEN"})
    preset: EnumProperty(name="Preset", description="Axes and scale for the program that imports the file",
                         items=fbx.PRESET_ITEMS, default="GENERIC")

    @classmethod
    def poll(cls, context):
        dancer = fbx.dancer_of(context.active_object)
        if dancer is None:
            cls.poll_message_set("Select an SMPL armature (or its body) to export")
            return False
        if dancer.animation_data is None or dancer.animation_data.action is None:
            cls.poll_message_set("The armature has no take yet; generate a dance first")
            return False
        return True

    @reports_errors
    def execute(self, context):
        dancer = fbx.dancer_of(context.active_object)
        fbx.export(context, dancer, self.filepath, self.preset)
        self.report({"INFO"}, f"Exported {dancer.name} ({dancer.animation_data.action.name}) to {self.filepath}")
        return {"FINISHED"}


classes = (M2D_OT_switch_take, M2D_OT_remove_take, M2D_OT_export_fbx)
