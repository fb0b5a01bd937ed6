"""The EDGE-style denoiser: a transformer that predicts clean motion from noisy motion and music.

Structure (Tseng et al., "EDGE", CVPR 2023, section 3.2 and figure 2):

* music features -> linear -> a small transformer encoder -> music tokens;
* diffusion time -> sinusoidal embedding -> MLP -> (a) a FiLM vector, to which a
  pooled summary of the music is added, and (b) two extra time tokens;
* motion -> linear -> decoder layers, each: self-attention, cross-attention to
  [time tokens, music tokens], feed-forward; every sub-layer's output is
  FiLM-modulated (scale and shift) by the time/music vector;
* rotary position embeddings (Su et al. 2021) in every attention; in the
  cross-attention the music keys carry their frame positions, so a motion frame
  knows which music frame it faces;
* the music's share of every cross-attention (its keys and values) does not
  depend on the diffusion step, so sampling computes it once
  (:meth:`DanceDenoiser.music_context`), not at every step;
* a learned null music condition for classifier-free guidance (Ho & Salimans 2022);
* where the config names styles, a learned style embedding added to the FiLM vector
  (index 0 the null style, "any"), trained with style dropout as the music is
  with condition dropout.

Normalisation statistics of motion and music are buffers of the model, so they
are saved and loaded with the weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import M2DConfig

TIME_TOKENS = 2


class RotaryEmbedding(nn.Module):
    """cos/sin tables for rotary position embeddings over one head's width."""

    def __init__(self, head_dim: int, base: float = 10000.0):
        super().__init__()
        inv_freq = 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, positions: torch.Tensor):
        """(L,) positions -> cos, sin of shape (L, head_dim)."""
        angles = positions.to(self.inv_freq.dtype)[:, None] * self.inv_freq[None, :]
        angles = torch.cat([angles, angles], dim=-1)
        return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate (B, H, L, Dh) by positions encoded in (L, Dh) tables (rotate-half form)."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos.to(x.dtype) + rotated * sin.to(x.dtype)


class Attention(nn.Module):
    """Multi-head attention with optional rotary positions on queries and keys."""

    def __init__(self, width: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(width, width)
        self.to_kv = nn.Linear(width, 2 * width)
        self.out = nn.Linear(width, width)
        self.dropout = dropout

    def _split(self, x):  # (B, L, W) -> (B, H, L, Dh)
        b, length, w = x.shape
        return x.view(b, length, self.heads, w // self.heads).transpose(1, 2)

    def keys_values(self, context, rope_k=None):
        """(B, L, W) context -> keys and values, each (B, H, L, Dh); rotary positions on the keys."""
        k, v = (self._split(t) for t in self.to_kv(context).chunk(2, dim=-1))
        return (k if rope_k is None else apply_rotary(k, *rope_k)), v

    def attend(self, x, k, v, rope_q=None):
        q = self._split(self.to_q(x))
        if rope_q is not None:
            q = apply_rotary(q, *rope_q)
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        b, h, length, dh = y.shape
        return self.out(y.transpose(1, 2).reshape(b, length, h * dh))

    def forward(self, x, context, rope_q=None, rope_k=None):
        return self.attend(x, *self.keys_values(context, rope_k), rope_q)


class FeedForward(nn.Sequential):
    def __init__(self, width: int, mult: int, dropout: float):
        super().__init__(nn.Linear(width, width * mult), nn.GELU(), nn.Dropout(dropout),
                         nn.Linear(width * mult, width))


class MusicEncoderLayer(nn.Module):
    """Pre-norm transformer encoder layer over the music frames."""

    def __init__(self, config: M2DConfig):
        super().__init__()
        w = config.width
        self.norm1, self.norm2 = nn.LayerNorm(w), nn.LayerNorm(w)
        self.attn = Attention(w, config.heads, config.dropout)
        self.ff = FeedForward(w, config.ff_mult, config.dropout)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x, rope):
        h = self.norm1(x)
        x = x + self.drop(self.attn(h, h, rope, rope))
        return x + self.drop(self.ff(self.norm2(x)))


class DecoderLayer(nn.Module):
    """Self-attention, cross-attention to time+music tokens and feed-forward, each FiLM-modulated."""

    def __init__(self, config: M2DConfig):
        super().__init__()
        w = config.width
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(w), nn.LayerNorm(w), nn.LayerNorm(w)
        self.self_attn = Attention(w, config.heads, config.dropout)
        self.cross_attn = Attention(w, config.heads, config.dropout)
        self.ff = FeedForward(w, config.ff_mult, config.dropout)
        self.drop = nn.Dropout(config.dropout)
        self.film = nn.Sequential(nn.Mish(), nn.Linear(w, 6 * w))
        nn.init.zeros_(self.film[1].weight)  # starts as the identity modulation
        nn.init.zeros_(self.film[1].bias)

    def forward(self, x, memory_kv, cond, rope_x):
        """``memory_kv``: cross-attention keys and values of [time tokens, music tokens]."""
        # FiLM (Perez et al. 2018): h -> h * (1 + scale) + shift, one pair per sub-layer.
        s1, b1, s2, b2, s3, b3 = self.film(cond)[:, None, :].chunk(6, dim=-1)
        h = self.norm1(x)
        x = x + self.drop(self.self_attn(h, h, rope_x, rope_x)) * (1 + s1) + b1
        x = x + self.drop(self.cross_attn.attend(self.norm2(x), *memory_kv, rope_x)) * (1 + s2) + b2
        return x + self.drop(self.ff(self.norm3(x))) * (1 + s3) + b3


@dataclass
class MusicContext:
    """Everything the denoiser needs from the music that does not change between diffusion steps.

    Computed once per sampling run by :meth:`DanceDenoiser.music_context`; all
    tensors are batch-first, so contexts concatenate along the batch.
    """

    pooled: torch.Tensor  # (B, W) summary added to the FiLM vector
    cross_kv: list  # per decoder layer: (keys, values) of the music tokens, (B, H, T, Dh) each

    @staticmethod
    def cat(a: "MusicContext", b: "MusicContext") -> "MusicContext":
        return MusicContext(torch.cat([a.pooled, b.pooled]),
                            [(torch.cat([ka, kb]), torch.cat([va, vb])) for (ka, va), (kb, vb) in
                             zip(a.cross_kv, b.cross_kv)])


def timestep_embedding(t: torch.Tensor, width: int) -> torch.Tensor:
    """Sinusoidal embedding of diffusion steps (Vaswani et al. 2017), (B,) -> (B, width)."""
    half = width // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / (half - 1))
    args = t.float()[:, None] * freqs[None, :]
    return torch.cat([args.sin(), args.cos()], dim=-1)


class DanceDenoiser(nn.Module):
    """Predicts clean (normalised) motion x_0 from x_t, the step t and music tokens."""

    def __init__(self, config: M2DConfig):
        super().__init__()
        self.config = config
        w, d_motion, d_music = config.width, config.motion_dim, config.music_dim
        self.register_buffer("motion_mean", torch.zeros(d_motion))
        self.register_buffer("motion_std", torch.ones(d_motion))
        self.register_buffer("music_mean", torch.zeros(d_music))
        self.register_buffer("music_std", torch.ones(d_music))

        self.rotary = RotaryEmbedding(w // config.heads)
        self.music_in = nn.Linear(d_music, w)
        self.music_encoder = nn.ModuleList(MusicEncoderLayer(config) for _ in range(config.music_depth))
        self.null_music = nn.Parameter(torch.randn(config.window_frames, w) * 0.02)
        self.music_pool = nn.Sequential(nn.LayerNorm(w), nn.Linear(w, w), nn.Mish(), nn.Linear(w, w))
        if config.styles:  # models before styles have no such weights, and load as they were
            self.style_embedding = nn.Embedding(len(config.styles) + 1, w)
            nn.init.normal_(self.style_embedding.weight, std=0.02)

        self.time_mlp = nn.Sequential(nn.Linear(w, 4 * w), nn.Mish())
        self.to_time_cond = nn.Linear(4 * w, w)
        self.to_time_tokens = nn.Linear(4 * w, TIME_TOKENS * w)
        self.memory_norm = nn.LayerNorm(w)

        self.motion_in = nn.Linear(d_motion, w)
        self.decoder = nn.ModuleList(DecoderLayer(config) for _ in range(config.depth))
        self.final_norm = nn.LayerNorm(w)
        self.motion_out = nn.Linear(w, d_motion)

    # ------------------------------------------------------------------ normalisation
    def normalize_motion(self, x):
        return (x - self.motion_mean) / self.motion_std

    def denormalize_motion(self, x):
        return x * self.motion_std + self.motion_mean

    # ------------------------------------------------------------------ conditioning
    def encode_music(self, music: torch.Tensor) -> torch.Tensor:
        """(B, T, music_dim) raw features -> (B, T, width) music tokens.

        The tokens do not depend on the diffusion step: compute them once per sampling run.
        """
        x = self.music_in((music - self.music_mean) / self.music_std)
        rope = self.rotary(torch.arange(x.shape[1], device=x.device))
        for layer in self.music_encoder:
            x = layer(x, rope)
        return x

    def null_tokens(self, batch: int, frames: int) -> torch.Tensor:
        """The learned "no music" condition, (batch, frames, width)."""
        if frames > self.null_music.shape[0]:
            raise ValueError(f"{frames} frames exceed the model's window of {self.null_music.shape[0]}")
        return self.null_music[:frames].unsqueeze(0).expand(batch, -1, -1)

    def music_context(self, music_tokens: torch.Tensor, style: torch.Tensor | None = None) -> MusicContext:
        """(B, T, width) music tokens and (B,) style indices (``config.style_index``; None: the null
        style) -> the step-independent part of every decoder layer's input."""
        memory = self.memory_norm(music_tokens)
        rope = self.rotary(torch.arange(music_tokens.shape[1], device=music_tokens.device))
        kv = [layer.cross_attn.keys_values(memory, rope) for layer in self.decoder]
        pooled = self.music_pool(music_tokens.mean(dim=1))
        if self.config.styles:
            if style is None:
                style = torch.zeros(len(music_tokens), dtype=torch.long, device=music_tokens.device)
            pooled = pooled + self.style_embedding(style.to(music_tokens.device)).to(pooled.dtype)
        elif style is not None and bool((style != 0).any()):
            raise ValueError("this model has no style embedding: only the null style (0, 'any') can be asked of it")
        return MusicContext(pooled, kv)

    # ------------------------------------------------------------------ denoising
    def denoise(self, x_t: torch.Tensor, t: torch.Tensor, context: MusicContext) -> torch.Tensor:
        """Predict x_0.

        Args:
            x_t: (B, T, motion_dim) noisy normalised motion.
            t: (B,) diffusion steps in [0, diffusion_steps).
            context: from :meth:`music_context` of the music tokens (or of :meth:`null_tokens`).
        Returns:
            (B, T, motion_dim) predicted clean normalised motion.
        """
        b, frames, _ = x_t.shape
        time_hidden = self.time_mlp(timestep_embedding(t, self.config.width))  # (B, 4W)
        cond = self.to_time_cond(time_hidden) + context.pooled  # (B, W)
        # Two time tokens join the music in every cross-attention; they carry no position.
        time_tokens = self.memory_norm(self.to_time_tokens(time_hidden).view(b, TIME_TOKENS, -1))
        rope_x = self.rotary(torch.arange(frames, device=x_t.device))
        h = self.motion_in(x_t)
        for layer, (k_music, v_music) in zip(self.decoder, context.cross_kv):
            k_time, v_time = layer.cross_attn.keys_values(time_tokens)
            memory_kv = (torch.cat([k_time, k_music], dim=2), torch.cat([v_time, v_music], dim=2))
            h = layer(h, memory_kv, cond, rope_x)
        return self.motion_out(self.final_norm(h))

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, music_tokens: torch.Tensor,
                style: torch.Tensor | None = None) -> torch.Tensor:
        """Predict x_0 from (B, T, width) music tokens and (B,) style indices (see :meth:`denoise`)."""
        return self.denoise(x_t, t, self.music_context(music_tokens, style))

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
