"""The numbers a user sets: one range each (:mod:`inference.settings`), refused outside it by the engine
with a message naming the setting, and a NaN that a setting caused never blamed on the weights."""

from __future__ import annotations

import numpy as np
import pytest

from inference import settings as st
from inference.errors import M2DError
from inference.generate import DanceGenerator


@pytest.fixture(scope="module")
def generator(tiny_weights):
    return DanceGenerator(tiny_weights, device="cpu")


@pytest.fixture
def music(generator):
    return np.zeros((60, generator.config.music_dim), np.float32)


@pytest.mark.parametrize("setting, message", [
    ({"guidance": float("inf")}, "Guidance must be between 0 and 10"),
    ({"guidance": 1e6}, "Guidance must be between 0 and 10"),
    ({"guidance": st.GUIDANCE_MAX + 0.5}, "got 10.5"),
    ({"guidance": -0.1}, "Guidance must be between 0 and 10"),
    ({"eta": 1.5}, "eta must be between 0"),
    ({"steps": 0}, "Sampling steps must be a whole number from 1 to 1000"),
    ({"seed": st.SEED_MAX + 1}, "seed must be a whole number from 0 to 2147483647"),
    ({"seed": -1}, "seed must be a whole number"),
    ({"seed": 2**70}, "seed must be a whole number"),
])
def test_settings_outside_their_range_are_refused(generator, music, setting, message):
    with pytest.raises(M2DError, match=message):
        generator.generate_from_features(music, **setting)


def test_the_ends_of_each_range_are_accepted(generator, music):
    dance = generator.generate_from_features(music, sampler="ddim", guidance=st.GUIDANCE_MAX, eta=st.ETA_MAX,
                                             steps=st.STEPS_MIN, seed=st.SEED_MAX, beat_snap=False, foot_lock=False)
    assert np.isfinite(dance.smpl_trans).all() and int(dance.extras["seed"]) == st.SEED_MAX
    assert np.abs(dance.smpl_trans[:, :2]).max() < 50.0  # metres: the dancer stays on the stage


@pytest.fixture
def nan_sampler(monkeypatch, generator):
    """A sampler whose motion holds NaN, whatever the cause."""
    import inference.generate as gen

    def sample(model, music, **kwargs):
        return np.full((len(music), generator.config.motion_dim), np.nan, np.float32)

    monkeypatch.setattr(gen, "sample_dance", sample)


def test_nan_after_a_changed_setting_names_the_setting_not_the_weights(generator, music, nan_sampler):
    with pytest.raises(M2DError) as info:
        generator.generate_from_features(music, guidance=9.5)
    message = str(info.value)
    assert "guidance 9.5" in message and "default is 2" in message and "nearer the defaults" in message
    assert "weights" not in message


def test_nan_at_default_settings_points_at_the_weights(generator, music, nan_sampler):
    with pytest.raises(M2DError, match="default settings. The weights may be damaged"):
        generator.generate_from_features(music)
