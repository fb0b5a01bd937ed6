"""The operators that run the engine: Generate Dance, Regenerate, In-between, Variations, and Cancel.

From the panel they run in the background (modal, a timer polls the generation); from scripts and
in background mode they run to their end (``execute``).
"""

import sys
import traceback

import bpy
from bpy.props import EnumProperty, IntProperty, StringProperty
from bpy.types import Operator

from ...inference.errors import M2DError
from .. import generation, regenerate
from ..common import error_message, preferences, tag_redraw_all
from ..jobs import SESSION

TIMER_SECONDS = 0.1


def _print_progress(job) -> None:
    print(f"Music2Dance: {job.status}", file=sys.stderr, flush=True)


class _EngineOperator:
    """What the operators that run the engine share: a blocking ``execute`` (scripts, background mode)
    and a modal path driven by a timer (the panel), around a run object with the phases of
    :class:`~.generation.Generation`. Subclasses give ``_make_run(context)``."""

    def _make_run(self, context):
        raise NotImplementedError

    def _fail(self, message: str) -> set:
        self.report({"ERROR"}, message)
        SESSION.set_status(message, "ERROR")
        return {"CANCELLED"}

    def _cancelled(self, message: str) -> set:
        self.report({"INFO"}, message)
        SESSION.set_status(message, "CANCEL")
        return {"CANCELLED"}

    def _done(self, obj, action, seconds: float) -> set:
        run = getattr(self, "_run", None)
        if run is not None and hasattr(run, "summary"):
            message = run.summary(obj, action)
        else:
            info = generation.take_info(action)  # written by generation.apply
            message = f"{action.name} on {obj.name}: frames {info.frame_start}-{info.frame_end} in {seconds:.1f} s"
        self.report({"INFO"}, message)
        warnings = getattr(getattr(run, "plan", None), "warnings", None)
        if warnings:
            self.report({"WARNING"}, " ".join(warnings))
        SESSION.set_status(message, "CHECKMARK")
        return {"FINISHED"}

    def execute(self, context):
        """Blocking path: scripts, tests, background mode."""
        prefs = preferences(context)
        try:
            run = self._run = self._make_run(context)
        except (M2DError, OSError) as exc:
            return self._fail(error_message(exc))
        try:
            run.start().wait(on_progress=_print_progress if bpy.app.background else None)
            obj, action = run.finish(context)
        except (M2DError, OSError) as exc:
            return self._fail(error_message(exc))
        except KeyboardInterrupt:  # Ctrl+C in a script: a cancel, like the panel's button
            run.cancel()
            return self._cancelled("Cancelled (Ctrl+C); nothing was changed.")
        finally:
            run.close()
            SESSION.release(prefs.keep_loaded)
        return self._done(obj, action, run.seconds)

    def invoke(self, context, event):
        if bpy.app.background or context.window is None:
            return self.execute(context)
        self._run = None
        try:
            self._run = self._make_run(context)
            self._run.start()
        except (M2DError, OSError) as exc:
            if self._run is not None:
                self._run.close()
            return self._fail(error_message(exc))
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
                    return self._cancelled(str(run.error))
                return self._fail(str(run.error))
            try:
                obj, action = run.finish(context)
            except (M2DError, OSError) as exc:
                return self._fail(error_message(exc))
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


class M2D_OT_generate(_EngineOperator, Operator):
    """Generate a dance for the music strip and key it onto an armature as a new take: a new SMPL armature, \
or the selected one (SMPL, or your own humanoid character)"""

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

    def _make_run(self, context):
        return generation.Generation(generation.make_plan(context, self.save_npz),
                                     preferences(context).python_path)


def _edit_poll(cls, context) -> bool:
    reason = regenerate.why_not(context)
    if reason:
        cls.poll_message_set(reason)
        return False
    return True


def _edit_frames(op, context) -> tuple[int, int]:
    """The operator's frame range, or the panel's (scene.m2d.edit_start/edit_end) where not given."""
    settings = context.scene.m2d
    first = op.frame_start if op.properties.is_property_set("frame_start") else settings.edit_start
    last = op.frame_end if op.properties.is_property_set("frame_end") else settings.edit_end
    return first, last


class M2D_OT_regenerate(_EngineOperator, Operator):
    """Sample the active armature's dance again: a frame range (the rest stays bit for bit), or everything \
unpinned. Pins are met; the result is a new take"""

    bl_idname = "m2d.regenerate"
    bl_label = "Regenerate"
    bl_options = {"REGISTER", "UNDO"}

    mode: EnumProperty(name="Mode", description="What is sampled again", items=regenerate.MODES[:2],
                       default="RANGE")
    frame_start: IntProperty(name="Start", description="First frame to sample again (Range; default: the "
                                                       "panel's Start)", options={"SKIP_SAVE"})
    frame_end: IntProperty(name="End", description="Last frame to sample again (Range; default: the "
                                                   "panel's End)", options={"SKIP_SAVE"})

    poll = classmethod(_edit_poll)

    def _make_run(self, context):
        first, last = _edit_frames(self, context)
        plan = regenerate.make_plan(context, self.mode, first, last)
        return regenerate.EditGeneration(plan, preferences(context).python_path)


class M2D_OT_inbetween(_EngineOperator, Operator):
    """Generate a dance through the poses keyed on the active armature (and its pose pins), as a new take"""

    bl_idname = "m2d.inbetween"
    bl_label = "In-between"
    bl_options = {"REGISTER", "UNDO"}

    poll = classmethod(_edit_poll)

    def _make_run(self, context):
        plan = regenerate.make_plan(context, "INBETWEEN")
        return regenerate.EditGeneration(plan, preferences(context).python_path)


class M2D_OT_variations(_EngineOperator, Operator):
    """Make several alternatives of a regeneration with seeds Seed, Seed + 1, …, each a take"""

    bl_idname = "m2d.variations"
    bl_label = "Variations"
    bl_options = {"REGISTER", "UNDO"}

    count: IntProperty(name="Count", description="How many takes (default: the panel's Variations)",
                       min=1, max=32, default=3, options={"SKIP_SAVE"})
    mode: EnumProperty(name="Mode", description="What each variation samples", items=regenerate.MODES,
                       default="RANGE")
    frame_start: IntProperty(name="Start", description="First frame (Range; default: the panel's Start)",
                             options={"SKIP_SAVE"})
    frame_end: IntProperty(name="End", description="Last frame (Range; default: the panel's End)",
                           options={"SKIP_SAVE"})

    poll = classmethod(_edit_poll)

    def _make_run(self, context):
        first, last = _edit_frames(self, context)
        count = self.count if self.properties.is_property_set("count") else context.scene.m2d.variations
        plan = regenerate.make_plan(context, self.mode, first, last, count=count)
        return regenerate.EditGeneration(plan, preferences(context).python_path)


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


classes = (M2D_OT_generate, M2D_OT_regenerate, M2D_OT_inbetween, M2D_OT_variations, M2D_OT_cancel)
