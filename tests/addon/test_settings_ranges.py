"""The numbers and choices of the Dance panel: hard ranges shared with the engine (:mod:`inference.settings`),
and messages in the panel's words. Each failure leaves the scene exactly as it was."""

from __future__ import annotations

import bpy
import pytest
from addon_helpers import add_strip, generate, snapshot

from inference import settings as st


def fails_with(op, *fragments, **kwargs) -> str:
    before = snapshot()
    with pytest.raises(RuntimeError) as info:
        op(**kwargs)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    assert snapshot() == before
    return message


def test_guidance_cannot_be_set_past_the_engines_range(scene, song, ext):
    """Guidance inf used to become 3.4e38 and be sampled; 1e6 sent the dancer kilometres away."""
    prop = scene.m2d.bl_rna.properties["guidance"]
    assert (prop.hard_min, prop.hard_max, prop.soft_max) == (st.GUIDANCE_MIN, st.GUIDANCE_MAX, st.GUIDANCE_SOFT_MAX)
    for typed in (float("inf"), 1e6, 3.4e38):
        scene.m2d.guidance = typed
        assert scene.m2d.guidance == st.GUIDANCE_MAX
    scene.m2d.guidance = -5.0
    assert scene.m2d.guidance == st.GUIDANCE_MIN
    scene.m2d.guidance = float("inf")
    add_strip(scene, song)
    assert generate() == {"FINISHED"}  # the panel's largest value is one the engine accepts
    info = ext.generation.take_info(bpy.data.objects["Dancer"].animation_data.action)
    assert info.guidance == st.GUIDANCE_MAX


def test_seed_and_steps_ranges_match_the_engine(scene):
    props = scene.m2d.bl_rna.properties
    assert (props["seed"].hard_min, props["seed"].hard_max) == (st.SEED_MIN, st.SEED_MAX)
    assert props["steps"].hard_min == st.STEPS_MIN and props["steps"].hard_max == 1000


def test_variations_past_the_largest_seed_are_refused_before_work(scene, song):
    """Seeds Seed, Seed + 1 …: past 2**31 - 1 a take cannot record its seed (Blender's integers are 32-bit);
    this used to end, after sampling every variation, in an OverflowError traceback."""
    add_strip(scene, song)
    assert generate() == {"FINISHED"}
    bpy.context.view_layer.objects.active = bpy.data.objects["Dancer"]
    scene.m2d.seed = st.SEED_MAX
    message = fails_with(bpy.ops.m2d.variations, "past the largest seed", "Lower Seed in the Dance panel",
                         count=2, mode="UNPINNED")
    assert f"{st.SEED_MAX + 1}" in message
    assert bpy.ops.m2d.variations(count=1, mode="UNPINNED") == {"FINISHED"}  # the largest seed itself works


def test_unavailable_device_names_the_panel_setting(scene, song):
    """The engine's message told the panel's user to "use --device cpu"."""
    import torch

    add_strip(scene, song)
    devices = [d for d, usable in (("mps", torch.backends.mps.is_available()), ("cuda", torch.cuda.is_available()))
               if not usable]
    if not devices:
        pytest.skip("every device is available here")
    for device in devices:
        scene.m2d.device = device
        message = fails_with(generate, "was asked for", "Choose another Device in the Dance panel")
        assert "--device" not in message
