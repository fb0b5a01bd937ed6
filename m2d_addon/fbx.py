"""FBX export of a dancer (armature, body, the active take baked) with presets for common targets."""

from __future__ import annotations

import bpy

from ..inference.errors import M2DError
from . import rig

_COMMON = {
    "use_selection": True,
    "object_types": {"ARMATURE", "MESH"},
    "add_leaf_bones": False,
    "primary_bone_axis": "Y",
    "secondary_bone_axis": "X",
    "armature_nodetype": "NULL",
    "bake_anim": True,
    "bake_anim_use_all_bones": True,
    "bake_anim_use_nla_strips": False,
    "bake_anim_use_all_actions": False,
    "bake_anim_force_startend_keying": True,
    "bake_anim_step": 1.0,
    "bake_anim_simplify_factor": 0.0,  # every frame, as generated
    "use_mesh_modifiers": False,  # the skinned rest mesh, deformed by the animation
    "mesh_smooth_type": "FACE",
    "path_mode": "AUTO",
}

PRESETS = {
    "GENERIC": ("Generic", "Y up, -Z forward, metres as FBX units (Maya, MotionBuilder, most tools)", {
        "axis_forward": "-Z", "axis_up": "Y", "apply_unit_scale": True, "apply_scale_options": "FBX_SCALE_NONE",
        "global_scale": 1.0,
    }),
    "UNITY": ("Unity", "Y up, -Z forward, scale applied so that Unity imports at scale 1", {
        "axis_forward": "-Z", "axis_up": "Y", "apply_unit_scale": True, "apply_scale_options": "FBX_SCALE_ALL",
        "global_scale": 1.0,
    }),
    "UNREAL": ("Unreal", "Z up, X forward, centimetres through the FBX unit scale (Unreal Engine)", {
        "axis_forward": "X", "axis_up": "Z", "apply_unit_scale": True, "apply_scale_options": "FBX_SCALE_NONE",
        "global_scale": 1.0,
    }),
}
PRESET_ITEMS = tuple((key, label, description) for key, (label, description, _) in PRESETS.items())


def dancer_of(obj):
    """The armature of ``obj`` (itself, or the armature a mesh is parented to), or None: Music2Dance's
    SMPL armature or the animator's own character."""
    if obj is None:
        return None
    if obj.type != "ARMATURE" and obj.parent is not None and obj.parent.type == "ARMATURE":
        obj = obj.parent
    return obj if obj.type == "ARMATURE" else None


def export(context, rig_obj, filepath: str, preset: str = "GENERIC") -> None:
    """Write ``rig_obj``, the meshes it deforms and its active take, baked frame by frame."""
    action = rig_obj.animation_data.action if rig_obj.animation_data else None
    if action is None:
        raise M2DError(f"'{rig_obj.name}' has no active take to export; generate a dance first.")
    if preset not in PRESETS:
        raise M2DError(f"Unknown FBX preset {preset!r}; use one of {', '.join(PRESETS)}.")
    meshes = [o for o in context.scene.objects if o.type == "MESH" and any(
        m.type == "ARMATURE" and m.object == rig_obj for m in o.modifiers)]
    scene = context.scene
    start, end = (int(round(v)) for v in action.frame_range)
    saved = scene.frame_start, scene.frame_end
    options = {**_COMMON, **PRESETS[preset][2]}
    try:
        scene.frame_start, scene.frame_end = start, end  # the exporter bakes the scene range
        with context.temp_override(selected_objects=[rig_obj, *meshes], active_object=rig_obj):
            result = bpy.ops.export_scene.fbx(filepath=filepath, check_existing=False, **options)
    finally:
        scene.frame_start, scene.frame_end = saved
    if "FINISHED" not in result:
        raise M2DError(f"The FBX exporter could not write {filepath}.")
