"""The runtime operators: install the engine's Python packages, check what a Python can run, open pip's log."""

import bpy
from bpy.types import Operator

from ...inference.errors import M2DError
from .. import runtime
from ..common import preferences, tag_redraw_all
from ..jobs import SESSION

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
    """Install PyTorch, librosa and the engine's other packages with pip into the extension's user folder, \
from the internet (Allow Online Access must be on) or from the wheel folder set in the preferences"""

    bl_idname = "m2d.install_runtime"
    bl_label = "Install runtime"

    @classmethod
    def poll(cls, context):
        if runtime.INSTALLER.running:
            cls.poll_message_set("The installation is running")
            return False
        if preferences(context).python_path:
            cls.poll_message_set("An existing Python environment is chosen; clear it to install here")
            return False
        return True

    def _start(self, context) -> bool:
        try:
            plan = runtime.install_plan(context)
            runtime.INSTALLER.start(plan, before=SESSION.shutdown)  # the engine restarts with the new packages
        except M2DError as exc:
            self.report({"ERROR"}, str(exc))
            return False
        self.report({"INFO"}, f"Installing {plan.summary()}; pip's output goes to {runtime.log_path()}")
        return True

    def _finished(self) -> set:
        if runtime.INSTALLER.failure:
            self.report({"INFO" if runtime.INSTALLER.cancelled else "ERROR"}, runtime.INSTALLER.failure)
            return {"CANCELLED"}
        runtime.PROBE.run("")
        self.report({"INFO"}, runtime.INSTALLER.result)
        return {"FINISHED"}

    def execute(self, context):
        if not self._start(context):
            return {"CANCELLED"}
        try:
            runtime.INSTALLER.wait()
        except KeyboardInterrupt:  # Ctrl+C in a script: a cancel
            runtime.INSTALLER.cancel()
            runtime.INSTALLER.wait()
        return self._finished()

    def invoke(self, context, event):
        if bpy.app.background:
            return self.execute(context)
        if not self._start(context):
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
        if runtime.INSTALLER.failure:
            self.report({"INFO" if runtime.INSTALLER.cancelled else "ERROR"}, runtime.INSTALLER.failure)
            return {"CANCELLED"}
        self.report({"INFO"}, runtime.INSTALLER.result)
        return {"FINISHED"}

    def cancel(self, context):
        runtime.INSTALLER.cancel()


class M2D_OT_open_install_log(Operator):
    """Open pip's full output of the last Install runtime"""

    bl_idname = "m2d.open_install_log"
    bl_label = "Open Log"

    @classmethod
    def poll(cls, context):
        if not runtime.log_path().is_file():
            cls.poll_message_set("Nothing has been installed yet")
            return False
        return True

    def execute(self, context):
        bpy.ops.wm.path_open(filepath=str(runtime.log_path()))
        return {"FINISHED"}


classes = (M2D_OT_check_runtime, M2D_OT_install_runtime, M2D_OT_open_install_log)
