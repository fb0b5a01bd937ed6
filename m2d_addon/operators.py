"""Operators: the scripting API of Music2Dance.

Generating:

* ``bpy.ops.m2d.generate(save_npz="")`` — Generate Dance from ``scene.m2d``.
* ``bpy.ops.m2d.cancel()`` — stop the generation (or edit) in progress; nothing is changed.

Editing the active armature's dance (each makes new takes; the current take is never changed):

* ``bpy.ops.m2d.regenerate(mode='RANGE', frame_start=a, frame_end=b)`` — sample frames a..b again;
  every key outside them is the source take's, bit for bit. ``mode='UNPINNED'``: the whole take
  (within the strip) again, around the pins. Frames default to ``scene.m2d.edit_start/edit_end``.
* ``bpy.ops.m2d.inbetween()`` — a dance through the poses keyed on the armature (every frame with a
  key on an SMPL bone) and its pose pins, over the frames Generate Dance would use.
* ``bpy.ops.m2d.variations(count=3, mode='RANGE'|'UNPINNED'|'INBETWEEN', frame_start=, frame_end=)``
  — ``count`` takes with seeds ``scene.m2d.seed``, +1, …; the first becomes current.
* ``bpy.ops.m2d.switch_take(step=1)`` — play the next (-1: previous) take.

Pins (``object.m2d.pins``; met by every edit):

* ``bpy.ops.m2d.pin_add(kind='POSE'|'BONES'|'ROOT'|'KEEP', frame_start=, frame_end=, preset='SELECTED'|'LEGS'|
  'UPPER_BODY'|'LEFT_ARM'|'RIGHT_ARM'|'SPINE_HEAD', bones="left_knee, right_knee", horizontal_only=False,
  name="")`` — pin what the scene shows now: a pose (as posed or keyed; default frame: the current one),
  or over frames a..b the chosen bones / the root path / everything of the current take.
* ``bpy.ops.m2d.pin_remove(index=-1)``, ``bpy.ops.m2d.pin_update(index=-1)`` (read the scene again).
* ``bpy.ops.m2d.export_constraints(filepath=...)`` — the enabled pins as the engine's constraints file;
  the report gives the matching ``python -m inference generate ... --constraints`` command.

Other:

* ``bpy.ops.m2d.export_fbx(filepath=..., preset='GENERIC'|'UNITY'|'UNREAL')``.
* ``bpy.ops.m2d.remove_take(index=-1)`` — drop a take from the active armature's list.
* ``bpy.ops.m2d.install_runtime()`` / ``bpy.ops.m2d.check_runtime()`` — the engine's Python packages
  (from the internet, or offline from ``preferences.wheels_path``); ``bpy.ops.m2d.open_install_log()``.

The operators that run the engine run in the background from the panel (modal, never blocking) and
to their end from scripts and in background mode. Bad input: a report, ``{'CANCELLED'}`` and nothing
changed. One Ctrl+Z undoes each.
"""

import sys
import traceback

import bpy
import numpy as np
from bpy.props import BoolProperty, EnumProperty, IntProperty, StringProperty
from bpy.types import Operator
from bpy_extras.io_utils import ExportHelper

from ..inference import skeleton as sk
from ..inference.errors import M2DError
from . import fbx, generation, pins, regenerate, runtime, timing
from .common import preferences, tag_redraw_all
from .jobs import SESSION
from .props import chosen_strip

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

    def _done(self, obj, action, seconds: float) -> set:
        run = getattr(self, "_run", None)
        if run is not None and hasattr(run, "summary"):
            message = run.summary(obj, action)
        else:
            info = generation.take_info(action)  # written by generation.apply
            message = f"{action.name} on {obj.name}: frames {info.frame_start}-{info.frame_end} in {seconds:.1f} s"
        self.report({"INFO"}, message)
        SESSION.set_status(message, "CHECKMARK")
        return {"FINISHED"}

    def execute(self, context):
        """Blocking path: scripts, tests, background mode."""
        prefs = preferences(context)
        try:
            run = self._run = self._make_run(context)
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
        self._run = None
        try:
            self._run = self._make_run(context)
            self._run.start()
        except M2DError as exc:
            if self._run is not None:
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


class M2D_OT_generate(_EngineOperator, Operator):
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


# ----------------------------------------------------------------------------- pins


_dancer = regenerate.dancer


def _pin_poll(cls, context) -> bool:
    try:
        _dancer(context)
    except M2DError as exc:
        cls.poll_message_set(str(exc))
        return False
    if context.mode not in ("OBJECT", "POSE"):
        cls.poll_message_set("Switch to Object or Pose Mode")
        return False
    return True


def _selected_bones(obj) -> list[str]:
    def selected(pose_bone):  # Blender 5.0 keeps selection on the pose bone, 4.5 on the bone
        return pose_bone.select if hasattr(pose_bone, "select") else pose_bone.bone.select

    return [b.name for b in obj.pose.bones if selected(b)]


def _check_in_strip(context, obj, first: int, last: int) -> None:
    """M2DError unless frames first..last are heard (when there is music to hear)."""
    if chosen_strip(context.scene) is None:
        return
    action = obj.animation_data.action if obj.animation_data is not None else None
    strip = regenerate.music_strip(context, action)
    t = timing.strip_timing(strip, context.scene)
    if first < t.first_frame or last > t.last_frame:
        raise M2DError(f"Frames {first}-{last} lie outside the strip '{strip.name}', which is heard on frames "
                       f"{t.first_frame}-{t.last_frame}. Pin frames within it.")


def _unique(name: str, taken: set) -> str:
    """``name``, or ``name.001``, ``name.002`` … (as Blender names data) when taken."""
    n = 0
    candidate = name
    while candidate in taken:
        n += 1
        candidate = f"{name}.{n:03d}"
    return candidate


class M2D_OT_pin_add(Operator):
    """Pin what the active armature does now: a pose, bones, the root path or everything over a range"""

    bl_idname = "m2d.pin_add"
    bl_label = "Add Pin"
    bl_options = {"REGISTER", "UNDO"}

    kind: EnumProperty(name="Kind", description="What to keep", items=pins.KINDS, default="POSE")
    frame_start: IntProperty(name="Start", description="The pose's frame, or the range's first frame "
                                                       "(default: the current frame)", options={"SKIP_SAVE"})
    frame_end: IntProperty(name="End", description="The range's last frame (default: the preview range's "
                                                   "end, else one second on)", options={"SKIP_SAVE"})
    preset: EnumProperty(name="Bones", description="Which bones a Bones pin keeps", items=pins.PRESETS,
                         default="SELECTED")
    bones: StringProperty(name="Bone Names", description="SMPL bone names separated by commas (overrides the "
                                                         "preset)", options={"SKIP_SAVE"})
    horizontal_only: BoolProperty(name="Floor Only", description="Root Path: keep the path on the floor only "
                                                                 "(x, y)", default=False)
    name: StringProperty(name="Name", description="The pin's name (default: made from what it keeps)",
                         options={"SKIP_SAVE"})

    poll = classmethod(_pin_poll)

    def _frames(self, context) -> tuple[int, int]:
        scene = context.scene
        first = self.frame_start if self.properties.is_property_set("frame_start") else scene.frame_current
        if self.kind == "POSE":
            return first, first
        if self.properties.is_property_set("frame_end"):
            return first, self.frame_end
        if scene.use_preview_range and scene.frame_preview_end >= first:
            return first, scene.frame_preview_end
        return first, first + max(1, round(timing.scene_fps(scene))) - 1

    def _bone_names(self, obj) -> str:
        if self.bones.strip():
            names = pins.parse_bones(self.bones)
        elif self.preset == "SELECTED":
            names = pins.parse_bones(", ".join(_selected_bones(obj)))
        else:
            names = pins.parse_bones(pins.PRESET_GROUPS[self.preset])
        return ", ".join(names)

    def _default_name(self, first: int, last: int, bones: str) -> str:
        if self.kind == "POSE":
            return f"Pose {first}"
        if self.kind == "ROOT":
            label = "Root path (floor)" if self.horizontal_only else "Root path"
        elif self.kind == "KEEP":
            label = "Keep"
        elif self.bones.strip() or self.preset == "SELECTED":
            label = bones if len(bones) <= 24 else "Bones"
        else:
            label = {k: n for k, n, _ in pins.PRESETS}[self.preset]
        return f"{label} {first}-{last}"

    def execute(self, context):
        try:
            obj = _dancer(context)
            pins.check_quaternion_bones(obj)
            first, last = self._frames(context)
            if first > last:
                raise M2DError(f"The range starts at frame {first}, after its end {last}.")
            _check_in_strip(context, obj, first, last)
            bones = self._bone_names(obj) if self.kind == "BONES" else ""
            action = obj.animation_data.action if obj.animation_data is not None else None
            name = self.name or _unique(self._default_name(first, last, bones), {p.name for p in obj.m2d.pins})
            if self.kind == "POSE":
                if first == context.scene.frame_current:
                    pose, location = pins.current_pose(obj)  # as posed, keyed or not
                else:
                    quats, loc = pins.sample_take(obj, action, [first])
                    pose, location = quats[0], loc[0]
                spec = pins.PinSpec(name, first, first, list(range(sk.NUM_JOINTS)), 3, pose=pose, location=location)
            else:
                if action is None:
                    raise M2DError(f"'{obj.name}' has no take yet: a range pin keeps the animation of the "
                                   "current take. Generate a dance first (or pin a pose).")
                joints = ([sk.JOINT_INDEX[b] for b in pins.parse_bones(bones)] if bones
                          else list(range(sk.NUM_JOINTS)) if self.kind == "KEEP" else [])
                axes = {"KEEP": 3, "BONES": 0, "ROOT": 2 if self.horizontal_only else 3}[self.kind]
                spec = pins.PinSpec(name, first, last, joints, axes, action=action)
            pins.check_contradictions(obj, pins.enabled_specs(obj) + [spec])
        except M2DError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        with pins.quiet(obj):
            pin = obj.m2d.pins.add()
            pin.name, pin.kind, pin.frame_start, pin.frame_end = name, self.kind, first, last
            pin.bones, pin.horizontal_only = bones, self.horizontal_only
            if self.kind == "POSE":
                pin.pose = pose.astype(np.float32)
                pin.location = location.astype(np.float32)
            else:
                pin.action = action
            obj.m2d.active_pin = len(obj.m2d.pins) - 1
        self.report({"INFO"}, f"Pinned '{name}' ({pins.describe(pin)}) on {obj.name}")
        return {"FINISHED"}

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        layout.prop(self, "name")
        layout.prop(self, "frame_start", text="Frame" if self.kind == "POSE" else "Start")
        if self.kind != "POSE":
            layout.prop(self, "frame_end")
        if self.kind == "BONES":
            layout.prop(self, "preset")
            layout.prop(self, "bones")
        if self.kind == "ROOT":
            layout.prop(self, "horizontal_only")

    def invoke(self, context, event):
        if self.kind in pins.RANGE_KINDS and not bpy.app.background and context.window is not None:
            first, last = self._frames(context)
            self.frame_start, self.frame_end = first, last
            return context.window_manager.invoke_props_dialog(self)
        return self.execute(context)


def _pin_index(op, obj) -> int:
    index = obj.m2d.active_pin if op.index < 0 else op.index
    if not 0 <= index < len(obj.m2d.pins):
        raise M2DError(f"'{obj.name}' has no pin {index}.")
    return index


class M2D_OT_pin_remove(Operator):
    """Remove a pin (its markers and bone colours go with it)"""

    bl_idname = "m2d.pin_remove"
    bl_label = "Remove Pin"
    bl_options = {"REGISTER", "UNDO"}

    index: IntProperty(name="Index", description="Pin to remove (-1: the selected one)", default=-1)

    poll = classmethod(_pin_poll)

    def execute(self, context):
        try:
            obj = _dancer(context)
            index = _pin_index(self, obj)
        except M2DError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        with pins.quiet(obj):
            obj.m2d.pins.remove(index)
            obj.m2d.active_pin = max(0, min(index, len(obj.m2d.pins) - 1))
        return {"FINISHED"}


class M2D_OT_pin_update(Operator):
    """Take a pin's values from the scene again: a pose pin reads the pose at its frame, a range pin the \
current take"""

    bl_idname = "m2d.pin_update"
    bl_label = "Update Pin"
    bl_options = {"REGISTER", "UNDO"}

    index: IntProperty(name="Index", description="Pin to update (-1: the selected one)", default=-1)

    poll = classmethod(_pin_poll)

    def execute(self, context):
        try:
            obj = _dancer(context)
            pin = obj.m2d.pins[_pin_index(self, obj)]
            pins.check_quaternion_bones(obj)
            action = obj.animation_data.action if obj.animation_data is not None else None
            if pin.kind == "POSE":
                if pin.frame_start == context.scene.frame_current:
                    pose, location = pins.current_pose(obj)
                else:
                    quats, loc = pins.sample_take(obj, action, [pin.frame_start])
                    pose, location = quats[0], loc[0]
                spec = pins.PinSpec(pin.name, pin.frame_start, pin.frame_start, list(range(24)), 3,
                                    pose=pose, location=location)
            else:
                if action is None:
                    raise M2DError(f"'{obj.name}' has no take to keep.")
                spec = pins.spec_of(pin)
                spec.action = action
            others = [pins.spec_of(p) for p in obj.m2d.pins if p.enabled and p != pin]
            pins.check_contradictions(obj, others + ([spec] if pin.enabled else []))
        except M2DError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        with pins.quiet(obj):
            if pin.kind == "POSE":
                pin.pose, pin.location = pose.astype(np.float32), location.astype(np.float32)
            else:
                pin.action = action
        self.report({"INFO"}, f"Updated '{pin.name}' from the scene")
        return {"FINISHED"}


class M2D_OT_export_constraints(Operator, ExportHelper):
    """Save the active armature's enabled pins as the engine's constraints file, for \
`python -m inference generate --constraints` on the same music and frames"""

    bl_idname = "m2d.export_constraints"
    bl_label = "Export Pins"
    bl_options = {"REGISTER"}

    filename_ext = ".npz"
    filter_glob: StringProperty(default="*.npz", options={"HIDDEN"})

    poll = classmethod(_pin_poll)

    def execute(self, context):
        try:
            command = regenerate.export_constraints(context, self.filepath)
        except M2DError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Saved the pins. Generate with: {command}")
        return {"FINISHED"}


class M2D_OT_switch_take(Operator):
    """Play the next (or previous) take of the active armature"""

    bl_idname = "m2d.switch_take"
    bl_label = "Switch Take"
    bl_options = {"REGISTER", "UNDO"}

    step: IntProperty(name="Step", description="1: the next take, -1: the previous one", default=1)

    @classmethod
    def poll(cls, context):
        obj = context.active_object
        if obj is None or obj.type != "ARMATURE" or len(obj.m2d.takes) < 2:
            cls.poll_message_set("The active armature has fewer than two takes")
            return False
        return True

    def execute(self, context):
        rig_props = context.active_object.m2d
        rig_props.active_take = (rig_props.active_take + self.step) % len(rig_props.takes)
        return {"FINISHED"}


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
            self.report({"ERROR"}, runtime.INSTALLER.failure)
            return {"CANCELLED"}
        runtime.PROBE.run("")
        self.report({"INFO"}, runtime.INSTALLER.result)
        return {"FINISHED"}

    def execute(self, context):
        if not self._start(context):
            return {"CANCELLED"}
        try:
            runtime.INSTALLER.wait()
        except KeyboardInterrupt:
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
            self.report({"ERROR"}, runtime.INSTALLER.failure)
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


classes = (M2D_OT_generate, M2D_OT_regenerate, M2D_OT_inbetween, M2D_OT_variations, M2D_OT_pin_add,
           M2D_OT_pin_remove, M2D_OT_pin_update, M2D_OT_export_constraints, M2D_OT_switch_take, M2D_OT_cancel,
           M2D_OT_export_fbx, M2D_OT_remove_take, M2D_OT_check_runtime, M2D_OT_install_runtime,
           M2D_OT_open_install_log)
register, unregister = bpy.utils.register_classes_factory(classes)
