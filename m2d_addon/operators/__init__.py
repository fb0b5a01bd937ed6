"""Operators: the scripting API of Music2Dance, one module per concern.

``engine`` runs the engine (generate, regenerate, in-between, variations, cancel); ``pinning``
adds, updates and exports pins; ``takes`` switches, removes and exports takes (FBX, BVH, GLB);
``install`` gets and checks the engine's Python packages.

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

* ``bpy.ops.m2d.export(filepath=..., format='FBX'|'BVH'|'GLB', preset='GENERIC'|'UNITY'|'UNREAL',
  root_motion=True)`` — the active dancer (SMPL armature or character) and its active take; FBX and GLB
  with the meshes it deforms, BVH the armature's motion. ``root_motion=False``: in place, the hips'
  travel on the floor moved to the rig's root bone or removed (the take itself is not changed). The
  file is written whole or not at all. ``bpy.ops.m2d.export_fbx(filepath=..., preset=...)``: the same
  as FBX.
* ``bpy.ops.m2d.remove_take(index=-1)`` — drop a take from the active armature's list.
* ``bpy.ops.m2d.install_runtime()`` / ``bpy.ops.m2d.check_runtime()`` — the engine's Python packages
  (from the internet, or offline from ``preferences.wheels_path``); ``bpy.ops.m2d.open_install_log()``.

The operators that run the engine run in the background from the panel (modal, never blocking) and
to their end from scripts and in background mode. Bad input: a report, ``{'CANCELLED'}`` and nothing
changed. One Ctrl+Z undoes each.
"""

import bpy

from . import character, engine, install, pinning, takes

classes = (*engine.classes, *pinning.classes, *character.classes, *takes.classes, *install.classes)
register, unregister = bpy.utils.register_classes_factory(classes)
