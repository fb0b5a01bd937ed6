"""FBX settings for the dance export (:mod:`.export`): the options every export shares and one preset per
target program; and :func:`dancer_of`, the armature an export or edit works on."""

from __future__ import annotations

OPTIONS = {
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
"""Exporter options of every preset: the armature and its meshes, the active take baked on every frame."""

PRESETS = {
    "GENERIC": ("Generic", "Y up, -Z forward, centimetres as FBX units (Maya, MotionBuilder, most tools)", {
        "axis_forward": "-Z", "axis_up": "Y", "apply_unit_scale": True, "apply_scale_options": "FBX_SCALE_NONE",
        "global_scale": 1.0,
    }),
    "UNITY": ("Unity", "Y up, -Z forward, metres as FBX units, so that Unity imports the humanoid at scale 1", {
        "axis_forward": "-Z", "axis_up": "Y", "apply_unit_scale": True, "apply_scale_options": "FBX_SCALE_ALL",
        "global_scale": 1.0,
    }),
    "UNREAL": ("Unreal", "Z up, X forward, centimetres as FBX units; the travel goes on the rig's root bone "
               "when it has one (Unreal Engine's root motion)", {
                   "axis_forward": "X", "axis_up": "Z", "apply_unit_scale": True,
                   "apply_scale_options": "FBX_SCALE_NONE", "global_scale": 1.0,
               }),
}
"""Preset -> (label, description, exporter options)."""
PRESET_ITEMS = tuple((key, label, description) for key, (label, description, _) in PRESETS.items())

ROOT_BONE_PRESETS = ("UNREAL",)
"""Presets whose travel is carried by the rig's root bone, when it has one, even with root motion."""


def dancer_of(obj):
    """The armature of ``obj`` (itself, or the armature a mesh is parented to), or None: Music2Dance's
    SMPL armature or the animator's own character."""
    if obj is None:
        return None
    if obj.type != "ARMATURE" and obj.parent is not None and obj.parent.type == "ARMATURE":
        obj = obj.parent
    return obj if obj.type == "ARMATURE" else None
