"""The SMPL armature and the body skinned to it: a procedural mannequin, or a user's SMPL mesh.

Bones carry the SMPL joint names of :mod:`inference.skeleton` (``pelvis``,
``left_hip`` …; Blender mirrors ``left_``/``right_`` names). Each bone starts at
its joint and points at its child joint (the spine's, where there are several);
the hands, feet and head continue their parent's direction. Every bone's Z axis
faces the dancer's front (-Y), or up for bones that point forwards (the feet).
The rest pose is SMPL's, standing on the floor.
"""

from __future__ import annotations

import json

import numpy as np

from ..inference import skeleton as sk
from ..inference.errors import M2DError

RIG_NAME = "Dancer"
BODY_NAME = "Dancer Body"

MAIN_CHILD = {"pelvis": "spine1", "spine3": "neck"}
"""The child a bone points at where a joint has several."""
LEAF_LENGTH = {"head": 0.2, "left_hand": 0.1, "right_hand": 0.1, "left_foot": 0.08, "right_foot": 0.08}
"""Metres, for the bones without a child joint."""
SOLE = 0.02
"""Height of the toe joints above the floor in the rest pose, metres."""

# Mannequin: radius of each bone's capsule, metres (0: no capsule).
_RADIUS = {
    "pelvis": 0.1, "spine1": 0.1, "spine2": 0.11, "spine3": 0.11, "neck": 0.05, "head": 0.1,
    "left_hip": 0.075, "left_knee": 0.055, "left_ankle": 0.045, "left_foot": 0.035,
    "left_collar": 0.05, "left_shoulder": 0.05, "left_elbow": 0.04, "left_wrist": 0.035, "left_hand": 0.03,
}


def _radius(name: str) -> float:
    return _RADIUS.get(name.replace("right_", "left_"), 0.04)


def rest_layout() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Heads (24, 3), tails (24, 3) and Z axes (24, 3) of the rest bones, armature space (z-up, metres)."""
    heads = sk.rest_joint_positions()
    heads[:, 2] += SOLE - heads[:, 2].min()  # stand on the floor
    children = {j: [c for c in range(sk.NUM_JOINTS) if sk.PARENTS[c] == j] for j in range(sk.NUM_JOINTS)}
    tails = np.empty_like(heads)
    for j, name in enumerate(sk.JOINT_NAMES):
        kids = children[j]
        if kids:
            child = sk.JOINT_INDEX[MAIN_CHILD[name]] if len(kids) > 1 else kids[0]
            tails[j] = heads[child]
        else:
            direction = heads[j] - heads[sk.PARENTS[j]]
            tails[j] = heads[j] + direction / np.linalg.norm(direction) * LEAF_LENGTH[name]
    axes = tails - heads
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    front, up = np.array([0.0, -1.0, 0.0]), np.array([0.0, 0.0, 1.0])
    z_axes = np.where(np.abs(axes[:, 1:2]) > 0.7, up, front)
    z_axes = z_axes - (z_axes * axes).sum(1, keepdims=True) * axes
    z_axes /= np.linalg.norm(z_axes, axis=1, keepdims=True)
    return heads, tails, z_axes


def rest_matrices() -> tuple[np.ndarray, np.ndarray]:
    """Rest rotations (24, 3, 3) and pelvis head (3,) that :func:`create_armature` gives its bones.

    Columns are the bone's X, Y (along the bone) and Z axes, as in ``bone.matrix_local``.
    """
    heads, tails, z_axes = rest_layout()
    y = (tails - heads) / np.linalg.norm(tails - heads, axis=1, keepdims=True)
    x = np.cross(y, z_axes)
    return np.stack([x, y, z_axes], axis=-1), heads[0]


def missing_bones(obj) -> list[str]:
    """SMPL bones that ``obj`` lacks or that have another parent than SMPL's."""
    if obj is None or obj.type != "ARMATURE":
        return list(sk.JOINT_NAMES)
    bones = obj.data.bones
    out = []
    for j, name in enumerate(sk.JOINT_NAMES):
        bone = bones.get(name)
        parent = sk.JOINT_NAMES[sk.PARENTS[j]] if j else None
        if bone is None or (bone.parent.name if bone.parent else None) != parent:
            out.append(name)
    return out


def check_armature(obj) -> None:
    """Raise M2DError unless ``obj`` is an armature with the SMPL bones."""
    if obj is None:
        raise M2DError("No armature is selected. Select an SMPL armature, or set Armature to New.")
    if obj.type != "ARMATURE":
        raise M2DError(f"The selected object '{obj.name}' is a {obj.type.lower()}, not an armature. "
                       "Select an SMPL armature, or set Armature to New.")
    missing = missing_bones(obj)
    if missing:
        shown = ", ".join(missing[:4]) + (" …" if len(missing) > 4 else "")
        raise M2DError(f"The armature '{obj.name}' lacks the SMPL bones ({shown}) or their hierarchy. "
                       "Use an armature made by Music2Dance, or set Armature to New.")


def use_quaternions(obj) -> None:
    """Key-ready SMPL bones: quaternion rotation. The modes they had are remembered on the armature
    (``object.m2d.own_rotation_modes``), so its own action still drives them when it plays again."""
    bones = obj.pose.bones
    modes = {n: bones[n].rotation_mode for n in sk.JOINT_NAMES if bones[n].rotation_mode != "QUATERNION"}
    if modes and not obj.m2d.own_rotation_modes:
        obj.m2d.own_rotation_modes = json.dumps(modes)
    for name in sk.JOINT_NAMES:
        bones[name].rotation_mode = "QUATERNION"


def restore_rotation_modes(obj) -> None:
    """The SMPL bones' own rotation modes, as :func:`use_quaternions` found them (for the armature's own
    action, which was keyed in them)."""
    for name, mode in json.loads(obj.m2d.own_rotation_modes or "{}").items():
        if name in obj.pose.bones:
            obj.pose.bones[name].rotation_mode = mode


def create_armature(context, location=(0.0, 0.0, 0.0)):
    """A new SMPL armature object in the active collection, active and selected; returns it.

    Other objects' selection is left as it was (edit mode is entered on the new rig alone).
    """
    import bpy

    data = bpy.data.armatures.new(RIG_NAME)
    obj = bpy.data.objects.new(RIG_NAME, data)
    obj.location = location
    obj.show_in_front = True
    context.collection.objects.link(obj)
    view_layer = context.view_layer
    previous_active = view_layer.objects.active
    selected = [o for o in context.selected_objects if o is not obj]
    for o in selected:
        o.select_set(False)
    obj.select_set(True)
    view_layer.objects.active = obj
    try:
        bpy.ops.object.mode_set(mode="EDIT")
        heads, tails, z_axes = rest_layout()
        edit_bones = data.edit_bones
        for j, name in enumerate(sk.JOINT_NAMES):
            eb = edit_bones.new(name)
            eb.head, eb.tail = heads[j], tails[j]
            eb.align_roll(z_axes[j])
        for j, name in enumerate(sk.JOINT_NAMES):
            if j:
                eb = edit_bones[name]
                eb.parent = edit_bones[sk.JOINT_NAMES[sk.PARENTS[j]]]
                eb.use_connect = bool(np.allclose(tails[sk.PARENTS[j]], heads[j]))
        bpy.ops.object.mode_set(mode="OBJECT")
    except Exception:
        if obj.mode != "OBJECT":
            bpy.ops.object.mode_set(mode="OBJECT")
        bpy.data.objects.remove(obj)
        bpy.data.armatures.remove(data)
        view_layer.objects.active = previous_active
        raise
    finally:
        for o in selected:
            if o.name in view_layer.objects:
                o.select_set(True)
    for pb in obj.pose.bones:
        pb.rotation_mode = "QUATERNION"
    return obj


# ----------------------------------------------------------------------------- bodies


def _capsule(a: np.ndarray, b: np.ndarray, radius: float, sides: int = 10, rings: int = 3):
    """Vertices and quad/tri faces of a capsule from ``a`` to ``b``."""
    axis = b - a
    length = np.linalg.norm(axis)
    y = axis / length
    x = np.cross(y, [0.0, 0.0, 1.0] if abs(y[2]) < 0.9 else [1.0, 0.0, 0.0])
    x /= np.linalg.norm(x)
    z = np.cross(x, y)
    angles = np.linspace(0, 2 * np.pi, sides, endpoint=False)
    circle = np.cos(angles)[:, None] * x + np.sin(angles)[:, None] * z  # (sides, 3)
    # Rings: a hemisphere at a, the straight part, a hemisphere at b.
    phis = np.linspace(-np.pi / 2, 0, rings + 1)[1:]
    profile = [(a, -radius, 0.0)]  # (centre, offset along y, ring radius): the pole
    profile += [(a, radius * np.sin(p), radius * np.cos(p)) for p in phis]
    profile += [(b, radius * np.sin(-p), radius * np.cos(-p)) for p in phis[::-1]]
    profile += [(b, radius, 0.0)]
    verts, faces = [], []
    ring_index = []
    for centre, along, r in profile:
        if r == 0.0:
            ring_index.append([len(verts)])
            verts.append(centre + along * y)
        else:
            ring_index.append(list(range(len(verts), len(verts) + sides)))
            verts.extend(centre + along * y + r * circle)
    for lo, hi in zip(ring_index[:-1], ring_index[1:]):
        for k in range(sides):
            k1 = (k + 1) % sides
            if len(lo) == 1:
                faces.append((lo[0], hi[k1], hi[k]))
            elif len(hi) == 1:
                faces.append((lo[k], lo[k1], hi[0]))
            else:
                faces.append((lo[k], lo[k1], hi[k1], hi[k]))
    return np.array(verts), faces


def _link_body(context, rig, mesh_data, groups):
    """Parent a mesh object to ``rig`` with an Armature modifier and the given vertex groups."""
    import bpy

    body = bpy.data.objects.new(BODY_NAME, mesh_data)
    context.collection.objects.link(body)
    body.parent = rig
    modifier = body.modifiers.new("Armature", "ARMATURE")
    modifier.object = rig
    for name, members in groups.items():
        group = body.vertex_groups.new(name=name)
        for weight, indices in members:
            group.add(indices, weight, "REPLACE")
    return body


def add_mannequin(context, rig):
    """A light wooden-mannequin body: one capsule per bone, rigidly skinned to it."""
    import bpy

    heads, tails, _ = rest_layout()
    verts, faces, groups = [], [], {}
    for j, name in enumerate(sk.JOINT_NAMES):
        a, b = heads[j], tails[j]
        if name == "head":
            a = a + (b - a) * 0.45  # a round head above the neck joint
        v, f = _capsule(a, b, _radius(name))
        start = len(verts)
        verts.extend(v)
        faces.extend(tuple(i + start for i in face) for face in f)
        groups[name] = [(1.0, list(range(start, start + len(v))))]
    mesh = bpy.data.meshes.new(BODY_NAME)
    mesh.from_pydata([tuple(p) for p in verts], [], faces)
    mesh.update()
    for poly in mesh.polygons:
        poly.use_smooth = True
    return _link_body(context, rig, mesh, groups)


def add_smpl_body(context, rig, body: dict):
    """The real SMPL mesh from a model file's arrays (vertices, faces, weights, joints; y-up, metres).

    The mesh is turned z-up and moved so that its pelvis joint sits on the rig's pelvis head.
    """
    import bpy

    c = sk.Y_UP_TO_Z_UP
    pelvis = np.array(rig.data.bones[sk.JOINT_NAMES[0]].head_local)
    verts = (np.asarray(body["vertices"]) - body["joints"][0]) @ c.T + pelvis
    mesh = bpy.data.meshes.new(BODY_NAME)
    mesh.from_pydata([tuple(p) for p in verts], [], [tuple(int(i) for i in f) for f in body["faces"]])
    mesh.update()
    for poly in mesh.polygons:
        poly.use_smooth = True
    weights = np.asarray(body["weights"])
    groups = {}
    for j, name in enumerate(sk.JOINT_NAMES):
        column = weights[:, j]
        used = np.nonzero(column > 1e-6)[0]
        values, inverse = np.unique(np.round(column[used], 6), return_inverse=True)
        groups[name] = [(float(v), used[inverse == k].tolist()) for k, v in enumerate(values)]
    return _link_body(context, rig, mesh, groups)
