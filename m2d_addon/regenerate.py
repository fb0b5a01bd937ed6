"""Regenerate, in-between and variations: sample again around the pins, as new takes.

Like Generate Dance (:mod:`.generation`), in phases that change nothing until the
last: the plan reads the scene (the current take, the pins, the music) and
writes the engine's constraints file; the worker samples one dance per seed; the
new keys are computed on a thread and written into new, unassigned actions a
slice at a time; only :func:`apply` gives them to the armature as takes.

Modes:

* ``RANGE`` — frames ``a..b`` are sampled again. The engine hears the music from
  up to one model window before ``a`` to one after ``b`` (within the take and the
  strip) with the source take pinned there, so the new motion joins it; the new
  take holds the source's keys outside ``a..b`` bit for bit.
* ``UNPINNED`` — the take's whole span (within the strip) is sampled again around the pins.
* ``INBETWEEN`` — a dance through the poses keyed on the armature (every frame with a
  key on an SMPL bone becomes a pose pin), over the frames Generate Dance would use.

The enabled pins of the armature are met in every mode (in ``RANGE`` mode, their
part inside ``a..b``).
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import bpy
import numpy as np

from ..inference.config import M2DConfig, model_files
from ..inference.errors import M2DError
from ..inference.protocol import TAKE_KEY, GenerateRequest, TakeInfo, generate_command
from ..inference.dance import Dance
from ..inference.settings import SEED_MAX
from . import bridge, character, fbx, generation, pins, timing
from .common import preferences, user_dir
from .generation import TAKE_NAME, add_take, engine_request, sound_path, take_info, weights_path
from .props import chosen_strip, sound_strips

MODES = pins.EDIT_MODES


@dataclass
class EditPlan:
    """Everything an edit needs, captured when it is asked for."""

    mode: str
    target_name: str
    source_name: str | None  # the take edited (None: an armature without animation, in-betweening)
    strip_name: str
    audio_path: str
    timing: timing.StripTiming
    span: timing.FramePlan  # the music the engine hears
    written: tuple  # (first, last) scene frames the new takes get from the engine
    overrides: pins.Overrides
    rest: np.ndarray
    pelvis: np.ndarray
    requests: list[GenerateRequest]  # one per seed
    pinned: int  # the armature's pins met (besides kept stretches and keyed poses)
    temp_files: list = field(default_factory=list)
    retarget: object = None  # a character's Retarget (its floor_shift is the source take's); None for SMPL

    @property
    def seeds(self) -> list[int]:
        return [r.seed for r in self.requests]


def take_frames(action) -> tuple[int, int]:
    """The scene frames a take covers."""
    info = take_info(action)
    if info is not None and info.frames is not None:
        return info.frames
    lo, hi = action.frame_range
    return int(math.floor(lo + 1e-6)), int(math.ceil(hi - 1e-6))


def dancer(context):
    """The active armature (or the armature of the active body mesh), checked; M2DError saying why not."""
    obj = fbx.dancer_of(context.active_object)
    generation.check_target(obj if obj is not None else context.active_object)
    return obj


def edit_target(context):
    """The active armature and its current take (None when it has none)."""
    obj = dancer(context)
    action = obj.animation_data.action if obj.animation_data is not None else None
    return obj, action


def why_not(context) -> str | None:
    """Why an edit cannot start now (cheap checks for buttons), or None."""
    from .jobs import SESSION

    if SESSION.running:
        return "A dance is being generated; wait for it or press Cancel"
    if not sound_strips(context.scene):
        return "Add music to the Video Sequencer first (Add > Sound)"
    try:
        dancer(context)
    except M2DError as exc:
        return str(exc)
    if context.mode not in ("OBJECT", "POSE"):
        return "Switch to Object or Pose Mode"
    return None


def music_strip(context, action):
    """The strip the take was made for when it is still there, else the chosen one."""
    scene = context.scene
    info = take_info(action)
    if info is not None and info.strip:
        strip = next((s for s in sound_strips(scene) if s.name == info.strip), None)
        if strip is not None:
            return strip
    strip = chosen_strip(scene)
    if strip is None:
        raise M2DError(f"There is no sound strip named '{scene.m2d.audio_strip}'.")
    return strip


def model_config(weights: str) -> M2DConfig:
    config = model_files(weights)[1]
    try:
        return M2DConfig.load(config)
    except (OSError, ValueError) as exc:
        raise M2DError(f"The model's settings {config} cannot be read ({exc}). Reinstall the model.") from None


def _user_specs(obj, lo: int, hi: int, strip_name: str, clip: bool = False) -> list:
    """The armature's enabled pins on scene frames ``lo..hi``: ``clip`` cuts them there, otherwise a pin
    reaching outside is an M2DError."""
    specs = pins.enabled_specs(obj)
    if clip:
        return [c for c in (s.clipped(lo, hi) for s in specs) if c is not None]
    for spec in specs:
        if spec.first < lo or spec.last > hi:
            raise M2DError(f"The pin '{spec.name}' (frames {spec.first}-{spec.last}) lies outside frames {lo}-{hi} "
                           f"of the strip '{strip_name}' that are generated. Edit or disable the pin.")
    return specs


@dataclass(frozen=True)
class _Inputs:
    """What every mode reads: the armature, its current take, the music's strip and the model's settings."""

    obj: object
    source: object  # the current take; None for an armature without animation (in-betweening)
    strip: object
    timing: timing.StripTiming
    config: M2DConfig
    settings: object  # inputs.m2d


@dataclass
class _Edit:
    """What a mode asks of the engine."""

    span: timing.FramePlan  # the music the engine hears
    written: tuple  # (first, last) scene frames the new takes get from the engine
    specs: list  # every pin to meet: the user's and the mode's own
    pinned: int  # how many of them are the user's


def _take_on_strip(inputs: _Inputs) -> tuple[int, int]:
    """Scene frames where the current take and the strip overlap; M2DError when they do not."""
    take, t = take_frames(inputs.source), inputs.timing
    lo, hi = max(take[0], t.first_frame), min(take[1], t.last_frame)
    if lo > hi:
        raise M2DError(f"The take '{inputs.source.name}' (frames {take[0]}-{take[1]}) does not overlap the strip "
                       f"'{inputs.strip.name}' (frames {t.first_frame}-{t.last_frame}). Move the strip or choose "
                       "its take.")
    return lo, hi


def _plan_range(inputs: _Inputs, frame_start: int, frame_end: int) -> _Edit:
    """RANGE: frames a..b again; the engine hears up to a model window more on each side, the take pinned there."""
    lo, hi = _take_on_strip(inputs)
    if frame_start > frame_end:
        raise M2DError(f"The range starts at frame {frame_start}, after its end {frame_end}.")
    if frame_start < lo or frame_end > hi:
        raise M2DError(f"Frames {frame_start}-{frame_end} lie outside the take '{inputs.source.name}' on the "
                       f"strip '{inputs.strip.name}' (frames {lo}-{hi}). Choose frames within them.")
    config = inputs.config
    context_frames = math.ceil(config.window_frames / config.fps * inputs.timing.fps)
    first, last = max(lo, frame_start - context_frames), min(hi, frame_end + context_frames)
    span = timing.plan_frames(inputs.timing, inputs.strip.name, False, first, last)
    user = _user_specs(inputs.obj, frame_start, frame_end, inputs.strip.name, clip=True)
    keep = [(span.first, frame_start - 1), (frame_end + 1, span.last)]
    kept = [pins.PinSpec.keep(f"the take outside frames {frame_start}-{frame_end}", a, b, inputs.source)
            for a, b in keep if a <= b]
    return _Edit(span, (frame_start, frame_end), kept + user, len(user))


def _plan_unpinned(inputs: _Inputs) -> _Edit:
    """UNPINNED: the take's whole span on the strip again, around the pins."""
    lo, hi = _take_on_strip(inputs)
    span = timing.plan_frames(inputs.timing, inputs.strip.name, False, lo, hi)
    user = _user_specs(inputs.obj, lo, hi, inputs.strip.name)
    return _Edit(span, (lo, hi), user, len(user))


def _plan_inbetween(inputs: _Inputs) -> _Edit:
    """INBETWEEN: a dance through the poses keyed on the armature (and its pose pins), on Generate Dance's frames."""
    settings, obj, source = inputs.settings, inputs.obj, inputs.source
    span = timing.plan_frames(inputs.timing, inputs.strip.name, settings.range_mode == "STRIP",
                              settings.frame_start, settings.frame_end)
    written = (span.first, span.last)
    user = _user_specs(obj, *written, inputs.strip.name)
    view = pins.view_of(obj)
    keyed = [f for f in view.keyed_frames(source) if written[0] <= f <= written[1]] if source else []
    if len(keyed) > max(8, (written[1] - written[0] + 1) // 2):
        raise M2DError(f"'{source.name}' is keyed on {len(keyed)} of frames {written[0]}-{written[1]}: "
                       "in-betweening goes through a few key poses. To sample a take again around its pins, "
                       "use Regenerate.")
    quats, loc = view.sample(source, keyed) if keyed else (None, None)
    specs = user + [pins.PinSpec.pose_at(f"key on frame {f}", f, quats[i], loc[i]) for i, f in enumerate(keyed)]
    poses = {s.first for s in specs if s.is_pose}
    if len(poses) < 2:
        raise M2DError(f"Key two or more poses on '{obj.name}' (Pose Mode: pose, select the bones, press I) "
                       f"on frames {written[0]}-{written[1]}, or add pose pins there; "
                       f"found {len(poses)}.")
    return _Edit(span, written, specs, len(user))


def make_plan(context, mode: str, frame_start: int = 0, frame_end: int = 0, count: int = 1) -> EditPlan:
    """Check every input, read the pins and write the constraints file; raises M2DError with the reason.

    ``frame_start``/``frame_end``: the scene frames RANGE samples again; ``count``: seeds Seed, Seed + 1, ….
    """
    reason = why_not(context)
    if reason:
        raise M2DError(reason + ".")
    if mode not in {m[0] for m in MODES}:
        raise M2DError(f"Unknown mode {mode!r}; use one of {', '.join(m[0] for m in MODES)}.")
    if not 1 <= count <= 32:
        raise M2DError(f"Make 1 to 32 variations at a time; {count} were asked for.")
    settings, prefs = context.scene.m2d, preferences(context)
    if settings.seed + count - 1 > SEED_MAX:
        raise M2DError(f"{count} variations need seeds {settings.seed} to {settings.seed + count - 1}, past the "
                       f"largest seed, {SEED_MAX}. Lower Seed in the Dance panel.")
    obj, source = edit_target(context)
    if source is None and mode != "INBETWEEN":
        raise M2DError(f"The armature '{obj.name}' has no take yet. Generate a dance first, then regenerate "
                       "parts of it.")
    view = pins.view_of(obj)
    strip = music_strip(context, source)
    strip_timing = timing.strip_timing(strip, context.scene)
    weights = weights_path(prefs)
    config = model_config(weights)
    inputs = _Inputs(obj, source, strip, strip_timing, config, settings)
    if mode == "RANGE":
        edit = _plan_range(inputs, frame_start, frame_end)
    elif mode == "UNPINNED":
        edit = _plan_unpinned(inputs)
    else:
        edit = _plan_inbetween(inputs)
    span, written, specs = edit.span, edit.written, edit.specs

    fmap = pins.FrameMap(strip_timing, span.audio_start, config.fps, span.last)
    constraints, overrides = pins.build(view, specs, fmap, written, source)
    rest, pelvis = view.rest, view.pelvis
    temp = []
    try:
        constraints_path = None
        if constraints:
            fd, constraints_path = tempfile.mkstemp(prefix="pins-", suffix=".npz", dir=user_dir("work"))
            os.close(fd)
            temp.append(constraints_path)
            constraints.save(constraints_path)
        audio, audio_is_temporary = sound_path(strip)
        if audio_is_temporary:
            temp.append(audio)
        requests = []
        for i in range(count):
            fd, output = tempfile.mkstemp(prefix="dance-", suffix=".npz", dir=user_dir("work"))
            os.close(fd)
            temp.append(output)
            requests.append(engine_request(settings, audio, span, weights, output, settings.seed + i,
                                           constraints_path))
    except BaseException:
        for path in temp:
            Path(path).unlink(missing_ok=True)
        raise
    return EditPlan(mode=mode, target_name=obj.name, source_name=source.name if source else None,
                    strip_name=strip.name, audio_path=bpy.path.abspath(strip.sound.filepath), timing=strip_timing,
                    span=span, written=written, overrides=overrides, rest=rest, pelvis=pelvis, requests=requests,
                    pinned=edit.pinned, temp_files=temp, retarget=getattr(view, "retarget", None))


def prepare_keys(npz_path, plan: EditPlan):
    """The new keys on the written frames (numbers only: runs on a thread).

    On a character the pinned SMPL values are carried over as they are (a pinned pose comes back as
    it was posed); feet are corrected only away from pinned legs, the hips away from a pinned root.
    """
    frames = np.arange(plan.written[0], plan.written[1] + 1)
    seconds = plan.timing.seconds_at(frames)
    keys = bridge.prepare_keys(npz_path, frames, seconds, plan.rest, plan.pelvis)
    quats, loc = plan.overrides.apply(keys.quats, keys.loc, keys.trans)
    if plan.retarget is None:
        return bridge.Keys(keys.frames, quats, loc, keys.rest, keys.pelvis, keys.poses, keys.trans,
                           keys.audio_start)
    poses, trans = bridge.smpl_from_channels(quats, loc, plan.rest, plan.pelvis)
    dance = Dance.load(npz_path)
    contacts = character.sample_contacts(dance.contacts, dance.fps, dance.audio_start, seconds)
    retarget = plan.retarget
    return character.character_keys(retarget, character.family_of(retarget.bone_map), frames, poses, trans,
                                    contacts, plan.timing.fps, keys.audio_start,
                                    hold=character.hold_weights(plan.overrides, plan.timing.fps),
                                    floor_shift=retarget.floor_shift)


def apply(context, plan: EditPlan, actions: list):
    """Give the new takes to the armature; the first becomes current. Returns (armature, first action)."""
    obj = bpy.data.objects.get(plan.target_name)
    if obj is None:
        raise M2DError(f"The armature '{plan.target_name}' was removed while its takes were being made.")
    view = pins.view_of(obj)
    changed = not (np.allclose(view.rest, plan.rest, atol=1e-5) and np.allclose(view.pelvis, plan.pelvis, atol=1e-6))
    if plan.retarget is not None:
        now, before = view.retarget.character, plan.retarget.character
        changed = changed or now.bone_names != before.bone_names or not np.allclose(now.rest, before.rest, atol=1e-5) \
            or not np.allclose(now.world, before.world, atol=1e-6) or now.rotation_modes != before.rotation_modes
    if changed:
        raise M2DError(f"The rest pose of '{obj.name}' changed while its takes were being made. Nothing was "
                       "changed; regenerate again.")
    source = bpy.data.actions.get(plan.source_name) if plan.source_name else None
    take = take_frames(source) if source is not None else plan.written
    for action, request in zip(actions, plan.requests):
        action[TAKE_KEY] = TakeInfo.of_request(
            request, audio=plan.audio_path, strip=plan.strip_name, audio_start=float(plan.span.audio_start),
            frame_start=int(min(take[0], plan.written[0])), frame_end=int(max(take[1], plan.written[1])),
            fps=float(plan.timing.fps), mode=plan.mode, regenerated=tuple(plan.written),
            source=plan.source_name or "", pins=int(plan.pinned),
            floor_shift=float(plan.retarget.floor_shift) if plan.retarget is not None else 0.0,
        ).to_dict()
    for action in actions:
        add_take(obj, action)
    first = len(obj.m2d.takes) - len(actions)
    obj.m2d.active_take = first  # assigns it
    bridge.assign_action(obj, actions[0])
    return obj, actions[0]


class EditGeneration(generation.Generation):
    """An edit in flight: the engine requests (one per seed), then the keys and the new takes."""

    def __init__(self, plan: EditPlan, python_path: str):
        self._init_state(plan, python_path)
        n = len(plan.requests)
        self.steps = [(f"Variation {i + 1} of {n}…" if n > 1 else "", r) for i, r in enumerate(plan.requests)]
        self.keys: list[bridge.Keys] | None = None  # one set per seed
        self.writers: list[bridge.SplicedTakeWriter] = []
        self.actions = []

    def _prepare_args(self):
        return None

    def _make_keys(self, _args) -> list:
        return [prepare_keys(r["output"], self.plan) for r in self.results]

    def _new_writer(self, keys) -> bridge.SplicedTakeWriter:
        source = bpy.data.actions.get(self.plan.source_name) if self.plan.source_name else None
        if self.plan.source_name and source is None:
            raise M2DError(f"The take '{self.plan.source_name}' was removed while regenerating. Nothing was "
                           "changed.")
        writer = bridge.SplicedTakeWriter(TAKE_NAME, self.plan.target_name, keys, source)
        self.writers.append(writer)
        return writer

    def _write(self, budget: float | None) -> bool:
        if not self.writers or self.writers[-1].step(budget):
            if len(self.writers) == len(self.keys):
                return True
            self._new_writer(self.keys[len(self.writers)])
        return False

    def finish(self, context):
        result = apply(context, self.plan, [w.action() for w in self.writers])
        self.applied = True
        self.actions = [w.action() for w in self.writers]
        return result

    def summary(self, obj, action) -> str:
        a, b = self.plan.written
        what = {"RANGE": f"frames {a}-{b} regenerated", "UNPINNED": f"frames {a}-{b} regenerated around "
                f"{self.plan.pinned} pin{'s' if self.plan.pinned != 1 else ''}",
                "INBETWEEN": f"in-between on frames {a}-{b}"}[self.plan.mode]
        if len(self.actions) > 1:
            names = ", ".join(x.name for x in self.actions)
            return f"{len(self.actions)} variations on {obj.name} ({names}): {what} in {self.seconds:.1f} s"
        return f"{action.name} on {obj.name}: {what} (seed {self.plan.seeds[0]}) in {self.seconds:.1f} s"

    def _writers(self) -> list:
        return self.writers


def export_constraints(context, filepath: str) -> str:
    """Write the enabled pins as an engine constraints file for the frames Generate Dance would use.

    Returns the command line that generates with it.
    """
    scene, settings = context.scene, context.scene.m2d
    obj, source = edit_target(context)
    view = pins.view_of(obj)
    strip = music_strip(context, source)
    strip_timing = timing.strip_timing(strip, scene)
    span = timing.plan_frames(strip_timing, strip.name, settings.range_mode == "STRIP",
                              settings.frame_start, settings.frame_end)
    config = model_config(weights_path(preferences(context)))
    specs = _user_specs(obj, span.first, span.last, strip.name)
    if not specs:
        raise M2DError(f"'{obj.name}' has no enabled pins to export. Add pins first.")
    fmap = pins.FrameMap(strip_timing, span.audio_start, config.fps, span.last)
    constraints, _ = pins.build(view, specs, fmap, (span.first, span.last))
    path = bpy.path.abspath(filepath)
    if not os.path.isdir(os.path.dirname(path) or "."):
        raise M2DError(f"The folder of {path} does not exist.")
    if not path.lower().endswith(".npz"):
        path += ".npz"
    constraints.save(path)
    audio = bpy.path.abspath(strip.sound.filepath)
    return generate_command(audio, "dance.npz", span.audio_start, span.audio_duration, settings.seed, path)
