"""Music features: frame rate, beats of a click track, formats, rates, channels, silence."""

import numpy as np
import pytest
import soundfile as sf
from synthetic import SR, click_track, music_like

from inference.config import M2DConfig
from inference.errors import AudioError
from inference.music.audio import load_audio
from inference.music.features import extract_features, feature_names, features_from_file

CONFIG = M2DConfig()


@pytest.fixture(scope="module")
def clicks(audio_dir):
    path = audio_dir / "clicks_120.wav"
    sf.write(path, click_track(20.0, bpm=120.0), SR)
    return path


def test_layout():
    names = feature_names(CONFIG)
    assert len(names) == CONFIG.music_dim == 35
    assert names[0] == "onset_envelope" and names[-1] == "beat" and names[-2] == "onset_peak"


def test_click_track_beats_every_15_frames(clicks):
    features, clip = features_from_file(clicks, CONFIG)
    assert features.shape == (600, 35)  # exactly 30 frames per second of audio
    beats = np.nonzero(features[:, -1])[0]
    assert len(beats) >= 35
    assert np.all(np.abs(np.diff(beats) - 15) <= 1)  # 120 BPM at 30 fps
    clicks_at = np.arange(0.5, 20.0, 0.5) * 30
    assert np.all(np.min(np.abs(beats[:, None] - clicks_at[None]), axis=1) <= 1)  # on the clicks
    peaks = np.nonzero(features[:, -2])[0]
    assert np.all(np.min(np.abs(peaks[:, None] - clicks_at[None]), axis=1) <= 1)
    assert np.all(features[:, -2:] * (1 - features[:, -2:]) == 0)  # one-hot columns are 0/1


@pytest.mark.parametrize("seconds", [1.0, 2.5, 7.3])
def test_exactly_fps_frames_per_second(seconds):
    y = music_like(seconds, sr=CONFIG.audio_sample_rate)
    assert len(extract_features(y, CONFIG)) == round(seconds * CONFIG.fps)


def test_start_and_duration_align_features(clicks):
    whole, _ = features_from_file(clicks, CONFIG)
    part, clip = features_from_file(clicks, CONFIG, start=4.0, duration=6.0)
    assert len(part) == 180 and clip.start == pytest.approx(4.0)
    # Away from the cut edges, the spectral columns match the whole song's at the same times.
    np.testing.assert_allclose(part[20:160, :33], whole[140:280, :33], rtol=1e-3, atol=1e-2)
    beats = np.nonzero(part[:, -1])[0] + 120
    assert np.all(np.min(np.abs(beats[:, None] - np.arange(15, 600, 15)[None]), axis=1) <= 1)


def test_blocks_match_one_pass():
    y = music_like(150.0, sr=CONFIG.audio_sample_rate)  # longer than one 60 s block
    import inference.music.features as F

    blocked = extract_features(y, CONFIG)
    env, mfcc, chroma = F._spectral_block(y, CONFIG)
    n = len(blocked)
    np.testing.assert_allclose(blocked[:, 0], env[:n], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(blocked[:, 1:21], mfcc[:n], rtol=1e-4, atol=1e-2)
    np.testing.assert_allclose(blocked[:, 21:33], chroma[:n], atol=1e-5)


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "mp3"])
def test_formats(audio_dir, fmt):
    path = audio_dir / f"song_fmt.{fmt}"
    sf.write(path, music_like(3.0), SR)
    features, clip = features_from_file(path, CONFIG)
    assert abs(len(features) - 90) <= 2 and np.isfinite(features).all()


def test_8khz_mono_and_96khz_multichannel(audio_dir):
    lo = audio_dir / "lo.wav"
    sf.write(lo, music_like(4.0, sr=8000), 8000)
    hi = audio_dir / "hi.wav"
    y = music_like(4.0, sr=96000)
    sf.write(hi, np.stack([y, 0.5 * y, -y, 0.2 * y, y, y], axis=1), 96000, subtype="PCM_24")
    for path in (lo, hi):
        clip = load_audio(path, CONFIG.audio_sample_rate)
        assert clip.sample_rate == CONFIG.audio_sample_rate and clip.samples.ndim == 1
        assert abs(clip.duration - 4.0) < 1e-3
        features, _ = features_from_file(path, CONFIG)
        assert features.shape == (120, 35) and np.isfinite(features).all()
        assert 6 <= features[:, -1].sum() <= 9  # beats of the 120 BPM pulse


def test_silence_is_finite_and_beatless(audio_dir):
    path = audio_dir / "silence.wav"
    sf.write(path, np.zeros(SR * 3, np.float32), SR)
    features, _ = features_from_file(path, CONFIG)
    assert features.shape == (90, 35) and np.isfinite(features).all()
    assert features[:, -2:].sum() == 0 and np.all(features[:, 0] == 0)


def test_duration_past_the_end_is_cut(clicks):
    features, clip = features_from_file(clicks, CONFIG, start=15.0, duration=100.0)
    assert len(features) == 150 and clip.duration == pytest.approx(5.0)


def test_too_short_after_start(clicks):
    with pytest.raises(AudioError, match="at least 1 s"):
        load_audio(clicks, CONFIG.audio_sample_rate, start=19.5)
