"""``python -m inference train``: registered by :mod:`inference.cli` where this package is installed.

(``preprocess`` registers itself from :mod:`.data.preprocess`.)
"""

from __future__ import annotations

from pathlib import Path


def _cmd_train(args) -> int:
    from ..config import PRESETS, M2DConfig
    from ..device import describe, resolve_device
    from .data.cache import DanceCache, WindowSampler, cache_styles, unmeasured_joints
    from .train import Distributed, Trainer, TrainSettings

    device = resolve_device(args.device)
    config = M2DConfig.load(args.config) if args.config else PRESETS[args.preset]
    if args.steps_per_sample:
        config = config.replace(sample_steps=args.steps_per_sample)
    cache = DanceCache(args.data)
    cache.check_config(config)
    if not args.config:  # a config file names its own styles
        config = config.replace(styles=() if args.no_styles else cache_styles(cache))
    settings = TrainSettings(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                             decay_steps=args.decay_steps, swing_weight=args.swing_weight,
                             planted_weight=args.planted_weight, planted_root_share=args.planted_root_share,
                             planted_noise_power=args.planted_noise_power,
                             mask_unmeasured=args.mask_unmeasured,
                             val_every=args.val_every, checkpoint_every=args.checkpoint_every or args.val_every)
    source = WindowSampler(cache, config, split="train", augment=not args.no_augment,
                           unmeasured=unmeasured_joints(cache) if settings.mask_unmeasured else ())
    dist = Distributed.from_env()
    say = print if dist.is_main else (lambda *a, **k: None)
    say(f"Training a {args.preset if not args.config else 'custom'} model on {describe(device)}"
        + (f" x {dist.world_size} processes" if dist.world_size > 1 else "")
        + f": {cache.frames('train')} training frames, styles {', '.join(config.styles) or 'none'}, "
          f"{settings.steps} steps -> {args.out}")
    out = Trainer(config, source, args.out, settings, device, distributed=dist).run(resume=args.resume)
    say(f"Exported {out} (EMA weights); the best validation checkpoint is in {Path(args.out) / 'best'}.")
    if dist.world_size > 1:
        import torch.distributed

        torch.distributed.destroy_process_group()
    return 0


def add_subcommand(subparsers) -> None:
    """Add ``train`` to the CLI's subparsers."""
    t = subparsers.add_parser("train", help="train a model on a preprocessed cache",
                              description="Train the denoiser with EDGE's losses on a cache made by "
                                          "`python -m inference preprocess`; writes checkpoints, loss.csv, "
                                          "loss.png and the exported model (safetensors + config.json). "
                                          "Under torchrun (e.g. `torchrun --nproc_per_node 4 -m inference "
                                          "train ...`) every process trains a DistributedDataParallel "
                                          "replica (NCCL on GPUs, gloo on CPU) and the first writes the run.")
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
    t.add_argument("--checkpoint-every", type=int, default=None,
                   help="steps between checkpoints (default: as --val-every)")
    t.add_argument("--resume", default=None, help="continue from this checkpoint.pt")
    t.add_argument("--no-styles", action="store_true",
                   help="no style embedding (default: one per style label of the training dances)")
    t.add_argument("--swing-weight", type=float, default=0.0,
                   help="weight of the swing-foot term: feet off the floor must lift and travel as the data's "
                        "(default 0: EDGE's losses only)")
    t.add_argument("--planted-weight", type=float, default=0.0,
                   help="weight of the planted-foot term: where the data's foot is planted, the predicted foot "
                        "must move as the data's does (default 0: off)")
    t.add_argument("--planted-root-share", type=float, default=1.0,
                   help="share of the planted-foot term's gradient that reaches the root's rotation and path "
                        "(default 1; 0: the legs alone hold a planted foot)")
    t.add_argument("--planted-noise-power", type=float, default=1.0,
                   help="the planted-foot term is weighted by alpha_bar_t to this power (default 1; higher: it "
                        "acts mostly at low noise, on the feet's fine motion rather than the dance's broad motion)")
    t.add_argument("--mask-unmeasured", action="store_true",
                   help="leave out of the losses the joints the data's source does not measure (Tang 2018: the "
                        "right wrist's bend); mirroring lets the measured side teach them")
    t.add_argument("--no-augment", action="store_true", help="no mirroring or heading changes")
    t.add_argument("--steps-per-sample", type=int, default=None,
                   help="the exported model's default DDIM steps (default 50)")
    t.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    t.set_defaults(func=_cmd_train)
