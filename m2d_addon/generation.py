"""Generate Dance, step by step: gather and check the inputs, ask the engine, apply the result.

Nothing in the scene changes until :func:`apply`, which runs once the engine has
finished; every check that can fail runs before the engine is asked, so bad
input leaves the scene as it was.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import bpy
import numpy as np

from ..inference.config import CONFIG_FILE, WEIGHTS_FILE, model_files
from ..inference.dance import Dance
from ..inference.errors import Cancelled, M2DError
from ..inference.files import output_path
from ..inference.protocol import TAKE_KEY, GenerateRequest, SmplMeshRequest, TakeInfo
from . import bridge, character, rig, timing
from .common import model_folder, preferences, user_dir
from .props import chosen_strip, sound_strips, style_name

TAKE_NAME = "Dance"


@dataclass
class Plan:
    """Everything a generation needs, captured when Generate Dance is pressed."""

    strip_name: str
    audio_path: str
    frames: timing.FramePlan
    timing: timing.StripTiming
    target_name: str | None  # None: create a new armature
    request: GenerateRequest
    smpl_model: str | None = None
    save_npz: str | None = None
    temp_files: list = field(default_factory=list)
    retarget: object = None
    """A character's :class:`~inference.retarget.character.Retarget` (None: SMPL armature)."""
    warnings: list = field(default_factory=list)
    """What the report should mention besides the result (bones that constraints move …)."""


def sound_path(strip) -> tuple[str, bool]:
    """The strip's music file on disk, and whether it is a temporary copy of a sound packed in the file."""
    sound = strip.sound
    if sound is None:
        raise M2DError(f"The strip '{strip.name}' has no sound. Add the music again in the Video Sequencer.")
    if sound.packed_file is not None:
        fd, path = tempfile.mkstemp(prefix="packed-", suffix=Path(sound.filepath).suffix or ".wav",
                                    dir=user_dir("work"))
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(sound.packed_file.data)
        except OSError as exc:
            Path(path).unlink(missing_ok=True)
            raise M2DError(f"Cannot write the music packed in the file for the engine to {path} "
                           f"({exc.strerror or exc}). Free some disk space.") from None
        return path, True
    path = bpy.path.abspath(sound.filepath, library=sound.library)
    if not os.path.isfile(path):
        raise M2DError(f"The music file of strip '{strip.name}' is missing: {path}. "
                       "Fix the path in the Video Sequencer's sidebar (Strip > Sound) or add the music again.")
    return path, False


def weights_path(prefs) -> str:
    """The model folder; a clear error when it holds no weights."""
    path = model_folder(prefs)
    weights, config = model_files(path)
    if not weights.is_file() or not config.is_file():
        raise M2DError(
            f"No model found at {path} ({WEIGHTS_FILE} and {CONFIG_FILE} are needed). Set Preferences > "
            "Add-ons > Music2Dance > Model to a folder that holds them."
        )
    return str(path)


def engine_request(settings, audio: str, frames: timing.FramePlan, weights: str, output: str, seed: int,
                   constraints: str | None = None) -> GenerateRequest:
    """The worker request for the music of ``frames`` with the panel's settings (``scene.m2d``)."""
    return GenerateRequest(audio=audio, output=output, start=float(frames.audio_start),
                           duration=float(frames.audio_duration), seed=int(seed), sampler=settings.sampler,
                           steps=int(settings.steps), guidance=float(settings.guidance),
                           style=style_name(settings), beat_snap=bool(settings.beat_snap),
                           foot_lock=bool(settings.foot_lock), device=settings.device, weights=weights,
                           constraints=constraints)


def take_info(action) -> TakeInfo | None:
    """What ``action`` records about how it was made, or None for an action that is not a take."""
    return TakeInfo.from_dict(action.get(TAKE_KEY)) if action is not None else None


def check_target(obj) -> None:
    """M2DError unless ``obj`` can dance: Music2Dance's SMPL armature or a humanoid character."""
    if obj is None:
        raise M2DError("No armature is selected. Select an armature (SMPL, or your own character), or set "
                       "Armature to New.")
    if obj.type != "ARMATURE":
        raise M2DError(f"The selected object '{obj.name}' is a {obj.type.lower()}, not an armature. "
                       "Select an armature, or set Armature to New.")
    if character.is_character(obj):
        character.bone_map_of(obj).check(obj.data.bones.keys(), owner=f"'{obj.name}'")
        character.check_editable(obj)


def target_armature(context):
    """The armature the dance goes to: None for a new one, else the checked active object."""
    if context.scene.m2d.target == "NEW":
        return None
    obj = context.active_object
    check_target(obj)
    return obj


def why_not(context) -> str | None:
    """Why Generate Dance cannot run now (cheap checks for the button), or None."""
    from .jobs import SESSION

    if SESSION.running:
        return "A dance is being generated; wait for it or press Cancel"
    scene = context.scene
    if not sound_strips(scene):
        return "Add music to the Video Sequencer first (Add > Sound)"
    if chosen_strip(scene) is None:
        return f"There is no sound strip named '{scene.m2d.audio_strip}'"
    if scene.m2d.target == "NEW":
        if context.mode != "OBJECT":
            return "Switch to Object Mode to create a new armature"
    else:
        try:
            check_target(context.active_object)
        except M2DError as exc:
            return str(exc)
        if context.mode not in ("OBJECT", "POSE"):
            return "Switch to Object or Pose Mode"
    return None


def make_plan(context, save_npz: str = "") -> Plan:
    """Check every input and build the engine request; raises M2DError with the reason."""
    scene = context.scene
    settings = scene.m2d
    prefs = preferences(context)
    reason = why_not(context)
    if reason:
        raise M2DError(reason + ".")
    strip = chosen_strip(scene)
    target = target_armature(context)
    strip_timing = timing.strip_timing(strip, scene)
    frames = timing.plan_frames(strip_timing, strip.name, settings.range_mode == "STRIP",
                                settings.frame_start, settings.frame_end)
    weights = weights_path(prefs)
    smpl_model = None
    if target is None and prefs.smpl_model_path:
        smpl_model = bpy.path.abspath(prefs.smpl_model_path)
        if not os.path.isfile(smpl_model):
            raise M2DError(f"The SMPL body file {smpl_model} does not exist. Fix it in the preferences "
                           "or clear it to use the mannequin.")
    if save_npz:
        save_npz = str(output_path(bpy.path.abspath(save_npz), ".npz", "saved motion"))
    audio, audio_is_temporary = sound_path(strip)
    fd, output = tempfile.mkstemp(prefix="dance-", suffix=".npz", dir=user_dir("work"))
    os.close(fd)
    request = engine_request(settings, audio, frames, weights, output, settings.seed)
    retarget = character.retarget_for(target) if character.is_character(target) else None
    return Plan(strip_name=strip.name, audio_path=bpy.path.abspath(strip.sound.filepath), frames=frames,
                timing=strip_timing, target_name=target.name if target else None, request=request,
                smpl_model=smpl_model, save_npz=save_npz or None,
                temp_files=[output, audio] if audio_is_temporary else [output], retarget=retarget,
                warnings=character.warnings(retarget) if retarget is not None else [])


def _new_rig(context, body: dict | None):
    location = tuple(context.scene.cursor.location)
    obj = rig.create_armature(context, location)
    obj.m2d.is_dancer = True
    if body is not None:
        rig.add_smpl_body(context, obj, body)
    else:
        rig.add_mannequin(context, obj)
    return obj


def add_take(obj, action) -> None:
    """Record ``action`` as the armature's newest take and play it; earlier actions are kept."""
    takes = obj.m2d.takes
    anim = obj.animation_data
    previous = anim.action if anim is not None else None
    if previous is not None and previous != action and all(t.action != previous for t in takes):
        previous.use_fake_user = True  # the armature's own action stays reachable
        takes.add().action = previous
    action.use_fake_user = True
    takes.add().action = action
    obj.m2d.active_take = len(takes) - 1  # assigns it (update callback)
    bridge.assign_action(obj, action)


def apply(context, plan: Plan, keys: bridge.Keys, action, body: dict | None = None, npz_path=None):
    """Give the finished take to its armature (a new one if asked); returns (armature, action).

    This is the only step that changes the scene. If it fails half-way, what was
    created is removed again.
    """
    if plan.retarget is not None:
        return _apply_to_character(context, plan, keys, action, npz_path)
    created = [action]
    try:
        if plan.target_name is None:
            obj = _new_rig(context, body)
            created += [obj, *obj.children]
        else:
            obj = bpy.data.objects.get(plan.target_name)
            if obj is None:
                raise M2DError(f"The armature '{plan.target_name}' was removed while the dance was being made.")
            rig.check_armature(obj)
            rig.use_quaternions(obj)
        rest, pelvis = bridge.bone_rest(obj)
        exact = keys.for_rest(rest, pelvis)
        if exact is not keys:  # its rest pose changed since Generate Dance was pressed: key again
            bpy.data.actions.remove(action)
            created.remove(action)
            action = bridge.write_action(obj, TAKE_NAME, exact.frames, exact.quats, exact.loc)
            created.append(action)
        action[TAKE_KEY] = TakeInfo.of_request(
            plan.request, audio=plan.audio_path, strip=plan.strip_name, audio_start=float(keys.audio_start),
            frame_start=int(keys.frames[0]), frame_end=int(keys.frames[-1]), fps=float(plan.timing.fps),
        ).to_dict()
        if plan.save_npz and npz_path:
            Path(plan.save_npz).write_bytes(Path(npz_path).read_bytes())
        add_take(obj, action)
    except BaseException:
        _remove(created)
        raise
    return obj, action


def _apply_to_character(context, plan: Plan, keys, action, npz_path=None):
    """:func:`apply` for a character: the take and the bone map it was made with go on its armature."""
    try:
        obj = bpy.data.objects.get(plan.target_name)
        if obj is None:
            raise M2DError(f"The armature '{plan.target_name}' was removed while the dance was being made.")
        now = character.read_character(obj)
        before = plan.retarget.character
        if (now.bone_names != before.bone_names or not np.allclose(now.rest, before.rest, atol=1e-5)
                or not np.allclose(now.world, before.world, atol=1e-6) or now.rotation_modes != before.rotation_modes):
            raise M2DError(f"'{obj.name}' was changed (rest pose, bones, transform or rotation modes) while the "
                           "dance was being made. Nothing was changed; generate again.")
        action[TAKE_KEY] = TakeInfo.of_request(
            plan.request, audio=plan.audio_path, strip=plan.strip_name, audio_start=float(keys.audio_start),
            frame_start=int(keys.frames[0]), frame_end=int(keys.frames[-1]), fps=float(plan.timing.fps),
            floor_shift=float(keys.motion.floor_shift),
        ).to_dict()
        if plan.save_npz and npz_path:
            Path(plan.save_npz).write_bytes(Path(npz_path).read_bytes())
        character.store_map(obj, plan.retarget.bone_map)
        add_take(obj, action)
    except BaseException:
        _remove([action])
        raise
    return obj, action


def _remove(ids) -> None:
    for block in reversed(ids):
        if isinstance(block, bpy.types.Object):
            data = block.data
            bpy.data.objects.remove(block)
            if data is not None and data.users == 0:
                (bpy.data.armatures if isinstance(data, bpy.types.Armature) else bpy.data.meshes).remove(data)
        elif isinstance(block, bpy.types.Action):
            bpy.data.actions.remove(block)


def load_body(path) -> dict:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in ("vertices", "faces", "weights", "joints")}


class Generation:
    """A generation in flight, in phases that never block Blender for long.

    1. The engine requests of the plan (the dance; the SMPL body if asked), one after the other.
    2. The dance is turned into key values on a thread (numbers only).
    3. The keys are written into a new, unassigned action, a time-boxed slice per timer tick.
    4. :meth:`finish` gives the action to the armature (creating it if asked): the one step that
       changes the scene.

    The panel's modal operator calls :meth:`poll` from its timer; scripts call :meth:`wait`.
    """

    WRITE_BUDGET = 0.03
    """Seconds of key writing per timer tick."""

    def __init__(self, plan: Plan, python_path: str):
        self._init_state(plan, python_path)
        self.steps = [("", plan.request)]
        if plan.smpl_model:
            stat = os.stat(plan.smpl_model)
            key = hashlib.sha1(f"{os.path.abspath(plan.smpl_model)}|{stat.st_mtime_ns}|{stat.st_size}".encode())
            self.body_path = user_dir("bodies") / f"smpl-{key.hexdigest()[:16]}.npz"
            if not self.body_path.is_file():
                self.steps.append(("Reading the SMPL body…",
                                   SmplMeshRequest(model=plan.smpl_model, output=str(self.body_path))))

    def _init_state(self, plan, python_path: str) -> None:
        """The state every phase starts from (shared with :class:`~.regenerate.EditGeneration`)."""
        from .jobs import SESSION

        self.session, self.plan, self.python_path = SESSION, plan, python_path
        self.steps: list = []
        self.body_path = None
        self.results: list[dict] = []
        self.keys: bridge.Keys | None = None
        self.writer: bridge.ActionWriter | None = None
        self.applied = False
        self.closed = False
        self._failure: M2DError | None = None
        self._thread: threading.Thread | None = None
        self._thread_outcome = None
        self.started = time.monotonic()

    # ------------------------------------------------------------------ state
    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    @property
    def job(self):
        return self.session.job

    @property
    def active(self) -> bool:
        return not self.closed

    @property
    def error(self) -> M2DError | None:
        if self._failure is not None:
            return self._failure
        return self.job.error if self.job is not None else None

    @property
    def cancelled(self) -> bool:
        return isinstance(self.error, Cancelled)

    @property
    def engine_done(self) -> bool:
        return len(self.results) == len(self.steps)

    @property
    def status(self) -> str:
        if not self.engine_done:
            return self.job.status
        return "Writing keys…"

    @property
    def fraction(self) -> float:
        if not self.engine_done:
            return self.job.fraction
        return 1.0

    # ------------------------------------------------------------------ phases
    def start(self) -> "Generation":
        title, request = self.steps[len(self.results)]
        self.session.start(self.python_path, request, title)
        self.session.generation = self
        return self

    def _rest(self):
        if self.plan.target_name is None:
            return rig.rest_matrices()
        return bridge.bone_rest(bpy.data.objects[self.plan.target_name])

    def _prepare_args(self):
        """What phase 2 needs from Blender, read on the main thread."""
        frames = self.plan.frames.frames
        rest, pelvis = (None, None) if self.plan.retarget is not None else self._rest()
        return self.results[0]["output"], frames, self.plan.timing.seconds_at(frames), rest, pelvis

    def _make_keys(self, args):
        """Phase 2, numbers only (runs on a thread): the engine's output as key values."""
        if self.plan.retarget is None:
            return bridge.prepare_keys(*args)
        npz, frames, seconds, _, _ = args
        dance = Dance.load(npz)
        poses, trans = bridge.sample_at_times(dance, seconds)
        contacts = character.sample_contacts(dance.contacts, dance.fps, dance.audio_start, seconds)
        retarget = self.plan.retarget
        return character.character_keys(retarget, character.family_of(retarget.bone_map), frames, poses, trans,
                                        contacts, self.plan.timing.fps, dance.audio_start)

    def _write(self, budget: float | None) -> bool:
        """Phase 3, one slice of at most ``budget`` seconds (all if None); True when every key is written."""
        if self.writer is None:
            name = self.plan.target_name or rig.RIG_NAME
            if self.plan.retarget is None:
                self.writer = bridge.ActionWriter(TAKE_NAME, name, self.keys)
            else:  # the character's other animation (fingers, face …) stays in the new take
                obj = bpy.data.objects.get(name)
                current = obj.animation_data.action if obj is not None and obj.animation_data else None
                self.writer = bridge.SplicedTakeWriter(TAKE_NAME, name, self.keys, current, keep_outside=False)
            return False
        return self.writer.step(budget)

    def _make_keys_on_thread(self, args) -> None:
        try:
            self._thread_outcome = self._make_keys(args)
        except Exception as exc:  # reported on the main thread
            self._thread_outcome = exc

    def poll(self) -> bool:
        """Advance without blocking for long; True once ready for :meth:`finish`, or failed."""
        if self.error is not None:
            return True
        if not self.engine_done:
            if not self.job.poll():
                return False
            if self.job.error is not None:
                return True
            self.results.append(self.job.result)
            if not self.engine_done:
                self.start()
                return False
        if self.keys is None:
            if self._thread is None:
                self._thread = threading.Thread(target=self._make_keys_on_thread, args=(self._prepare_args(),),
                                                daemon=True, name="m2d-keys")
                self._thread.start()
            if self._thread.is_alive():
                return False
            outcome = self._thread_outcome
            if isinstance(outcome, Exception):
                self._failure = outcome if isinstance(outcome, M2DError) else M2DError(
                    f"Could not read the engine's dance ({type(outcome).__name__}: {outcome}).")
                return True
            self.keys = outcome
        try:
            return self._write(self.WRITE_BUDGET)
        except M2DError as exc:
            self._failure = exc
            return True

    def wait(self, on_progress=None) -> None:
        """Run every phase but the last to its end (blocking); raises the first error."""
        while not self.engine_done:
            self.results.append(self.job.wait(on_progress))
            if not self.engine_done:
                self.start()
        self.keys = self._make_keys(self._prepare_args())
        while not self._write(None):
            pass

    def finish(self, context):
        """The last phase: give the take to its armature. Returns (armature, action)."""
        body = load_body(self.body_path) if self.body_path is not None else None
        result = apply(context, self.plan, self.keys, self.writer.action(), body, self.results[0]["output"])
        self.applied = True
        return result

    def cancel(self) -> None:
        if self._failure is None and not self.applied:
            self._failure = Cancelled("Cancelled; nothing was changed.")
        if self.job is not None and not self.job.finished:
            self.job.cancel()

    def _writers(self) -> list:
        return [self.writer] if self.writer is not None else []

    def close(self) -> None:
        """Forget temporary files and an unfinished take; the generation is over."""
        if self.closed:
            return
        self.closed = True
        if not self.applied:
            for writer in self._writers():
                try:
                    writer.discard()
                except ReferenceError:
                    pass
        for path in self.plan.temp_files:
            Path(path).unlink(missing_ok=True)
        if self.session.generation is self:
            self.session.generation = None
