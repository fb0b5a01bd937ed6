"""Export the dancer (Music2Dance's SMPL armature or the animator's character) with its active take
through Blender's bundled exporters: FBX (armature, the meshes it deforms, presets per engine), BVH
(the armature's motion) and glTF binary (GLB).

Root motion or in place: in place, the hips' horizontal travel (their world position on the floor
relative to their rest position) goes to the rig's root bone, a parentless bone above the hips that
the bone map does not use, or is removed where the rig has none. The change is made on a temporary
copy of the take, never on the take itself.

Files: the path is checked before anything is done, the exporter writes a temporary file beside the
target, and only a complete file replaces the target; any failure is one :class:`M2DError` and leaves
the scene and the files on disk as they were.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import bpy
import numpy as np
from mathutils import Matrix

from ..inference import files
from ..inference.errors import M2DError
from . import bridge, fbx, rig

FORMATS = {
    "FBX": ("FBX", "Armature, the meshes it deforms and the take baked on every frame, with presets for "
            "engines", ".fbx"),
    "BVH": ("BVH", "The armature's motion only (motion capture): Y up, -Z forward, metres", ".bvh"),
    "GLB": ("glTF Binary", "Armature, meshes and the take in one .glb file (glTF 2.0): Y up, metres", ".glb"),
}
"""Format -> (label, description, file extension)."""
FORMAT_ITEMS = tuple((key, label, description) for key, (label, description, _) in FORMATS.items())


def extension(fmt: str) -> str:
    return FORMATS[fmt][2]


# ----------------------------------------------------------------------------- files


def checked_path(filepath: str, ext: str) -> Path:
    """The file an export of type ``ext`` (".fbx") writes for ``filepath``: the extension appended when
    it has another, ``//`` resolved against the .blend file; M2DError when the place cannot take a file."""
    if not filepath or not filepath.strip():
        raise M2DError(f"No file name was given. Choose where to export, e.g. /path/to/dance{ext}.")
    if filepath.startswith("//") and not bpy.data.filepath:
        raise M2DError(f"'{filepath}' is relative to the .blend file, which is not saved yet. "
                       "Save the .blend file first, or choose a full path.")
    path = Path(os.path.abspath(os.path.expanduser(bpy.path.abspath(filepath))))
    if filepath.endswith(("/", os.sep)) or path.is_dir():
        raise M2DError(f"{path} is a folder. Add a file name, e.g. {path / ('dance' + ext)}.")
    if path.suffix.lower() != ext:
        path = path.with_name(path.name + ext)
        if path.is_dir():
            raise M2DError(f"{path} is a folder. Choose another file name.")
    folder = path.parent
    if not folder.exists():
        above = folder
        while not above.exists() and above != above.parent:
            above = above.parent
        if above.exists() and not above.is_dir():
            raise M2DError(f"{above} is a file, not a folder, so {path} cannot be written. Choose another folder.")
        raise M2DError(f"The folder {folder} does not exist. Create it first, or choose another folder.")
    if not folder.is_dir():
        raise M2DError(f"{folder} is a file, not a folder, so {path} cannot be written. Choose another folder.")
    if path.exists() and not path.is_file():
        raise M2DError(f"{path} exists and is not a regular file. Choose another file name.")
    problem = files.cannot_write_in(folder)
    if problem:
        raise M2DError(f"Cannot write into the folder {folder} ({problem}). Choose another folder, or change "
                       "its permissions.")
    return path


def _os_error(exc: OSError, path: Path) -> M2DError:
    reason = exc.strerror or str(exc)
    return M2DError(f"Could not write {path}: {reason}. Nothing was written. Choose another folder or file name "
                    "(check that the folder is writable, the disk not full and the file not open in another "
                    "program).")


@contextlib.contextmanager
def written_whole(path: Path):
    """Yields a temporary file beside ``path`` to write (:func:`inference.files.atomic_path`): it replaces
    ``path`` when the block ends without an error and is not empty, else it is removed (``path`` is never
    half-written). OSError becomes M2DError."""
    try:
        with files.atomic_path(path) as temporary:
            yield temporary
            if temporary.stat().st_size == 0:
                raise M2DError(f"The exporter wrote nothing to {path}. Nothing was written; check the System "
                               "Console for the exporter's messages.")
    except OSError as exc:
        raise _os_error(exc, path) from exc


# ----------------------------------------------------------------------------- the rig


def _mapped_bones(obj) -> dict:
    """SMPL joint -> bone of ``obj``: its own names on an SMPL armature, else the stored (or found) bone map."""
    from ..inference import skeleton as sk

    if not rig.missing_bones(obj):
        return {j: j for j in sk.JOINT_NAMES}
    from . import character

    try:
        return dict(character.bone_map_of(obj).bones)
    except M2DError:
        return {}


def root_bone(obj, hips: str, mapped) -> str | None:
    """The rig's root: the parentless bone above the hips that no bone map row uses (UE5's ``root``)."""
    top = obj.data.bones[hips]
    while top.parent is not None:
        top = top.parent
    return None if top.name == hips or top.name in mapped else top.name


@dataclass(frozen=True)
class Travel:
    """What the export does with the hips' horizontal travel."""

    hips: str | None = None
    root: str | None = None
    """The bone that takes the travel over (None: the hips keep it, or it is removed)."""
    remove: bool = False

    @property
    def changes(self) -> bool:
        return self.root is not None or self.remove


def plan_travel(obj, fmt: str, preset: str, root_motion: bool) -> Travel:
    """Root motion keeps the take's travel on the hips (on the root bone with the Unreal FBX preset); in
    place moves it to the root bone, or removes it from a rig without one."""
    if root_motion and not (fmt == "FBX" and preset in fbx.ROOT_BONE_PRESETS):
        return Travel()
    mapped = _mapped_bones(obj)
    hips = mapped.get("pelvis")
    root = root_bone(obj, hips, set(mapped.values())) if hips in obj.data.bones else None
    if root_motion and root is None:
        return Travel()
    if hips not in obj.data.bones:
        raise M2DError(f"In place needs the hips bone of '{obj.name}', which its bone map does not name. "
                       "Map the pelvis joint in the Dance panel's bone map, or export with root motion.")
    if obj.data.bones[hips].use_connect:
        raise M2DError(f"The hips bone '{hips}' of '{obj.name}' is connected to its parent, so its travel cannot "
                       "be moved. Export with root motion, or disconnect it (Edit Mode, Bone properties).")
    return Travel(hips, root, remove=root is None)


def _key_every_frame(bag, path: str, frames: np.ndarray, values: np.ndarray, group: str) -> None:
    """Replace the keys of ``path`` (3 F-curves) by linear keys on ``frames``; ``values`` (F, 3)."""
    for index in range(3):
        fc = bag.fcurves.find(path, index=index)
        if fc is None:
            fc = bag.fcurves.new(path, index=index)
            groups = {g.name: g for g in bag.groups}
            fc.group = groups.get(group) or bag.groups.new(group)
        fc.keyframe_points.clear()
        while len(fc.modifiers):  # their effect is in the values already
            fc.modifiers.remove(fc.modifiers[0])
        fc.mute = False
        bridge.write_keys(fc, bridge.linear_keys(fc, frames, values[:, index]))


def move_travel(context, obj, bag, travel: Travel, frames: np.ndarray) -> None:
    """Key the hips (and the root bone) of the take in ``bag`` on every frame so that the hips' horizontal
    travel is carried by the root bone or gone. The travel is measured in world space (object transform,
    bone rolls, parents) and each bone's new location solved in its own location space."""
    scene = context.scene
    depsgraph = context.evaluated_depsgraph_get()
    hips_loc = np.empty((len(frames), 3))
    root_loc = np.empty((len(frames), 3))
    rest_head = np.append(np.array(obj.data.bones[travel.hips].head_local), 1.0)
    for i, frame in enumerate(frames):
        scene.frame_set(int(frame))
        ev = obj.evaluated_get(depsgraph)
        world = np.array(ev.matrix_world)
        hips = ev.pose.bones[travel.hips]
        posed = np.array(hips.matrix)
        offset = world @ np.append(posed[:3, 3], 1.0) - world @ rest_head
        offset[2:] = 0.0  # horizontal: the floor is the world's XY plane
        shift = np.linalg.solve(world[:3, :3], offset[:3])  # (3,) the travel in armature space
        # Moving the root by +shift moves the hips with it: either way the hips' own pose moves by -shift.
        posed[:3, 3] -= shift
        hips_loc[i] = ev.convert_space(pose_bone=hips, matrix=Matrix(posed.tolist()), from_space="POSE",
                                       to_space="LOCAL").to_translation()
        if travel.root is not None:
            root = ev.pose.bones[travel.root]
            moved = np.array(root.matrix)
            moved[:3, 3] += shift
            root_loc[i] = ev.convert_space(pose_bone=root, matrix=Matrix(moved.tolist()), from_space="POSE",
                                           to_space="LOCAL").to_translation()
    _key_every_frame(bag, f'pose.bones["{travel.hips}"].location', frames, hips_loc, travel.hips)
    if travel.root is not None:
        _key_every_frame(bag, f'pose.bones["{travel.root}"].location', frames, root_loc, travel.root)


# ----------------------------------------------------------------------------- the scene during an export


class _Stage:
    """The scene set up for one export and put back afterwards, whatever happens: frame and frame range,
    selection and active object, the object's take (a temporary copy while it is changed)."""

    def __init__(self, context, obj):
        self.context, self.obj = context, obj
        scene, layer = context.scene, context.view_layer
        self._frame = scene.frame_current, scene.frame_subframe
        self._range = scene.frame_start, scene.frame_end
        self._selected = [o for o in layer.objects if o.select_get()]
        self._active = layer.objects.active
        anim = obj.animation_data
        self.action, self._slot = anim.action, anim.action_slot
        self._copy = None

    def frames(self, start: int, end: int) -> None:
        self.context.scene.frame_start, self.context.scene.frame_end = start, end

    def select(self, objects) -> None:
        for o in self._selected:
            o.select_set(False)
        for o in objects:
            o.select_set(True)
        self.context.view_layer.objects.active = self.obj

    def take_copy(self):
        """A copy of the take, assigned in its place, and its keys (channelbag) on the object's slot."""
        anim = self.obj.animation_data
        self._copy = copy = self.action.copy()
        anim.action = copy
        slot = copy.slots.get(self._slot.identifier) if self._slot is not None else None
        if slot is None:
            raise M2DError(f"The take '{self.action.name}' has no slot for '{self.obj.name}'. Make the take "
                           "active in the Takes list again, then export.")
        if anim.action_slot != slot:
            anim.action_slot = slot
        strip = copy.layers[0].strips[0] if len(copy.layers) and len(copy.layers[0].strips) else None
        if strip is None:
            raise M2DError(f"The take '{self.action.name}' has no keys to export.")
        return strip.channelbag(slot, ensure=True)

    def restore(self) -> None:
        scene, layer = self.context.scene, self.context.view_layer
        anim = self.obj.animation_data
        if self._copy is not None:
            if anim.action != self.action:
                anim.action = self.action
            if self._slot is not None and anim.action_slot != self._slot:
                anim.action_slot = self._slot
            bpy.data.actions.remove(self._copy)
            self._copy = None
        scene.frame_start, scene.frame_end = self._range
        scene.frame_set(self._frame[0], subframe=self._frame[1])
        for o in layer.objects:
            if o.select_get():
                o.select_set(False)
        for o in self._selected:
            o.select_set(True)
        layer.objects.active = self._active


# ----------------------------------------------------------------------------- writers


@dataclass
class _Job:
    obj: object
    meshes: list
    start: int
    end: int
    preset: str
    take: str


def _run(exporter: str, operator, **options) -> None:
    """Call a bundled exporter: its failure (an error report, an exception inside it) becomes M2DError."""
    try:
        result = operator(**options)
    except RuntimeError as exc:  # bpy.ops: "Error: <report>" or a traceback's last line, then "Location: …"
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        lines = [line for line in lines if not line.startswith("Location:")] or ["no reason given"]
        reason = lines[-1].removeprefix("Error: ").rstrip(".")
        raise M2DError(f"Blender's {exporter} exporter failed: {reason}. Nothing was written.") from exc
    if "FINISHED" not in result:
        raise M2DError(f"Blender's {exporter} exporter did not finish. Nothing was written.")


def _write_fbx(context, job: _Job, path: Path) -> None:
    options = {**fbx.OPTIONS, **fbx.PRESETS[job.preset][2]}
    with context.temp_override(selected_objects=[job.obj, *job.meshes], active_object=job.obj, object=job.obj):
        _run("FBX", bpy.ops.export_scene.fbx, filepath=str(path), check_existing=False, use_selection=True,
             **options)


def _write_glb(context, job: _Job, path: Path) -> None:
    _run("glTF", bpy.ops.export_scene.gltf, filepath=str(path), check_existing=False, export_format="GLB",
         use_selection=True, export_animations=True, export_animation_mode="ACTIVE_ACTIONS",
         export_nla_strips_merged_animation_name=job.take, export_force_sampling=True, export_frame_step=1,
         export_anim_slide_to_zero=False, export_yup=True, export_apply=False, export_skins=True)


BVH_AXES = {"to_forward": "-Z", "to_up": "Y"}
"""BVH's usual axes (Blender's BVH importer assumes them); Blender's BVH exporter writes armature space."""


def _world_follower(context, obj):
    """A temporary armature whose armature space is the world turned to BVH's axes, with ``obj``'s rest
    bones and constraints that give each bone the world location and rotation of ``obj``'s."""
    from bpy_extras.io_utils import axis_conversion

    to_file = np.array(axis_conversion(**BVH_AXES).to_4x4())
    data = obj.data.copy()
    follower = bpy.data.objects.new(f"{obj.name} BVH", data)
    context.scene.collection.objects.link(follower)
    data.transform(Matrix((to_file @ np.array(obj.matrix_world)).tolist()))
    follower.matrix_world = Matrix(np.linalg.inv(to_file).tolist())
    context.view_layer.update()  # makes its pose
    for bone in data.bones:
        source = bone.name
        bone.name = source.replace(" ", "_")  # BVH names end at a space
        pb = follower.pose.bones[bone.name]
        for kind in ("COPY_LOCATION", "COPY_ROTATION"):
            c = pb.constraints.new(kind)
            c.target, c.subtarget = obj, source
            c.target_space = c.owner_space = "WORLD"
    return follower


def _write_bvh(context, job: _Job, path: Path) -> None:
    follower = _world_follower(context, job.obj)
    data = follower.data
    try:
        with context.temp_override(object=follower, active_object=follower, selected_objects=[follower]):
            _run("BVH", bpy.ops.export_anim.bvh, filepath=str(path), check_existing=False,
                 frame_start=job.start, frame_end=job.end, global_scale=1.0, rotate_mode="ZXY",
                 root_transform_only=False)
    finally:
        bpy.data.objects.remove(follower)
        bpy.data.armatures.remove(data)


WRITERS = {"FBX": _write_fbx, "BVH": _write_bvh, "GLB": _write_glb}


# ----------------------------------------------------------------------------- export


def deformed_meshes(view_layer, obj) -> list:
    """The view layer's meshes that ``obj`` deforms (an Armature modifier on it)."""
    return [o for o in view_layer.objects if o.type == "MESH" and any(
        m.type == "ARMATURE" and m.object == obj for m in o.modifiers)]


def export(context, obj, filepath: str, fmt: str = "FBX", preset: str = "GENERIC", root_motion: bool = True) -> Path:
    """Write ``obj`` (an armature) with its active take, and for FBX and GLB the meshes it deforms, to
    ``filepath``; returns the path written (with the format's extension)."""
    if fmt not in FORMATS:
        raise M2DError(f"Unknown export format {fmt!r}; use one of {', '.join(FORMATS)}.")
    if preset not in fbx.PRESETS:
        raise M2DError(f"Unknown FBX preset {preset!r}; use one of {', '.join(fbx.PRESETS)}.")
    if obj is None or obj.type != "ARMATURE":
        raise M2DError("Select an SMPL armature or a character (or its mesh) to export.")
    action = obj.animation_data.action if obj.animation_data else None
    if action is None:
        raise M2DError(f"'{obj.name}' has no active take to export; generate a dance first.")
    target = checked_path(filepath, extension(fmt))
    travel = plan_travel(obj, fmt, preset, root_motion)
    start, end = (int(round(v)) for v in action.frame_range)
    meshes = deformed_meshes(context.view_layer, obj) if fmt != "BVH" else []
    stage = _Stage(context, obj)
    try:
        stage.frames(start, end)
        stage.select([obj, *meshes])
        if travel.changes:
            move_travel(context, obj, stage.take_copy(), travel, np.arange(start, end + 1, dtype=np.float64))
        job = _Job(obj, meshes, start, end, preset, action.name)
        with written_whole(target) as temporary:
            WRITERS[fmt](context, job, temporary)
    finally:
        stage.restore()
    return target
