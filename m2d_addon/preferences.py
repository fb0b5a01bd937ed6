"""Preferences: where PyTorch comes from, which model and which SMPL body to use."""

import bpy
from bpy.props import BoolProperty, StringProperty
from bpy.types import AddonPreferences

from . import runtime
from .common import ADDON_PACKAGE


def _runtime_changed(self, context):
    from .jobs import SESSION

    SESSION.shutdown()  # the next generation starts a worker with the new environment
    if not bpy.app.background:
        runtime.PROBE.start(self.python_path)


class M2D_AP_preferences(AddonPreferences):
    bl_idname = ADDON_PACKAGE

    python_path: StringProperty(
        name="Python Environment",
        description="A Python (or virtual-environment / conda folder) that already has PyTorch and "
                    "librosa. Empty: Blender's own Python with the packages installed below",
        subtype="FILE_PATH",
        update=_runtime_changed,
    )
    weights_path: StringProperty(
        name="Model",
        description="Folder holding model.safetensors and config.json. Empty: the model shipped "
                    "with the extension",
        subtype="DIR_PATH",
    )
    smpl_model_path: StringProperty(
        name="SMPL Body",
        description="An SMPL model file (e.g. SMPL_NEUTRAL.pkl from smpl.is.tue.mpg.de) for a real body "
                    "mesh on new armatures. Empty: a simple mannequin",
        subtype="FILE_PATH",
    )
    keep_loaded: BoolProperty(
        name="Keep Model Loaded",
        description="Keep the engine and its model in memory between generations: repeats start at "
                    "once, at the cost of the memory it holds",
        default=True,
    )

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        box = layout.box()
        box.label(text="Runtime (PyTorch, librosa)")
        probe, installer = runtime.PROBE, runtime.INSTALLER
        if probe.state == "unknown" and not bpy.app.background:
            probe.start(self.python_path)
        icon = {"ok": "CHECKMARK", "missing": "ERROR", "error": "ERROR", "checking": "SORTTIME"}.get(
            probe.state, "QUESTION")
        box.label(text=probe.message, icon=icon)
        box.prop(self, "python_path")
        row = box.row(align=True)
        if installer.running:
            row.label(text=installer.status[:90], icon="SORTTIME")
        else:
            sub = row.row(align=True)
            sub.enabled = not self.python_path
            sub.operator("m2d.install_runtime", icon="IMPORT")
            row.operator("m2d.check_runtime", icon="FILE_REFRESH")
        if installer.returncode not in (None, 0):
            box.label(text=f"pip failed: {installer.status[:90]}", icon="ERROR")
        col = layout.column()
        col.prop(self, "weights_path")
        col.prop(self, "smpl_model_path")
        col.prop(self, "keep_loaded")


classes = (M2D_AP_preferences,)
register, unregister = bpy.utils.register_classes_factory(classes)
