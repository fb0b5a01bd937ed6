"""Style as a condition: the config's styles, the network's style embedding, and asking for a style."""

import json

import numpy as np
import pytest
import torch

from inference.cli import main
from inference.config import TINY_CONFIG, M2DConfig
from inference.errors import M2DError
from inference.generate import DanceGenerator
from inference.network.model import DanceDenoiser
from inference.network.weights import default_weights_dir, load_model, save_model
from inference.protocol import STYLE_CHOICES, GenerateRequest, TakeInfo

STYLED = TINY_CONFIG.replace(styles=("cha-cha", "rumba", "waltz"))


@pytest.fixture(scope="module")
def styled_weights(tmp_path_factory):
    """A tiny random model with a style embedding; its FiLM layers (which start as the identity, so no
    condition shows before training) and style embedding drawn at random, so styles show."""
    torch.manual_seed(0)
    model = DanceDenoiser(STYLED)
    with torch.no_grad():
        model.style_embedding.weight.normal_(0.0, 1.0)
        for layer in model.decoder:
            layer.film[1].weight.normal_(0.0, 0.1)
    return save_model(model, tmp_path_factory.mktemp("styled"))


def test_config_round_trip_and_old_configs_load_without_styles(tmp_path):
    STYLED.save(tmp_path / "c.json")
    assert json.loads((tmp_path / "c.json").read_text())["styles"] == ["cha-cha", "rumba", "waltz"]
    assert M2DConfig.load(tmp_path / "c.json") == STYLED
    old = STYLED.to_dict()
    del old["styles"], old["style_drop_prob"]  # as the first model's config.json
    assert M2DConfig.from_dict(old) == TINY_CONFIG and TINY_CONFIG.style_choices() == ("any",)
    assert STYLED.style_choices() == STYLE_CHOICES
    assert [STYLED.style_index(s) for s in STYLE_CHOICES] == [0, 1, 2, 3]
    assert not STYLED.trains_like(TINY_CONFIG)  # a run cannot resume with other styles
    with pytest.raises(ValueError, match="unknown style 'tango'.*any, cha-cha, rumba, waltz"):
        STYLED.style_index("tango")
    with pytest.raises(ValueError, match="trained without styles"):
        TINY_CONFIG.style_index("waltz")
    with pytest.raises(ValueError, match="styles must be distinct"):
        M2DConfig(styles=("any",))
    bad = STYLED.to_dict() | {"styles": "waltz"}
    with pytest.raises(ValueError, match="expected a list of names"):
        M2DConfig.from_dict(bad)


def test_style_changes_the_prediction_and_any_is_the_null_style(styled_weights):
    model = load_model(styled_weights).eval()
    torch.manual_seed(3)
    x = torch.randn(1, STYLED.window_frames, STYLED.motion_dim)
    music = torch.randn(1, STYLED.window_frames, STYLED.music_dim)
    t = torch.tensor([400])
    with torch.no_grad():
        tokens = model.encode_music(music)
        out = {i: model(x, t, tokens, torch.tensor([i])) for i in range(4)}
        default = model(x, t, tokens)
    assert torch.equal(default, out[0])  # no style asked = the null style ("any")
    for a in range(4):
        for b in range(a + 1, 4):
            assert (out[a] - out[b]).abs().max() > 1e-3, (a, b)


def test_generator_style_choices_and_the_dance_records_its_style(styled_weights):
    gen = DanceGenerator(styled_weights, device="cpu")
    music = np.random.default_rng(0).normal(size=(60, STYLED.music_dim)).astype(np.float32)
    dances = {s: gen.generate_from_features(music, steps=2, style=s, beat_snap=False, foot_lock=False)
              for s in ("any", "waltz", "rumba")}
    assert dances["waltz"].extras["style"] == "waltz"
    assert not np.allclose(dances["waltz"].smpl_poses, dances["rumba"].smpl_poses, atol=1e-3)
    plain = gen.generate_from_features(music, steps=2, beat_snap=False, foot_lock=False)
    assert np.array_equal(plain.smpl_poses, dances["any"].smpl_poses) and plain.extras["style"] == "any"
    with pytest.raises(M2DError, match="unknown style 'tango': this model knows any, cha-cha, rumba, waltz"):
        gen.generate_from_features(music, steps=2, style="tango")


def test_style_guidance_pushes_a_chosen_style_and_leaves_any_alone(styled_weights):
    gen = DanceGenerator(styled_weights, device="cpu")
    music = np.random.default_rng(1).normal(size=(60, STYLED.music_dim)).astype(np.float32)

    def dance(style, weight):
        gen.model.config = gen.config.replace(style_guidance=weight)
        return gen.generate_from_features(music, steps=2, style=style, beat_snap=False, foot_lock=False).smpl_poses

    try:
        plain_waltz, plain_any = dance("waltz", 0.0), dance("any", 0.0)
        pushed = dance("waltz", 2.0)
        assert np.array_equal(dance("any", 2.0), plain_any)  # nothing to push without a style
    finally:
        gen.model.config = gen.config
    # The push moves the waltz further from "any" than the waltz alone was.
    assert np.abs(pushed - plain_any).mean() > np.abs(plain_waltz - plain_any).mean() + 1e-3
    old = STYLED.to_dict()
    del old["style_guidance"]  # configs saved before it existed: no extra push
    assert M2DConfig.from_dict(old).style_guidance == 0.0


def test_shipped_weights_know_the_ballroom_styles():
    """The shipped model (v2) has a style embedding for the three ballroom styles, the Dance panel's choices;
    weights without one (the first model) are covered by a saved tiny model below."""
    model = load_model(default_weights_dir())
    assert model.config.styles == ("cha-cha", "rumba", "waltz") and hasattr(model, "style_embedding")
    assert model.config.style_choices() == STYLE_CHOICES
    assert model.config.style_guidance == 0.0


def test_weights_without_styles_refuse_a_style_clearly(tiny_weights, song, tmp_path, capsys):
    gen = DanceGenerator(tiny_weights, device="cpu")
    music = np.zeros((30, TINY_CONFIG.music_dim), np.float32)
    assert gen.generate_from_features(music, steps=1, style="any").extras["style"] == "any"
    with pytest.raises(M2DError, match="trained without styles, so only the style 'any' works"):
        gen.generate_from_features(music, steps=1, style="waltz")
    out = tmp_path / "d.npz"
    assert main(["generate", str(song), "-o", str(out), "--weights", str(tiny_weights), "--style", "waltz",
                 "--duration", "2", "--steps", "1"]) == 2
    assert "trained without styles" in capsys.readouterr().err and not out.exists()


def test_cli_style_option(song, styled_weights, tmp_path, capsys):
    out = tmp_path / "w.npz"
    assert main(["generate", str(song), "-o", str(out), "--weights", str(styled_weights), "--style", "waltz",
                 "--duration", "2", "--steps", "2", "--device", "cpu"]) == 0
    assert out.exists()
    assert main(["generate", str(song), "-o", str(out), "--weights", str(styled_weights), "--style", "salsa",
                 "--duration", "2", "--steps", "2"]) == 2
    assert "unknown style 'salsa'" in capsys.readouterr().err


def test_request_and_take_carry_the_style():
    req = GenerateRequest.from_dict({"audio": "a.wav", "output": "o.npz", "style": "rumba"})
    assert req.style == "rumba" and GenerateRequest.from_dict({"audio": "a", "output": "o"}).style == "any"
    take = TakeInfo.of_request(GenerateRequest(audio="a", output="o", steps=50, guidance=2.0, style="waltz"))
    assert take.to_dict()["style"] == "waltz" and TakeInfo.from_dict(take.to_dict()).style == "waltz"
    assert TakeInfo.from_dict({"seed": 3}).style == "any"  # takes stored before styles
