"""The Blender side of Music2Dance: a thin skin over the ``inference`` engine.

Modules: ``props`` (settings on ``Scene.m2d`` and ``Object.m2d``), ``preferences``,
``operators``, ``ui``; ``bridge`` turns motion arrays into actions and back,
``pins`` turns the animator's pins into the engine's constraints, ``regenerate``
runs edits (regenerate, in-between, variations),
``rig`` builds the SMPL armature and its body, ``timing`` maps sound strips to
audio times, ``worker_client`` runs the engine in a separate process and
``runtime`` finds or installs the Python packages it needs.
"""

from . import common, jobs, operators, pins, preferences, props, ui


def register():
    props.register()
    preferences.register()
    operators.register()
    ui.register()
    jobs.register()
    pins.register()


def unregister():
    common.stop_redraws()
    pins.unregister()
    jobs.unregister()
    ui.unregister()
    operators.unregister()
    preferences.unregister()
    props.unregister()
