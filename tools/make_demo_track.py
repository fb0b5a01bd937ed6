"""Synthesize the bundled demo track: 30 s of cha-cha at 120 BPM, made entirely by this script.

    python tools/make_demo_track.py            # -> assets/demo_track.ogg

Drums (kick, clap, hi-hat, the cha-cha-cha guiro on "4 and 1", congas), a
tumbao-style bass, off-beat piano chords over Am-Dm-G-C-F-Dm-E-Am and a
marimba line. Pure NumPy, seeded, so the output is the same every time. The
track is released under CC0 (see assets/README.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

SAMPLE_RATE = 44100
BPM = 120.0
BARS = 15  # 30 s at 120 BPM in 4/4
BEAT = 60.0 / BPM
SEED = 2025

# Per bar: chord as semitones above A2 (110 Hz): root position triads.
PROGRESSION = [
    (0, 3, 7),  # Am
    (5, 8, 12),  # Dm
    (-2, 2, 5),  # G
    (3, 7, 10),  # C
    (8, 12, 15),  # F
    (5, 8, 12),  # Dm
    (7, 11, 14),  # E
    (0, 3, 7),  # Am
]
# Marimba line over two bars: (beat, semitones above A4, length in beats).
MELODY = [(0.0, 0, 0.5), (1.0, 3, 0.5), (1.5, 5, 0.5), (2.0, 7, 1.0), (3.5, 5, 0.5),
          (4.5, 3, 0.5), (5.0, 0, 0.5), (6.0, -2, 0.5), (6.5, 0, 1.0)]


def _hz(semitones_above_a2: float) -> float:
    return 110.0 * 2.0 ** (semitones_above_a2 / 12.0)


class Mix:
    def __init__(self, seconds: float):
        self.left = np.zeros(int(seconds * SAMPLE_RATE) + SAMPLE_RATE)
        self.right = np.zeros_like(self.left)

    def add(self, at: float, sound: np.ndarray, gain: float = 1.0, pan: float = 0.0) -> None:
        start = int(round(at * SAMPLE_RATE))
        end = min(len(self.left), start + len(sound))
        piece = sound[: end - start] * gain
        self.left[start:end] += piece * np.sqrt(0.5 * (1.0 - pan))
        self.right[start:end] += piece * np.sqrt(0.5 * (1.0 + pan))


def _t(seconds: float) -> np.ndarray:
    return np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE


def kick() -> np.ndarray:
    t = _t(0.35)
    pitch = 50.0 + 90.0 * np.exp(-t * 30.0)
    return np.sin(2 * np.pi * np.cumsum(pitch) / SAMPLE_RATE) * np.exp(-t * 9.0)


def clap(rng) -> np.ndarray:
    t = _t(0.2)
    noise = rng.standard_normal(len(t))
    bursts = sum(np.exp(-np.clip(t - d, 0, None) * 60.0) * (t >= d) for d in (0.0, 0.01, 0.02))
    return np.convolve(noise, [1, -0.9], "same") * bursts * 0.4


def hihat(rng, open_: bool = False) -> np.ndarray:
    t = _t(0.25 if open_ else 0.06)
    noise = np.diff(rng.standard_normal(len(t) + 1))
    return noise * np.exp(-t * (12.0 if open_ else 70.0)) * 0.25


def guiro(rng) -> np.ndarray:
    t = _t(0.12)
    scrape = rng.standard_normal(len(t)) * (0.5 + 0.5 * np.sign(np.sin(2 * np.pi * 90 * t)))
    return np.diff(scrape, prepend=0.0) * np.exp(-t * 20.0) * 0.2


def conga(freq: float) -> np.ndarray:
    t = _t(0.3)
    pitch = freq * (1.0 + 0.3 * np.exp(-t * 40.0))
    return np.sin(2 * np.pi * np.cumsum(pitch) / SAMPLE_RATE) * np.exp(-t * 14.0)


def bass(freq: float, beats: float) -> np.ndarray:
    t = _t(beats * BEAT)
    tone = np.sin(2 * np.pi * freq * t) + 0.3 * np.sin(4 * np.pi * freq * t)
    return tone * np.minimum(1.0, t * 200.0) * np.exp(-t * 2.5)


def piano(freqs, seconds: float = 0.35) -> np.ndarray:
    t = _t(seconds)
    out = np.zeros_like(t)
    for f in freqs:
        for k, amp in enumerate((1.0, 0.45, 0.25, 0.12), start=1):
            out += amp * np.sin(2 * np.pi * f * k * t) * np.exp(-t * (4.0 + 2.0 * k))
    return out * np.minimum(1.0, t * 400.0) / len(freqs)


def marimba(freq: float, beats: float) -> np.ndarray:
    t = _t(beats * BEAT + 0.2)
    tone = np.sin(2 * np.pi * freq * t) + 0.2 * np.sin(2 * np.pi * 4.0 * freq * t) * np.exp(-t * 30.0)
    return tone * np.exp(-t * 7.0) * np.minimum(1.0, t * 500.0)


def render() -> np.ndarray:
    """(S, 2) float32 stereo at SAMPLE_RATE."""
    rng = np.random.default_rng(SEED)
    seconds = BARS * 4 * BEAT
    mix = Mix(seconds)
    k, c = kick(), clap(rng)
    for bar in range(BARS):
        t0 = bar * 4 * BEAT
        chord = PROGRESSION[bar % len(PROGRESSION)]
        intro = bar == 0
        for beat in range(4):
            at = t0 + beat * BEAT
            if beat in (0, 2):
                mix.add(at, k, 0.9)
            if beat in (1, 3) and not intro:
                mix.add(at, c, 0.5, pan=0.1)
            mix.add(at, hihat(rng), 0.6, pan=0.4)
            mix.add(at + BEAT / 2, hihat(rng, open_=beat == 3), 0.45, pan=0.4)
        # The cha-cha-cha: 4, 4-and, (next) 1.
        for at in (t0 + 3 * BEAT, t0 + 3.5 * BEAT, t0 + 4 * BEAT):
            mix.add(at, guiro(rng), 0.8, pan=-0.4)
        for beat, freq in ((1.5, 330.0), (3.0, 220.0), (3.5, 220.0)):
            mix.add(t0 + beat * BEAT, conga(freq), 0.35, pan=-0.25)
        if intro:
            continue
        root = _hz(chord[0] - 12)
        for beat, mult, length in ((0.0, 1.0, 1.5), (1.5, 1.5, 1.0), (3.0, 1.0, 0.5), (3.5, 2.0, 0.5)):
            mix.add(t0 + beat * BEAT, bass(root * mult, length), 0.55)
        for beat in (0.5, 1.5, 2.5, 3.5):
            mix.add(t0 + beat * BEAT, piano([_hz(n + 12) for n in chord]), 0.35, pan=0.2)
        if bar >= 3:
            half = (bar - 3) % 2
            for beat, note, length in MELODY:
                if half * 4 <= beat < half * 4 + 4:
                    mix.add(t0 + (beat - half * 4) * BEAT, marimba(_hz(note + 24), length), 0.3, pan=-0.15)
    out = np.stack([mix.left, mix.right], axis=1)[: int(seconds * SAMPLE_RATE)]
    fade = int(0.8 * SAMPLE_RATE)
    out[-fade:] *= np.linspace(1.0, 0.0, fade)[:, None]
    out *= 10 ** (-1.0 / 20) / np.abs(out).max()  # peak at -1 dBFS
    return out.astype(np.float32)


def main(argv=None) -> int:
    import soundfile as sf

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default = Path(__file__).resolve().parent.parent / "assets" / "demo_track.ogg"
    parser.add_argument("-o", "--output", default=str(default), help="output file (.ogg or .flac)")
    args = parser.parse_args(argv)
    audio = render()
    out = Path(args.output)
    if out.suffix.lower() == ".ogg":
        sf.write(str(out), audio, SAMPLE_RATE, format="OGG", subtype="VORBIS", compression_level=0.6)
    else:
        sf.write(str(out), audio, SAMPLE_RATE)
    print(f"Wrote {out}: {len(audio) / SAMPLE_RATE:.1f} s, {out.stat().st_size / 1e3:.0f} kB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
