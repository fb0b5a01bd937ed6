"""The ranges of the numbers a user sets for a generation, in one place for every front end.

The engine refuses a value outside them (:class:`inference.generate.DanceGenerator` checks every
request); the Blender extension uses the same numbers as its properties' hard limits, so the panel
cannot hold a value the engine would refuse. NumPy-free: Blender's own Python imports this module.
"""

GUIDANCE_MIN = 0.0
GUIDANCE_MAX = 10.0
"""Classifier-free guidance weight: 0 ignores the music, 2 is typical. Past about 10 the motion breaks up
(joints fly, the dancer drifts off the floor plan) instead of following the music more closely."""
GUIDANCE_SOFT_MAX = 6.0
"""Where the panel's slider ends (typing allows up to :data:`GUIDANCE_MAX`)."""

ETA_MIN, ETA_MAX = 0.0, 1.0
"""DDIM eta: 0 deterministic, 1 as stochastic as DDPM."""

STEPS_MIN = 1
"""Sampling steps; the most is the model's own number of diffusion steps (``M2DConfig.diffusion_steps``)."""
STEPS_SOFT_MAX = 200

SEED_MIN, SEED_MAX = 0, 2**31 - 1
"""Every take records its seed on its Blender action, whose integer properties are 32-bit."""
