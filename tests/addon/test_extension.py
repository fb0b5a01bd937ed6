"""The extension as Blender sees it: the zip, the install, registration, the scripting API."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import bpy
import pytest
from addon_helpers import ADDON, REPO, add_strip

from tools.build_extension import blender_ext_script


def test_manifest_validates():
    done = subprocess.run([sys.executable, str(blender_ext_script()), "validate", str(REPO)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_zip_holds_the_extension_and_nothing_else(extension_zip):
    done = subprocess.run([sys.executable, str(blender_ext_script()), "validate", str(extension_zip)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    names = zipfile.ZipFile(extension_zip).namelist()
    for needed in ("blender_manifest.toml", "__init__.py", "LICENSE", "requirements.txt",
                   "m2d_addon/operators/__init__.py", "inference/worker.py", "inference/skeleton.py",
                   "assets/demo_track.ogg", "assets/README.md"):
        assert needed in names, needed
    for name in names:
        top = name.split("/", 1)[0]
        assert top not in {"tests", "bench", "tools", "cache", "out", "data", "dist", "runs"}, name
        assert not top.startswith("."), name
        assert "__pycache__" not in name and not name.endswith(".pyc"), name
        assert not name.startswith(("inference/training/", "inference/evaluation/")), name
    assert "requirements-dev.txt" not in names


def test_installed_from_the_zip_into_the_user_folder(addon, tmp_session):
    path = Path(addon.__file__).resolve()
    assert path.is_relative_to(tmp_session / "blender-user" / "extensions" / "user_default" / "music2dance")


def test_blender_process_never_imports_torch(addon):
    assert "torch" not in sys.modules or sys.modules["torch"].__file__.startswith(str(REPO / ".venv"))
    loaded = [m for m in sys.modules if m.startswith(ADDON)]
    assert f"{ADDON}.inference.generate" not in loaded and f"{ADDON}.inference.network.weights" not in loaded


def test_unregister_and_register_again(addon):
    import addon_utils

    addon_utils.disable(ADDON, default_set=True)
    try:
        assert not hasattr(bpy.types, "M2D_OT_generate")
        assert not hasattr(bpy.types, "VIEW3D_PT_m2d_dance")
        assert not hasattr(bpy.types.Scene, "m2d")
        assert not bpy.app.timers.is_registered(sys.modules[f"{ADDON}.m2d_addon.common"]._watch_tick)
    finally:
        addon_utils.enable(ADDON, default_set=True)
    assert hasattr(bpy.types, "M2D_OT_generate") and hasattr(bpy.types.Scene, "m2d")


def test_scripting_api_names(addon):
    for op in ("generate", "cancel", "export_fbx", "remove_take", "install_runtime", "check_runtime"):
        assert hasattr(bpy.ops.m2d, op)
    assert bpy.ops.m2d.generate.idname() == "M2D_OT_generate"
    assert bpy.types.Scene.bl_rna.properties["m2d"].fixed_type.identifier == "M2D_PG_settings"
    assert bpy.context.preferences.addons[ADDON].preferences.bl_rna.identifier == "M2D_AP_preferences"
    assert "VIEW3D_PT_m2d_dance" in dir(bpy.types)
    assert bpy.types.VIEW3D_PT_m2d_dance.bl_category == "Dance"


def _described(rna_type):
    skip = {"rna_type", "name", "bl_idname"}
    return {p.identifier: p.description for p in rna_type.properties if p.identifier not in skip}


@pytest.mark.parametrize("module,type_name", [("props", "M2D_PG_settings"), ("props", "M2D_PG_rig"),
                                              ("props", "M2D_PG_take"), ("preferences", "M2D_AP_preferences")])
def test_every_setting_has_a_name_and_description(addon, module, type_name):
    rna = getattr(sys.modules[f"{ADDON}.m2d_addon.{module}"], type_name).bl_rna
    for ident, description in _described(rna).items():
        assert description.strip(), f"{type_name}.{ident} has no description"
        assert rna.properties[ident].name.strip(), f"{type_name}.{ident} has no name"


@pytest.mark.parametrize("op", ["generate", "cancel", "export_fbx", "remove_take", "install_runtime",
                                "check_runtime"])
def test_every_operator_is_described(addon, op):
    rna = getattr(bpy.ops.m2d, op).get_rna_type()
    assert rna.description.strip()
    for ident, description in _described(rna).items():
        if ident in {"filepath", "filter_glob", "check_existing"}:
            continue
        assert description.strip(), f"m2d.{op}: {ident} has no description"


def test_buttons_that_cannot_run_say_why(scene, song):
    def reason(op):
        with pytest.raises(RuntimeError) as info:
            op()
        return str(info.value)

    assert "Add music" in reason(bpy.ops.m2d.generate)
    assert "No dance is being generated" in reason(bpy.ops.m2d.cancel)
    assert "Select an SMPL armature" in reason(lambda: bpy.ops.m2d.export_fbx(filepath="/tmp/x.fbx"))
    add_strip(scene, song)
    scene.m2d.target = "SELECTED"
    assert "No armature is selected" in reason(bpy.ops.m2d.generate)
