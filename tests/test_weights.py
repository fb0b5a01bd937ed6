"""Saving and loading models: round trip, and a clear error for every broken file."""

import json
import shutil

import pytest
import torch

from inference.config import TINY_CONFIG, M2DConfig
from inference.errors import WeightsError
from inference.network.model import DanceDenoiser
from inference.network.weights import CONFIG_FILE, WEIGHTS_FILE, load_config, load_model, save_model


@pytest.fixture
def model_dir(tmp_path, tiny_weights):
    d = tmp_path / "model"
    shutil.copytree(tiny_weights, d)
    return d


def test_half_file_loads_as_float32_with_exact_buffers(model_dir):
    from safetensors.torch import load_file

    torch.manual_seed(2)
    a = DanceDenoiser(TINY_CONFIG).eval()
    save_model(a, model_dir, half=True)
    stored = load_file(str(model_dir / WEIGHTS_FILE))
    params = dict(a.named_parameters())
    assert all(stored[k].dtype == (torch.float16 if k in params else torch.float32) for k in stored)
    b = load_model(model_dir)
    for k, v in b.state_dict().items():
        assert v.dtype == torch.float32
        expected = a.state_dict()[k].half().float() if k in params else a.state_dict()[k]
        assert torch.equal(v, expected), k


def test_round_trip_same_outputs(model_dir):
    torch.manual_seed(1)
    a = DanceDenoiser(TINY_CONFIG).eval()
    save_model(a, model_dir)
    b = load_model(model_dir)
    assert b.config == TINY_CONFIG
    x = torch.randn(2, TINY_CONFIG.window_frames, TINY_CONFIG.motion_dim)
    music = torch.randn(2, TINY_CONFIG.window_frames, TINY_CONFIG.music_dim)
    t = torch.tensor([10, 500])
    with torch.no_grad():
        assert torch.equal(a(x, t, a.encode_music(music)), b(x, t, b.encode_music(music)))
    assert load_model(model_dir / WEIGHTS_FILE).config == TINY_CONFIG  # the file may be named too


def test_config_json_round_trip(tmp_path):
    c = M2DConfig(width=64, depth=3, heads=4)
    c.save(tmp_path / "c.json")
    assert M2DConfig.load(tmp_path / "c.json") == c
    assert c.music_dim == 35 and c.motion_dim == 151 and c.audio_sample_rate == 15360


def test_missing_weights(tmp_path):
    with pytest.raises(WeightsError, match="No model weights found at .*model.safetensors.*python -m inference train"):
        load_model(tmp_path)


def test_missing_config(model_dir):
    (model_dir / CONFIG_FILE).unlink()
    with pytest.raises(WeightsError, match="config not found"):
        load_model(model_dir)


@pytest.mark.parametrize("cut", [0.5, 0.999])
def test_truncated(model_dir, cut):
    f = model_dir / WEIGHTS_FILE
    data = f.read_bytes()
    f.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(WeightsError, match=f"{WEIGHTS_FILE} is truncated or corrupt"):
        load_model(model_dir)


def test_corrupt_header(model_dir):
    (model_dir / WEIGHTS_FILE).write_bytes(b"\x00\x01garbage" * 50)
    with pytest.raises(WeightsError, match="truncated or corrupt"):
        load_model(model_dir)


def test_nan_weights(model_dir):
    m = load_model(model_dir)
    with torch.no_grad():
        m.motion_out.weight[0, 0] = float("nan")
    save_model(m, model_dir)
    with pytest.raises(WeightsError, match="NaN"):
        load_model(model_dir)


def test_config_does_not_match_weights(model_dir):
    cfg = json.loads((model_dir / CONFIG_FILE).read_text())
    cfg["width"] = 64
    (model_dir / CONFIG_FILE).write_text(json.dumps(cfg))
    with pytest.raises(WeightsError, match=r"does not match .*config.json.*other shapes .*file \(.*32.*config \(.*64"):
        load_model(model_dir)
    cfg["width"], cfg["depth"] = 32, 3
    (model_dir / CONFIG_FILE).write_text(json.dumps(cfg))
    with pytest.raises(WeightsError, match="tensors are missing"):
        load_model(model_dir)


@pytest.mark.parametrize("text, message", [
    ("{not json", "not valid JSON"),
    ('{"format": "other"}', "format is 'other'"),
    (None, "unknown settings bogus"),
    (None, "setting width is 'wide'"),
])
def test_bad_config_json(model_dir, text, message):
    if text is None:
        cfg = json.loads((model_dir / CONFIG_FILE).read_text())
        if "bogus" in message:
            cfg["bogus"] = 1
        else:
            cfg["width"] = "wide"
        text = json.dumps(cfg)
    (model_dir / CONFIG_FILE).write_text(text)
    with pytest.raises(WeightsError, match=message):
        load_config(model_dir)
