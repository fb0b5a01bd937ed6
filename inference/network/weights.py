"""Saving and loading a model: safetensors for the tensors, JSON for its :class:`M2DConfig`.

A model lives in a folder holding ``model.safetensors`` and ``config.json``;
either the folder or the ``.safetensors`` file may be named. Nothing is
unpickled. Every way a load can fail ends in a :class:`WeightsError` that names
the file and the problem.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..config import CONFIG_FILE, WEIGHTS_FILE, M2DConfig, model_files
from ..errors import WeightsError
from ..files import atomic_path
from .model import DanceDenoiser

WEIGHTS_ENV = "M2D_WEIGHTS"
"""Environment variable naming the weights to use when none are given."""

_HOW_TO_GET = (
    "Train a model with `python -m inference train` (see the README), "
    f"or point --weights (or ${WEIGHTS_ENV}) at a folder holding {WEIGHTS_FILE} and {CONFIG_FILE}."
)


def default_weights_dir() -> Path:
    """The shipped model: ``$M2D_WEIGHTS`` if set, else ``weights/`` beside the ``inference`` package."""
    env = os.environ.get(WEIGHTS_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[2] / "weights"


def _files(path) -> tuple[Path, Path]:
    return model_files(path if path is not None else default_weights_dir())


def save_model(model: DanceDenoiser, directory, half: bool = False) -> Path:
    """Write ``model.safetensors`` and ``config.json`` into ``directory`` (created if needed).

    ``half`` stores the learned parameters as float16 (half the file; they load as float32),
    while buffers such as the motion statistics stay float32.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    params = {name for name, _ in model.named_parameters()}
    tensors = {k: v.detach().to("cpu", torch.float16 if half and k in params else torch.float32).contiguous()
               for k, v in model.state_dict().items()}
    weights_file, config_file = directory / WEIGHTS_FILE, directory / CONFIG_FILE
    with atomic_path(weights_file) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "music2dance"})
    with atomic_path(config_file) as tmp:
        model.config.save(tmp)
    return directory


def load_config(path=None) -> M2DConfig:
    """The config of the model at ``path`` (folder or .safetensors file)."""
    _, config_file = _files(path)
    if not config_file.is_file():
        raise WeightsError(f"Model config not found: {config_file}. {_HOW_TO_GET}")
    try:
        return M2DConfig.from_dict(json.loads(config_file.read_text()))
    except json.JSONDecodeError as exc:
        raise WeightsError(f"{config_file} is not valid JSON ({exc}). Restore it from the model's release.") from None
    except (ValueError, TypeError) as exc:
        raise WeightsError(f"{config_file} does not describe a Music2Dance model: {exc}.") from None


def load_model(path=None, device: torch.device | str = "cpu") -> DanceDenoiser:
    """Load the model at ``path`` (default: :func:`default_weights_dir`) in eval mode on ``device``."""
    weights_file, config_file = _files(path)
    if not weights_file.is_file():
        where = weights_file if path is not None else f"{weights_file} (the default location)"
        raise WeightsError(f"No model weights found at {where}. {_HOW_TO_GET}")
    config = load_config(weights_file)
    try:
        tensors = load_file(str(weights_file))
    except (SafetensorError, OSError) as exc:
        raise WeightsError(
            f"{weights_file} is truncated or corrupt ({exc}). Copy or download the weights again."
        ) from None

    model = DanceDenoiser(config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = [k for k in expected if k in tensors and tensors[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        parts = []
        if wrong:
            k = wrong[0]
            parts.append(f"{len(wrong)} tensors have other shapes than {config_file.name} implies "
                         f"(e.g. {k}: file {tuple(tensors[k].shape)}, config {tuple(expected[k].shape)})")
        if missing:
            parts.append(f"{len(missing)} tensors are missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} tensors are not part of this model (e.g. {unexpected[0]})")
        raise WeightsError(
            f"{weights_file} does not match {config_file}: " + "; ".join(parts)
            + ". Keep each model's safetensors and config.json together."
        )
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise WeightsError(f"{weights_file} holds NaN or infinite values (e.g. in {bad[0]}); the file is corrupt.")
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in tensors.items()})
    return model.to(device).eval()
