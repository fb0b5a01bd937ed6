"""A stick-figure GIF of a dance, for a quick look without Blender.

The camera looks at the dancer from the front-left and slightly above, follows
the root across the floor, and draws a floor grid so that travel shows. Left
limbs are blue, right limbs red.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from . import skeleton as sk
from .files import atomic_path

PREVIEW_FPS = 15
MAX_SECONDS = 60.0
_LEFT, _RIGHT, _CENTRE = (66, 133, 244), (219, 68, 55), (60, 60, 60)


def _bone_colour(j: int):
    name = sk.JOINT_NAMES[j]
    return _LEFT if name.startswith("left") else _RIGHT if name.startswith("right") else _CENTRE


def _camera(azimuth_deg: float, elevation_deg: float) -> np.ndarray:
    """(2, 3) projection onto screen right/up for a camera facing the dancer's front (-y)."""
    az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
    right = np.array([math.cos(az), math.sin(az), 0.0])
    forward = np.array([-math.sin(az), math.cos(az), 0.0])  # horizontal viewing direction
    up = np.array([0.0, 0.0, 1.0]) * math.cos(el) - forward * math.sin(el)
    return np.stack([right, up])


def render_frames(joints: np.ndarray, fps: float, size: int = 320, max_seconds: float = MAX_SECONDS):
    """Draw (N, 24, 3) joint positions as a list of PIL images at :data:`PREVIEW_FPS`."""
    from PIL import Image, ImageDraw

    step = max(1, int(round(fps / PREVIEW_FPS)))
    frames = joints[: int(max_seconds * fps): step]
    proj = _camera(-30.0, 15.0)
    away = -np.cross(proj[0], proj[1])  # viewing direction, for drawing order
    scale = size / 2.6  # metres across the picture
    root_xy = frames[:, 0, :2]
    # The camera follows the root slowly (a moving average), so steps still read as travel.
    k = max(1, int(PREVIEW_FPS))
    kernel = np.ones(k) / k
    follow = np.stack([np.convolve(np.pad(root_xy[:, i], (k // 2, k - 1 - k // 2), mode="edge"), kernel, "valid")
                       for i in range(2)], axis=1)
    images = []
    for i, pose in enumerate(frames):
        img = Image.new("RGB", (size, size), (245, 245, 240))
        draw = ImageDraw.Draw(img)
        centre = np.array([follow[i, 0], follow[i, 1], 0.9])

        def to_px(p):
            uv = proj @ (p - centre)
            return (size / 2 + uv[0] * scale, size * 0.55 - uv[1] * scale)

        gx, gy = np.floor(follow[i]).astype(int)
        for g in range(-3, 4):  # floor grid, 1 m squares
            for a, b in (((gx + g, gy - 3, 0), (gx + g, gy + 3, 0)), ((gx - 3, gy + g, 0), (gx + 3, gy + g, 0))):
                draw.line([to_px(np.array(a, float)), to_px(np.array(b, float))], fill=(215, 215, 205), width=1)
        shadow = [to_px(np.array([p[0], p[1], 0.0])) for p in pose]
        for j in range(1, sk.NUM_JOINTS):
            draw.line([shadow[sk.PARENTS[j]], shadow[j]], fill=(200, 200, 190), width=3)
        for j in sorted(range(1, sk.NUM_JOINTS), key=lambda j: -(away @ pose[j])):  # far bones first
            draw.line([to_px(pose[sk.PARENTS[j]]), to_px(pose[j])], fill=_bone_colour(j), width=4)
        head = to_px(pose[sk.JOINT_INDEX["head"]])
        draw.ellipse([head[0] - 7, head[1] - 7, head[0] + 7, head[1] + 7], outline=_CENTRE, width=3)
        draw.text((6, 4), f"{i * step / fps:5.1f} s", fill=(90, 90, 90))
        images.append(img.convert("P", palette=Image.Palette.ADAPTIVE, colors=16))
    return images


def write_gif(joints: np.ndarray, path, fps: float, size: int = 320, max_seconds: float = MAX_SECONDS) -> Path:
    """Write a looping stick-figure GIF of (N, 24, 3) joints; returns the path. Atomic."""
    path = Path(path)
    images = render_frames(joints, fps, size=size, max_seconds=max_seconds)
    with atomic_path(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                       duration=int(round(1000 / PREVIEW_FPS)), loop=0, optimize=False)
    return path


def write_strip(joints: np.ndarray, path, fps: float, count: int = 8, seconds: float = 4.0, size: int = 200) -> Path:
    """Write a PNG of ``count`` poses side by side, evenly spread over the first ``seconds``. Atomic."""
    from PIL import Image

    path = Path(path)
    images = render_frames(joints, fps, size=size, max_seconds=seconds)
    picks = np.linspace(0, len(images) - 1, count).round().astype(int)
    strip = Image.new("RGB", (size * count, size), (245, 245, 240))
    for k, i in enumerate(picks):
        strip.paste(images[i].convert("RGB"), (k * size, 0))
    with atomic_path(path) as tmp:
        strip.save(tmp, format="PNG")
    return path
