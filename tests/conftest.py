"""Shared fixtures for the engine tests: tiny seeded models, synthetic music and dances."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Before librosa/numba load: compiled kernels go to a cache shared by the test processes.
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(tempfile.gettempdir()) / "m2d-test-numba"))

import numpy as np
import pytest
import soundfile as sf
import torch
from synthetic import SR, SyntheticDances, music_like

from inference.config import TINY_CONFIG
from inference.network.model import DanceDenoiser
from inference.network.weights import save_model


collect_ignore = ["plain_blender"]
"""Runs in a Python with only bpy, where this conftest cannot load: see tests/plain_blender/conftest.py."""


@pytest.fixture(scope="session")
def audio_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("audio")


@pytest.fixture(scope="session")
def song(audio_dir) -> Path:
    """A 12 s 120 BPM synthetic song as WAV."""
    path = audio_dir / "song.wav"
    sf.write(path, music_like(12.0), SR)
    return path


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    """A tiny random (untrained) model, seeded."""
    torch.manual_seed(0)
    return save_model(DanceDenoiser(TINY_CONFIG), tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def trained_tiny(tmp_path_factory) -> Path:
    """A tiny model trained briefly on synthetic dances: smooth, beat-following motion."""
    from inference.training.train import Trainer, TrainSettings

    torch.manual_seed(0)
    config = TINY_CONFIG.replace(width=64, depth=2, heads=4)
    settings = TrainSettings(steps=300, batch_size=16, lr=2e-3, warmup_steps=20, ema_decay=0.95,
                             log_every=100, val_every=300, checkpoint_every=300, stats_windows=256)
    run = tmp_path_factory.mktemp("trained")
    return Trainer(config, SyntheticDances(config), run, settings, torch.device("cpu"), log=lambda m: None).run()


@pytest.fixture(scope="session")
def trained_generator(trained_tiny):
    """A :class:`DanceGenerator` on :func:`trained_tiny`, on the CPU."""
    from inference.generate import DanceGenerator

    return DanceGenerator(trained_tiny, device="cpu")


@pytest.fixture(scope="module")
def generator(trained_generator):
    """:func:`trained_generator` (modules that need another model define their own ``generator``)."""
    return trained_generator


@pytest.fixture(scope="module")
def music(generator):
    """400 frames of synthetic music features for ``generator``."""
    return SyntheticDances(generator.config)._window(np.random.default_rng(5), 400)[1]
