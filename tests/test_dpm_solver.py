"""DPM-Solver++(2M): its steps, the hooks' meaning, and the dances it makes on the tests' tiny models."""

import math

import numpy as np
import pytest
import torch
from test_sampler import TELEPORT, OracleDenoiser, oracle_motion, speed

from inference import skeleton as sk
from inference.config import DDIM, DPMPP_2M, SAMPLER_STEPS, M2DConfig
from inference.errors import Cancelled, M2DError
from inference.generate import DanceGenerator
from inference.sampling.constraints import Constraints
from inference.sampling.diffusion import cosine_alpha_bar, ddim_sample, ddim_timesteps
from inference.sampling.dpm_solver import dpmpp_2m_sample, dpmpp_2m_timesteps
from inference.sampling.sampler import sample_dance

ALPHA_BAR = cosine_alpha_bar(1000)


def gaussian_denoiser(mean: torch.Tensor, std: float):
    """The exact x_0 prediction E[x_0 | x_t] for data x_0 ~ N(mean, std^2 I)."""

    def denoise(x, t):
        a = ALPHA_BAR[t].to(x.dtype).view(-1, *[1] * (x.dim() - 1))
        return mean + a.sqrt() * std**2 / (a * std**2 + 1 - a) * (x - a.sqrt() * mean)

    return denoise


def gaussian_flow_end(x_T: torch.Tensor, mean: torch.Tensor, std: float, t_start: int) -> torch.Tensor:
    """Where the probability-flow ODE takes x_T for Gaussian data: x_t = a_t^.5 mean + (a_t std^2 + 1 - a_t)^.5 z."""
    a = ALPHA_BAR[t_start].to(x_T.dtype)
    z = (x_T - a.sqrt() * mean) / (a * std**2 + 1 - a).sqrt()
    return mean + std * z


# ----------------------------------------------------------------------------- the solver


def test_timesteps():
    for n in (2, 10, 15, 20, 25, 50, 100, 999, 1000):
        ts = dpmpp_2m_timesteps(1000, n)
        assert len(ts) == n and ts[0] == 999 and ts[-1] == 0 and all(b < a for a, b in zip(ts, ts[1:]))
    assert dpmpp_2m_timesteps(1000, 1) == [999]
    ts = dpmpp_2m_timesteps(1000, 15)
    assert ts[1] > 980 and ts[-2] < 20  # dense at both ends
    for bad in (0, 1001):
        with pytest.raises(ValueError):
            dpmpp_2m_timesteps(1000, bad)


def test_one_step_is_a_ddim_step_hooks_and_all():
    """With no earlier prediction the step is first order: deterministic DDIM exactly, hooks included."""
    torch.manual_seed(0)
    x = torch.randn(3, 8, 5)
    weight = torch.randn(5, 5) * 0.3

    def denoise(x, t):
        return torch.tanh(x @ weight) + t[:, None, None] / 1000

    hooks = dict(refine=lambda p: 0.9 * p, steer=lambda p: p + 0.1, project=lambda x, x0, a: x - 0.01 * x0)
    seen_ddim, seen_dpm = [], []
    ddim = ddim_sample(lambda x, t: seen_ddim.append(x) or denoise(x, t), x, ALPHA_BAR, [700, 300], **hooks)
    dpm = dpmpp_2m_sample(lambda x, t: seen_dpm.append(x) or denoise(x, t), x, ALPHA_BAR, [700, 300], **hooks)
    torch.testing.assert_close(seen_dpm[1], seen_ddim[1], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(dpm, ddim, rtol=1e-5, atol=1e-6)


def test_second_order_on_the_exact_flow():
    """Gaussian data, exact denoiser: the ODE's end is known. On the same time steps DPM-Solver++(2M)'s error
    falls about 4x when the steps double (second order), DDIM's 2x; on its own steps it converges too."""
    torch.manual_seed(1)
    mean, std = torch.randn(64, 6, dtype=torch.float64), 0.5
    x = torch.randn(64, 6, dtype=torch.float64)
    truth = gaussian_flow_end(x, mean, std, 999)
    denoise = gaussian_denoiser(mean, std)

    def error(sample, timesteps):
        return float((sample(denoise, x, ALPHA_BAR, timesteps) - truth).abs().max())

    dpm = {n: error(dpmpp_2m_sample, ddim_timesteps(1000, n)) for n in (40, 80, 160)}
    ddim = {n: error(ddim_sample, ddim_timesteps(1000, n)) for n in (40, 80, 160)}
    assert dpm[80] < 0.3 * dpm[40] and dpm[160] < 0.3 * dpm[80]
    assert ddim[80] > 0.4 * ddim[40] and ddim[160] > 0.4 * ddim[80]
    assert dpm[160] < 0.25 * ddim[160]
    assert error(dpmpp_2m_sample, dpmpp_2m_timesteps(1000, 200)) < 1e-2


def test_steer_reaches_the_next_sample_in_full():
    """A change d made by steer moves x_s by sqrt(alpha_bar_s) d, as in DDIM; after it, the step's
    correction compares the network's next prediction with the steered one."""
    torch.manual_seed(2)
    mean, std = torch.randn(4, 6, dtype=torch.float64), 0.5
    denoise = gaussian_denoiser(mean, std)
    x, d = torch.randn(4, 6, dtype=torch.float64), torch.randn(4, 6, dtype=torch.float64)
    ts = dpmpp_2m_timesteps(1000, 10)

    def inputs(at=None, **hooks):
        seen, step = [], iter(range(len(ts)))

        def steer(p):
            return p + d if next(step) == at else p

        dpmpp_2m_sample(lambda x, t: seen.append(x.clone()) or denoise(x, t), x, ALPHA_BAR, ts, steer=steer, **hooks)
        return seen

    plain, steered = inputs(), inputs(at=3)
    assert all(torch.equal(a, b) for a, b in zip(plain[:4], steered[:4]))
    torch.testing.assert_close(steered[4] - plain[4], ALPHA_BAR[ts[4]].sqrt() * d)


def test_the_correction_after_a_steer_compares_the_network_with_itself():
    """A network that predicts the same m whatever it sees: a steer at one step moves the next sample by
    alpha d, and the step after it carries that on by sigma's ratio alone (no correction from the steer)."""
    torch.manual_seed(5)
    m, d = torch.randn(4, 6, dtype=torch.float64), torch.randn(4, 6, dtype=torch.float64)
    x = torch.randn(4, 6, dtype=torch.float64)
    ts = dpmpp_2m_timesteps(1000, 10)

    def inputs(at=None):
        seen, step = [], iter(range(len(ts)))
        dpmpp_2m_sample(lambda x, t: seen.append(x.clone()) or m.clone(), x, ALPHA_BAR, ts,
                        steer=lambda p: p + d if next(step) == at else p)
        return seen

    plain, steered = inputs(), inputs(at=3)
    a4, a5 = ALPHA_BAR[ts[4]], ALPHA_BAR[ts[5]]
    torch.testing.assert_close(steered[4] - plain[4], a4.sqrt() * d)
    torch.testing.assert_close(steered[5] - plain[5], ((1 - a5) / (1 - a4)).sqrt() * a4.sqrt() * d)


def test_refine_is_part_of_the_prediction():
    """refine's output is the prediction: refining by f equals a network that returns f of its prediction."""
    torch.manual_seed(3)
    mean, std = torch.randn(4, 6), 0.5
    denoise = gaussian_denoiser(mean, std)
    x = torch.randn(4, 6)
    ts = dpmpp_2m_timesteps(1000, 8)
    refined = dpmpp_2m_sample(denoise, x, ALPHA_BAR, ts, refine=lambda p: 0.8 * p + 0.1)
    folded = dpmpp_2m_sample(lambda x, t: 0.8 * denoise(x, t) + 0.1, x, ALPHA_BAR, ts)
    torch.testing.assert_close(refined, folded)


def test_rebase_keeps_the_correction_in_one_coordinate_frame():
    """A projection that moves the coordinates by c (the sample by sqrt(alpha_bar) c) changes nothing in the
    end result, expressed back in the first coordinates, when the earlier prediction is rebased too."""
    torch.manual_seed(4)
    mean, std = torch.randn(4, 6, dtype=torch.float64), 0.5
    exact = gaussian_denoiser(mean, std)
    x = torch.randn(4, 6, dtype=torch.float64)
    ts = dpmpp_2m_timesteps(1000, 10)
    c = torch.randn(4, 6, dtype=torch.float64)
    moved = {"total": torch.zeros_like(c)}

    def denoise(x, t):  # the same network, seeing its input in the moved coordinates
        a = ALPHA_BAR[t[0]]
        return exact(x + a.sqrt() * moved["total"], t) - moved["total"]

    def project(x, x0, a):
        moved["total"] = moved["total"] + c
        return x - math.sqrt(a) * c

    out = dpmpp_2m_sample(denoise, x, ALPHA_BAR, ts, project=project, rebase=lambda p: p - c)
    plain = dpmpp_2m_sample(exact, x, ALPHA_BAR, ts)
    torch.testing.assert_close(out + moved["total"], plain)


def test_cancel_stops_before_the_next_step():
    steps = []
    with pytest.raises(Cancelled):
        dpmpp_2m_sample(lambda x, t: x, torch.zeros(1, 2), ALPHA_BAR, dpmpp_2m_timesteps(1000, 10),
                        progress=lambda i, n: steps.append(i), should_cancel=lambda: len(steps) >= 3)
    assert steps == [1, 2, 3]


# ----------------------------------------------------------------------------- settings


def test_config_sampling_defaults():
    config = M2DConfig()
    assert config.sampling() == (DDIM, SAMPLER_STEPS[DDIM])
    assert config.sampling(DPMPP_2M) == (DPMPP_2M, SAMPLER_STEPS[DPMPP_2M])  # another sampler: its usual steps
    assert config.sampling(DPMPP_2M, 7) == (DPMPP_2M, 7)
    with pytest.raises(ValueError):
        config.sampling("euler")
    with pytest.raises(ValueError):
        M2DConfig(sampler="euler")
    old = config.to_dict()
    del old["sampler"]  # a config saved before samplers were named: DDIM, as it was
    assert M2DConfig.from_dict({**old, "sample_steps": 50}).sampling() == (DDIM, 50)
    with pytest.raises(ValueError):
        M2DConfig.from_dict({**config.to_dict(), "sampler": 2})


# ----------------------------------------------------------------------------- a real (tiny) model


def test_same_seed_same_dance_other_seed_other_dance(tiny_weights):
    g = DanceGenerator(tiny_weights, device="cpu")
    music = np.random.default_rng(0).normal(size=(200, 35)).astype(np.float32)
    a = g.generate_from_features(music, seed=7, sampler=DPMPP_2M, steps=5)
    b = g.generate_from_features(music, seed=7, sampler=DPMPP_2M, steps=5)
    c = g.generate_from_features(music, seed=8, sampler=DPMPP_2M, steps=5)
    assert np.array_equal(a.smpl_poses, b.smpl_poses) and np.array_equal(a.smpl_trans, b.smpl_trans)
    assert np.array_equal(a.joints, b.joints)
    assert np.abs(a.smpl_poses - c.smpl_poses).mean() > 1e-3
    assert a.extras["sampler"] == DPMPP_2M and a.extras["steps"] == 5
    with pytest.raises(M2DError, match="deterministic"):
        g.generate_from_features(music, sampler=DPMPP_2M, eta=1.0)
    with pytest.raises(M2DError, match="Unknown sampler"):
        g.generate_from_features(music, sampler="heun")
    with pytest.raises(M2DError, match="1 to 1000"):
        g.generate_from_features(music, sampler=DPMPP_2M, steps=1001)


def test_at_many_steps_it_agrees_with_ddim(generator, music):
    """Both solve the same ODE (DDIM with eta 0): with many steps they reach the same dance. 300 frames,
    three windows denoised together (crossfades, ties and origins at every step), no pins."""
    song = music[:300]
    dpm = sample_dance(generator.model, song, sampler=DPMPP_2M, steps=200, seed=4)
    ddim = sample_dance(generator.model, song, sampler=DDIM, steps=500, seed=4)
    few = sample_dance(generator.model, song, sampler=DPMPP_2M, steps=5, seed=4)
    other = sample_dance(generator.model, song, sampler=DDIM, steps=500, seed=5)
    close, apart, spread = (np.abs(a - ddim).mean() for a in (dpm, few, other))
    assert close < 0.1 * spread and close < 0.5 * apart, (close, apart, spread)


def test_long_form_reassembles_the_dance_exactly():
    """The oracle's dance comes back whole over three chunks (origins rebased at every step)."""
    model = OracleDenoiser(2).eval()
    frames = 437
    music = np.zeros((frames, 35), np.float32)
    music[:, 0] = np.arange(frames)
    out = sample_dance(model, music, sampler=DPMPP_2M, steps=6, guidance=1.0)
    np.testing.assert_allclose(out, oracle_motion(np.arange(frames)), atol=2e-3)


def test_window_and_chunk_seams_do_not_jump(generator, music):
    for chunk in (8, 1):
        generator.model.config = generator.config.replace(chunk_windows=chunk)
        try:
            dance = generator.generate_from_features(music, seed=3, sampler=DPMPP_2M, steps=10)
        finally:
            generator.model.config = generator.config
        v = speed(dance.joints)
        limit = TELEPORT * np.percentile(v, 95)
        for seam in (75, 150, 225, 300, 375):
            assert v[seam - 3: seam + 3].max() <= limit, (chunk, seam)


def test_pins_exact_and_borders_continuous(generator, music):
    n = len(music)
    free = generator.generate_from_features(music, seed=3, sampler=DPMPP_2M, steps=10)
    limit = TELEPORT * np.percentile(speed(free.joints), 95)
    rng = np.random.default_rng(0)
    c = Constraints.empty(n)
    pose = free.smpl_poses[50] + rng.normal(size=72) * 0.2
    c.pin_pose([40], pose[None], free.smpl_trans[40:41])  # a lone key
    c.pin_pose(range(100, 130), np.tile(pose, (30, 1)), np.tile(free.smpl_trans[115], (30, 1)))
    c.pin_joints(range(200, 260), "legs", np.full((60, 8, 3), 0.2))
    path = free.smpl_trans[300:350] + [0.3, 0.0, 0.0]
    c.pin_root(range(300, 350), path, horizontal_only=True)
    dance = generator.generate_from_features(music, seed=3, sampler=DPMPP_2M, steps=10, constraints=c)
    poses = dance.smpl_poses.reshape(n, 24, 3)
    assert np.abs(poses[40] - pose.reshape(24, 3)).max() <= 1e-4
    assert np.abs(poses[100:130] - pose.reshape(24, 3)).max() <= 1e-4
    assert np.abs(dance.smpl_trans[100:130] - free.smpl_trans[115]).max() <= 1e-4
    legs = [sk.JOINT_INDEX[j] for j in sk.JOINT_GROUPS["legs"]]
    assert np.abs(poses[200:260][:, legs] - 0.2).max() <= 1e-4
    assert np.abs(dance.smpl_trans[300:350, :2] - path[:, :2]).max() <= 1e-4
    v = speed(dance.joints)
    for border in (100, 130, 200, 260, 300, 350):
        assert v[border - 3: border + 3].max() <= limit, border


def test_cancel_and_progress_through_the_generator(generator, music):
    seen = []

    def progress(stage, done, total):
        seen.append((stage, done, total))

    generator.generate_from_features(music[:200], sampler=DPMPP_2M, steps=6, progress=progress)
    sampling = [(d, t) for s, d, t in seen if s == "sampling"]
    assert sampling == [(i, 6) for i in range(1, 7)]
    with pytest.raises(Cancelled):
        generator.generate_from_features(music[:200], sampler=DPMPP_2M, steps=6, progress=progress,
                                         should_cancel=lambda: sum(s == "sampling" for s, _, _ in seen) >= 9)
