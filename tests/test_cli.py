"""``python -m inference generate`` end to end, and every kind of bad input."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from synthetic import SR, music_like
from write_failures import files_at_most, refusing_folder

from inference import skeleton as sk
from inference.cli import main
from inference.sampling.constraints import Constraints

REPO = Path(__file__).resolve().parents[1]


def run(args, capsys):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def generate(song, out, weights, capsys, *extra):
    return run(["generate", song, "-o", out, "--weights", weights, "--steps", "3", *extra], capsys)


def test_end_to_end_contract(song, tiny_weights, tmp_path, capsys):
    out, gif = tmp_path / "dance.npz", tmp_path / "dance.gif"
    code, stdout, err = generate(song, out, tiny_weights, capsys, "--start", "2", "--duration", "5.5",
                                 "--seed", "4", "--preview", gif, "--guidance", "2.5", "--device", "cpu")
    assert code == 0, err
    assert "Wrote" in stdout and "165 frames" in stdout
    with np.load(out) as d:
        assert int(d["fps"]) == 30 and float(d["audio_start"]) == pytest.approx(2.0)
        assert d["smpl_poses"].shape == (165, 72) and d["smpl_poses"].dtype == np.float32
        assert d["smpl_trans"].shape == (165, 3) and d["joints"].shape == (165, 24, 3)
        assert d["contacts"].shape == (165, 4) and d["contacts"].min() >= 0 and d["contacts"].max() <= 1
        np.testing.assert_allclose(d["joints"], sk.joint_positions(d["smpl_poses"], d["smpl_trans"]), atol=1e-5)
        assert int(d["seed"]) == 4 and float(d["guidance"]) == 2.5
        assert str(d["sampler"]) == "ddim" and int(d["steps"]) == 3  # the model's sampler
    from PIL import Image

    with Image.open(gif) as im:
        assert im.n_frames >= 80 and im.size == (320, 320)


def test_preview_strip_shows_poses_side_by_side(tmp_path):
    from PIL import Image

    from inference.preview import write_strip

    poses = np.zeros((120, 72), np.float32)
    poses[:, 0] = np.pi / 2
    poses[:, 16 * 3 + 2] = np.linspace(-1.2, 0.0, 120)  # the left arm comes down
    joints = sk.joint_positions(poses, np.tile([0.0, 0.0, 0.95], (120, 1)).astype(np.float32))
    path = write_strip(joints, tmp_path / "strip.png", 30, count=6, seconds=4.0, size=100)
    with Image.open(path) as im:
        assert im.size == (600, 100)
        first, last = np.asarray(im.crop((0, 0, 100, 100))), np.asarray(im.crop((500, 0, 600, 100)))
    assert (first != last).any()  # different poses drawn


def test_same_seed_same_file(song, tiny_weights, tmp_path, capsys):
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    generate(song, a, tiny_weights, capsys, "--duration", "3")
    generate(song, b, tiny_weights, capsys, "--duration", "3")
    with np.load(a) as x, np.load(b) as y:
        assert np.array_equal(x["smpl_poses"], y["smpl_poses"])


def test_constraints_file_is_met(song, tiny_weights, tmp_path, capsys):
    c = Constraints.empty(90)
    pose = np.random.default_rng(1).normal(size=72) * 0.3
    c.pin_pose(range(30, 40), np.tile(pose, (10, 1)), np.tile([0.2, 0.1, 0.95], (10, 1)))
    c.save(tmp_path / "pins.npz")
    out = tmp_path / "pinned.npz"
    code, _, err = generate(song, out, tiny_weights, capsys, "--duration", "3", "--constraints", tmp_path / "pins.npz")
    assert code == 0, err
    with np.load(out) as d:
        assert np.abs(d["smpl_poses"][30:40] - pose).max() <= 1e-4
        assert np.abs(d["smpl_trans"][30:40] - [0.2, 0.1, 0.95]).max() <= 1e-4


@pytest.fixture(scope="module")
def bad_audio(audio_dir):
    """Broken and awkward audio files, by name."""
    files = {}
    d = audio_dir / "bad"
    d.mkdir()
    (d / "empty.wav").write_bytes(b"")
    (d / "text.mp3").write_text("this is not music\n" * 20)
    good = music_like(4.0)
    sf.write(d / "full.wav", good, SR)
    data = (d / "full.wav").read_bytes()
    (d / "truncated.wav").write_bytes(data[: len(data) // 3])
    sf.write(d / "full.flac", good, SR)
    flac = bytearray((d / "full.flac").read_bytes())
    flac[len(flac) // 3:] = np.random.default_rng(0).integers(0, 256, len(flac) - len(flac) // 3, dtype=np.uint8).tobytes()
    (d / "corrupt.flac").write_bytes(bytes(flac))
    sf.write(d / "full.mp3", good, SR)
    mp3 = (d / "full.mp3").read_bytes()
    (d / "truncated.mp3").write_bytes(mp3[: len(mp3) // 3])
    sf.write(d / "short.wav", good[: int(0.6 * SR)], SR)
    files.update({k: d / f for k, f in [("empty", "empty.wav"), ("text", "text.mp3"), ("truncated", "truncated.wav"),
                                         ("corrupt", "corrupt.flac"), ("truncated_mp3", "truncated.mp3"),
                                         ("short", "short.wav"), ("dir", ".")]})
    files["missing"] = d / "nope.wav"
    return files


@pytest.mark.parametrize("name, message", [
    ("missing", "Audio file not found"),
    ("dir", "is a folder, not an audio file"),
    ("empty", "is empty"),
    ("text", "not a readable audio file"),
    ("truncated", "is truncated"),
    ("corrupt", "damaged"),
    ("truncated_mp3", "truncated or damaged"),
    ("short", "needs at least 1 s"),
])
def test_bad_audio(bad_audio, name, message, tiny_weights, tmp_path, capsys):
    out = tmp_path / "out.npz"
    code, _, err = generate(bad_audio[name], out, tiny_weights, capsys)
    assert code == 2
    assert message in err and "Traceback" not in err and err.splitlines()[-1].startswith("error: ")
    assert not out.exists() and not list(tmp_path.glob(".m2d-*"))


@pytest.mark.parametrize("extra, message", [
    (["--start", "100"], "past the end"),
    (["--start", "-1"], "0 or more seconds"),
    (["--duration", "-2"], "duration must be a positive"),
    (["--steps", "0"], "Sampling steps must be"),
    (["--guidance", "-1"], "Guidance must be between 0 and 10"),
    (["--guidance", "1e6"], "Guidance must be between 0 and 10"),
    (["--guidance", "inf"], "Guidance must be between 0 and 10"),
    (["--seed", "99999999999999999999999"], "seed must be a whole number from 0 to 2147483647"),
    (["--sampler", "dpmpp_2m", "--eta", "1"], "eta is DDIM's setting"),
    (["--device", "cuda:7"], "CUDA"),
    (["--device", "tpu"], "Unknown device"),
])
def test_bad_settings(song, tiny_weights, tmp_path, capsys, extra, message):
    out = tmp_path / "out.npz"
    code, _, err = generate(song, out, tiny_weights, capsys, *extra)
    assert code == 2 and message in err and not out.exists()


def test_no_weights_says_how_to_get_them(song, tmp_path, capsys):
    code, _, err = run(["generate", song, "-o", tmp_path / "o.npz", "--weights", tmp_path / "none"], capsys)
    assert code == 2 and "No model weights found" in err and "python -m inference train" in err


@pytest.mark.parametrize("output, message", [
    ("nofolder/out.npz", "does not exist"), ("out.txt", "must end in .npz"),
])
def test_bad_output_paths(song, tiny_weights, tmp_path, capsys, output, message):
    code, _, err = generate(song, tmp_path / output, tiny_weights, capsys)
    assert code == 2 and message in err


@pytest.mark.parametrize("problem, message", [
    ("shape", "smpl_trans has shape"), ("nan", "NaN"), ("range", "Pins reach frame 200"),
])
def test_bad_constraints(song, tiny_weights, tmp_path, capsys, problem, message):
    c = Constraints.empty(250)
    if problem == "shape":
        np.savez(tmp_path / "c.npz", smpl_poses=c.smpl_poses, smpl_trans=np.zeros((250, 2)),
                 pose_mask=c.pose_mask, root_mask=c.root_mask)
    else:
        c.pin_root(200 if problem == "range" else 10, [0, 0, 1])
        if problem == "nan":
            c.smpl_trans[10, 0] = np.nan
        c.save(tmp_path / "c.npz")
    out = tmp_path / "out.npz"
    code, _, err = generate(song, out, tiny_weights, capsys, "--duration", "3", "--constraints", tmp_path / "c.npz")
    assert code == 2 and message in err and not out.exists()


@pytest.mark.parametrize("kind", ["8khz_mono", "96khz_6ch", "silence"])
def test_awkward_but_valid_audio_just_works(audio_dir, tiny_weights, tmp_path, capsys, kind):
    path = audio_dir / f"{kind}.wav"
    if kind == "8khz_mono":
        sf.write(path, music_like(3.0, sr=8000), 8000)
    elif kind == "96khz_6ch":
        y = music_like(3.0, sr=96000)
        sf.write(path, np.stack([y] * 6, axis=1), 96000)
    else:
        sf.write(path, np.zeros(3 * SR, np.float32), SR)
    out = tmp_path / "out.npz"
    code, _, err = generate(path, out, tiny_weights, capsys)
    assert code == 0, err
    with np.load(out) as d:
        assert len(d["smpl_poses"]) == 90 and np.isfinite(d["joints"]).all()


def test_ten_minute_song(audio_dir, tiny_weights, tmp_path, capsys):
    path = audio_dir / "long.flac"  # (libsndfile's Vorbis encoder crashes on a 10-minute write)
    sf.write(path, music_like(600.0, sr=16000), 16000)
    out = tmp_path / "long.npz"
    code, _, err = run(["generate", path, "-o", out, "--weights", tiny_weights, "--steps", "1"], capsys)
    assert code == 0, err
    with np.load(out) as d:
        assert d["smpl_poses"].shape == (18000, 72) and np.isfinite(d["joints"]).all()


def test_module_entry_point_and_no_traceback(tmp_path, song):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-m", "inference", "generate", str(tmp_path / "missing.wav"), "-o",
                        str(tmp_path / "o.npz")], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 2 and "Audio file not found" in r.stderr and "Traceback" not in r.stderr


def test_importing_inference_never_imports_bpy():
    code = ("import sys, pkgutil, importlib, inference, inference.training.data; "
            "[importlib.import_module(m.name) for p in (inference, inference.training.data) "
            " for m in pkgutil.iter_modules(p.__path__, p.__name__ + '.') if not m.name.endswith('__main__')]; "
            "bad = [m for m in sys.modules if m == 'bpy' or m.startswith('bpy.')]; print(bad); sys.exit(bool(bad))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stdout + r.stderr


def test_importing_the_package_is_light():
    """Blender's Python has NumPy but no PyTorch: the package and its skeleton must import without it."""
    code = ("import sys; import inference, inference.skeleton, inference.config, inference.motion; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'librosa')))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert r.stdout.strip() == "[]", r.stdout + r.stderr


# ----------------------------------------------------------------------------- outputs that cannot be written


def _cli_process(args, prelude: str = "", max_file_bytes: int | None = None):
    """``python -m inference`` in a subprocess. ``prelude``: Python run before the CLI (to stand in for the
    platform); ``max_file_bytes``: no file may grow past this, as on a full disk."""
    code = prelude + "import sys; from inference.cli import main; sys.exit(main(sys.argv[1:]))"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=600, preexec_fn=files_at_most(max_file_bytes) if max_file_bytes else None)


def _one_line_error(r, *fragments):
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), r.stderr
    for fragment in fragments:
        assert fragment in last, last


ACCESS_SAYS_YES = "import os; os.access = lambda *args, **kwargs: True; "
"""What a file system os.access misjudges looks like to the CLI."""


@pytest.mark.parametrize("which", ["output", "preview"])
def test_unwritable_output_is_refused_before_work(song, tiny_weights, tmp_path, which):
    """-o or --preview in a folder that refuses files: exit 2 with one line naming the folder, and no
    other output left behind (the npz used to stay when only the preview failed)."""
    folder = refusing_folder(tmp_path)
    out, gif = tmp_path / "dance.npz", tmp_path / "dance.gif"
    if which == "output":
        out = folder / "dance.npz"
    else:
        gif = folder / "dance.gif"
    before = sorted(tmp_path.iterdir())
    r = _cli_process(["generate", song, "-o", out, "--preview", gif, "--weights", tiny_weights, "--steps", "2",
                      "--duration", "2"], prelude=ACCESS_SAYS_YES)
    _one_line_error(r, f"Cannot write into {folder}", f"choose another place for the {which}")
    assert "Listening" not in r.stderr  # refused before the music was read
    assert sorted(tmp_path.iterdir()) == before and not out.exists() and not gif.exists()


def test_disk_full_while_writing(song, tiny_weights, tmp_path, capsys):
    """The disk fills up while the outputs are written (RLIMIT_FSIZE stands in for it): exit 2 with one line,
    and neither output nor a temporary file left behind."""
    generate(song, tmp_path / "warm.npz", tiny_weights, capsys, "--duration", "1")  # numba's cache written now
    (tmp_path / "warm.npz").unlink()
    out, gif = tmp_path / "dance.npz", tmp_path / "dance.gif"
    r = _cli_process(["generate", song, "-o", out, "--preview", gif, "--weights", tiny_weights, "--steps", "2",
                      "--duration", "3"], max_file_bytes=16_000)  # the npz takes about 57 kB
    _one_line_error(r, f"Could not write {out} and {gif}", "File too large", "nothing was written")
    assert list(tmp_path.iterdir()) == []


def test_outputs_appear_together_or_not_at_all(tmp_path):
    from inference.files import atomic_paths

    a, b = tmp_path / "a.npz", tmp_path / "b.gif"
    b.write_bytes(b"the old preview")
    with pytest.raises(OSError):
        with atomic_paths(a, b) as (ta, tb):
            ta.write_bytes(b"new dance")
            raise OSError(28, "No space left on device")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.gif"] and b.read_bytes() == b"the old preview"
    with atomic_paths(a, b) as (ta, tb):
        ta.write_bytes(b"new dance")
        tb.write_bytes(b"new preview")
    assert a.read_bytes() == b"new dance" and b.read_bytes() == b"new preview"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz", "b.gif"]


def test_output_name_near_the_length_limit(song, tiny_weights, tmp_path, capsys):
    """A file name of 250 characters is a valid output: its temporary file's name must fit too."""
    out = tmp_path / ("d" * 246 + ".npz")
    code, _, err = generate(song, out, tiny_weights, capsys, "--duration", "1")
    assert code == 0, err
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


@pytest.mark.parametrize("device", ["cuda:7", "mps"])
def test_unavailable_device_names_the_flag(song, tiny_weights, tmp_path, capsys, device):
    import torch

    if device == "mps" and torch.backends.mps.is_available():
        pytest.skip("this machine has Apple MPS")
    code, _, err = generate(song, tmp_path / "out.npz", tiny_weights, capsys, "--device", device)
    assert code == 2 and "--device" in err.splitlines()[-1] and not (tmp_path / "out.npz").exists()
