"""The "Dance" tab of the 3D viewport's sidebar: music, settings, Generate Dance, takes, FBX export."""

import bpy
from bpy.types import Panel, UIList

from . import fbx, generation
from .jobs import SESSION
from .props import chosen_strip, sound_strips


class VIEW3D_PT_m2d_dance(Panel):
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Dance"
    bl_label = "Music2Dance"

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False
        scene = context.scene
        settings = scene.m2d

        col = layout.column()
        if sound_strips(scene):
            col.prop(settings, "audio_strip", icon="SOUND")
            strip = chosen_strip(scene)
            if strip is not None and not settings.audio_strip:
                col.label(text=f"Using '{strip.name}'", icon="INFO")
        else:
            col.label(text="Add music in the Video Sequencer", icon="SOUND")
        col.prop(settings, "range_mode")
        if settings.range_mode == "RANGE":
            sub = col.column(align=True)
            sub.prop(settings, "frame_start")
            sub.prop(settings, "frame_end")

        col = layout.column()
        col.prop(settings, "seed")
        col.prop(settings, "steps")
        col.prop(settings, "guidance")
        col.prop(settings, "device")
        col.prop(settings, "target")

        layout.use_property_split = False
        if SESSION.running:
            fraction, text = SESSION.progress()
            layout.progress(factor=fraction, type="BAR", text=text)
            layout.operator("m2d.cancel", icon="CANCEL")
        else:
            row = layout.row()
            row.scale_y = 1.5
            row.operator("m2d.generate", icon="PLAY_SOUND")
            reason = generation.why_not(context)
            if reason:
                layout.label(text=reason, icon="INFO")
        if SESSION.status and not SESSION.running:
            layout.label(text=SESSION.status, icon=SESSION.status_icon)


class M2D_UL_takes(UIList):
    """The takes of an armature: the generated dances (actions) it can play."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index):
        action = item.action
        if action is None:
            layout.label(text="(removed)", icon="ERROR")
            return
        info = action.get("music2dance")
        layout.label(text=action.name, icon="ACTION")
        if info is not None:
            layout.label(text=f"seed {info.get('seed')} · {info.get('frame_start')}-{info.get('frame_end')}")


class VIEW3D_PT_m2d_takes(Panel):
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Dance"
    bl_label = "Takes"
    bl_parent_id = "VIEW3D_PT_m2d_dance"

    @classmethod
    def poll(cls, context):
        obj = fbx.dancer_of(context.active_object)
        return obj is not None and len(obj.m2d.takes) > 0

    def draw(self, context):
        obj = fbx.dancer_of(context.active_object)
        row = self.layout.row()
        row.template_list("M2D_UL_takes", "", obj.m2d, "takes", obj.m2d, "active_take", rows=3)
        row.operator("m2d.remove_take", text="", icon="REMOVE")


class VIEW3D_PT_m2d_export(Panel):
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Dance"
    bl_label = "Export"
    bl_parent_id = "VIEW3D_PT_m2d_dance"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        col = self.layout.column(align=True)
        for key, (label, _description, _options) in fbx.PRESETS.items():
            col.operator("m2d.export_fbx", text=f"FBX for {label}", icon="EXPORT").preset = key


classes = (VIEW3D_PT_m2d_dance, M2D_UL_takes, VIEW3D_PT_m2d_takes, VIEW3D_PT_m2d_export)
register, unregister = bpy.utils.register_classes_factory(classes)
