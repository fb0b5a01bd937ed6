"""Settings: ``Scene.m2d`` (what to generate) and ``Object.m2d`` (an armature's takes and pins).

Pipelines set these and call ``bpy.ops.m2d.generate()``, e.g.::

    settings = bpy.context.scene.m2d
    settings.audio_strip = "Song"
    settings.seed, settings.sampler, settings.steps = 7, "dpmpp_2m", 20
    bpy.ops.m2d.generate()
"""

import re

import bpy
from bpy.props import (BoolProperty, CollectionProperty, EnumProperty, FloatProperty, FloatVectorProperty,
                       IntProperty, PointerProperty, StringProperty)
from bpy.types import PropertyGroup

from ..inference import settings as st
from ..inference.config import DDIM, DPMPP_2M, SAMPLER_STEPS, M2DConfig, model_files
from ..inference.errors import M2DError
from ..inference.protocol import ANY_STYLE
from . import bridge, pin_display, pins
from .common import model_folder, preferences

def _style_identifier(name: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "_", name.upper()).strip("_") or "STYLE"


_MODEL_STYLES: dict = {}
"""(config.json path, its modification time) -> the styles that model knows: read once, not at every redraw."""
_STYLE_MENUS: dict = {}
"""Styles -> the Style menu's items. Blender reads a dynamic menu's strings from Python, which must keep them."""


def model_styles(context=None) -> tuple:
    """Every style the model in use knows (the Model preference's, else the shipped one), ``any`` first; only
    ``any`` when its settings cannot be read (Generate then says why)."""
    try:
        folder = model_folder(preferences(context))
    except KeyError:  # the extension's preferences not registered (yet, or any more): the menu is drawn anyway
        return (ANY_STYLE,)
    config = model_files(folder)[1]
    try:
        key = (str(config), config.stat().st_mtime_ns)
    except OSError:
        return (ANY_STYLE,)
    if key not in _MODEL_STYLES:
        try:
            _MODEL_STYLES[key] = M2DConfig.load(config).style_choices()
        except (OSError, ValueError):
            _MODEL_STYLES[key] = (ANY_STYLE,)
    return _MODEL_STYLES[key]


def _style_items(self, context):
    """The Style menu: the model's styles, each identifier its name in capitals, each value its style index."""
    choices = model_styles(context)
    if choices not in _STYLE_MENUS:
        items, seen = [], set()
        for i, name in enumerate(choices):
            identifier = _style_identifier(name)
            identifier = identifier if identifier not in seen else f"{identifier}_{i}"
            seen.add(identifier)
            label = "Any" if name == ANY_STYLE else name[:1].upper() + name[1:]
            items.append((identifier, label, "Let the model choose the style from the music" if i == 0
                          else f"Dance {label}", i))
        _STYLE_MENUS[choices] = items
    return _STYLE_MENUS[choices]


def style_name(settings, context=None) -> str:
    """The engine's name of the Style chosen in ``settings`` (``scene.m2d``; "CHA_CHA" -> "cha-cha"); an M2DError
    when the model in use does not know it (a scene saved with another model's style)."""
    choices = model_styles(context)
    identifier = settings.style
    for item in _style_items(settings, context):
        if item[0] == identifier:
            return choices[item[3]]
    raise M2DError(f"The Style chosen in the Dance panel (number {settings.get('style', 0)} of a menu made for "
                   f"another model) is not one the model in use knows ({', '.join(choices)}). Choose a Style in "
                   "the Dance panel.")


def sound_strips(scene) -> list:
    editor = scene.sequence_editor
    if editor is None:
        return []
    return [s for s in editor.strips_all if s.type == "SOUND"]


def _search_strips(self, context, edit_text):
    return [s.name for s in sound_strips(context.scene) if edit_text.lower() in s.name.lower()]


def chosen_strip(scene):
    """The strip named in the settings, else the active sound strip, else the first; or None."""
    settings = scene.m2d
    strips = sound_strips(scene)
    if settings.audio_strip:
        return next((s for s in strips if s.name == settings.audio_strip), None)
    active = scene.sequence_editor.active_strip if scene.sequence_editor else None
    if active is not None and active.type == "SOUND":
        return active
    return min(strips, key=lambda s: (s.frame_final_start, s.channel)) if strips else None


def _sampler_changed(self, context):
    """Steps left at a sampler's usual count follow the sampler to its own."""
    if self.steps in SAMPLER_STEPS.values():
        self.steps = SAMPLER_STEPS[self.sampler]


class M2D_PG_settings(PropertyGroup):
    """What Generate Dance makes: ``scene.m2d``."""

    audio_strip: StringProperty(
        name="Music",
        description="Sound strip of the Video Sequencer to dance to. Empty: the active sound strip, "
                    "else the first one",
        search=_search_strips,
    )
    range_mode: EnumProperty(
        name="Range",
        description="Which frames get a dance",
        items=(
            ("STRIP", "Whole Strip", "Every frame on which the strip is heard"),
            ("RANGE", "Frame Range", "Only the frames from Start to End (within the strip)"),
        ),
        default="STRIP",
    )
    frame_start: IntProperty(name="Start", description="First frame to dance (Frame Range)", default=1)
    frame_end: IntProperty(name="End", description="Last frame to dance (Frame Range)", default=250)
    seed: IntProperty(
        name="Seed", description="Random seed: the same seed and settings give the same dance",
        default=0, min=st.SEED_MIN, max=st.SEED_MAX,
    )
    sampler: EnumProperty(
        name="Sampler",
        description="How the network's predictions are turned into a dance, step by step",
        items=(
            (DDIM, "DDIM", f"The EDGE paper's sampler, {SAMPLER_STEPS[DDIM]} steps: the best dance"),
            (DPMPP_2M, "DPM-Solver++ (fast)", f"DPM-Solver++(2M), {SAMPLER_STEPS[DPMPP_2M]} steps: about 2.5 times "
                                              "faster, a little less varied, quicker turns into key poses; for drafts"),
        ),
        default=DDIM,
        update=_sampler_changed,
    )
    steps: IntProperty(
        name="Steps", description="Sampling steps: more are slower and a little more refined",
        default=SAMPLER_STEPS[DDIM], min=st.STEPS_MIN, max=M2DConfig.diffusion_steps, soft_max=st.STEPS_SOFT_MAX,
    )
    guidance: FloatProperty(
        name="Guidance", description="How strongly the dance follows the music (classifier-free "
                                     f"guidance; 0 ignores the music, 2 is typical, more than "
                                     f"{st.GUIDANCE_MAX:g} breaks the motion up)",
        default=M2DConfig.guidance, min=st.GUIDANCE_MIN, max=st.GUIDANCE_MAX, soft_max=st.GUIDANCE_SOFT_MAX,
    )
    style: EnumProperty(
        name="Style",
        description="Dance style: Any lets the model choose from the music, the others are the styles the "
                    "model in use was trained with (a model trained without styles knows only Any)",
        items=_style_items,
        default=0,
    )
    beat_snap: BoolProperty(
        name="Snap to Beats",
        description="Move the dance's accents onto the music's beats (each by at most 0.1 s; poses and "
                    "pins are unchanged). Off keeps the network's own timing",
        default=True,
    )
    foot_lock: BoolProperty(
        name="Lock Feet",
        description="Hold a foot still while it rests on the floor (the leg bends to keep it there; "
                    "pinned legs are unchanged). Off keeps the network's own feet, which may creep",
        default=True,
    )
    device: EnumProperty(
        name="Device",
        description="Where the network runs",
        items=(
            ("auto", "Automatic", "The GPU when there is one (CUDA or Apple), else the CPU"),
            ("cpu", "CPU", "The processor: works everywhere, slower"),
            ("cuda", "CUDA GPU", "An NVIDIA graphics card"),
            ("mps", "Apple GPU", "The GPU of an Apple silicon Mac"),
        ),
        default="auto",
    )
    edit_start: IntProperty(name="Start", description="First frame that Regenerate Range samples again",
                            default=1)
    edit_end: IntProperty(name="End", description="Last frame that Regenerate Range samples again", default=60)
    variations: IntProperty(name="Variations", description="How many alternatives Variations makes (seeds "
                                                           "Seed, Seed + 1, …)", default=3, min=1, max=32)
    variation_mode: EnumProperty(name="Of", description="What each variation samples", items=pins.EDIT_MODES,
                                 default="RANGE")
    pin_markers: StringProperty(name="Pin Markers", description="The timeline markers that show pins "
                                                                "(made and removed by Music2Dance)",
                                options={"HIDDEN"})
    target: EnumProperty(
        name="Armature",
        description="Which armature receives the dance",
        items=(
            ("NEW", "New", "Create a new SMPL armature with a body"),
            ("SELECTED", "Selected", "The active armature: Music2Dance's SMPL armature, or your own humanoid "
                                     "character (Mixamo, Rigify, Unreal mannequin, VRM …; its bones are mapped "
                                     "to SMPL's, see the Character panel)"),
        ),
        default="NEW",
    )


def _use_take(self, context):
    from ..inference.protocol import TAKE_KEY
    from . import rig

    if 0 <= self.active_take < len(self.takes):
        action = self.takes[self.active_take].action
        if action is not None:
            obj = self.id_data
            if not rig.missing_bones(obj):  # an SMPL armature: takes in quaternions, its own action as it was
                if action.get(TAKE_KEY) is not None:
                    rig.use_quaternions(obj)
                else:
                    rig.restore_rotation_modes(obj)
            bridge.assign_action(obj, action)


class M2D_PG_take(PropertyGroup):
    """One generated dance (an action) of an armature."""

    action: PointerProperty(name="Action", description="The take's action", type=bpy.types.Action)


def _pin_changed(self, context):
    pin_display.refresh(self.id_data)


class M2D_PG_pin(PropertyGroup):
    """What the animator keeps when the dance is sampled again (see :mod:`.pins`)."""

    name: StringProperty(name="Name", description="The pin's name (its timeline markers carry it)",
                         update=_pin_changed)
    enabled: BoolProperty(name="Enabled", description="Met when regenerating; disabled pins are kept but "
                                                      "ignored", default=True, update=_pin_changed)
    kind: EnumProperty(name="Kind", description="What the pin keeps", items=pins.KINDS, default="POSE",
                       update=_pin_changed)
    frame_start: IntProperty(name="Start", description="The pose's frame, or the first frame of the range",
                             update=_pin_changed)
    frame_end: IntProperty(name="End", description="The last frame of the range (not used by pose pins)",
                           update=_pin_changed)
    bones: StringProperty(name="Bones", description="SMPL bones whose rotations a Bones pin keeps, separated "
                                                    "by commas (group names such as legs work too)",
                          update=_pin_changed)
    horizontal_only: BoolProperty(name="Floor Only", description="Root Path pins: keep only the path on the "
                                                                 "floor (x and y); the height is free")
    action: PointerProperty(name="Take", description="The take whose animation a range pin keeps",
                            type=bpy.types.Action)
    pose: FloatVectorProperty(name="Pose", description="Pose pins: the bones' rotation quaternions, SMPL order",
                              size=(24, 4))
    location: FloatVectorProperty(name="Root Location", description="Pose pins: the root bone's location",
                                  size=3)


def _search_bones(self, context, edit_text):
    obj = self.id_data
    names = [b.name for b in obj.data.bones] if obj is not None and obj.type == "ARMATURE" else []
    return [n for n in names if edit_text.lower() in n.lower()]


def _bone_edited(self, context):
    obj = self.id_data
    if obj is not None and obj.m2d.bone_map_family != "CUSTOM":
        obj.m2d.bone_map_family = "CUSTOM"


class M2D_PG_bone(PropertyGroup):
    """One row of a character's bone map: which of its bones plays an SMPL joint."""

    joint: StringProperty(name="Joint", description="The SMPL joint (pelvis, left_hip …)")
    bone: StringProperty(name="Bone", description="The armature's bone that plays this joint; empty: none "
                                                  "(the joint's motion is carried by its parent's bone)",
                         search=_search_bones, update=_bone_edited)


class M2D_PG_rig(PropertyGroup):
    """An armature's takes and pins: ``object.m2d``."""

    takes: CollectionProperty(name="Takes", description="Dances generated for this armature",
                              type=M2D_PG_take)
    active_take: IntProperty(name="Take", description="The take the armature plays; choose one to "
                                                      "switch to it", default=0, min=0, update=_use_take)
    is_dancer: BoolProperty(name="Dancer", description="Made by Music2Dance", default=False)
    bone_map: CollectionProperty(name="Bone Map", description="SMPL joint -> this armature's bone: how the "
                                 "dance is carried onto a character", type=M2D_PG_bone)
    active_bone: IntProperty(name="Joint", description="The row selected in the bone map", default=0, min=0)
    own_rotation_modes: StringProperty(name="Own Rotation Modes", description="The rotation modes the SMPL "
                                       "bones had before a take switched them to quaternions (restored when the "
                                       "armature's own action plays again)")
    bone_map_family: StringProperty(name="Rig", description="The rig table the bone map came from (MIXAMO, UE5 "
                                    "…), NAMES for the name matcher, CUSTOM once edited")
    pins: CollectionProperty(name="Pins", description="What regenerating keeps", type=M2D_PG_pin)
    active_pin: IntProperty(name="Pin", description="The pin selected in the list", default=0, min=0)
    pin_bone_colors: StringProperty(name="Bone Colours", description="The bone colours that pinned bones had "
                                                                    "(restored when unpinned)",
                                    options={"HIDDEN"})


classes = (M2D_PG_settings, M2D_PG_take, M2D_PG_pin, M2D_PG_bone, M2D_PG_rig)
_register_classes, _unregister_classes = bpy.utils.register_classes_factory(classes)


def register():
    _register_classes()
    bpy.types.Scene.m2d = PointerProperty(type=M2D_PG_settings, name="Music2Dance",
                                          description="Music2Dance generation settings")
    bpy.types.Object.m2d = PointerProperty(type=M2D_PG_rig, name="Music2Dance",
                                           description="Music2Dance takes of this armature")


def unregister():
    del bpy.types.Object.m2d
    del bpy.types.Scene.m2d
    _unregister_classes()
