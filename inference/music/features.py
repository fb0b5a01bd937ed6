"""EDGE's 35-dimensional "baseline" music features at exactly the motion frame rate.

Per frame: onset-strength envelope (1), MFCCs (20), chroma CENS (12), onset-peak
one-hot (1), beat one-hot (1) — Tseng et al. 2023, section 3.3, computed with
librosa at ``fps * hop_length`` Hz so that one hop is one motion frame.

Spectral features are computed in blocks with generous margins so that memory
stays bounded on long songs; every per-frame value depends only on nearby audio
(no song-wide normalisation), so blocks give the same numbers as one pass.
Peaks and beats are picked on the whole song's onset envelope.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..config import M2DConfig
from .audio import AudioClip, load_audio

# librosa's defaults, named: the STFT size of the mel spectrogram and the dB floor.
N_FFT = 2048
_AMIN = 1e-10
_BLOCK_SECONDS = 60.0
_MARGIN_SECONDS = 5.0
_SILENT_ENVELOPE = 1e-6
_BEAT_TIGHTNESS = 100.0  # as in EDGE: beats stay close to a steady tempo


def feature_names(config: M2DConfig) -> list[str]:
    """A name for each column of the feature matrix."""
    return (["onset_envelope"] + [f"mfcc_{i}" for i in range(config.n_mfcc)]
            + [f"chroma_{i}" for i in range(config.n_chroma)] + ["onset_peak", "beat"])


def beats_from_features(features: np.ndarray, config: M2DConfig) -> np.ndarray:
    """Frame indices of the beats marked in (N, music_dim) features."""
    column = feature_names(config).index("beat")
    return np.flatnonzero(np.asarray(features)[:, column] > 0.5)


def num_frames(seconds: float, config: M2DConfig) -> int:
    """Frames of motion (and of features) for ``seconds`` of music."""
    return int(round(seconds * config.fps))


def _spectral_block(y: np.ndarray, config: M2DConfig):
    """Onset envelope (T,), MFCC (T, n_mfcc) and chroma (T, n_chroma) of a piece of audio."""
    import librosa

    sr, hop = config.audio_sample_rate, config.hop_length
    mel = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=N_FFT, hop_length=hop)
    mel_db = librosa.power_to_db(mel, amin=_AMIN, top_db=None)  # absolute dB: block-independent
    envelope = librosa.onset.onset_strength(S=mel_db, sr=sr, hop_length=hop, n_fft=N_FFT)
    mfcc = librosa.feature.mfcc(S=mel_db, sr=sr, n_mfcc=config.n_mfcc)
    with warnings.catch_warnings():  # very short clips: the lowest CQT octave is shorter than its filter
        warnings.filterwarnings("ignore", message="n_fft=.*is too large")
        chroma = librosa.feature.chroma_cens(y=y, sr=sr, hop_length=hop, n_chroma=config.n_chroma,
                                             tuning=0.0)  # fixed tuning: no song-wide estimate
    frames = min(len(envelope), mfcc.shape[1], chroma.shape[1])
    return envelope[:frames], mfcc[:, :frames].T, chroma[:, :frames].T


def _peaks_and_beats(envelope: np.ndarray, config: M2DConfig):
    """Frame indices of onset peaks and of beats, picked on the whole envelope."""
    import librosa

    if envelope.max(initial=0.0) - envelope.min(initial=0.0) < _SILENT_ENVELOPE:
        return np.zeros(0, int), np.zeros(0, int)  # silence: nothing to dance to
    sr, hop = config.audio_sample_rate, config.hop_length
    peaks = librosa.onset.onset_detect(onset_envelope=envelope, sr=sr, hop_length=hop)
    _, beats = librosa.beat.beat_track(onset_envelope=envelope, sr=sr, hop_length=hop,
                                       tightness=_BEAT_TIGHTNESS, units="frames")
    return np.asarray(peaks, int), np.asarray(beats, int)


def extract_features(samples: np.ndarray, config: M2DConfig) -> np.ndarray:
    """(S,) mono audio at ``config.audio_sample_rate`` -> (T, music_dim) float32 features.

    ``T`` is ``round(S / hop_length)``: exactly ``fps`` frames per second of audio;
    frame ``i`` describes the audio around time ``i / fps``.
    """
    hop = config.hop_length
    total = int(round(len(samples) / hop))
    block = int(_BLOCK_SECONDS * config.fps)
    margin = int(_MARGIN_SECONDS * config.fps)
    envelope = np.zeros(total, np.float32)
    mfcc = np.zeros((total, config.n_mfcc), np.float32)
    chroma = np.zeros((total, config.n_chroma), np.float32)
    for f0 in range(0, total, block):
        f1 = min(total, f0 + block)
        lo = max(0, f0 - margin)  # frame where the audio piece starts
        piece = samples[lo * hop: (f1 + margin) * hop]
        env_b, mfcc_b, chroma_b = _spectral_block(piece, config)
        take = slice(f0 - lo, f0 - lo + (f1 - f0))
        got = len(env_b[take])
        envelope[f0: f0 + got] = env_b[take]
        mfcc[f0: f0 + got] = mfcc_b[take]
        chroma[f0: f0 + got] = chroma_b[take]
    peaks, beats = _peaks_and_beats(envelope, config)
    peak_onehot = np.zeros(total, np.float32)
    beat_onehot = np.zeros(total, np.float32)
    peak_onehot[peaks[peaks < total]] = 1.0
    beat_onehot[beats[beats < total]] = 1.0
    features = np.concatenate(
        [envelope[:, None], mfcc, chroma, peak_onehot[:, None], beat_onehot[:, None]], axis=1
    )
    return np.nan_to_num(features, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


def features_from_file(path, config: M2DConfig, start: float = 0.0, duration: float | None = None,
                       allow_truncated: bool = False):
    """Load a stretch of a music file and compute its features.

    Returns ``(features (T, music_dim), clip)``; ``T = round(clip.duration * fps)``.
    ``allow_truncated``: see :func:`inference.music.audio.load_audio`.
    """
    clip: AudioClip = load_audio(path, config.audio_sample_rate, start=start, duration=duration,
                                 allow_truncated=allow_truncated)
    return extract_features(clip.samples, config), clip
