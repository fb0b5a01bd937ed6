"""The traced denoiser the sampler uses on the CPU: the same numbers as the model, and never stale."""

from __future__ import annotations

import logging

import numpy as np
import torch

import inference.sampling.sampler as sampler_module
from inference.config import DPMPP_2M, TINY_CONFIG
from inference.network import traced
from inference.network.model import DanceDenoiser, MusicContext
from inference.network.traced import TracedDenoiser, sampling_denoiser
from inference.sampling.sampler import sample_dance

CPU = torch.device("cpu")


def inputs(model: DanceDenoiser, windows: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    c = model.config
    music = torch.randn(windows, c.window_frames, c.music_dim, generator=g)
    context = MusicContext.cat(model.music_context(model.encode_music(music)),
                               model.music_context(model.null_tokens(windows, c.window_frames)))
    x = torch.randn(2 * windows, c.window_frames, c.motion_dim, generator=g)
    t = torch.randint(0, c.diffusion_steps, (2 * windows,), generator=g)
    return x, t, context


def tiny_model() -> DanceDenoiser:
    torch.manual_seed(0)
    return DanceDenoiser(TINY_CONFIG.replace(width=64, depth=2, heads=4)).eval()


def test_traced_equals_the_model_for_every_chunk_size():
    model = tiny_model()
    fast = sampling_denoiser(model, CPU)
    assert isinstance(fast, TracedDenoiser) and sampling_denoiser(model, CPU) is fast  # kept with the model
    with torch.inference_mode():
        for windows in (3, 1, 3, 2):
            x, t, context = inputs(model, windows, seed=windows)
            torch.testing.assert_close(fast(x, t, context), model.denoise(x, t, context), rtol=0, atol=1e-6)
    assert len(fast._graphs) == 1  # one graph serves every chunk size


def test_weights_changed_in_place_are_followed():
    model = tiny_model()
    fast = sampling_denoiser(model, CPU)
    with torch.inference_mode():
        x, t, context = inputs(model, 2)
        before = fast(x, t, context)
    with torch.no_grad():
        model.motion_out.weight.mul_(0.5)  # as an EMA update or load_state_dict would
    with torch.inference_mode():
        after = fast(x, t, context)
        expected = model.denoise(x, t, context)
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, expected, rtol=0, atol=1e-6)


def test_weights_made_in_inference_mode_are_not_traced():
    with torch.inference_mode():
        model = tiny_model()
        fast = sampling_denoiser(model, CPU)
        x, t, context = inputs(model, 2)
        torch.testing.assert_close(fast(x, t, context), model.denoise(x, t, context), rtol=0, atol=0)
    assert not fast._graphs


def test_not_traced_while_training_or_off_the_cpu_or_for_another_denoise():
    model = tiny_model()
    model.train()
    assert sampling_denoiser(model, CPU) == model.denoise
    model.eval()
    assert sampling_denoiser(model, torch.device("cuda")) == model.denoise

    class Other(DanceDenoiser):
        def denoise(self, x_t, t, context):
            return x_t

    other = Other(TINY_CONFIG).eval()
    assert sampling_denoiser(other, CPU) == other.denoise


def test_sampling_gives_the_dance_the_model_gives(monkeypatch):
    """Same seed, same dance, traced or not (DDIM and DPM-Solver++, two chunks of different sizes)."""
    model = tiny_model()
    music = np.random.default_rng(1).normal(size=(900, model.config.music_dim)).astype(np.float32)
    fast = [sample_dance(model, music, seed=2, steps=4, **kw) for kw in ({}, {"sampler": DPMPP_2M})]
    assert len(sampling_denoiser(model, CPU)._graphs) == 1
    monkeypatch.setattr(sampler_module, "sampling_denoiser", lambda m, device: m.denoise)
    eager = [sample_dance(model, music, seed=2, steps=4, **kw) for kw in ({}, {"sampler": DPMPP_2M})]
    for a, b in zip(fast, eager):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)


def test_a_failed_trace_falls_back_to_the_model(monkeypatch, caplog):
    model = tiny_model()

    def broken(*args, **kwargs):
        raise RuntimeError("tracing is not supported here")

    monkeypatch.setattr(traced.torch.jit, "trace", broken)
    fast = sampling_denoiser(model, CPU)
    with torch.inference_mode(), caplog.at_level(logging.WARNING, logger=traced.__name__):
        x, t, context = inputs(model, 2)
        torch.testing.assert_close(fast(x, t, context), model.denoise(x, t, context), rtol=0, atol=0)
        fast(x, t, context)
    assert [r.getMessage() for r in caplog.records if "traced" in r.getMessage()] == [
        "Sampling without a traced network (RuntimeError: tracing is not supported here); it is a little slower."]
