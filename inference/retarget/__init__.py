"""An SMPL dance on any humanoid character: bone maps, the transfer of poses, planted feet.

NumPy and the standard library only: Blender's own process uses it.
"""
