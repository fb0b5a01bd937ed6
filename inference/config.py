"""The one settings dataclass that travels with the weights.

Frame rate, window length, music-feature layout, network size, diffusion steps
and sampling defaults live here and nowhere else; they are saved as JSON beside
the safetensors file and loaded with it (:mod:`inference.network.weights`).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from .protocol import ANY_STYLE
from .skeleton import NUM_JOINTS

CONFIG_FORMAT = "music2dance-config/1"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
"""A model is a folder holding these two files (see :mod:`inference.network.weights`)."""


def model_files(path) -> tuple[Path, Path]:
    """The weights and config files of the model at ``path``: its folder, or its ``.safetensors`` file."""
    path = Path(path)
    if path.suffix == ".safetensors":
        return path, path.with_name(CONFIG_FILE)
    return path / WEIGHTS_FILE, path / CONFIG_FILE

DDIM = "ddim"
DPMPP_2M = "dpmpp_2m"
SAMPLERS = (DDIM, DPMPP_2M)
"""Sampler names: DDIM, deterministic or not (:mod:`inference.sampling.diffusion`), and DPM-Solver++(2M)
(:mod:`inference.sampling.dpm_solver`), about 2.5 times faster at a measured cost (model card)."""
SAMPLER_STEPS = {DPMPP_2M: 20, DDIM: 50}
"""Each sampler's usual step count, where a sampler other than the model's own takes its steps from."""
LEGACY_SETTINGS = {"sampler": DDIM, "styles": (), "style_drop_prob": 0.25, "style_guidance": 0.0}
"""Settings a config saved before they existed takes: what that version did (DDIM sampling, no
style embedding)."""

# Per-frame motion layout (EDGE): 4 foot contacts, root translation, 24 local rotations in 6D.
NUM_CONTACTS = 4
ROOT_DIMS = 3
ROT6D_DIMS = 6


@dataclass(frozen=True)
class M2DConfig:
    """Everything that defines a model and how its inputs are laid out.

    Attributes are grouped as motion, music, network, diffusion, sampling, training.
    """

    # --- motion ---
    fps: int = 30
    """Frames per second of the motion and of the music features."""
    window_frames: int = 150
    """Frames the network sees at once (EDGE: 5 s at 30 fps)."""

    # --- music (EDGE "baseline" features) ---
    hop_length: int = 512
    """Audio samples per feature frame; the audio is resampled to ``fps * hop_length`` Hz."""
    n_mfcc: int = 20
    n_chroma: int = 12

    # --- style ---
    styles: tuple = ()
    """Dance styles the network is conditioned on (a learned embedding each, index 1..n; index 0 is
    :data:`ANY_STYLE`, the null style). Empty: no style embedding (models before styles)."""

    # --- network ---
    width: int = 512
    depth: int = 8
    """Decoder layers over the motion."""
    music_depth: int = 2
    """Encoder layers over the music before cross-attention."""
    heads: int = 8
    ff_mult: int = 2
    """Feed-forward width as a multiple of ``width``."""
    dropout: float = 0.1

    # --- diffusion ---
    diffusion_steps: int = 1000
    cosine_s: float = 0.008
    """Offset of the cosine schedule (Nichol & Dhariwal 2021, eq. 17)."""

    # --- sampling defaults ---
    sampler: str = DDIM
    """One of :data:`SAMPLERS`."""
    sample_steps: int = SAMPLER_STEPS[DDIM]
    """Steps of ``sampler``."""
    eta: float = 0.0
    """DDIM's: 0 deterministic, 1 DDPM-like fresh noise (DPM-Solver++(2M) is deterministic)."""
    guidance: float = 2.0
    """Classifier-free guidance: how far the prediction is pushed from the null music and null style."""
    style_guidance: float = 0.0
    """Extra push toward the chosen style alone, from the same music with the null style (0: none; only
    when a style other than "any" is asked, at one more network pass a step)."""
    chunk_windows: int = 8
    """Windows denoised jointly at most; bounds memory for long songs."""
    seam_frames: int = 15
    """Frames over which a pinned value's offset is eased into the free motion (rotations far
    from the pin take up to twice as many: :data:`inference.sampling.easing.EASE_ANGLE`)."""

    # --- training ---
    cond_drop_prob: float = 0.25
    """Probability of replacing the music by the learned null condition (for guidance)."""
    style_drop_prob: float = 0.25
    """Probability of replacing a window's style by the null style, so "any" is learned too."""

    # ------------------------------------------------------------------ derived
    @property
    def audio_sample_rate(self) -> int:
        return self.fps * self.hop_length

    @property
    def music_dim(self) -> int:
        """Onset envelope, MFCCs, chroma, onset-peak one-hot, beat one-hot."""
        return 1 + self.n_mfcc + self.n_chroma + 1 + 1

    @property
    def motion_dim(self) -> int:
        return NUM_CONTACTS + ROOT_DIMS + NUM_JOINTS * ROT6D_DIMS

    @property
    def window_seconds(self) -> float:
        return self.window_frames / self.fps

    def style_choices(self) -> tuple:
        """Every style a generation may ask of this model, :data:`ANY_STYLE` first."""
        return (ANY_STYLE,) + tuple(self.styles)

    def style_index(self, style: str | None) -> int:
        """The network's index of ``style`` (0 for ``any`` or None); ValueError naming the choices."""
        if style is None or style == ANY_STYLE:
            return 0
        if style in self.styles:
            return 1 + self.styles.index(style)
        if not self.styles:
            raise ValueError(f"these weights were trained without styles, so only the style {ANY_STYLE!r} "
                             f"works with them (asked for {style!r}); use weights trained with styles, or "
                             f"{ANY_STYLE!r}")
        raise ValueError(f"unknown style {style!r}: this model knows {', '.join(self.style_choices())}")

    # ------------------------------------------------------------------ checks and I/O
    def __post_init__(self):
        object.__setattr__(self, "styles", tuple(self.styles))
        if any(not isinstance(s, str) or not s or s == ANY_STYLE for s in self.styles) \
                or len(set(self.styles)) != len(self.styles):
            raise ValueError(f"styles must be distinct non-empty names other than {ANY_STYLE!r}: {self.styles}")
        if self.window_frames % 2:
            raise ValueError("window_frames must be even: windows overlap by half.")
        if self.width % self.heads or (self.width // self.heads) % 2:
            raise ValueError("width must split into heads of an even size (rotary positions).")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler is {self.sampler!r}; expected one of {', '.join(SAMPLERS)}")

    def sampling(self, sampler: str | None = None, steps: int | None = None) -> tuple[str, int]:
        """(sampler, steps) to use: the model's sampler by default; its steps for it, else the
        other sampler's usual ones (:data:`SAMPLER_STEPS`). ValueError for an unknown sampler."""
        sampler = self.sampler if sampler is None else sampler
        if sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {sampler!r}; expected one of {', '.join(SAMPLERS)}")
        if steps is None:
            steps = self.sample_steps if sampler == self.sampler else SAMPLER_STEPS[sampler]
        return sampler, steps

    def trains_like(self, other: "M2DConfig") -> bool:
        """True when weights trained under ``other`` fit this config: they differ in sampling defaults at most."""
        sampling = {"sampler", "sample_steps", "eta", "guidance", "style_guidance", "chunk_windows", "seam_frames"}
        mine, theirs = dataclasses.asdict(self), dataclasses.asdict(other)
        return all(mine[k] == theirs[k] for k in mine if k not in sampling)

    def replace(self, **changes) -> "M2DConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["styles"] = list(self.styles)
        return {"format": CONFIG_FORMAT, **data}

    @classmethod
    def from_dict(cls, data: dict) -> "M2DConfig":
        """Build a config from its saved form; raise ValueError naming any mismatch."""
        data = dict(data)
        fmt = data.pop("format", None)
        data = {**LEGACY_SETTINGS, **data}
        if fmt != CONFIG_FORMAT:
            raise ValueError(f"format is {fmt!r}, expected {CONFIG_FORMAT!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        missing = sorted(names - set(data))
        if unknown or missing:
            parts = []
            if unknown:
                parts.append("unknown settings " + ", ".join(unknown))
            if missing:
                parts.append("missing settings " + ", ".join(missing))
            raise ValueError("; ".join(parts))
        types = {f.name: f.type for f in dataclasses.fields(cls)}
        for key, value in data.items():
            if types[key] == "tuple":
                if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
                    raise ValueError(f"setting {key} is {value!r}, expected a list of names")
                data[key] = tuple(value)
                continue
            expected = {"int": int, "float": (int, float), "str": str}[types[key]]
            if isinstance(value, bool) or not isinstance(value, expected):
                raise ValueError(f"setting {key} is {value!r}, expected a {types[key]}")
        return cls(**data)

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> "M2DConfig":
        return cls.from_dict(json.loads(Path(path).read_text()))


TINY_CONFIG = M2DConfig(width=32, depth=1, music_depth=1, heads=2, ff_mult=2, dropout=0.0)
"""A network small enough for tests and smoke runs; same data layout as the default."""

PRESETS = {
    "tiny": TINY_CONFIG,
    "small": M2DConfig(width=256, depth=4, music_depth=2, heads=4),
    "medium": M2DConfig(width=256, depth=6, music_depth=2, heads=4),
    "edge": M2DConfig(),
}
"""Named network sizes for ``python -m inference train --preset``; "edge" is EDGE's own size."""
