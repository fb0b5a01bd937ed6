"""The "Dance" tab of the 3D viewport's sidebar: music, settings, Generate Dance, takes, pins, edits, FBX export."""

import bpy
from bpy.types import Panel, UIList

from . import fbx, generation, pin_display, pins, regenerate
from .jobs import SESSION
from .props import chosen_strip, sound_strips


class _DanceTab:
    """Where every panel of the extension lives: the 3D viewport's sidebar, "Dance" tab."""

    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Dance"


class _DancerPanel(_DanceTab):
    """A sub-panel of the Dance panel about the dancer (the active armature or its mesh)."""

    bl_parent_id = "VIEW3D_PT_m2d_dance"

    @classmethod
    def poll(cls, context):
        obj = fbx.dancer_of(context.active_object)
        return obj is not None and obj.type == "ARMATURE"


class VIEW3D_PT_m2d_dance(_DanceTab, Panel):
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
        sub = col.column(align=True)
        sub.prop(settings, "sampler")
        sub.prop(settings, "steps")
        col.prop(settings, "guidance")
        col.prop(settings, "style")
        col.prop(settings, "beat_snap")
        col.prop(settings, "foot_lock")
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
        info = generation.take_info(action)
        layout.label(text=action.name, icon="ACTION")
        if info is not None:
            if info.mode == "RANGE":
                first, last = info.regenerated or (0, 0)
                what = f"{first}-{last} again"
            elif info.mode:
                what = info.mode.lower()
            else:
                what = f"{info.frame_start}-{info.frame_end}"
            layout.label(text=f"seed {info.seed} · {what}")


class VIEW3D_PT_m2d_takes(_DancerPanel, Panel):
    bl_label = "Takes"

    @classmethod
    def poll(cls, context):
        obj = fbx.dancer_of(context.active_object)
        return obj is not None and len(obj.m2d.takes) > 0

    def draw(self, context):
        obj = fbx.dancer_of(context.active_object)
        row = self.layout.row()
        row.template_list("M2D_UL_takes", "", obj.m2d, "takes", obj.m2d, "active_take", rows=3)
        col = row.column(align=True)
        col.operator("m2d.remove_take", text="", icon="REMOVE")
        col.operator("m2d.switch_take", text="", icon="TRIA_UP").step = -1
        col.operator("m2d.switch_take", text="", icon="TRIA_DOWN").step = 1


class M2D_UL_pins(UIList):
    """The pins of an armature: name (editable), what it keeps, on/off."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index):
        icons = {"POSE": "ARMATURE_DATA", "BONES": "BONE_DATA", "ROOT": "CON_FOLLOWPATH", "KEEP": "LOCKED"}
        row = layout.row(align=True)
        row.prop(item, "enabled", text="")
        row.prop(item, "name", text="", emboss=False, icon=icons.get(item.kind, "PINNED"))
        row.label(text=pin_display.describe(item))


class VIEW3D_PT_m2d_pins(_DancerPanel, Panel):
    bl_label = "Pins"

    def draw(self, context):
        layout = self.layout
        obj = fbx.dancer_of(context.active_object)
        row = layout.row(align=True)
        for kind, label, _ in pins.KINDS:
            row.operator("m2d.pin_add", text=label).kind = kind
        if not len(obj.m2d.pins):
            layout.label(text="Pose or key the dancer, then pin what must stay", icon="INFO")
            return
        row = layout.row()
        row.template_list("M2D_UL_pins", "", obj.m2d, "pins", obj.m2d, "active_pin", rows=3)
        col = row.column(align=True)
        col.operator("m2d.pin_remove", text="", icon="REMOVE")
        col.operator("m2d.pin_update", text="", icon="FILE_REFRESH")
        if 0 <= obj.m2d.active_pin < len(obj.m2d.pins):
            pin = obj.m2d.pins[obj.m2d.active_pin]
            col = layout.column(align=True)
            col.use_property_split = True
            col.prop(pin, "kind")
            col.prop(pin, "frame_start", text="Frame" if pin.kind == "POSE" else "Start")
            if pin.kind != "POSE":
                col.prop(pin, "frame_end")
                col.prop(pin, "action")
            if pin.kind == "BONES":
                col.prop(pin, "bones")
            if pin.kind == "ROOT":
                col.prop(pin, "horizontal_only")
        layout.operator("m2d.export_constraints", icon="EXPORT")


class VIEW3D_PT_m2d_edit(_DancerPanel, Panel):
    bl_label = "Regenerate"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.m2d
        col = layout.column(align=True)
        col.use_property_split = True
        col.prop(settings, "edit_start")
        col.prop(settings, "edit_end")
        busy = SESSION.running
        row = layout.row(align=True)
        row.enabled = not busy
        row.operator("m2d.regenerate", text="Range", icon="FILE_REFRESH").mode = "RANGE"
        row.operator("m2d.regenerate", text="Unpinned", icon="PINNED").mode = "UNPINNED"
        row = layout.row(align=True)
        row.enabled = not busy
        row.operator("m2d.inbetween", icon="IPO_BEZIER")
        row = layout.row(align=True)
        row.enabled = not busy
        row.prop(settings, "variations", text="")
        row.prop(settings, "variation_mode", text="")
        row.operator("m2d.variations", text="Variations", icon="DUPLICATE").mode = settings.variation_mode
        reason = regenerate.why_not(context)
        if reason and not busy:
            layout.label(text=reason, icon="INFO")


class VIEW3D_PT_m2d_export(_DanceTab, Panel):
    bl_label = "Export"
    bl_parent_id = "VIEW3D_PT_m2d_dance"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False
        last = context.window_manager.operator_properties_last("m2d.export")  # the file browser's defaults too
        col = layout.column()
        col.prop(last, "format")
        sub = col.column()
        sub.active = last.format == "FBX"
        sub.prop(last, "preset")
        col.prop(last, "root_motion", text="Root Motion (off: in place)")
        op = layout.operator("m2d.export", text="Export", icon="EXPORT")
        op.format, op.preset, op.root_motion = last.format, last.preset, last.root_motion


classes = (VIEW3D_PT_m2d_dance, M2D_UL_takes, VIEW3D_PT_m2d_takes, M2D_UL_pins, VIEW3D_PT_m2d_pins,
           VIEW3D_PT_m2d_edit, VIEW3D_PT_m2d_export)
register, unregister = bpy.utils.register_classes_factory(classes)
