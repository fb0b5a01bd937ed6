"""Training the denoiser: EDGE's losses, condition dropout, EMA weights, checkpoints, logs.

Losses (Tseng et al. 2023, section 3.2, with their weights): clean-motion MSE,
velocity, forward-kinematics joint positions and foot contact (predicted
contact feet must not slide), each step weighted by P2 (Choi et al. 2022).
Optionally (a setting of the run, off by default) a swing-foot term: where the
data's foot is off the floor, the predicted foot joints must match the data's
positions and velocities (lifted as high, stepping as fast); and a planted-foot
term: where the data's foot is planted, the predicted foot joints must move as
the data's do (EDGE's foot loss trusts the network's own contact channel, which
often disagrees with its motion).
Condition dropout replaces the music by the null condition and, independently,
the style by the null style ("any").
Training knows nothing of files: it draws windows from a :class:`WindowSource`
(:mod:`inference.training.data` provides one over the preprocessed cache).
"""

from __future__ import annotations

import copy
import csv
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional, Protocol

import numpy as np
import torch

from .. import motion as mo
from .. import skeleton as sk
from ..config import M2DConfig
from ..device import autocast
from ..errors import DataError
from ..files import atomic_path
from ..network.model import DanceDenoiser
from ..network.weights import save_model
from ..sampling.diffusion import cosine_alpha_bar, q_sample

LOSS_WEIGHTS = {"simple": 0.636, "velocity": 2.964, "fk": 0.646, "foot": 10.942}
"""EDGE's weights for its four loss terms."""
CONTACT_THRESHOLD = 0.95
"""A foot whose predicted contact exceeds this is treated as planted by the foot loss (EDGE)."""
STD_FLOOR = 1e-2
"""Smallest per-dimension standard deviation used for normalisation."""


class WindowSource(Protocol):
    """Where training windows come from."""

    def sample(self, batch: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(B, T, motion_dim) metric motion in the window frame, (B, T, music_dim) features and (B,)
        style indices (``config.style_index``; 0 where the window has none). NaN in the motion marks a
        value the data does not measure: it is left out of the losses."""

    def validation(self) -> Optional[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """A fixed set of held-out windows (as :meth:`sample`), or None."""


@dataclass
class TrainSettings:
    steps: int = 100_000
    batch_size: int = 64
    lr: float = 2e-4
    weight_decay: float = 0.02
    warmup_steps: int = 500
    decay_steps: int = 0
    """The learning rate falls linearly to zero over the last ``decay_steps`` steps (0: constant)."""
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    p2_gamma: float = 0.5
    p2_k: float = 1.0
    seed: int = 0
    log_every: int = 50
    val_every: int = 1000
    checkpoint_every: int = 1000
    stats_windows: int = 2048
    """Windows drawn to estimate the normalisation statistics."""
    swing_weight: float = 0.0
    """Weight of the swing-foot term (0: EDGE's four losses only)."""
    planted_weight: float = 0.0
    """Weight of the planted-foot term (0: off)."""
    planted_root_share: float = 1.0
    """Share of the planted-foot term's gradient that reaches the root's rotation and path (0: the legs alone hold a
    planted foot, by the hips, knees and ankles, rather than by slowing the whole body; the term's value is
    unchanged)."""
    planted_noise_power: float = 1.0
    """The planted-foot term is weighted by alpha_bar_t to this power: above 1 it acts mostly at low noise, where the
    window's broad motion is already set and only the feet's fine motion is left to change."""
    mask_unmeasured: bool = False
    """Leave out of the losses the joints the data's source does not measure (the window source marks them)."""


def fit_normalizer(model: DanceDenoiser, source: WindowSource, windows: int, rng: np.random.Generator) -> None:
    """Set the model's motion and music mean/std buffers from ``windows`` training windows."""
    motion, music = [], []
    drawn = 0
    while drawn < windows:
        m, a, _ = source.sample(min(256, windows - drawn), rng)
        motion.append(m.reshape(-1, m.shape[-1]))
        music.append(a.reshape(-1, a.shape[-1]))
        drawn += len(m)
    motion, music = np.concatenate(motion).astype(np.float64), np.concatenate(music).astype(np.float64)
    with torch.no_grad():
        model.motion_mean.copy_(torch.as_tensor(np.nanmean(motion, 0)))
        model.motion_std.copy_(torch.as_tensor(np.maximum(np.nanstd(motion, 0), STD_FLOOR)))
        model.music_mean.copy_(torch.as_tensor(music.mean(0)))
        model.music_std.copy_(torch.as_tensor(np.maximum(music.std(0), STD_FLOOR)))


def _scale_grad(x: torch.Tensor, share: float) -> torch.Tensor:
    """``x`` in the forward pass; ``share`` of the gradient in the backward pass."""
    return x.detach() + share * (x - x.detach())


def _joints(model: DanceDenoiser, x_norm: torch.Tensor, root_share: float = 1.0) -> torch.Tensor:
    """(B, T, D) normalised motion -> (B, T, 24, 3) joint positions (window frame); ``root_share`` of the gradient
    reaches the root's rotation and path."""
    _, trans, rot6d = mo.unpack(model.denormalize_motion(x_norm))
    if root_share != 1.0:
        trans = _scale_grad(trans, root_share)
        rot6d = torch.cat([_scale_grad(rot6d[..., :1, :], root_share), rot6d[..., 1:, :]], -2)
    return sk.forward_kinematics(sk.rot6d_to_matrix(rot6d), trans)[0]


def _measured_joints(measured: torch.Tensor) -> torch.Tensor:
    """(B, T, D) measured values -> (B, T, 24) joints whose position the data fixes: their own and every
    ancestor's rotation measured (the root's position is always)."""
    _, _, rot = mo.unpack(measured)
    joint = rot.all(-1)  # (B, T, 24)
    placed = [joint[..., 0]]
    for j in range(1, sk.NUM_JOINTS):
        placed.append(placed[sk.PARENTS[j]] & joint[..., sk.PARENTS[j]])  # a joint's position: its parents' rotations
    return torch.stack(placed, -1)


def diffusion_losses(model: DanceDenoiser, x0: torch.Tensor, music: torch.Tensor, t: torch.Tensor,
                     noise: torch.Tensor, drop: torch.Tensor, alpha_bar: torch.Tensor,
                     settings: TrainSettings, style: Optional[torch.Tensor] = None) -> dict[str, torch.Tensor]:
    """EDGE's four losses (and the swing- and planted-foot terms when their weights are set) for a batch of normalised
    clean windows ``x0`` (B, T, D).

    ``drop`` (B,) marks windows trained with the null condition (for guidance); ``style`` (B,) holds
    the style indices, already 0 where the style is dropped.
    """
    measured = torch.isfinite(x0)  # (B, T, D): NaN marks what the data does not measure
    x0 = torch.where(measured, x0, torch.zeros_like(x0))  # the mean, in normalised units
    a = alpha_bar[t].float()  # (B,)
    x_t = q_sample(x0, a[:, None, None], noise)
    core = model.module if hasattr(model, "module") else model  # DistributedDataParallel wraps the network
    with autocast(x0.device):  # the network in mixed precision on CUDA; the losses in fp32
        tokens = core.encode_music(music)
        null = core.null_tokens(len(x0), x0.shape[1])
        tokens = torch.where(drop[:, None, None], null.to(tokens.dtype), tokens)
        pred = model(x_t, t, tokens, style).float()
    model = core
    # P2 weighting (Choi et al. 2022): w = (k + SNR)^-gamma, SNR = a / (1 - a).
    p2 = (settings.p2_k + a / (1 - a)) ** -settings.p2_gamma  # (B,)

    def weighted(err):  # err (B, ...) -> scalar
        return (err.flatten(1).mean(1) * p2).mean()

    simple = weighted((pred - x0) ** 2 * measured)
    steps_measured = measured[:, 1:] & measured[:, :-1]
    velocity = weighted((pred[:, 1:] - pred[:, :-1] - (x0[:, 1:] - x0[:, :-1])) ** 2 * steps_measured)
    joints_pred, joints_true = _joints(model, pred), _joints(model, x0)
    fk = weighted((joints_pred - joints_true) ** 2 * _measured_joints(measured)[..., None])
    contact = model.denormalize_motion(pred)[..., mo.CONTACTS]  # (B, T, 4)
    feet = joints_pred[:, :, list(sk.CONTACT_INDICES)]  # (B, T, 4, 3)
    foot_v = feet[:, 1:] - feet[:, :-1]
    planted = (contact[:, :-1] > CONTACT_THRESHOLD).float()[..., None]
    foot = ((foot_v * planted) ** 2).flatten(1).mean(1).mean()
    losses = {"simple": simple, "velocity": velocity, "fk": fk, "foot": foot}
    if settings.swing_weight > 0 or settings.planted_weight > 0:
        feet_true = joints_true[:, :, list(sk.CONTACT_INDICES)]
        down = model.denormalize_motion(x0)[..., mo.CONTACTS].round().clamp(0, 1)  # (B, T, 4) the data's contacts
        steps_true = feet_true[:, 1:] - feet_true[:, :-1]

        def step_error(steps):  # (B, T-1, 4, 3) -> (B, T-1, 4) squared error of each foot's step
            return ((steps - steps_true) ** 2).sum(-1)

        if settings.swing_weight > 0:
            swing = 1.0 - down
            err = ((feet - feet_true) ** 2).sum(-1) * swing  # (B, T, 4)
            losses["swing"] = weighted(err) + weighted(step_error(foot_v) * swing[:, 1:]) * model.config.fps
        if settings.planted_weight > 0:
            # Both frames of a step planted: the foot is down throughout it. Weighted by alpha_bar (to a power), not
            # P2: where the noise hides which feet are down, asking them to stand still would only calm the dance.
            held = down[:, 1:] * down[:, :-1]
            steps = foot_v
            if settings.planted_root_share != 1.0:  # the same feet, with the root's gradient scaled
                legs = _joints(model, pred, settings.planted_root_share)[:, :, list(sk.CONTACT_INDICES)]
                steps = legs[:, 1:] - legs[:, :-1]
            by_noise = a ** settings.planted_noise_power
            per_window = (step_error(steps) * held).flatten(1).mean(1)
            losses["planted"] = (per_window * by_noise).mean() * model.config.fps ** 2
    return losses


def total_loss(losses: dict[str, torch.Tensor], settings: Optional[TrainSettings] = None) -> torch.Tensor:
    weights = dict(LOSS_WEIGHTS, swing=settings.swing_weight if settings else 0.0,
                   planted=settings.planted_weight if settings else 0.0)
    return sum(weights[k] * v for k, v in losses.items())


@dataclass(frozen=True)
class Distributed:
    """Where this process stands in a ``torchrun`` launch (one process per GPU, or per CPU node)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, env=None) -> "Distributed":
        """Read torchrun's RANK / LOCAL_RANK / WORLD_SIZE (a plain run: one process)."""
        import os

        env = os.environ if env is None else env
        return cls(int(env.get("RANK", 0)), int(env.get("LOCAL_RANK", 0)), int(env.get("WORLD_SIZE", 1)))

    def start(self, device: torch.device) -> torch.device:
        """Join the process group (NCCL on CUDA, gloo on CPU); the device this process trains on."""
        if self.world_size == 1:
            return device
        import torch.distributed as dist

        if device.type == "cuda":
            device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=self.rank,
                                    world_size=self.world_size)
        return device


class Trainer:
    """Owns the model, its EMA copy, the optimiser and the run folder.

    Under ``torchrun`` each process trains a DistributedDataParallel replica on its own
    share of every batch (``batch_size`` is the batch over all processes, so the run
    follows the same schedule as on one machine); the first process validates and writes
    the checkpoints, logs and models, and every process resumes from the same checkpoint.
    """

    def __init__(self, config: M2DConfig, source: WindowSource, run_dir, settings: TrainSettings,
                 device: torch.device, log: Callable[[str], None] = print,
                 distributed: Optional[Distributed] = None):
        self.dist = distributed or Distributed.from_env()
        device = self.dist.start(torch.device(device))
        if settings.batch_size % self.dist.world_size:
            raise DataError(f"The batch size {settings.batch_size} does not split evenly over "
                            f"{self.dist.world_size} processes.")
        self.config, self.source, self.settings, self.device = config, source, settings, device
        self.run_dir = Path(run_dir)
        self.log = log if self.dist.is_main else (lambda message: None)
        torch.manual_seed(settings.seed)  # the same initial weights in every process
        self.rng = np.random.default_rng(settings.seed)
        self.model = DanceDenoiser(config).to(device)
        self.ema = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.net = self.model
        if self.dist.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.net = DistributedDataParallel(self.model, device_ids=[device.index] if device.type == "cuda" else None)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=settings.lr,
                                     weight_decay=settings.weight_decay)
        self.alpha_bar = cosine_alpha_bar(config.diffusion_steps, config.cosine_s).to(device)
        self.step = 0
        self.val_best = math.inf

    def _own_streams(self) -> None:
        """Give every process but the first its own data and noise streams (after the shared start)."""
        if self.dist.rank:
            self.rng = np.random.default_rng([self.settings.seed, self.dist.rank, self.step])
            torch.manual_seed(self.settings.seed + 7919 * self.dist.rank + self.step)

    # ------------------------------------------------------------------ state
    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / "checkpoint.pt"

    def save_checkpoint(self) -> None:
        if not self.dist.is_main:
            return
        state = {"model": self.model.state_dict(), "ema": self.ema.state_dict(),
                 "opt": self.opt.state_dict(), "step": self.step, "val_best": self.val_best,
                 "config": self.config.to_dict(), "settings": asdict(self.settings),
                 "torch_rng": torch.get_rng_state(), "np_rng": self.rng.bit_generator.state}
        with atomic_path(self.checkpoint_path) as tmp:
            torch.save(state, tmp)

    def resume(self, path) -> None:
        """Continue a run from its checkpoint (tensors and plain values only: no code is unpickled)."""
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
        except (OSError, RuntimeError, EOFError) as exc:
            raise DataError(f"Cannot resume from {path}: {exc}") from None
        if not self.config.trains_like(M2DConfig.from_dict(state["config"])):
            raise DataError(f"{path} was trained with a different model config; resume with the same one "
                            "(only sampling defaults may change).")
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.opt.load_state_dict(state["opt"])
        self.step, self.val_best = state["step"], state["val_best"]
        torch.set_rng_state(state["torch_rng"])
        self.rng.bit_generator.state = state["np_rng"]
        self.log(f"resumed from {path} at step {self.step}")

    # ------------------------------------------------------------------ steps
    def _batch(self, motion: np.ndarray, music: np.ndarray, style: np.ndarray):
        x0 = self.model.normalize_motion(torch.as_tensor(motion, dtype=torch.float32, device=self.device))
        return (x0, torch.as_tensor(music, dtype=torch.float32, device=self.device),
                torch.as_tensor(style, dtype=torch.long, device=self.device))

    def _lr(self) -> float:
        s = self.settings
        warm = min(1.0, (self.step + 1) / max(1, s.warmup_steps))
        decay = 1.0
        if s.decay_steps > 0:
            decay = min(1.0, max(0.0, (s.steps - self.step) / s.decay_steps))
        return s.lr * warm * decay

    def train_step(self) -> dict[str, float]:
        s = self.settings
        self.model.train()
        x0, music, style = self._batch(*self.source.sample(s.batch_size // self.dist.world_size, self.rng))
        b = len(x0)
        t = torch.randint(0, self.config.diffusion_steps, (b,), device=self.device)
        noise = torch.randn_like(x0)
        drop = torch.rand(b, device=self.device) < self.config.cond_drop_prob
        if self.config.styles:
            style = torch.where(torch.rand(b, device=self.device) < self.config.style_drop_prob, 0, style)
        else:
            style = None
        for group in self.opt.param_groups:
            group["lr"] = self._lr()
        losses = diffusion_losses(self.net, x0, music, t, noise, drop, self.alpha_bar, s, style)
        loss = total_loss(losses, s)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), s.grad_clip)
        self.opt.step()
        with torch.no_grad():
            decay = min(s.ema_decay, (1 + self.step) / (10 + self.step))
            for e, p in zip(self.ema.parameters(), self.model.parameters()):
                e.lerp_(p, 1 - decay)
            for e, p in zip(self.ema.buffers(), self.model.buffers()):
                e.copy_(p)
        self.step += 1
        return {"loss": loss.item(), **{k: v.item() for k, v in losses.items()},
                "grad_norm": float(grad_norm), "lr": self._lr()}

    @torch.no_grad()
    def validate(self) -> Optional[float]:
        """Mean weighted loss (EDGE's four terms) of the EMA model on the fixed held-out windows (fixed t
        and noise, each window with its own style)."""
        data = self.source.validation()
        if data is None:
            return None
        x0, music, style = self._batch(*data)
        style = style if self.config.styles else None
        gen = torch.Generator().manual_seed(1234)
        t = torch.randint(0, self.config.diffusion_steps, (len(x0),), generator=gen).to(self.device)
        noise = torch.randn(x0.shape, generator=gen).to(self.device)
        drop = torch.zeros(len(x0), dtype=torch.bool, device=self.device)
        total = 0.0
        for a in range(0, len(x0), self.settings.batch_size):
            sl = slice(a, a + self.settings.batch_size)
            losses = diffusion_losses(self.ema, x0[sl], music[sl], t[sl], noise[sl], drop[sl],
                                      self.alpha_bar, self.settings, None if style is None else style[sl])
            total += float(total_loss(losses)) * len(x0[sl])  # EDGE's four terms: runs compare
        return total / len(x0)

    # ------------------------------------------------------------------ the run
    def run(self, resume: Optional[str] = None) -> Path:
        """Train to ``settings.steps``; export the EMA model to ``run_dir/model``. Returns that folder."""
        s = self.settings
        main = self.dist.is_main
        if main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        if resume:
            self.resume(resume)
        else:
            fit_normalizer(self.model, self.source, s.stats_windows, self.rng)
            self.ema.load_state_dict(self.model.state_dict())
        self._own_streams()
        if not main:
            return self._follow()
        (self.run_dir / "settings.json").write_text(json.dumps(
            {"config": self.config.to_dict(), "train": asdict(s), "processes": self.dist.world_size}, indent=2))
        log_path = self.run_dir / "loss.csv"
        fields = ["step", "loss", "simple", "velocity", "fk", "foot", "swing", "planted", "grad_norm", "lr", "val",
                  "seconds"]
        new_log = not (resume and log_path.exists())
        if not new_log:
            _widen_log(log_path, fields)
        with open(log_path, "a" if not new_log else "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            if new_log:
                writer.writeheader()
            started = time.monotonic()
            acc: dict[str, float] = {}
            count = 0
            while self.step < s.steps:
                for k, v in self.train_step().items():
                    acc[k] = acc.get(k, 0.0) + v
                count += 1
                last = self.step == s.steps
                val = self.validate() if (self.step % s.val_every == 0 or last) else None
                if self.step % s.log_every == 0 or last or val is not None:
                    row = {k: acc[k] / count for k in acc}
                    row.update(step=self.step, val=val, seconds=round(time.monotonic() - started, 1))
                    writer.writerow({k: row.get(k) for k in fields})
                    f.flush()
                    self.log(f"step {self.step:>7}  loss {row['loss']:.4f}"
                             + (f"  val {val:.4f}" if val is not None else "")
                             + f"  {row['seconds']:.0f} s")
                    acc, count = {}, 0
                if val is not None and val < self.val_best:
                    self.val_best = val
                    save_model(self.ema, self.run_dir / "best")
                if self.step % s.checkpoint_every == 0 or last:
                    self.save_checkpoint()
        out = save_model(self.ema, self.run_dir / "model")
        plot_losses(log_path, self.run_dir / "loss.png")
        return out

    def _follow(self) -> Path:
        """The steps of a process other than the first: train its share, write nothing."""
        while self.step < self.settings.steps:
            self.train_step()
        return self.run_dir / "model"


def _widen_log(path: Path, fields: list[str]) -> None:
    """Rewrite a resumed run's loss log under ``fields`` if it was written with fewer columns."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames == fields:
            return
        rows = list(reader)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def plot_losses(csv_path, png_path, size=(640, 360)) -> None:
    """Draw the training (and validation) loss curve, log scale, as a PNG."""
    from PIL import Image, ImageDraw

    rows = list(csv.DictReader(open(csv_path)))
    if len(rows) < 2:
        return
    steps = np.array([float(r["step"]) for r in rows])
    series = {"train": np.array([float(r["loss"]) for r in rows])}
    val = [(float(r["step"]), float(r["val"])) for r in rows if r["val"] not in ("", None)]
    w, h = size
    pad = 48
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    values = np.concatenate([series["train"]] + ([np.array([v for _, v in val])] if val else []))
    lo, hi = np.log10(max(values.min(), 1e-8)), np.log10(max(values.max(), 1e-8))
    hi = hi if hi > lo else lo + 1

    def xy(step, value):
        x = pad + (step - steps[0]) / max(1.0, steps[-1] - steps[0]) * (w - 2 * pad)
        y = h - pad - (np.log10(max(value, 1e-8)) - lo) / (hi - lo) * (h - 2 * pad)
        return float(x), float(y)

    draw.rectangle([pad, pad, w - pad, h - pad], outline=(180, 180, 180))
    draw.line([xy(s, v) for s, v in zip(steps, series["train"])], fill=(66, 133, 244), width=2)
    if len(val) > 1:
        draw.line([xy(s, v) for s, v in val], fill=(219, 68, 55), width=2)
    draw.text((pad, 8), "loss (log scale): blue train, red validation", fill="black")
    draw.text((pad, h - pad + 8), f"step {int(steps[0])}", fill="black")
    draw.text((w - pad - 80, h - pad + 8), f"step {int(steps[-1])}", fill="black")
    draw.text((4, pad), f"{10 ** hi:.3g}", fill="black")
    draw.text((4, h - pad - 10), f"{10 ** lo:.3g}", fill="black")
    img.save(png_path)
