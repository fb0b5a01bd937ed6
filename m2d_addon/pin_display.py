"""Pins on screen: timeline markers, bone colours, the band in the Dope Sheet and Timeline, the list's lines.

Every enabled pin gets timeline markers (``| name`` for a pose,
``[ name`` and ``name ]`` around a range), its bones a bone colour on the pose
bones (the colours they had come back when no pin holds them), and in the Dope
Sheet and Timeline a band is drawn over pinned ranges.

Markers and colours follow every change of a pin (:func:`refresh`, called by the pin
properties' update and once at the end of a :class:`quiet` block).
"""

from __future__ import annotations

import json

from ..inference import skeleton as sk
from ..inference.errors import M2DError
from . import bridge
from .pins import frame_span, pinned_joints, root_axes

PIN_BONE_COLOR = "THEME04"
"""Bone colour set of pinned bones."""
MARKER_POSE, MARKER_START, MARKER_END = "| {}", "[ {}", "{} ]"


def describe(pin) -> str:
    """A short line for the pin list: what it holds, where."""
    if pin.kind == "POSE":
        return f"pose @ {pin.frame_start}"
    span = f"{pin.frame_start}-{pin.frame_end}"
    if pin.kind == "BONES":
        bones = pin.bones if len(pin.bones) < 28 else pin.bones[:25] + "…"
        return f"{bones} {span}"
    if pin.kind == "ROOT":
        return f"root {'xy' if pin.horizontal_only else 'xyz'} {span}"
    return f"all {span}"


def _dancers(scene):
    return [o for o in scene.objects if o.type == "ARMATURE" and hasattr(o, "m2d") and len(o.m2d.pins)]


def _marker_names(obj) -> list[tuple[str, int]]:
    out = []
    for pin in obj.m2d.pins:
        if not pin.enabled:
            continue
        if pin.kind == "POSE":
            out.append((MARKER_POSE.format(pin.name), pin.frame_start))
        else:
            out += [(MARKER_START.format(pin.name), pin.frame_start), (MARKER_END.format(pin.name), pin.frame_end)]
    return out


def refresh_markers(scene) -> None:
    """Timeline markers for the enabled pins of the scene's armatures; the user's own markers are left alone."""
    ours = [tuple(m) for m in json.loads(scene.m2d.pin_markers or "[]")]
    markers = scene.timeline_markers
    for name, frame in ours:
        found = next((m for m in markers if m.name == name and m.frame == frame), None)
        if found is not None:
            markers.remove(found)
    wanted = [pair for obj in _dancers(scene) for pair in _marker_names(obj)]
    for name, frame in wanted:
        markers.new(name, frame=frame)
    scene.m2d.pin_markers = json.dumps(wanted) if wanted else ""


def pinned_bone_names(obj) -> set[str]:
    """The armature's bones that enabled pins hold (a character's: those its bone map gives the joints)."""
    names = set()
    bone_of = {j: b for j, b in ((item.joint, item.bone) for item in obj.m2d.bone_map) if b}
    rename = (lambda joint: bone_of.get(joint)) if bone_of else (lambda joint: joint)
    for pin in obj.m2d.pins:
        if not pin.enabled:
            continue
        try:
            joints = pinned_joints(pin.kind, pin.bones)
        except M2DError:
            continue
        names.update(rename(sk.JOINT_NAMES[j]) for j in joints)
        if root_axes(pin.kind, pin.horizontal_only):
            names.add(rename(bridge.ROOT))
    names.discard(None)
    return names


def refresh_bone_colors(obj) -> None:
    """Pinned bones wear :data:`PIN_BONE_COLOR`; a bone no pin holds gets its own colour back."""
    saved = json.loads(obj.m2d.pin_bone_colors or "{}")
    pinned = pinned_bone_names(obj)
    bones = obj.pose.bones
    for name in list(saved):
        if name not in pinned and name in bones:
            bones[name].color.palette = saved.pop(name)
    for name in pinned:
        if name in bones and name not in saved:
            saved[name] = bones[name].color.palette
            bones[name].color.palette = PIN_BONE_COLOR
    obj.m2d.pin_bone_colors = json.dumps(saved) if saved else ""


_quiet = [0]


class quiet:
    """While building or changing several pin properties: refresh the visuals once, at the end."""

    def __init__(self, obj):
        self.obj = obj

    def __enter__(self):
        _quiet[0] += 1

    def __exit__(self, *exc):
        _quiet[0] -= 1
        if not _quiet[0]:
            refresh(self.obj)


def refresh(obj, scene=None) -> None:
    """Markers and bone colours after a pin changed (undo restores them with the pins)."""
    import bpy

    if _quiet[0] or obj is None or obj.type != "ARMATURE":
        return
    refresh_bone_colors(obj)
    scenes = [scene] if scene is not None else [s for s in bpy.data.scenes if obj.name in s.objects]
    for sc in scenes:
        refresh_markers(sc)


# ----------------------------------------------------------------------------- the band in time editors


def pin_bands(obj) -> list[tuple[float, float, bool]]:
    """(first, last, is_pose) of the enabled pins, for drawing."""
    return [(p.frame_start, frame_span(p)[1], p.kind == "POSE") for p in obj.m2d.pins if p.enabled]


def _draw_band():
    import bpy
    import gpu
    from gpu_extras.batch import batch_for_shader

    context = bpy.context
    obj = context.active_object
    if obj is None or obj.type != "ARMATURE" or not hasattr(obj, "m2d") or not len(obj.m2d.pins):
        return
    region = context.region
    view = region.view2d
    height = 6.0
    shader = gpu.shader.from_builtin("UNIFORM_COLOR")
    gpu.state.blend_set("ALPHA")
    for first, last, is_pose in pin_bands(obj):
        x0 = view.view_to_region(first - (0.1 if is_pose else 0.5), 0, clip=False)[0]
        x1 = view.view_to_region(last + (0.1 if is_pose else 0.5), 0, clip=False)[0]
        if x1 < 0 or x0 > region.width:
            continue
        x1 = max(x1, x0 + 2)
        rect = ((x0, 0), (x1, 0), (x1, height), (x0, height))
        batch = batch_for_shader(shader, "TRIS", {"pos": rect}, indices=((0, 1, 2), (0, 2, 3)))
        shader.uniform_float("color", (0.25, 0.55, 1.0, 0.8))
        batch.draw(shader)
    gpu.state.blend_set("NONE")


_handles = []


def register():
    import bpy

    if bpy.app.background:
        return
    _handles.append(bpy.types.SpaceDopeSheetEditor.draw_handler_add(_draw_band, (), "WINDOW", "POST_PIXEL"))


def unregister():
    import bpy

    while _handles:
        bpy.types.SpaceDopeSheetEditor.draw_handler_remove(_handles.pop(), "WINDOW")
