"""Music2Dance: generate a dance for the music in the Video Sequencer (Blender extension).

The repository root is the extension package; the add-on lives in ``m2d_addon``
and the engine it drives in ``inference``.
"""

from .m2d_addon import register, unregister

__all__ = ("register", "unregister")
