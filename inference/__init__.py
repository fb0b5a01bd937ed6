"""Music2Dance engine: music features, the EDGE-style diffusion model, sampling with pins.

Pure Python + PyTorch; never imports ``bpy``. Importing this package is cheap
and needs only NumPy (Blender's own Python uses :mod:`inference.skeleton`);
the names below load their modules, and PyTorch, on first use.

Sub-packages follow a dance through its stages: :mod:`.music` (audio, features)
-> :mod:`.network` (model, weights) -> :mod:`.sampling` (DDIM, the sampler, pins)
-> :mod:`.cleanup` (silence, limits, beat snap, foot lock) -> a
:class:`~inference.dance.Dance`. Shared basics (skeleton, motion, config, analysis,
protocol, ...) and the entry points (generate, worker, cli, preview) sit on top;
:mod:`.training` and :mod:`.evaluation` are for development and are not part of
the Blender extension.

Typical use::

    from inference import DanceGenerator
    dance = DanceGenerator().generate("song.mp3", seed=1)
    dance.save("dance.npz")
"""

import importlib

_EXPORTS = {
    "DanceGenerator": "generate",
    "Dance": "dance",
    "Constraints": "sampling.constraints",
    "M2DConfig": "config",
    "M2DError": "errors",
    "Cancelled": "errors",
    "load_model": "network.weights",
    "save_model": "network.weights",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
