"""The Blender side of Music2Dance: a thin skin over the ``inference`` engine.

Modules: ``props`` (settings on ``Scene.m2d`` and ``Object.m2d``), ``preferences``,
``operators`` (a package: engine, pinning, character, takes, install), ``ui`` and ``character_ui``;
``bridge`` turns motion arrays into actions and back, ``character`` carries the dance onto the
animator's own armature (bone map, keys, edits),
``pins`` turns the animator's pins into the engine's constraints and ``pin_display``
shows them (markers, bone colours, a band in time editors), ``regenerate``
runs edits (regenerate, in-between, variations),
``rig`` builds the SMPL armature and its body, ``timing`` maps sound strips to
audio times, ``worker_client`` runs the engine in a separate process and
``runtime`` finds or installs the Python packages it needs.
"""

from . import character_ui, common, jobs, operators, pin_display, preferences, props, ui


def register():
    props.register()
    preferences.register()
    operators.register()
    ui.register()
    character_ui.register()
    jobs.register()
    pin_display.register()


def unregister():
    common.stop_redraws()
    pin_display.unregister()
    jobs.unregister()
    character_ui.unregister()
    ui.unregister()
    operators.unregister()
    preferences.unregister()
    props.unregister()
