"""Dances of any length: overlapping windows denoised jointly, in bounded chunks, then stitched.

Windows of ``config.window_frames`` frames start every half window. As in EDGE
(Tseng et al. 2023, section 3.4), the windows of a chunk are denoised as one
batch and after every step each window's first half is set to the previous
window's second half, so neighbours agree; in addition each step's clean
predictions are crossfaded over every overlap before they are used (as
MultiDiffusion does, Bar-Tal et al. 2023), which keeps the point where a
window's tied half meets its free half from showing. At most ``config.chunk_windows``
windows are denoised at a time; the next chunk's first window treats the last
half window already made as known (inpainting), so memory does not grow with
the song.

Each window has its own floor origin (its root's horizontal position at its
first frame, see :mod:`inference.motion`). Window w+1 starts at window w's
middle frame, so its origin is where the network currently puts window w's
root there; origins are re-chained at every step and the noisy sample shifted
to match — an affine change of coordinates that diffusion allows exactly (x_t
shifts by sqrt(alpha_bar) times the clean shift).

User pins (:class:`~inference.sampling.constraints.Constraints`) and the known prefix
are imposed by EDGE's inpainting at every step, and exactly at the end with
their borders eased (:func:`~inference.sampling.easing.ease_rotations`). The
user's pins are also eased into every step's clean prediction (as MDM's
editing overwrites the known part of x_0), so the network sees a dance that
already passes through each pin and smooths the approach itself; inpainting
alone barely moves the frames around a lone pinned pose.

Each chunk is solved by DPM-Solver++(2M) (:mod:`inference.sampling.dpm_solver`) or DDIM
(:mod:`inference.sampling.diffusion`), whichever the settings name; both take the same hooks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch

from .. import motion as mo
from .. import skeleton as sk
from ..config import DDIM, M2DConfig
from ..device import autocast
from ..network.model import DanceDenoiser, MusicContext
from ..network.traced import sampling_denoiser
from .constraints import Constraints
from .diffusion import cosine_alpha_bar, ddim_sample, ddim_timesteps, guided, inpaint
from .dpm_solver import dpmpp_2m_sample, dpmpp_2m_timesteps
from .easing import ease_rotations, ease_vectors


@dataclass(frozen=True)
class WindowPlan:
    """Where each window starts, for a dance of ``num_frames`` frames."""

    num_frames: int
    window: int
    starts: tuple[int, ...]

    @property
    def hop(self) -> int:
        return self.window // 2

    @property
    def padded_frames(self) -> int:
        return self.starts[-1] + self.window

    def chunks(self, size: int) -> list[range]:
        """Window indices in consecutive chunks of at most ``size`` windows."""
        n = len(self.starts)
        return [range(a, min(n, a + size)) for a in range(0, n, size)]


def plan_windows(num_frames: int, window: int) -> WindowPlan:
    hop = window // 2
    count = 1 if num_frames <= window else math.ceil((num_frames - window) / hop) + 1
    return WindowPlan(num_frames, window, tuple(i * hop for i in range(count)))


@dataclass
class Targets:
    """Known values in motion space over the padded frames (metric units, global root)."""

    values: np.ndarray  # (P, motion_dim) float64
    mask: np.ndarray  # (P, motion_dim) bool

    @classmethod
    def from_constraints(cls, constraints: Optional[Constraints], plan: WindowPlan, dim: int) -> "Targets":
        values = np.zeros((plan.padded_frames, dim))
        mask = np.zeros((plan.padded_frames, dim), bool)
        if constraints:
            n = constraints.num_frames
            rot6d = sk.axis_angle_to_rot6d(constraints.smpl_poses.reshape(n, sk.NUM_JOINTS, 3).astype(np.float64))
            values[:n, mo.ROTATIONS] = rot6d.reshape(n, -1)
            mask[:n, mo.ROTATIONS] = np.repeat(constraints.pose_mask, mo.ROT6D_DIMS, axis=1)
            values[:n, mo.ROOT] = constraints.smpl_trans
            mask[:n, mo.ROOT] = constraints.root_mask
        return cls(values, mask)


FLIP_RISK_DEGREES = 60.0
"""Windows disagreeing on a joint by more than this somewhere in an overlap fade it as quaternions."""


def steered_columns(pin_mask: np.ndarray) -> np.ndarray:
    """Motion columns whose easing toward the pins reaches the sampler's next input in full.

    The dancer's placement (:data:`~inference.motion.PLACEMENT`) always; any other column
    whose pinned frames all come in stretches of two or more: a stretch brings its own
    velocity, while through a lone pinned frame the easing takes the prediction's, which,
    carried in full, feeds back on itself from step to step.
    """
    mask = np.asarray(pin_mask, bool)
    padded = np.pad(mask, ((1, 1), (0, 0)))
    lone = mask & ~padded[:-2] & ~padded[2:]  # pinned, with neither neighbour pinned
    ok = mask.any(axis=0) & ~lone.any(axis=0)
    ok[mo.PLACEMENT] = True
    return np.flatnonzero(ok)


class _ChunkHooks:
    """The sampler hooks for one chunk of windows.

    ``refine`` (on each prediction): crossfade every pair of overlapping windows
    over their overlap, so a window's second half hears its successor and no seam
    forms where a tied half meets a free one; then ease toward the pins what
    ``steer`` does not.
    ``steer`` (on the refined prediction): ease toward the pins the columns of
    :func:`steered_columns` (the dancer's placement, and joints pinned over
    stretches), carried into the next sample in full (see :meth:`pull_toward_known`).
    ``project`` (after each step): chain the origins, inpaint the known, and tie
    each window's first half to the previous window's second half (EDGE).
    ``rebase`` (multistep solvers): an earlier prediction moved to the origins ``project`` set.
    """

    def __init__(self, model: DanceDenoiser, known: torch.Tensor, mask: torch.Tensor,
                 origins: torch.Tensor, hop: int, generator: torch.Generator,
                 pins: np.ndarray, pin_mask: np.ndarray, prefix: int = 0):
        self.model = model
        self.known = known  # (W, T, D) metric, global root
        self.mask = mask  # (W, T, D) bool
        self.origins = origins  # (W, 2) metric floor origin of each window
        self.hop = hop
        self.generator = generator
        self.xy_std = model.motion_std[mo.ROOT_XY]
        self.xy_mean = model.motion_mean[mo.ROOT_XY]
        overlap = known.shape[1] - hop
        self.ramp = ((torch.arange(overlap, device=known.device) + 0.5) / overlap)[:, None]  # (overlap, 1)
        # The user's pins over the chunk as one sequence (metric, global root), for easing predictions.
        self.pins = pins  # (F, D)
        self.pin_mask = pin_mask  # (F, D) bool
        self.prefix = prefix  # frames at the start already made (a later chunk's first half window)
        self.steered = torch.as_tensor(steered_columns(pin_mask), device=known.device)
        self._steered: Optional[torch.Tensor] = None  # refine's easing of them, for steer
        self._moved = torch.zeros_like(origins)  # the last change of origins, normalised

    def local_known(self) -> torch.Tensor:
        """Known values in each window's coordinates, normalised."""
        local = self.known.clone()
        local[..., mo.ROOT_XY] -= self.origins[:, None, :]
        return self.model.normalize_motion(local)

    def _offset(self, w: int) -> torch.Tensor:
        """Normalised shift from window w's coordinates to window w+1's."""
        return (self.origins[w] - self.origins[w + 1]) / self.xy_std

    def refine(self, x0: torch.Tensor) -> torch.Tensor:
        # Known values are not written in here: inpainting (project) imposes them, and the final
        # easing (apply_targets) bends the free frames next to them to meet them exactly.
        x0 = x0.float()
        h = self.hop
        for w in range(x0.shape[0] - 1):
            ahead = x0[w, h:].clone()  # window w's view of the overlap, in its coordinates
            ahead[:, mo.ROOT_XY] += self._offset(w)
            blended = self.crossfade(ahead, x0[w + 1, :h])  # window w+1 fades in
            x0[w + 1, :h] = blended
            x0[w, h:] = blended
            x0[w, h:, mo.ROOT_XY] -= self._offset(w)
        if not self.pin_mask.any():
            return x0
        pulled = self.pull_toward_known(x0)
        self._steered = pulled[..., self.steered]
        pulled[..., self.steered] = x0[..., self.steered]
        return pulled

    def steer(self, x0: torch.Tensor) -> torch.Tensor:
        """The steered columns' part of the easing that :meth:`refine` computed for this ``x0``."""
        if not self.pin_mask.any():
            return x0
        x0 = x0.clone()
        x0[..., self.steered] = self._steered
        return x0

    def pull_toward_known(self, x0: torch.Tensor) -> torch.Tensor:
        """Ease the prediction toward the user's pins, as the final easing will (MDM-style editing).

        Every prediction meets the pins and bends smoothly into them, so the
        next step's network input already dances through the pins and the
        network refines that, rather than inpainting only re-noised copies of
        lone frames. The easing is the final one (:func:`apply_targets`).

        The easing of the placement, and of joints pinned over stretches
        (:meth:`steer`), reaches the next input in full; that of joints pinned on
        lone frames (:meth:`refine`) only in part, as the sampler's own
        prediction does. Passed in part, the network kept its own heading up to
        a key pose facing away and whipped round in the last frames (a 94 degree
        turn within one frame), and flicked a wrist just inside a regenerated
        range (0.54 m/frame^2); passed in full through a lone key, the velocity
        the easing matches there, the prediction's own, feeds back on itself
        from step to step (a hand moving into a key at 0.1 m/frame grew to 0.47).
        """
        count, length, dim = x0.shape
        h = self.hop
        origins = self.origins.double().cpu().numpy()[:, None, :]
        windows = self.model.denormalize_motion(x0.float()).double().cpu().numpy()
        windows[..., mo.ROOT_XY] += origins
        seq = np.empty((h * (count - 1) + length, dim))
        for w in range(count):  # overlaps agree after the crossfade
            seq[w * h:w * h + length] = windows[w]
        seq = apply_targets(seq, self.pins, self.pin_mask, self.model.config.seam_frames, self.prefix)
        for w in range(count):
            windows[w] = seq[w * h:w * h + length]
        windows[..., mo.ROOT_XY] -= origins
        out = self.model.normalize_motion(torch.as_tensor(windows, dtype=torch.float32, device=x0.device))
        return out.to(x0.dtype)

    def crossfade(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Fade (overlap, D) normalised prediction ``a`` into ``b``: linearly, rotations as quaternions.

        Two windows can disagree about a rotation (most often the root's
        heading) by 90 degrees or more. A straight blend of their 6D vectors
        then passes near a degenerate frame, and a per-frame shortest-arc slerp
        can switch arcs from one frame to the next: either way the body flips
        within a frame. Here each window's quaternions are made continuous in
        time, ``b``'s sign is chosen once per joint to agree with ``a`` in the
        middle of the overlap, and the fade is a normalised linear blend (nlerp),
        which stays continuous even where the two disagree by 180 degrees. Only
        joints that disagree by more than :data:`FLIP_RISK_DEGREES` somewhere in
        the overlap are faded so; the rest keep the straight blend of the
        network's own 6D values.
        """
        out = a + self.ramp * (b - a)  # what every other number, and most rotations, take
        rot = mo.ROTATIONS
        shape = (len(a), sk.NUM_JOINTS, mo.ROT6D_DIMS)
        mean, std = self.model.motion_mean[rot].view(shape[1:]), self.model.motion_std[rot].view(shape[1:])
        ma = sk.rot6d_to_matrix(a[:, rot].reshape(shape) * std + mean)  # (overlap, 24, 3, 3)
        mb = sk.rot6d_to_matrix(b[:, rot].reshape(shape) * std + mean)
        # Angle between the two: trace(Ma^T Mb) = 1 + 2 cos(angle). Most joints agree: they keep the
        # straight blend of the network's own 6D values (projecting every prediction calms the dance).
        cos_apart = ((ma * mb).sum(dim=(-1, -2)) - 1.0) / 2.0
        apart = torch.nonzero(cos_apart.min(dim=0).values < math.cos(math.radians(FLIP_RISK_DEGREES)))[:, 0]
        if not len(apart):
            return out
        qa = sk.quat_continuous(sk.matrix_to_quat(ma[:, apart]))
        qb = sk.quat_continuous(sk.matrix_to_quat(mb[:, apart]))
        # One sign per joint, from the middle of the fade: there both weigh 1/2, and only there could
        # the blend pass through zero (if the two were one rotation with opposite signs).
        middle = int(torch.argmin((self.ramp[:, 0] - 0.5).abs()))
        qb = qb * torch.where((qa[middle] * qb[middle]).sum(-1) < 0, -1.0, 1.0).to(qb.dtype)[None, :, None]
        q = sk.quat_normalize(qa + self.ramp[:, :, None] * (qb - qa))
        mixed = out[:, rot].reshape(shape).clone()
        mixed[:, apart] = (sk.matrix_to_rot6d(sk.quat_to_matrix(q)) - mean[apart]) / std[apart]
        out[:, rot] = mixed.reshape(len(a), -1)
        return out

    def chain_origins(self, x0: torch.Tensor) -> torch.Tensor:
        """Origins implied by the prediction: window w+1 starts where window w is at frame ``hop``.

        The first window keeps its origin (the floor origin, or the known prefix's position).
        """
        local_mid = x0[:, self.hop, mo.ROOT_XY].float() * self.xy_std + self.xy_mean  # (W, 2) metric
        steps = torch.cat([self.origins[:1], local_mid[:-1]])
        return torch.cumsum(steps, dim=0)

    def project(self, x: torch.Tensor, x0: torch.Tensor, alpha_bar: float) -> torch.Tensor:
        scale = math.sqrt(alpha_bar)
        # 1. Move every window to the origin its predecessor's prediction implies; the noisy
        #    sample moves by sqrt(alpha_bar) times the clean shift.
        origins = self.chain_origins(x0)
        self._moved = (origins - self.origins) / self.xy_std
        x = x.clone()
        x[..., mo.ROOT_XY] -= scale * self._moved[:, None, :]
        self.origins = origins
        # 2. Inpaint what is known (EDGE: replace by the forward-noised known values).
        if self.mask.any():
            x = inpaint(x, self.local_known(), self.mask, alpha_bar, self.generator)
        # 3. Tie: window w+1's first half is window w's second half, moved into w+1's coordinates.
        h = self.hop
        for w in range(x.shape[0] - 1):
            x[w + 1, :h] = x[w, h:]
            x[w + 1, :h, mo.ROOT_XY] += scale * self._offset(w)
        return x


    def rebase(self, x0: torch.Tensor) -> torch.Tensor:
        """A prediction made in the origins before the last :meth:`project`, in the origins after it."""
        x0 = x0.clone()
        x0[..., mo.ROOT_XY] -= self._moved[:, None, :]
        return x0


def _to_quat(rot6d: np.ndarray) -> np.ndarray:
    return sk.matrix_to_quat(sk.rot6d_to_matrix(rot6d))


def _quat_to_rot6d(q: np.ndarray) -> np.ndarray:
    return sk.matrix_to_rot6d(sk.quat_to_matrix(q))


def stitch(windows: np.ndarray, hop: int) -> np.ndarray:
    """(W, T, D) windows starting every ``hop`` frames -> (hop * (W - 1) + T, D) motion.

    In each overlap the later window fades in linearly: slerp for the rotations,
    a crossfade for contacts and the root.
    """
    count, length, dim = windows.shape
    out = np.zeros((hop * (count - 1) + length, dim))
    out[:length] = windows[0]
    ramp = (np.arange(length - hop) + 0.5) / (length - hop)  # (overlap,)
    for w in range(1, count):
        o = w * hop
        prev, new = out[o:o + length - hop], windows[w, :length - hop]
        blend = prev + ramp[:, None] * (new - prev)
        qa = _to_quat(prev[:, mo.ROTATIONS].reshape(-1, sk.NUM_JOINTS, mo.ROT6D_DIMS))
        qb = _to_quat(new[:, mo.ROTATIONS].reshape(-1, sk.NUM_JOINTS, mo.ROT6D_DIMS))
        q = sk.quat_slerp(qa, qb, np.broadcast_to(ramp[:, None], qa.shape[:-1]))
        blend[:, mo.ROTATIONS] = _quat_to_rot6d(q).reshape(len(ramp), -1)
        out[o:o + length - hop] = blend
        out[o + length - hop:o + length] = windows[w, length - hop:]
    return out


def apply_targets(x: np.ndarray, values: np.ndarray, mask: np.ndarray, seam_frames: int,
                  prefix: int = 0) -> np.ndarray:
    """Write known values into (F, D) motion exactly and ease the free frames next to them.

    ``prefix``: the first frames are the part already made (a later chunk's start), which the
    network continues; there its own prediction is trusted (see :func:`~inference.sampling.easing.ease_vectors`).
    Rotations ease as quaternions (a straight 6D blend toward a far pose can pass near a degenerate
    frame and flip); only the frames the easing reaches change, the rest keep their own 6D values.
    """
    x = x.copy()
    trusted = np.arange(len(x)) < prefix
    shape = (len(x), sk.NUM_JOINTS, mo.ROT6D_DIMS)
    rot, target = x[:, mo.ROTATIONS].reshape(shape), values[:, mo.ROTATIONS].reshape(shape)
    rot_mask = mask[:, mo.ROTATIONS][:, ::mo.ROT6D_DIMS]  # (F, 24)
    pinned = np.flatnonzero(rot_mask.any(axis=0))
    if len(pinned):
        # Joints pinned on the same frames ease together (a whole pose is one call, not 24).
        patterns, which = np.unique(rot_mask[:, pinned].T, axis=0, return_inverse=True)
        for m, joints in zip(patterns, (pinned[which.ravel() == g] for g in range(len(patterns)))):
            before = _to_quat(rot[:, joints])
            q = ease_rotations(before, _to_quat(target[:, joints]), m, seam_frames, trusted)
            reach = np.flatnonzero((q != before).any(axis=(1, 2)))  # the frames the easing changed
            rot[np.ix_(reach, joints)] = _quat_to_rot6d(q[reach])
            at = np.ix_(np.flatnonzero(m), joints)
            rot[at] = target[at]  # bit-exact
        x[:, mo.ROTATIONS] = rot.reshape(len(x), -1)
    for c in range(mo.ROOT.start, mo.ROOT.stop):
        if mask[:, c].any():
            x[:, c] = ease_vectors(x[:, c], values[:, c], mask[:, c], seam_frames, trusted)
    contact_mask = mask[:, mo.CONTACTS]
    x[:, mo.CONTACTS] = np.where(contact_mask, values[:, mo.CONTACTS], x[:, mo.CONTACTS])
    return x


ProgressFn = Callable[[int, int], None]


@torch.no_grad()
def sample_dance(
    model: DanceDenoiser,
    music: np.ndarray,
    *,
    constraints: Optional[Constraints] = None,
    steps: Optional[int] = None,
    guidance: Optional[float] = None,
    eta: Optional[float] = None,
    sampler: Optional[str] = None,
    seed: int = 0,
    style: int = 0,
    style_guidance: Optional[float] = None,
    progress: Optional[ProgressFn] = None,
    should_cancel: Optional[Callable[[], bool]] = None,
) -> np.ndarray:
    """Generate (N, motion_dim) metric motion with a global root for (N, music_dim) features.

    Sampling settings default to the model config's (:meth:`M2DConfig.sampling`). ``style`` is the
    config's style index (0: any); guidance pushes away from the null music *and* the null style, and
    ``style_guidance`` (default the config's) pushes the chosen style on its own as well. The
    result meets every pin of ``constraints`` exactly. ``progress(done, total)`` counts denoising
    steps over all chunks.
    """
    config: M2DConfig = model.config
    sampler, steps = config.sampling(sampler, steps)
    guidance = config.guidance if guidance is None else guidance
    style_guidance = config.style_guidance if style_guidance is None else style_guidance
    eta = config.eta if eta is None else eta
    device = model.motion_mean.device
    num_frames = len(music)
    plan = plan_windows(num_frames, config.window_frames)
    targets = Targets.from_constraints(constraints, plan, config.motion_dim)

    mean_music = model.music_mean.cpu().numpy()
    padded_music = np.empty((plan.padded_frames, config.music_dim), np.float32)
    padded_music[:num_frames] = music
    padded_music[num_frames:] = mean_music  # beyond the song: the neutral (mean) features

    alpha_bar = cosine_alpha_bar(config.diffusion_steps, config.cosine_s)
    ddim = sampler == DDIM
    timesteps = (ddim_timesteps if ddim else dpmpp_2m_timesteps)(config.diffusion_steps, steps)
    generator = torch.Generator().manual_seed(int(seed))
    chunks = plan.chunks(config.chunk_windows)
    total = len(chunks) * len(timesteps)
    out = np.zeros((plan.padded_frames, config.motion_dim))
    hop, length = plan.hop, plan.window

    denoiser = sampling_denoiser(model, device)

    def network(x, t, context):
        with autocast(device):
            return denoiser(x, t, context).float()

    for c, chunk in enumerate(chunks):
        starts = [plan.starts[w] for w in chunk]
        first, last = starts[0], starts[-1] + length
        index = np.asarray(starts)[:, None] + np.arange(length)[None, :]  # (W, T) frame numbers
        values, mask = targets.values[first:last].copy(), targets.mask[first:last].copy()
        origins = torch.zeros(len(chunk), 2)
        prefix = hop if c > 0 else 0  # frames already made at the chunk's start
        if prefix:  # the half window already made is known
            values[:hop] = out[first:first + hop]
            mask[:hop] = True
            origins[:] = torch.as_tensor(out[first, mo.ROOT_XY])
        known = torch.as_tensor(values[index - first], dtype=torch.float32)
        known_mask = torch.as_tensor(mask[index - first])

        with autocast(device):  # the music's part of every step, computed once per chunk
            tokens = model.encode_music(torch.as_tensor(padded_music[index], device=device))
            cond = model.music_context(tokens, torch.full((len(chunk),), int(style), dtype=torch.long) if style
                                       else None)
            uncond = model.music_context(model.null_tokens(len(chunk), length))
            plain = model.music_context(tokens) if style and style_guidance else None  # same music, no style
        denoise = guided(network, cond, uncond, guidance, concat=MusicContext.cat, plain=plain,
                         plain_weight=style_guidance)
        hooks = _ChunkHooks(model, known.to(device), known_mask.to(device), origins.to(device), hop, generator,
                            values, mask, prefix)
        x = torch.randn((len(chunk), length, config.motion_dim), generator=generator).to(device)
        if known_mask.any():
            x = inpaint(x, hooks.local_known(), hooks.mask, float(alpha_bar[timesteps[0]]), generator)
        done = c * len(timesteps)
        hooked = dict(refine=hooks.refine, steer=hooks.steer, project=hooks.project, should_cancel=should_cancel,
                      progress=None if progress is None else (lambda i, n: progress(done + i, total)))
        if ddim:
            x0 = ddim_sample(denoise, x, alpha_bar, timesteps, eta=eta, generator=generator, **hooked)
        else:
            x0 = dpmpp_2m_sample(denoise, x, alpha_bar, timesteps, rebase=hooks.rebase, **hooked)
        # Final prediction: back to metric units and global coordinates, then one motion.
        # The last prediction is relative to the origins its input was expressed in.
        windows = model.denormalize_motion(x0.float()).double().cpu().numpy()
        windows[..., mo.ROOT_XY] += hooks.origins.double().cpu().numpy()[:, None, :]
        out[first:last] = apply_targets(stitch(windows, hop), values, mask, config.seam_frames, prefix)
    return out[:num_frames].astype(np.float32)
