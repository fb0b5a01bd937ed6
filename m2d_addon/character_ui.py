"""The "Character" sub-panel of the Dance tab: the bone map of the animator's own armature."""

import bpy
from bpy.types import Panel, UIList

from . import character
from .ui import _DancerPanel


def _active_character(context):
    obj = context.active_object
    if obj is not None and obj.type != "ARMATURE" and obj.parent is not None and obj.parent.type == "ARMATURE":
        obj = obj.parent
    return obj if character.is_character(obj) else None


class M2D_UL_bone_map(UIList):
    """A character's bone map: each SMPL joint and the bone that plays it (a search field)."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index):
        row = layout.row(align=True)
        split = row.split(factor=0.42, align=True)
        split.label(text=item.joint, icon="BONE_DATA" if item.bone else "BLANK1")
        split.prop_search(item, "bone", data.id_data.data, "bones", text="")


class VIEW3D_PT_m2d_character(_DancerPanel, Panel):
    bl_label = "Character"
    bl_order = 0

    @classmethod
    def poll(cls, context):
        return _active_character(context) is not None

    def draw(self, context):
        obj = _active_character(context)
        layout = self.layout
        row = layout.row(align=True)
        row.operator_menu_enum("m2d.map_bones", "preset", text="Map Bones", icon="ARMATURE_DATA")
        row.operator("m2d.bone_map_load", text="", icon="IMPORT")
        row.operator("m2d.bone_map_save", text="", icon="EXPORT")
        items = obj.m2d.bone_map
        if not len(items):
            layout.label(text="Generate Dance maps the bones itself; or click Map Bones", icon="INFO")
        else:
            layout.template_list("M2D_UL_bone_map", "", obj.m2d, "bone_map", obj.m2d, "active_bone", rows=6)
            stored = character.stored_map(obj)
            missing = stored.missing() if stored is not None else []
            if missing:
                layout.label(text=f"Map {', '.join(missing[:3])}{' …' if len(missing) > 3 else ''}", icon="ERROR")
            else:
                layout.label(text=f"Rig: {obj.m2d.bone_map_family.title()}", icon="CHECKMARK")
        smpl = [o for o in context.scene.objects if o.type == "ARMATURE" and o != obj
                and not character.is_character(o) and o.m2d.takes]
        if smpl:
            layout.operator("m2d.retarget", icon="MOD_ARMATURE")


classes = (M2D_UL_bone_map, VIEW3D_PT_m2d_character)
register, unregister = bpy.utils.register_classes_factory(classes)
