"""Preferences: where PyTorch comes from, which model and which SMPL body to use."""

import bpy
from bpy.props import BoolProperty, EnumProperty, StringProperty
from bpy.types import AddonPreferences

from ..inference.errors import M2DError
from . import runtime
from .common import ADDON_PACKAGE


PICKLE_WARNING = (
    "A .pkl body file is read by unpickling it, which can run code hidden in the file.",
    "Use only the file from smpl.is.tue.mpg.de, or better its .npz form (see the README).",
)
"""Shown under SMPL Body while a .pkl is chosen."""


def is_pickle(path: str) -> bool:
    return path.strip().lower().endswith((".pkl", ".pickle"))


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
    torch_build: EnumProperty(
        name="PyTorch Build",
        description="Which PyTorch Install runtime downloads",
        items=runtime.TORCH_BUILDS,
        default="AUTO",
    )
    wheels_path: StringProperty(
        name="Wheel Folder",
        description="Install runtime from this folder of wheels, with no internet (prepare it on another "
                    "machine with pip download, see the README). Empty: download from the internet",
        subtype="DIR_PATH",
    )
    weights_path: StringProperty(
        name="Model",
        description="Folder holding model.safetensors and config.json. Empty: the model shipped "
                    "with the extension",
        subtype="DIR_PATH",
    )
    smpl_model_path: StringProperty(
        name="SMPL Body",
        description="An SMPL model file for a real body mesh on new armatures: preferably its .npz form "
                    "(plain arrays; the README shows how to make it from the .pkl of smpl.is.tue.mpg.de). A "
                    ".pkl is unpickled, which can run code hidden in it. Empty: a simple mannequin",
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
        probe = runtime.PROBE
        if probe.state == "unknown" and not bpy.app.background:
            probe.start(self.python_path)
        icon = {"ok": "CHECKMARK", "missing": "ERROR", "error": "ERROR", "checking": "SORTTIME"}.get(
            probe.state, "QUESTION")
        box.label(text=probe.message, icon=icon)
        box.prop(self, "python_path")
        if not self.python_path:
            self._draw_install(context, box)
        else:
            box.operator("m2d.check_runtime", icon="FILE_REFRESH")
        col = layout.column()
        col.prop(self, "weights_path")
        col.prop(self, "smpl_model_path")
        if is_pickle(self.smpl_model_path):
            for i, line in enumerate(PICKLE_WARNING):
                col.label(text=line, icon="ERROR" if i == 0 else "BLANK1")
        col.prop(self, "keep_loaded")

    def _draw_install(self, context, box):
        installer = runtime.INSTALLER
        box.prop(self, "torch_build")
        box.prop(self, "wheels_path")
        if installer.running:
            box.label(text=installer.status[:100], icon="SORTTIME")
        else:
            try:
                plan = runtime.install_plan(context)
            except M2DError as exc:
                box.label(text=str(exc)[:120], icon="ERROR")
            else:
                box.label(text="Will install " + plan.summary(), icon="INFO")
                problem = runtime.online_access_problem() if plan.online else None
                if problem:
                    box.label(text=problem[:120], icon="ERROR")
        row = box.row(align=True)
        row.operator("m2d.install_runtime", icon="IMPORT")
        row.operator("m2d.check_runtime", icon="FILE_REFRESH")
        row.operator("m2d.open_install_log", icon="TEXT")
        if installer.failure and not installer.running:
            col = box.column(align=True)
            col.label(text="Install failed:", icon="ERROR")
            for line in installer.tail():
                col.label(text=line[:120])


classes = (M2D_AP_preferences,)
register, unregister = bpy.utils.register_classes_factory(classes)
