"""From a music file to a dance: the engine's public entry point and its output contract.

:class:`DanceGenerator` keeps a model loaded (so repeated generations skip the
load) and turns audio, plus optional pins, into a :class:`Dance` — the arrays of
the npz contract described in the README.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from . import motion as mo
from . import settings as st
from . import skeleton as sk
from .analysis import floor_contacts
from .cleanup.floor import keep_feet_above_floor
from .cleanup.footlock import lock_feet
from .cleanup.limits import keep_within_limits
from .cleanup.retime import beat_time_map, retime
from .cleanup.silence import settle
from .config import DDIM, SAMPLERS
from .dance import Dance
from .device import resolve_device
from .errors import M2DError
from .music.features import beats_from_features, features_from_file
from .network.weights import load_model
from .protocol import FEATURES, FINISHING, SAMPLING
from .sampling.constraints import Constraints
from .sampling.sampler import sample_dance

StageProgress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``; stages are the names of :data:`inference.protocol.STAGES`:
"features", "sampling" (``done`` of ``total`` steps) and "finishing"."""

_FK_CHUNK = 4096  # frames per forward-kinematics batch when assembling the output

__all__ = ["Dance", "DanceGenerator", "StageProgress"]


def style_index(config, style: Optional[str]) -> int:
    """The model's index of ``style`` ("any" or None: 0); an M2DError that names the choices otherwise."""
    try:
        return config.style_index(style)
    except ValueError as exc:
        raise M2DError(f"Style: {exc}.") from None


def _check_settings(config, sampler, steps, guidance, eta, seed=None):
    """M2DError naming the first setting outside its range (:mod:`inference.settings`)."""
    if sampler is not None and sampler not in SAMPLERS:
        raise M2DError(f"Unknown sampler {sampler!r}; use one of {', '.join(SAMPLERS)}.")
    if steps is not None and not (isinstance(steps, int) and st.STEPS_MIN <= steps <= config.diffusion_steps):
        raise M2DError(f"Sampling steps must be a whole number from {st.STEPS_MIN} to {config.diffusion_steps}; "
                       f"got {steps}.")
    if guidance is not None and not (math.isfinite(guidance) and st.GUIDANCE_MIN <= guidance <= st.GUIDANCE_MAX):
        raise M2DError(f"Guidance must be between {st.GUIDANCE_MIN:g} and {st.GUIDANCE_MAX:g} (2 is typical; more "
                       f"breaks the motion up); got {guidance}.")
    if eta is not None and not (math.isfinite(eta) and st.ETA_MIN <= eta <= st.ETA_MAX):
        raise M2DError(f"eta must be between {st.ETA_MIN:g} (deterministic) and {st.ETA_MAX:g}; got {eta}.")
    if seed is not None and not (isinstance(seed, (int, np.integer)) and st.SEED_MIN <= seed <= st.SEED_MAX):
        raise M2DError(f"The seed must be a whole number from {st.SEED_MIN} to {st.SEED_MAX}; got {seed}.")
    if eta and config.sampling(sampler)[0] != DDIM:
        raise M2DError(f"eta is DDIM's setting; the {config.sampling(sampler)[0]} sampler is deterministic. "
                       "Choose the ddim sampler to use it.")


def _invalid_numbers(config, sampler, steps, guidance, eta, constraints) -> str:
    """Why the sampled motion holds NaN or infinities, for the user: the settings that differ from the
    model's defaults when any do (the likely cause), the weights only when none does."""
    changed = []
    if guidance is not None and guidance != config.guidance:
        changed.append(f"guidance {guidance:g} (the model's default is {config.guidance:g})")
    default_sampler, default_steps = config.sampling()
    if sampler != default_sampler:
        changed.append(f"the {sampler} sampler (the model's is {default_sampler})")
    elif steps != default_steps:
        changed.append(f"{steps} steps (default {default_steps})")
    if eta is not None and eta != config.eta:
        changed.append(f"eta {eta:g} (default {config.eta:g})")
    if constraints:
        changed.append("pins")
    if changed:
        return ("The model produced invalid numbers (NaN) with " + ", ".join(changed) + ". Generate again "
                "with settings nearer the defaults" + (", or with fewer pins" if constraints else "") + ".")
    return ("The model produced invalid numbers (NaN) at its default settings. The weights may be damaged; "
            "try another seed, or reinstall the model.")


class DanceGenerator:
    """A loaded model, ready to make dances.

    Args:
        weights: folder (or .safetensors file) of the model; the shipped one by default.
        device: "auto", "cpu", "cuda", "cuda:N" or "mps".
    """

    def __init__(self, weights=None, device: str = "auto"):
        self.device = resolve_device(device)
        self.model = load_model(weights, self.device)
        self.config = self.model.config

    def generate(
        self,
        audio,
        *,
        start: float = 0.0,
        duration: Optional[float] = None,
        seed: int = 0,
        sampler: Optional[str] = None,
        steps: Optional[int] = None,
        guidance: Optional[float] = None,
        eta: Optional[float] = None,
        style: Optional[str] = None,
        constraints: Optional[Constraints] = None,
        beat_snap: bool = True,
        foot_lock: bool = True,
        progress: Optional[StageProgress] = None,
        should_cancel: Optional[Callable[[], bool]] = None,
    ) -> Dance:
        """Make a dance for ``duration`` seconds of ``audio`` from ``start`` (to the end by default).

        ``sampler`` ("dpmpp_2m" or "ddim"), ``steps``, ``guidance`` and ``eta`` default to the model's
        (:meth:`~inference.config.M2DConfig.sampling`). ``style``: one of ``config.style_choices()`` ("any",
        the default, lets the network choose; weights trained without styles know only "any").
        ``beat_snap`` moves the dance's accents onto the music's beats (:mod:`inference.cleanup.retime`);
        ``foot_lock`` holds planted feet still (:mod:`inference.cleanup.footlock`).
        """
        _check_settings(self.config, sampler, steps, guidance, eta, seed)
        style_index(self.config, style)  # an unknown style is reported before the music is read
        if progress:
            progress(FEATURES.name, 0, 1)
        music, clip = features_from_file(audio, self.config, start=start, duration=duration)
        if progress:
            progress(FEATURES.name, 1, 1)
        dance = self.generate_from_features(
            music, audio_start=clip.start, seed=seed, sampler=sampler, steps=steps, guidance=guidance, eta=eta,
            style=style,
            constraints=constraints, beat_snap=beat_snap, foot_lock=foot_lock, progress=progress,
            should_cancel=should_cancel,
        )
        dance.extras["audio_path"] = str(Path(audio).resolve())
        return dance

    def generate_from_features(
        self,
        music: np.ndarray,
        *,
        audio_start: float = 0.0,
        seed: int = 0,
        sampler: Optional[str] = None,
        steps: Optional[int] = None,
        guidance: Optional[float] = None,
        eta: Optional[float] = None,
        style: Optional[str] = None,
        constraints: Optional[Constraints] = None,
        beat_snap: bool = True,
        foot_lock: bool = True,
        progress: Optional[StageProgress] = None,
        should_cancel: Optional[Callable[[], bool]] = None,
    ) -> Dance:
        """Make a dance for (N, music_dim) features: N frames at the model's fps."""
        _check_settings(self.config, sampler, steps, guidance, eta, seed)
        sampler, steps = self.config.sampling(sampler, steps)
        index = style_index(self.config, style)
        n = len(music)
        if constraints is not None:
            constraints = constraints.resized(n) if constraints.num_frames != n else constraints.validate()
        motion = sample_dance(
            self.model, music, constraints=constraints, sampler=sampler, steps=steps, guidance=guidance, eta=eta,
            seed=seed, style=index, should_cancel=should_cancel,
            progress=None if progress is None else (lambda i, total: progress(SAMPLING.name, i, total)),
        )
        if progress:
            progress(FINISHING.name, 0, 1)
        # Calm where the music is silent; the path only stops if no root position is pinned.
        motion = settle(motion, music, self.config.fps,
                        hold_path=not (constraints and constraints.root_mask.any()))
        if not np.all(np.isfinite(motion)):
            raise M2DError(_invalid_numbers(self.config, sampler, steps, guidance, eta, constraints))
        smpl = mo.to_smpl(motion)
        poses, trans = smpl.smpl_poses, smpl.smpl_trans
        # No head turned backwards, no spin faster than a dancer's; pinned joints kept (inference.cleanup.limits).
        poses = keep_within_limits(poses, self.config.fps, None if not constraints else constraints.pose_mask)
        if beat_snap:
            # Pinned frames keep their time, so pins stay where the animator put them.
            fixed = None if not constraints else constraints.pose_mask.any(1) | constraints.root_mask.any(1)
            source = beat_time_map(self._joints(poses, trans), beats_from_features(music, self.config),
                                   self.config.fps, fixed)
            poses, trans = retime(poses, trans, source)
        if foot_lock:
            # Legs pinned on a frame, and near it, are left as they are.
            poses = lock_feet(poses, trans, self.config.fps, None if not constraints else constraints.pose_mask)
        # No ankle or toe through the floor (legs re-solved by IK; pinned legs kept): inference.cleanup.floor.
        poses = keep_feet_above_floor(poses, trans, self.config.fps,
                                      None if not constraints else constraints.pose_mask)
        if constraints:
            # Pinned values are given back exactly as they were given, not via a conversion.
            p = poses.reshape(n, sk.NUM_JOINTS, 3)
            p[constraints.pose_mask] = constraints.smpl_poses.reshape(n, sk.NUM_JOINTS, 3)[constraints.pose_mask]
            trans[constraints.root_mask] = constraints.smpl_trans[constraints.root_mask]
        joints = self._joints(poses, trans)
        # The dance's contacts describe the motion delivered; the network's own contact channel serves
        # training (the foot loss) and often disagrees with its motion (see the model card).
        contacts = floor_contacts(joints, self.config.fps)
        if progress:
            progress(FINISHING.name, 1, 1)
        extras = {"seed": int(seed), "sampler": sampler, "steps": int(steps),
                  "guidance": float(self.config.guidance if guidance is None else guidance),
                  "beat_snap": bool(beat_snap), "foot_lock": bool(foot_lock),
                  "style": self.config.style_choices()[index]}
        return Dance(fps=self.config.fps, smpl_poses=poses, smpl_trans=trans, joints=joints,
                     contacts=contacts, audio_start=float(audio_start), extras=extras)

    @staticmethod
    def _joints(poses: np.ndarray, trans: np.ndarray) -> np.ndarray:
        """(N, 24, 3) float32 joint positions by forward kinematics, in chunks."""
        joints = np.empty((len(poses), sk.NUM_JOINTS, 3), np.float32)
        for a in range(0, len(poses), _FK_CHUNK):
            joints[a:a + _FK_CHUNK] = sk.joint_positions(poses[a:a + _FK_CHUNK], trans[a:a + _FK_CHUNK])
        return joints

