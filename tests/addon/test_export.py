"""Export of a dancer (the SMPL armature or a character) as FBX (each preset), BVH and GLB, with root
motion and in place: each file is imported back with Blender's own importer and compared bone by bone
in world space. And every way the target path can be bad: one clear report, the scene and the files
on disk as they were."""

from __future__ import annotations

import errno
import os
import sys

import bpy
import numpy as np
import pytest
import rigs
from addon_helpers import ADDON, add_strip, draw, generate, snapshot, write_song

from write_failures import full_disk, refusing_folder

SONG_SECONDS = 2.5
TOLERANCE_MM = 1.0
ANGLE_DEG = 0.05

RIGS = {
    "SMPL": None,
    "UE5-A": lambda: rigs.create(rigs.build("UE5", pose="A", roll=1.0), name="Mannequin"),
    "Mixamo-cm-y-up": lambda: rigs.create(
        rigs.centimetres_y_up(rigs.build("MIXAMO", pose="A", roll=1.0, prefix="mixamorig:")), name="Hero"),
    "UE5-T-cm-y-up": lambda: rigs.create(rigs.centimetres_y_up(rigs.build("UE5", pose="T", roll=1.0, seed=1)),
                                         name="Imported"),
}
VARIANTS = [("FBX", "GENERIC"), ("FBX", "UNITY"), ("FBX", "UNREAL"), ("BVH", "GENERIC"), ("GLB", "GENERIC")]
HIPS = {"SMPL": "pelvis", "UE5-A": "pelvis", "Mixamo-cm-y-up": "mixamorig:Hips", "UE5-T-cm-y-up": "pelvis"}
ERRORS: dict = {}  # (rig, format, preset, root motion) -> max mm, printed at the end


@pytest.fixture(scope="module", autouse=True)
def _bpy_can_exit():
    """Blender's glTF add-on leaves typing generics of its classes in typing's cache, which keeps the bpy module
    alive through interpreter shutdown; bpy 4.5 then hangs at exit (its audio thread is never stopped)."""
    yield
    import typing

    for clear in typing._cleanups:
        clear()


@pytest.fixture(scope="module")
def export_module(addon):
    return sys.modules[f"{ADDON}.m2d_addon.export"]


@pytest.fixture(scope="module")
def dances(addon, tiny_weights, tmp_session):
    """One generated dance per rig, saved as a .blend each test opens (generating once per rig)."""
    prefs = bpy.context.preferences.addons[ADDON].preferences
    saved = prefs.weights_path
    prefs.weights_path = str(tiny_weights)
    song = write_song(tmp_session / "export-song.wav", SONG_SECONDS)
    out = {}
    try:
        for name, make in RIGS.items():
            bpy.ops.wm.read_homefile(use_empty=True)
            scene = bpy.context.scene
            scene.m2d.steps = 2
            scene.render.fps, scene.render.fps_base = 30, 1.0
            add_strip(scene, song)
            if make is not None:
                make()
                scene.m2d.target = "SELECTED"
            assert generate() == {"FINISHED"}
            obj = bpy.context.view_layer.objects.active
            assert obj.type == "ARMATURE" and obj.animation_data.action is not None
            path = tmp_session / f"export-{name}.blend"
            bpy.ops.wm.save_as_mainfile(filepath=str(path), copy=True)
            out[name] = (path, obj.name)
    finally:
        prefs.weights_path = saved
    yield out
    if ERRORS:
        print("\nRound-trip error, max mm over bones and sampled frames:")
        for key, value in sorted(ERRORS.items()):
            print("  " + " ".join(map(str, key)), f"{value:.4f}")


def _open(dances, name):
    path, obj_name = dances[name]
    bpy.ops.wm.open_mainfile(filepath=str(path))
    obj = bpy.data.objects[obj_name]
    for o in bpy.context.selected_objects:
        o.select_set(False)
    bpy.context.view_layer.objects.active = obj
    obj.select_set(True)
    return obj


def _pose(obj, frames):
    """Bone names, world head positions (F, B, 3) and world orientations (F, B, 3, 3) of the posed bones."""
    scene = bpy.context.scene
    depsgraph = bpy.context.evaluated_depsgraph_get()
    names = [b.name for b in obj.data.bones]
    pos = np.empty((len(frames), len(names), 3))
    rot = np.empty((len(frames), len(names), 3, 3))
    for i, frame in enumerate(frames):
        scene.frame_set(int(frame))
        ev = obj.evaluated_get(depsgraph)
        world = np.array(ev.matrix_world)
        for j, name in enumerate(names):
            posed = world @ np.array(ev.pose.bones[name].matrix)
            pos[i, j] = posed[:3, 3]
            rot[i, j] = posed[:3, :3] / np.linalg.norm(posed[:3, :3], axis=0)
    return names, pos, rot


def _turn_error(src, got):
    """Degrees (F, B) by which the re-imported bones turn otherwise than the source's: an importer may give
    a bone other axes (a constant turn per bone), never another motion."""
    rel = np.swapaxes(src, -1, -2) @ got  # (F, B, 3, 3)
    return _angle(rel[:1], rel)


def _rest_heads(obj):
    world = np.array(obj.matrix_world)
    return {b.name: world[:3, :3] @ np.array(b.head_local) + world[:3, 3] for b in obj.data.bones}


def _angle(a, b):
    cos = (np.trace(np.swapaxes(a, -1, -2) @ b, axis1=-2, axis2=-1) - 1) / 2
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def _import(path, fmt, preset, first_frame, ext_fbx):
    """Import ``path`` into an empty scene with Blender's own importer; returns the armature."""
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.context.scene.render.fps, bpy.context.scene.render.fps_base = 30, 1.0
    if fmt == "FBX":
        options = ext_fbx.PRESETS[preset][2]
        # FBX times are scene times (frame / fps); anim_offset=0 maps them back to the same frames.
        bpy.ops.import_scene.fbx(filepath=str(path), axis_forward=options["axis_forward"],
                                 axis_up=options["axis_up"], automatic_bone_orientation=False,
                                 ignore_leaf_bones=False, anim_offset=0.0)
    elif fmt == "BVH":
        bpy.ops.import_anim.bvh(filepath=str(path), axis_forward="-Z", axis_up="Y", global_scale=1.0,
                                frame_start=first_frame, use_fps_scale=False, update_scene_fps=False,
                                update_scene_duration=False)
    else:
        bpy.ops.import_scene.gltf(filepath=str(path))
    armatures = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    assert len(armatures) == 1
    return armatures[0]


@pytest.mark.parametrize("root_motion", [True, False], ids=["root-motion", "in-place"])
@pytest.mark.parametrize("fmt,preset", VARIANTS, ids=[f"{f}-{p}" if f == "FBX" else f for f, p in VARIANTS])
@pytest.mark.parametrize("rig", list(RIGS))
def test_round_trip(dances, ext, export_module, tmp_path, rig, fmt, preset, root_motion):
    obj = _open(dances, rig)
    action = obj.animation_data.action
    first, last = (int(v) for v in action.frame_range)
    frames = np.array([first, (first + last) // 2, last])
    names, src_pos, src_rot = _pose(obj, frames)
    rest = _rest_heads(obj)
    hips = names.index(HIPS[rig])
    travel = src_pos[:, hips] - rest[HIPS[rig]]
    travel[:, 2] = 0.0  # (F, 3) the hips' horizontal offset from their rest position
    assert np.abs(travel).max() > 0.05  # enough to see where it goes
    root = "root" if rig.startswith("UE5") else None
    to_root = root is not None and (not root_motion or (fmt == "FBX" and preset == "UNREAL"))
    removed = root is None and not root_motion
    expected = src_pos - travel[:, None] if removed else src_pos.copy()
    if to_root:  # the root bone (at rest in the take) takes the travel over, on the floor
        expected[:, names.index(root)] = rest[root] + travel

    before = snapshot()
    path = tmp_path / f"dance{export_module.extension(fmt)}"
    assert bpy.ops.m2d.export(filepath=str(path), format=fmt, preset=preset, root_motion=root_motion) == {"FINISHED"}
    assert snapshot() == before  # the take, its assignment, selection, frames: as they were
    assert sorted(os.listdir(tmp_path)) == [path.name]  # no temporary file left

    imported = _import(path, fmt, preset, first, ext.fbx)
    got_names, got_pos, got_rot = _pose(imported, frames)
    renamed = {n.replace(" ", "_"): n for n in names}
    assert sorted(renamed.get(n, n) for n in got_names) == sorted(names)  # no leaf or end bones
    order = [got_names.index(n.replace(" ", "_")) for n in names]
    got_pos, got_rot = got_pos[:, order], got_rot[:, order]
    err_mm = float(np.abs(got_pos - expected).max() * 1000)
    ERRORS[(rig, fmt, preset if fmt == "FBX" else "-", "root-motion" if root_motion else "in-place")] = err_mm
    assert err_mm < TOLERANCE_MM, f"{rig} {fmt} {preset}: bones {err_mm:.3f} mm away"
    assert _turn_error(src_rot, got_rot).max() < ANGLE_DEG  # moving the travel turns no bone
    if fmt != "BVH" and rig == "SMPL":
        assert any(o.type == "MESH" for o in bpy.data.objects)  # the body goes along


def test_export_fbx_is_an_alias(dances, tmp_path):
    _open(dances, "SMPL")
    path = tmp_path / "alias.fbx"
    assert bpy.ops.m2d.export_fbx(filepath=str(path), preset="UNITY") == {"FINISHED"}
    assert path.stat().st_size > 10_000
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.ops.import_scene.fbx(filepath=str(path))
    assert {o.type for o in bpy.data.objects} == {"ARMATURE", "MESH"}


def test_glb_animation_is_named_after_the_take(dances, tmp_path):
    obj = _open(dances, "UE5-A")
    take = obj.animation_data.action.name
    assert bpy.ops.m2d.export(filepath=str(tmp_path / "named.glb"), format="GLB", root_motion=False) == {"FINISHED"}
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.ops.import_scene.gltf(filepath=str(tmp_path / "named.glb"))
    assert [a.name for a in bpy.data.actions] == [take]


def test_extension_is_appended(dances, tmp_path):
    _open(dances, "SMPL")
    assert bpy.ops.m2d.export(filepath=str(tmp_path / "dance.txt"), format="BVH") == {"FINISHED"}
    assert bpy.ops.m2d.export(filepath=str(tmp_path / "dance"), format="GLB") == {"FINISHED"}
    assert bpy.ops.m2d.export(filepath=str(tmp_path / "DANCE.FBX"), format="FBX") == {"FINISHED"}
    assert sorted(os.listdir(tmp_path)) == ["DANCE.FBX", "dance.glb", "dance.txt.bvh"]


# ----------------------------------------------------------------------------- bad paths


def _refused(match, **kwargs):
    before = snapshot()
    with pytest.raises(RuntimeError, match=match):
        bpy.ops.m2d.export(**kwargs)
    assert snapshot() == before


def test_a_folder_is_not_a_file(dances, tmp_path):
    _open(dances, "SMPL")
    _refused("is a folder. Add a file name", filepath=str(tmp_path))
    _refused("is a folder. Add a file name", filepath=str(tmp_path) + os.sep)
    (tmp_path / "dance.fbx").mkdir()
    _refused("is a folder", filepath=str(tmp_path / "dance"))
    assert sorted(os.listdir(tmp_path)) == ["dance.fbx"] and not os.listdir(tmp_path / "dance.fbx")


def test_a_missing_folder_is_not_created(dances, tmp_path):
    _open(dances, "SMPL")
    _refused("does not exist. Create it first", filepath=str(tmp_path / "missing" / "deeper" / "dance.fbx"))
    assert not os.listdir(tmp_path)


def test_a_file_is_not_a_folder(dances, tmp_path):
    _open(dances, "SMPL")
    (tmp_path / "notes.txt").write_text("mine")
    _refused("is a file, not a folder", filepath=str(tmp_path / "notes.txt" / "dance.fbx"))
    _refused("is a file, not a folder", filepath=str(tmp_path / "notes.txt" / "sub" / "dance.glb"), format="GLB")
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_folder_that_takes_no_file(dances, tmp_path):
    """Read-only (or /sys for root, whom permissions do not stop): refused before anything is exported."""
    _open(dances, "SMPL")
    folder = refusing_folder(tmp_path)
    before = sorted(os.listdir(folder))
    _refused("Cannot write into the folder", filepath=str(folder / "dance.fbx"))
    assert sorted(os.listdir(folder)) == before


@pytest.mark.parametrize("fmt", ["FBX", "BVH", "GLB"])
def test_a_full_disk_while_the_exporter_writes(dances, export_module, tmp_path, fmt):
    """Blender's own exporter meets a full disk (RLIMIT_FSIZE): one report, the old file kept, nothing else."""
    _open(dances, "UE5-A")
    target = tmp_path / f"dance{export_module.extension(fmt)}"
    target.write_bytes(b"the animator's earlier export")
    before = snapshot()
    with full_disk(16 * 1024), pytest.raises(RuntimeError, match=r"(failed|Could not write).*Nothing was written"):
        bpy.ops.m2d.export(filepath=str(target), format=fmt, root_motion=False)
    assert snapshot() == before
    assert sorted(os.listdir(tmp_path)) == [target.name]
    assert target.read_bytes() == b"the animator's earlier export"


def test_no_file_name_and_unsaved_relative_path(scene, tmp_path):
    bpy.ops.object.armature_add()
    obj = bpy.context.active_object
    obj.pose.bones[0].keyframe_insert("location", frame=1)
    _refused("No file name", filepath="")
    _refused("not saved yet", filepath="//dance.fbx")
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize("fmt", ["FBX", "BVH", "GLB"])
def test_a_write_that_fails_midway_leaves_nothing(dances, export_module, tmp_path, monkeypatch, fmt):
    """The disk fills while the exporter writes (tests run as root, which any folder lets write): the
    target keeps its old content, no partial file is left, the in-place copy of the take is gone."""
    _open(dances, "UE5-A")
    target = tmp_path / f"dance{export_module.extension(fmt)}"
    target.write_bytes(b"the animator's earlier export")
    os.chmod(target, 0o640)
    real = export_module.WRITERS[fmt]

    def fills_the_disk(context, job, path):
        real(context, job, path)
        with open(path, "r+b") as f:
            f.truncate(100)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setitem(export_module.WRITERS, fmt, fills_the_disk)
    _refused(r"Could not write .*dance.*: No space left on device\. Nothing was written", filepath=str(target),
             format=fmt, root_motion=False)
    assert sorted(os.listdir(tmp_path)) == [target.name]
    assert target.read_bytes() == b"the animator's earlier export"


def test_an_exporter_error_is_one_report(dances, export_module, tmp_path, monkeypatch):
    _open(dances, "SMPL")

    def broken(context, job, path):
        path.write_bytes(b"half")
        export_module._run("FBX", lambda **kw: bpy.ops.export_scene.fbx(filepath="", **kw))

    monkeypatch.setitem(export_module.WRITERS, "FBX", broken)
    _refused("Blender's FBX exporter failed: .*Nothing was written", filepath=str(tmp_path / "dance.fbx"))
    assert not os.listdir(tmp_path)


def test_a_failed_move_keeps_the_old_file(dances, export_module, tmp_path, monkeypatch):
    """The file is open in another program (Windows refuses to replace it): the old file stays whole."""
    _open(dances, "SMPL")
    target = tmp_path / "dance.glb"
    target.write_bytes(b"old")

    def refuses(src, dst):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(dst))

    monkeypatch.setattr(export_module.os, "replace", refuses)
    _refused("Could not write .*Permission denied.*open in another program", filepath=str(target), format="GLB")
    assert sorted(os.listdir(tmp_path)) == ["dance.glb"] and target.read_bytes() == b"old"


def test_a_good_export_replaces_the_old_file_with_its_permissions(dances, tmp_path):
    _open(dances, "SMPL")
    target = tmp_path / "dance.bvh"
    target.write_text("old")
    os.chmod(target, 0o640)
    assert bpy.ops.m2d.export(filepath=str(target), format="BVH") == {"FINISHED"}
    assert target.read_text().startswith("HIERARCHY") and (target.stat().st_mode & 0o777) == 0o640


# ----------------------------------------------------------------------------- the operator and the panel


def test_export_needs_a_dancer_with_a_take(scene):
    with pytest.raises(RuntimeError, match="Select an SMPL armature or a character"):
        bpy.ops.m2d.export(filepath="/tmp/never.fbx")
    bpy.ops.object.armature_add()
    for op in (bpy.ops.m2d.export, bpy.ops.m2d.export_fbx):
        with pytest.raises(RuntimeError, match="no take yet"):
            op(filepath="/tmp/never.fbx")


@pytest.mark.parametrize("op", ["export", "export_fbx"])
def test_every_export_setting_is_described(addon, op):
    rna = getattr(bpy.ops.m2d, op).get_rna_type()
    assert rna.description.strip()
    for prop in rna.properties:
        if prop.identifier in {"rna_type", "filepath", "filter_glob", "check_existing"}:
            continue
        assert prop.name.strip() and prop.description.strip(), f"m2d.{op}: {prop.identifier}"


def test_export_panel(dances):
    _open(dances, "Mixamo-cm-y-up")
    calls = draw(bpy.types.VIEW3D_PT_m2d_export, bpy.context)
    assert [c for c in calls if c[0] == "prop"] == [("prop", "format"), ("prop", "preset"), ("prop", "root_motion")]
    assert [c for c in calls if c[0] == "operator"] == [("operator", "m2d.export")]
