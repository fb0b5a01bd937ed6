"""Training end to end on CPU: a studio folder -> cache -> a few steps -> resume -> a usable model."""

import csv
import json

import numpy as np
import pytest
import soundfile as sf
import torch
from synthetic import SR, SyntheticDances, music_like

from inference import motion as mo
from inference.cli import main
from inference.config import TINY_CONFIG
from inference.generate import DanceGenerator
from inference.network.weights import load_model
from inference.training.data.cache import DanceCache, WindowSampler
from inference.training.train import LOSS_WEIGHTS, TrainSettings, Trainer, diffusion_losses, total_loss


@pytest.fixture(scope="module")
def studio_cache(tmp_path_factory):
    """Three synthetic clips in the studio folder format, preprocessed into a cache."""
    root = tmp_path_factory.mktemp("studio")
    source = SyntheticDances(TINY_CONFIG, seed=1)
    rng = np.random.default_rng(0)
    for i in range(3):
        motion, _ = source._window(rng, 240)
        smpl = mo.to_smpl(motion)
        np.savez(root / f"clip{i}.npz", fps=np.int32(30), smpl_poses=smpl.smpl_poses, smpl_trans=smpl.smpl_trans)
        sf.write(root / f"clip{i}.wav", music_like(8.0, seed=i), SR)
    (root / "test.txt").write_text("clip2\n")
    cache = root / "studio.npz"
    assert main(["preprocess", "folder", str(root), "-o", str(cache)]) == 0
    return cache


def test_cli_smoke_run_and_resume(studio_cache, tmp_path, capsys, song):
    run = tmp_path / "run"
    args = ["train", "--data", str(studio_cache), "--out", str(run), "--preset", "tiny", "--batch-size", "2",
            "--val-every", "2", "--device", "cpu"]
    assert main(args + ["--steps", "3"]) == 0
    rows = list(csv.DictReader(open(run / "loss.csv")))
    assert [int(r["step"]) for r in rows] == [2, 3] and rows[0]["val"] != ""
    assert all(np.isfinite(float(r["loss"])) for r in rows)
    assert (run / "loss.png").stat().st_size > 0 and (run / "checkpoint.pt").exists()
    model = load_model(run / "model")
    assert model.config == TINY_CONFIG
    assert not torch.allclose(model.motion_std, torch.ones_like(model.motion_std))  # statistics were fitted
    assert main(args + ["--steps", "5", "--resume", str(run / "checkpoint.pt")]) == 0
    assert "resumed from" in capsys.readouterr().out
    rows = list(csv.DictReader(open(run / "loss.csv")))
    assert [int(r["step"]) for r in rows] == [2, 3, 4, 5]
    dance = DanceGenerator(run / "model", device="cpu").generate(song, duration=2.0, steps=2)
    assert dance.smpl_poses.shape == (60, 72) and np.isfinite(dance.joints).all()


def test_resume_needs_the_same_config(studio_cache, tmp_path):
    run = tmp_path / "run"
    base = ["train", "--data", str(studio_cache), "--out", str(run), "--batch-size", "2", "--val-every", "2",
            "--steps", "2", "--device", "cpu"]
    assert main(base + ["--preset", "tiny"]) == 0
    assert main(base + ["--preset", "small", "--resume", str(run / "checkpoint.pt"), "--steps", "3"]) == 2


def test_resume_accepts_new_sampling_defaults(studio_cache, tmp_path):
    # A run started before a sampling default changed (here the easing span) resumes: the
    # weights do not depend on it.
    run = tmp_path / "run"
    config = tmp_path / "config.json"
    base = ["train", "--data", str(studio_cache), "--out", str(run), "--batch-size", "2", "--val-every", "2",
            "--device", "cpu", "--config", str(config)]
    TINY_CONFIG.replace(seam_frames=8).save(config)
    assert main(base + ["--steps", "2"]) == 0
    TINY_CONFIG.replace(seam_frames=20, guidance=3.0).save(config)
    assert main(base + ["--steps", "3", "--resume", str(run / "checkpoint.pt")]) == 0
    assert load_model(run / "model").config.seam_frames == 20


def test_learning_rate_warms_up_then_decays_to_zero(studio_cache):
    source = WindowSampler(DanceCache(studio_cache), TINY_CONFIG, split="train")
    settings = TrainSettings(steps=100, lr=1e-3, warmup_steps=10, decay_steps=40)
    trainer = Trainer(TINY_CONFIG, source, "/nonexistent", settings, torch.device("cpu"), log=lambda m: None)

    def lr_at(step):
        trainer.step = step
        return trainer._lr()

    assert lr_at(0) == pytest.approx(1e-4) and lr_at(9) == pytest.approx(1e-3)
    assert lr_at(60) == pytest.approx(1e-3) and lr_at(80) == pytest.approx(5e-4) and lr_at(100) == 0.0


def test_losses_are_finite_and_follow_edge_weights(studio_cache):
    cache = DanceCache(studio_cache)
    source = WindowSampler(cache, TINY_CONFIG, split="train")
    trainer = Trainer(TINY_CONFIG, source, "/nonexistent", TrainSettings(batch_size=4), torch.device("cpu"),
                      log=lambda m: None)
    motion, music, _ = source.sample(4, np.random.default_rng(0))
    x0 = trainer.model.normalize_motion(torch.as_tensor(motion))
    t = torch.tensor([0, 10, 500, 999])
    losses = diffusion_losses(trainer.model, x0, torch.as_tensor(music), t, torch.randn_like(x0),
                              torch.tensor([False, True, False, True]), trainer.alpha_bar, trainer.settings)
    assert set(losses) == set(LOSS_WEIGHTS) and all(torch.isfinite(v) for v in losses.values())
    assert torch.isclose(total_loss(losses), sum(LOSS_WEIGHTS[k] * v for k, v in losses.items()))
    total_loss(losses).backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in trainer.model.parameters())


def test_foot_terms_join_the_loss_with_their_weights(studio_cache):
    cache = DanceCache(studio_cache)
    source = WindowSampler(cache, TINY_CONFIG, split="train")
    settings = TrainSettings(batch_size=4, swing_weight=0.25, planted_weight=0.05)
    trainer = Trainer(TINY_CONFIG, source, "/nonexistent", settings, torch.device("cpu"), log=lambda m: None)
    motion, music, _ = source.sample(4, np.random.default_rng(0))
    assert 0 < motion[..., :4].mean() < 1  # the windows have planted and lifted feet
    x0 = trainer.model.normalize_motion(torch.as_tensor(motion))
    losses = diffusion_losses(trainer.model, x0, torch.as_tensor(music), torch.tensor([0, 10, 500, 999]),
                              torch.randn_like(x0), torch.zeros(4, dtype=torch.bool), trainer.alpha_bar, settings)
    assert set(losses) == set(LOSS_WEIGHTS) | {"swing", "planted"}
    assert losses["planted"] > 0 and losses["swing"] > 0  # an untrained network's feet move where the data's don't
    expected = sum(LOSS_WEIGHTS[k] * v for k, v in losses.items() if k in LOSS_WEIGHTS) \
        + 0.25 * losses["swing"] + 0.05 * losses["planted"]
    assert torch.isclose(total_loss(losses, settings), expected)
    assert torch.isclose(total_loss({k: v for k, v in losses.items() if k in LOSS_WEIGHTS}),
                         sum(LOSS_WEIGHTS[k] * losses[k] for k in LOSS_WEIGHTS))


def _losses_keeping_output(trainer, motion, music, t, settings):
    """``diffusion_losses`` of a batch, and the network's output tensor (its ``.grad`` kept for the test)."""
    x0 = trainer.model.normalize_motion(torch.as_tensor(motion))
    outputs = []

    def keep(module, args, out):
        out.retain_grad()
        outputs.append(out)

    hook = trainer.model.register_forward_hook(keep)
    try:
        losses = diffusion_losses(trainer.model, x0, torch.as_tensor(music), torch.tensor(t), torch.randn_like(x0),
                                  torch.zeros(len(x0), dtype=torch.bool), trainer.alpha_bar, settings)
    finally:
        hook.remove()
    return losses, outputs[0]


def test_unmeasured_values_teach_nothing(studio_cache):
    """NaN in the data's motion: the losses are finite and give the network's output for it no gradient."""
    from inference import motion as mo
    from inference import skeleton as sk

    cache = DanceCache(studio_cache)
    source = WindowSampler(cache, TINY_CONFIG, split="train", augment=False, unmeasured=("right_wrist",))
    settings = TrainSettings(batch_size=4, planted_weight=0.05, swing_weight=0.25)
    trainer = Trainer(TINY_CONFIG, source, "/nonexistent", settings, torch.device("cpu"), log=lambda m: None)
    motion, music, _ = source.sample(4, np.random.default_rng(0))
    losses, output = _losses_keeping_output(trainer, motion, music, [0, 10, 500, 999], settings)
    assert all(torch.isfinite(v) for v in losses.values())
    total_loss(losses, settings).backward()
    grad = output.grad
    wrist = mo.rotation_dims(sk.JOINT_INDEX["right_wrist"])
    assert grad[..., wrist].abs().max() == 0  # the right wrist is not measured: nothing pulls it
    assert grad[..., mo.rotation_dims(sk.JOINT_INDEX["left_wrist"])].abs().max() > 0
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in trainer.model.parameters())


def test_planted_terms_root_share_scales_only_the_roots_gradient(studio_cache):
    """``planted_root_share``: the same planted loss; the root's rotation and path get that share of its gradient
    (none at 0), the legs' rotations all of it."""
    from inference import motion as mo
    from inference import skeleton as sk

    cache = DanceCache(studio_cache)
    source = WindowSampler(cache, TINY_CONFIG, split="train", augment=False)
    motion, music, _ = source.sample(4, np.random.default_rng(0))
    grads, values = {}, {}
    for share in (1.0, 0.25, 0.0):
        settings = TrainSettings(batch_size=4, planted_weight=1.0, planted_root_share=share)
        torch.manual_seed(0)
        trainer = Trainer(TINY_CONFIG, source, "/nonexistent", settings, torch.device("cpu"), log=lambda m: None)
        torch.manual_seed(1)  # the same noise for every share
        losses, output = _losses_keeping_output(trainer, motion, music, [0, 10, 20, 30], settings)
        losses["planted"].backward()
        grads[share], values[share] = output.grad, losses["planted"].detach()
    assert values[0.0] > 0 and torch.isclose(values[0.0], values[1.0]) and torch.isclose(values[0.25], values[1.0])
    root = [mo.ROOT, mo.rotation_dims(0)]
    legs = [mo.rotation_dims(sk.JOINT_INDEX[f"{side}_{part}"]) for side in ("left", "right")
            for part in ("hip", "knee", "ankle")]
    assert all(grads[1.0][..., dims].abs().max() > 0 for dims in root)
    assert all(grads[0.0][..., dims].abs().max() == 0 for dims in root)  # the root is not moved to hold a foot
    assert all(torch.allclose(grads[0.25][..., dims], 0.25 * grads[1.0][..., dims]) for dims in root)
    assert any(grads[0.0][..., dims].abs().max() > 0 for dims in legs)
    assert all(torch.allclose(grads[share][..., dims], grads[1.0][..., dims]) for dims in legs for share in grads)


def test_planted_terms_noise_power_weights_it_by_alpha_bar(studio_cache):
    """``planted_noise_power`` K: each window's planted error is weighted by alpha_bar_t ** K (K = 1: alpha_bar)."""
    cache = DanceCache(studio_cache)
    source = WindowSampler(cache, TINY_CONFIG, split="train", augment=False)
    motion, music, _ = source.sample(4, np.random.default_rng(0))
    t = [300, 300, 300, 300]  # one noise level: the error is the same for every power, only its weight changes
    values = {}
    for power in (1.0, 4.0):
        settings = TrainSettings(batch_size=4, planted_weight=1.0, planted_noise_power=power)
        torch.manual_seed(0)
        trainer = Trainer(TINY_CONFIG, source, "/nonexistent", settings, torch.device("cpu"), log=lambda m: None)
        torch.manual_seed(1)
        values[power] = _losses_keeping_output(trainer, motion, music, t, settings)[0]["planted"].detach()
    a = trainer.alpha_bar[300].float()
    assert 0.1 < a < 0.9 and values[1.0] > 0
    assert torch.isclose(values[4.0], values[1.0] * a ** 3, rtol=1e-4)


def test_a_resumed_runs_older_loss_log_gains_the_new_columns(tmp_path):
    from inference.training.train import _widen_log

    log = tmp_path / "loss.csv"
    log.write_text("step,loss,swing,val\n50,0.5,,\n100,0.4,,0.3\n")
    _widen_log(log, ["step", "loss", "swing", "planted", "val"])
    assert log.read_text().splitlines() == ["step,loss,swing,planted,val", "50,0.5,,,", "100,0.4,,,0.3"]


def _replica(rank, world, port, cache_path, run_dir, out_dir):
    """One process of a 2-process gloo run, as torchrun would start it (its environment says where it is)."""
    import os

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    config = TINY_CONFIG.replace(styles=("a", "b"))
    source = WindowSampler(DanceCache(cache_path), config, split="train")
    trainer = Trainer(config, source, run_dir, TrainSettings(steps=3, batch_size=4, val_every=3, log_every=1),
                      torch.device("cpu"), log=lambda m: None)
    trainer.run()
    torch.save({"model": trainer.model.state_dict(), "ema": trainer.ema.state_dict()}, f"{out_dir}/rank{rank}.pt")
    torch.distributed.destroy_process_group()


def test_distributed_replicas_hold_identical_weights(studio_cache, tmp_path):
    """Two gloo processes (DistributedDataParallel on CPU) train the tiny model three steps: each drew
    its own windows, yet both replicas end with the same weights, and the first wrote the run."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_replica, args=(2, port, str(studio_cache), str(tmp_path / "run"), str(tmp_path)), nprocs=2)
    a, b = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    fresh = Trainer(TINY_CONFIG.replace(styles=("a", "b")), WindowSampler(DanceCache(studio_cache), TINY_CONFIG),
                    tmp_path / "x", TrainSettings(), torch.device("cpu"), log=lambda m: None)
    for part in ("model", "ema"):
        assert a[part].keys() == b[part].keys()
        for k in a[part]:
            assert torch.equal(a[part][k], b[part][k]), (part, k)
    assert any(not torch.equal(a["model"][k], v) for k, v in fresh.model.state_dict().items())  # it trained
    rows = list(csv.DictReader(open(tmp_path / "run" / "loss.csv")))
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
    assert json.loads((tmp_path / "run" / "settings.json").read_text())["processes"] == 2
    assert (tmp_path / "run" / "checkpoint.pt").exists() and (tmp_path / "run" / "model" / "config.json").exists()
