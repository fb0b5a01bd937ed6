"""Operators: the scripting API of Music2Dance.

* ``bpy.ops.m2d.generate(save_npz="")`` — Generate Dance from ``scene.m2d``. From
  the panel it runs in the background (modal, never blocking); from scripts and
  in background mode it runs to its end before returning.
* ``bpy.ops.m2d.cancel()`` — stop the generation in progress.
* ``bpy.ops.m2d.export_fbx(filepath=..., preset='GENERIC'|'UNITY'|'UNREAL')``.
* ``bpy.ops.m2d.remove_take(index=-1)`` — drop a take from the active armature's list.
* ``bpy.ops.m2d.install_runtime()`` / ``bpy.ops.m2d.check_runtime()`` — the engine's Python packages.
"""

import sys
import traceback

import bpy
from bpy.props import EnumProperty, IntProperty, StringProperty
from bpy.types import Operator
from bpy_extras.io_utils import ExportHelper

from ..inference.errors import M2DError
from . import fbx, generation, runtime
from .common import preferences, tag_redraw_all
from .jobs import SESSION

TIMER_SECONDS = 0.1


def _print_progress(job) -> None:
    print(f"Music2Dance: {job.status}", file=sys.stderr, flush=True)


class M2D_OT_generate(Operator):
    """Generate a dance for the music strip and key it onto an SMPL armature as a new take"""

    bl_idname = "m2d.generate"
    bl_label = "Generate Dance"
    bl_options = {"REGISTER", "UNDO"}

    save_npz: StringProperty(
        name="Save Motion",
        description="Also save the engine's raw motion (an npz file: fps, smpl_poses, smpl_trans, joints, "
                    "contacts, audio_start) to this path",
        subtype="FILE_PATH",
        options={"SKIP_SAVE"},
    )

    @classmethod
    def poll(cls, context):
        reason = generation.why_not(context)
        if reason:
            cls.poll_message_set(reason)
            return False
        return True

    def _fail(self, message: str) -> set:
        self.report({"ERROR"}, message)
        SESSION.set_status(message, "ERROR")
        return {"CANCELLED"}

    def _done(self, obj, action, seconds: float) -> set:
        frames = action.get("music2dance", {})
        message = (f"{action.name} on {obj.name}: frames {frames.get('frame_start')}-{frames.get('frame_end')}"
                   f" in {seconds:.1f} s")
        self.report({"INFO"}, message)
        SESSION.set_status(message, "CHECKMARK")
        return {"FINISHED"}

    def execute(self, context):
        """Blocking path: scripts, tests, background mode."""
        prefs = preferences(context)
        try:
            run = generation.Generation(generation.make_plan(context, self.save_npz), prefs.python_path)
        except M2DError as exc:
            return self._fail(str(exc))
        try:
            run.start().wait(on_progress=_print_progress if bpy.app.background else None)
            obj, action = run.finish(context)
        except M2DError as exc:
            return self._fail(str(exc))
        except KeyboardInterrupt:
            SESSION.cancel()
            raise
        finally:
            run.close()
            SESSION.release(prefs.keep_loaded)
        return self._done(obj, action, run.seconds)

    def invoke(self, context, event):
        if bpy.app.background or context.window is None:
            return self.execute(context)
        try:
            plan = generation.make_plan(context, self.save_npz)
            self._run = generation.Generation(plan, preferences(context).python_path)
            self._run.start()
        except M2DError as exc:
            if getattr(self, "_run", None) is not None:
                self._run.close()
            return self._fail(str(exc))
        wm = context.window_manager
        self._timer = wm.event_timer_add(TIMER_SECONDS, window=context.window)
        wm.modal_handler_add(self)
        tag_redraw_all()
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type != "TIMER" or event.timer != self._timer:
            return {"PASS_THROUGH"}
        try:
            return self.tick(context)
        except Exception as exc:  # a bug: never leave a timer or a half-made take behind
            traceback.print_exc()
            self._stop(context)
            self._run.cancel()
            self._run.close()
            return self._fail(f"Internal error in Music2Dance ({type(exc).__name__}: {exc}); see the console.")

    def tick(self, context) -> set:
        """One timer tick of the non-blocking path (see :class:`~.generation.Generation`)."""
        run = self._run
        finished = run.poll()
        SESSION.set_status(run.status, "SORTTIME")
        tag_redraw_all()
        if not finished:
            return {"PASS_THROUGH"}
        self._stop(context)
        try:
            if run.error is not None:
                if run.cancelled:
                    self.report({"INFO"}, str(run.error))
                    SESSION.set_status(str(run.error), "CANCEL")
                    return {"CANCELLED"}
                return self._fail(str(run.error))
            try:
                obj, action = run.finish(context)
            except M2DError as exc:
                return self._fail(str(exc))
            return self._done(obj, action, run.seconds)
        finally:
            run.close()
            SESSION.release(preferences(context).keep_loaded)
            tag_redraw_all()

    def _stop(self, context) -> None:
        if getattr(self, "_timer", None) is not None:
            context.window_manager.event_timer_remove(self._timer)
            self._timer = None

    def cancel(self, context):
        """Blender removed the operator (a file was loaded, Blender quits): stop the engine."""
        self._run.cancel()
        self._stop(context)
        self._run.close()


class M2D_OT_cancel(Operator):
    """Stop the dance being generated at once; nothing in the scene is changed"""

    bl_idname = "m2d.cancel"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context):
        if not SESSION.running:
            cls.poll_message_set("No dance is being generated")
            return False
        return True

    def execute(self, context):
        SESSION.cancel()
        tag_redraw_all()
        return {"FINISHED"}


class M2D_OT_export_fbx(Operator, ExportHelper):
    """Export the selected dancer (armature, body and its active take, baked) as FBX"""

    bl_idname = "m2d.export_fbx"
    bl_label = "Export Dance FBX"
    bl_options = {"REGISTER"}

    filename_ext = ".fbx"
    filter_glob: StringProperty(default="*.fbx", options={"HIDDEN"})
    preset: EnumProperty(name="Preset", description="Axes and scale for the program that imports the file",
                         items=fbx.PRESET_ITEMS, default="GENERIC")

    @classmethod
    def poll(cls, context):
        dancer = fbx.dancer_of(context.active_object)
        if dancer is None:
            cls.poll_message_set("Select an SMPL armature (or its body) to export")
            return False
        if dancer.animation_data is None or dancer.animation_data.action is None:
            cls.poll_message_set("The armature has no take yet; generate a dance first")
            return False
        return True

    def execute(self, context):
        dancer = fbx.dancer_of(context.active_object)
        try:
            fbx.export(context, dancer, self.filepath, self.preset)
        except M2DError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Exported {dancer.name} ({dancer.animation_data.action.name}) to {self.filepath}")
        return {"FINISHED"}


class M2D_OT_remove_take(Operator):
    """Remove a take from the armature's list; its action is deleted when the file is saved, unless used"""

    bl_idname = "m2d.remove_take"
    bl_label = "Remove Take"
    bl_options = {"REGISTER", "UNDO"}

    index: IntProperty(name="Index", description="Take to remove (-1: the active one)", default=-1)

    @classmethod
    def poll(cls, context):
        obj = context.active_object
        if obj is None or obj.type != "ARMATURE" or not len(obj.m2d.takes):
            cls.poll_message_set("The active object has no takes")
            return False
        return True

    def execute(self, context):
        rig = context.active_object.m2d
        index = rig.active_take if self.index < 0 else self.index
        if not 0 <= index < len(rig.takes):
            self.report({"ERROR"}, f"There is no take {index}.")
            return {"CANCELLED"}
        action = rig.takes[index].action
        if action is not None:
            action.use_fake_user = False
        playing = rig.id_data.animation_data.action if rig.id_data.animation_data else None
        rig.takes.remove(index)
        if action is not None and action == playing:
            rig.id_data.animation_data.action = None
            rig.active_take = max(0, min(index, len(rig.takes) - 1))
        elif rig.active_take >= len(rig.takes):
            rig.active_take = max(0, len(rig.takes) - 1)
        return {"FINISHED"}


class M2D_OT_check_runtime(Operator):
    """Check which PyTorch, GPU and packages the dance engine finds in the chosen Python"""

    bl_idname = "m2d.check_runtime"
    bl_label = "Check"

    def execute(self, context):
        runtime.PROBE.run(preferences(context).python_path)
        level = "INFO" if runtime.PROBE.state == "ok" else "WARNING"
        self.report({level}, runtime.PROBE.message)
        return {"FINISHED"}

    def invoke(self, context, event):
        if bpy.app.background:
            return self.execute(context)
        runtime.PROBE.start(preferences(context).python_path)
        return {"FINISHED"}


class M2D_OT_install_runtime(Operator):
    """Download PyTorch, librosa and the engine's other packages with pip into the extension's user \
folder (some GB with CUDA). Needs an internet connection"""

    bl_idname = "m2d.install_runtime"
    bl_label = "Install PyTorch and librosa"

    @classmethod
    def poll(cls, context):
        if runtime.INSTALLER.running:
            cls.poll_message_set("The installation is running")
            return False
        if preferences(context).python_path:
            cls.poll_message_set("An existing Python environment is chosen; clear it to install here")
            return False
        return True

    def _start(self) -> bool:
        SESSION.shutdown()  # the engine restarts with the new packages
        try:
            runtime.INSTALLER.start(sys.executable)
        except (M2DError, OSError) as exc:
            self.report({"ERROR"}, str(exc))
            return False
        return True

    def _finished(self, context) -> set:
        if runtime.INSTALLER.returncode != 0:
            self.report({"ERROR"}, f"pip failed: {runtime.INSTALLER.status}")
            return {"CANCELLED"}
        runtime.PROBE.run("")
        self.report({"INFO"}, "Installed. " + runtime.PROBE.message)
        return {"FINISHED"}

    def execute(self, context):
        if not self._start():
            return {"CANCELLED"}
        runtime.INSTALLER.wait()
        return self._finished(context)

    def invoke(self, context, event):
        if bpy.app.background:
            return self.execute(context)
        if not self._start():
            return {"CANCELLED"}
        self._timer = context.window_manager.event_timer_add(0.5, window=context.window)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type != "TIMER" or event.timer != self._timer:
            return {"PASS_THROUGH"}
        tag_redraw_all()
        if runtime.INSTALLER.running:
            return {"PASS_THROUGH"}
        context.window_manager.event_timer_remove(self._timer)
        runtime.PROBE.start("")
        if runtime.INSTALLER.returncode != 0:
            self.report({"ERROR"}, f"pip failed: {runtime.INSTALLER.status}")
            return {"CANCELLED"}
        self.report({"INFO"}, "PyTorch and librosa are installed.")
        return {"FINISHED"}

    def cancel(self, context):
        runtime.INSTALLER.cancel()


classes = (M2D_OT_generate, M2D_OT_cancel, M2D_OT_export_fbx, M2D_OT_remove_take, M2D_OT_check_runtime,
           M2D_OT_install_runtime)
register, unregister = bpy.utils.register_classes_factory(classes)
