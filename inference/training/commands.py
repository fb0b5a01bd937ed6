"""``python -m inference train``: registered by :mod:`inference.cli` where this package is installed.

(``preprocess`` registers itself from :mod:`.data.preprocess`.)
"""

from __future__ import annotations

from pathlib import Path


def _cmd_train(args) -> int:
    from ..config import PRESETS, M2DConfig
    from ..device import describe, resolve_device
    from .data.cache import DanceCache, WindowSampler
    from .train import Trainer, TrainSettings

    device = resolve_device(args.device)
    config = M2DConfig.load(args.config) if args.config else PRESETS[args.preset]
    if args.steps_per_sample:
        config = config.replace(sample_steps=args.steps_per_sample)
    cache = DanceCache(args.data)
    cache.check_config(config)
    source = WindowSampler(cache, config, split="train", augment=not args.no_augment)
    settings = TrainSettings(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                             decay_steps=args.decay_steps,
                             val_every=args.val_every, checkpoint_every=args.val_every)
    print(f"Training a {args.preset if not args.config else 'custom'} model on {describe(device)}: "
          f"{cache.frames('train')} training frames, {settings.steps} steps -> {args.out}")
    out = Trainer(config, source, args.out, settings, device).run(resume=args.resume)
    print(f"Exported {out} (EMA weights); the best validation checkpoint is in {Path(args.out) / 'best'}.")
    return 0


def add_subcommand(subparsers) -> None:
    """Add ``train`` to the CLI's subparsers."""
    t = subparsers.add_parser("train", help="train a model on a preprocessed cache",
                              description="Train the denoiser with EDGE's losses on a cache made by "
                                          "`python -m inference preprocess`; writes checkpoints, loss.csv, "
                                          "loss.png and the exported model (safetensors + config.json).")
    t.add_argument("--data", required=True, help="the cache file (.npz) from `preprocess`")
    t.add_argument("--out", required=True, help="run folder: checkpoints, logs and the exported model")
    t.add_argument("--preset", default="small", choices=["tiny", "small", "medium", "edge"],
                   help="network size (default small: 256 wide, 4 layers)")
    t.add_argument("--config", default=None, help="a config.json to use instead of a preset")
    t.add_argument("--steps", type=int, default=100_000, help="optimiser steps (default 100000)")
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--lr", type=float, default=2e-4)
    t.add_argument("--decay-steps", type=int, default=0,
                   help="let the learning rate fall linearly to zero over the last N steps (default 0: constant)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--val-every", type=int, default=1000, help="steps between validation and checkpoints")
    t.add_argument("--resume", default=None, help="continue from this checkpoint.pt")
    t.add_argument("--no-augment", action="store_true", help="no mirroring or heading changes")
    t.add_argument("--steps-per-sample", type=int, default=None,
                   help="the exported model's default DDIM steps (default 50)")
    t.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    t.set_defaults(func=_cmd_train)
