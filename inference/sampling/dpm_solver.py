"""DPM-Solver++(2M): a second-order multistep solver of the diffusion ODE for clean-sample predictions.

Lu et al., "DPM-Solver++: Fast Solver for Guided Sampling of Diffusion Probabilistic
Models", 2022, algorithm 2. With alpha_t = sqrt(alpha_bar_t), sigma_t = sqrt(1 - alpha_bar_t)
and lambda_t = log(alpha_t / sigma_t), one step from t to s (h = lambda_s - lambda_t) is

    x_s = (sigma_s / sigma_t) x_t + alpha_s (1 - e^{-h}) D,
    D   = x0_t + (x0_t - x0_prev) / (2 r),   r = h_prev / h,

a first-order step (exactly deterministic DDIM) corrected by the change between the
previous prediction and this one. The first step is first order. As in DDIM, the last
network evaluation is at t = 0 and its prediction is the result.

Same signature and hooks as :func:`~inference.sampling.diffusion.ddim_sample`, and the
hooks keep their meaning:

* ``refine`` is part of the prediction: its output is what the solver takes as the
  network's x_0, in this step and, as the previous prediction, in the next one's correction.
* ``steer``'s change d reaches x_s in full, ``alpha_s d``, as in DDIM. The prediction kept for
  the next step's correction is the one before the steer, so the correction measures how the
  network's own prediction changes: measured against the steered one, a network that keeps
  pulling away from a pin had that pull extrapolated each step (a key pose met with a whip;
  the model card gives the figures).
* ``project`` acts on x_s after every step but the last, as in DDIM. A projection that
  changes coordinates (the sampler's window origins) also passes the kept prediction through
  ``rebase`` so that the correction compares predictions in the same coordinates.
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import torch

from ..errors import Cancelled
from .diffusion import Denoiser, Projector, Refiner

NAME = "dpmpp_2m"


def log_snr(alpha_bar: float) -> float:
    """lambda = log(alpha / sigma) of a cumulative signal fraction."""
    return 0.5 * (math.log(alpha_bar) - math.log1p(-alpha_bar))


def dpmpp_2m_timesteps(train_steps: int, sample_steps: int) -> list[int]:
    """``sample_steps`` training steps from noisiest to cleanest, ending at 0, dense at both ends:
    t_k = (T - 1)(1 + cos(pi k / (N - 1))) / 2, each at least one below the one before.

    Dense where the noise is high, where this network settles the dance's shape, and where it is low,
    where the feet's contacts are settled (evenly spaced or high-noise-only grids measured worse foot
    contact, PFC; the model card gives the figures).
    """
    if not 1 <= sample_steps <= train_steps:
        raise ValueError(f"sampling steps must be between 1 and {train_steps}; got {sample_steps}")
    if sample_steps == 1:
        return [train_steps - 1]
    u = torch.linspace(0, 1, sample_steps, dtype=torch.float64)
    steps = ((train_steps - 1) * (1 + torch.cos(math.pi * u)) / 2).round().long().tolist()
    steps[0], steps[-1] = train_steps - 1, 0
    for k in range(1, sample_steps - 1):  # rounding may repeat a step at either dense end
        steps[k] = min(steps[k], steps[k - 1] - 1)
    for k in range(sample_steps - 2, -1, -1):
        steps[k] = max(steps[k], steps[k + 1] + 1)
    return steps


def dpmpp_2m_sample(
    denoise: Denoiser,
    x: torch.Tensor,
    alpha_bar: torch.Tensor,
    timesteps: list[int],
    *,
    refine: Optional[Refiner] = None,
    steer: Optional[Refiner] = None,
    project: Optional[Projector] = None,
    rebase: Optional[Refiner] = None,
    progress: Optional[Callable[[int, int], None]] = None,
    should_cancel: Optional[Callable[[], bool]] = None,
) -> torch.Tensor:
    """Run DPM-Solver++(2M) from pure noise ``x`` to a clean sample (Lu et al. 2022, algorithm 2).

    Args:
        denoise: ``(x_t, t) -> x_0`` with ``t`` a (B,) long tensor.
        x: (B, ...) starting noise x_T.
        alpha_bar: (train_steps,) schedule from :func:`~inference.sampling.diffusion.cosine_alpha_bar`.
        timesteps: descending training steps, from :func:`dpmpp_2m_timesteps`.
        refine: hook ``x_0 -> x_0`` on every prediction, the last one included; its output is the prediction.
        steer: hook ``x_0 -> x_0`` on every refined prediction, the last one included; its change d
            reaches x_s in full (``sqrt(alpha_bar_s) d``), as in DDIM.
        project: hook ``(x_s, x_0, alpha_bar_s) -> x_s`` after every step but the last.
        rebase: hook ``x_0 -> x_0`` giving an earlier prediction in the coordinates of the sample
            ``project`` has just returned (identity when ``project`` changes no coordinates).
        progress: ``(steps_done, steps_total)`` after every step.
        should_cancel: checked before every step; raising :class:`~inference.errors.Cancelled` when true.
    Returns:
        The final prediction x_0, same shape as ``x``.
    """
    total = len(timesteps)
    x0 = x
    previous: Optional[torch.Tensor] = None  # the last step's prediction before the steer, in x's coordinates
    h_previous = 0.0
    for i, t in enumerate(timesteps):
        if should_cancel is not None and should_cancel():
            raise Cancelled()
        t_batch = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
        refined = denoise(x, t_batch)
        if refine is not None:
            refined = refine(refined)
        x0 = steer(refined) if steer is not None else refined
        if i + 1 == total:
            if progress is not None:
                progress(i + 1, total)
            break
        a_t, a_s = float(alpha_bar[t]), float(alpha_bar[timesteps[i + 1]])
        h = log_snr(a_s) - log_snr(a_t)
        d = refined if previous is None else refined + (refined - previous) * (h / (2.0 * h_previous))
        # x_s = (sigma_s / sigma_t) x_t + alpha_s (1 - e^{-h}) D, plus the steer's change in full.
        x = (math.sqrt((1.0 - a_s) / (1.0 - a_t)) * x + (math.sqrt(a_s) * -math.expm1(-h)) * d
             + math.sqrt(a_s) * (x0 - refined))
        if project is not None:
            x = project(x, x0, a_s)
        previous = refined if rebase is None else rebase(refined)
        h_previous = h
        if progress is not None:
            progress(i + 1, total)
    return x0
