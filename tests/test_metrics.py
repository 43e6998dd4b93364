"""Distances between sounds and pitch checks."""

from __future__ import annotations

import math

import pytest
import torch

from workbench.audio import Audio
from workbench.data import Notes
from workbench.dsp.synth import midi_to_hz
from workbench.errors import ParameterError
from workbench.metrics import (
    bits_per_sample,
    cents_error,
    is_pitched,
    median_f0,
    multi_resolution_stft_distance,
    pitch_accuracy,
    segmental_snr,
    snr,
    spectral_convergence,
)

SR = 16000


def _tone(f0_hz=440.0, seconds=1.0, amplitude=0.5) -> torch.Tensor:
    t = torch.arange(int(seconds * SR), dtype=torch.float64) / SR
    return (amplitude * torch.sin(2 * math.pi * f0_hz * t)).float()


def _noise(std, n=SR, seed=0) -> torch.Tensor:
    return std * torch.randn(n, generator=torch.Generator().manual_seed(seed))


# ---- SNR -----------------------------------------------------------------------------------


def test_snr_of_identical_signals_is_infinite():
    x = _tone()
    assert snr(x, x.clone()) == math.inf


@pytest.mark.parametrize("noise_std", [0.05, 0.005])
def test_snr_of_known_noise_is_the_power_ratio_in_db(noise_std):
    # a 0.5-amplitude sine has power 0.125; white noise of std s has power s**2
    x = _tone()
    expected = 10 * math.log10(0.125 / noise_std**2)  # 17.0 dB and 37.0 dB
    assert snr(x, x + _noise(noise_std)) == pytest.approx(expected, abs=0.2)


def test_snr_accepts_audio_and_compares_the_common_length():
    x = _tone()
    noisy = x + _noise(0.05)
    assert snr(Audio(x, SR), Audio(noisy[:12000], SR)) == pytest.approx(
        snr(x[:12000], noisy[:12000])
    )


def test_segmental_snr_is_clipped_to_its_ceiling_for_identical_signals():
    x = _tone()
    assert segmental_snr(x, x) == pytest.approx(35.0)
    with pytest.raises(ParameterError, match="silent"):
        segmental_snr(torch.zeros(1024), torch.zeros(1024))


# ---- spectral distances --------------------------------------------------------------------


def test_spectral_convergence_is_zero_for_identical_and_one_for_double():
    x = _tone() + _noise(0.05)
    assert spectral_convergence(x, x) == 0.0
    # | |2S| - |S| | / |S| = 1 exactly
    assert spectral_convergence(x, 2 * x) == pytest.approx(1.0, abs=1e-9)


def test_spectral_convergence_ignores_a_sign_flip_but_not_noise():
    x = _tone()
    assert spectral_convergence(x, -x) == pytest.approx(0.0, abs=1e-9)
    assert spectral_convergence(x, x + _noise(0.05)) > 0.05


def test_multi_resolution_stft_distance_is_zero_only_for_identical_and_grows_with_noise():
    x = _tone() + _noise(0.01, seed=1)
    assert multi_resolution_stft_distance(x, x) == 0.0
    quiet = multi_resolution_stft_distance(x, x + _noise(0.01))
    loud = multi_resolution_stft_distance(x, x + _noise(0.1))
    assert 0.0 < quiet < loud
    assert multi_resolution_stft_distance(x, _tone(550.0)) > quiet


# ---- pitch ---------------------------------------------------------------------------------


def test_cents_error_has_the_sign_of_the_deviation():
    assert cents_error(440.0, 69) == pytest.approx(0.0, abs=1e-9)
    assert cents_error(445.0, 69) > 0 > cents_error(435.0, 69)
    assert cents_error(880.0, 69) == pytest.approx(1200.0)
    assert cents_error(midi_to_hz(69.5), 69) == pytest.approx(50.0)
    assert math.isnan(cents_error(math.nan, 69)) and math.isnan(cents_error(0.0, 69))


@pytest.mark.parametrize("instrument, pitch", [("piano", 60), ("flute", 72)])
def test_median_f0_finds_a_rendered_soundfont_note_within_50_cents(instrument, pitch):
    notes = Notes(source="soundfont", instruments=(instrument,), pitches=(pitch,))
    f = median_f0(notes.audio(0), fmin=midi_to_hz(pitch - 12), fmax=midi_to_hz(pitch + 12))
    assert abs(cents_error(f, pitch)) <= 50


def test_median_f0_needs_a_sample_rate_for_a_plain_tensor():
    with pytest.raises(ParameterError, match="sample_rate"):
        median_f0(_tone())


def test_median_f0_of_silence_is_nan():
    assert math.isnan(median_f0(Audio(torch.zeros(SR), SR), fmin=200, fmax=800))


def test_pitch_accuracy_is_one_for_synth_notes_and_zero_for_wrong_labels():
    notes = Notes(
        source="synth", instruments=("bright", "hollow"), pitches=(48, 60, 72), seconds=0.5
    )
    clips = [notes.audio(i) for i in range(len(notes))]
    pitches = [notes.cond(i)["pitch"] for i in range(len(notes))]
    assert pitch_accuracy(clips, pitches) == 1.0
    assert pitch_accuracy(clips, [p + 2 for p in pitches]) == 0.0  # 200 cents off
    # a batch works like a list
    batch = Audio(torch.stack([c.samples[0] for c in clips]), SR)
    assert pitch_accuracy(batch, pitches) == 1.0


def test_is_pitched_uses_the_tolerance():
    tone = Audio(_tone(midi_to_hz(69.3)), SR)  # 30 cents sharp
    assert is_pitched(tone, 69, tolerance_cents=50)
    assert not is_pitched(tone, 69, tolerance_cents=20)


def test_pitch_accuracy_needs_one_pitch_per_clip():
    with pytest.raises(ParameterError, match="2 clips but 1 pitches"):
        pitch_accuracy([Audio(_tone(), SR)] * 2, [69])
    with pytest.raises(ParameterError, match="at least one clip"):
        pitch_accuracy([], [])


def test_bits_per_sample_converts_nats_to_bits():
    assert bits_per_sample(math.log(2)) == pytest.approx(1.0)
    assert bits_per_sample(torch.tensor(8 * math.log(2))) == pytest.approx(8.0)


def test_hop_periodicity_is_one_for_a_repeated_cycle_and_small_for_unrelated_sound():
    from workbench.metrics import hop_periodicity

    gen = torch.Generator().manual_seed(0)
    cycle = torch.randn(256, generator=gen)
    assert hop_periodicity(cycle.repeat(20), 256) == pytest.approx(1.0, abs=1e-12)
    assert hop_periodicity(torch.randn(256 * 400, generator=gen), 256) < 0.1  # about 1 / sqrt(400)
    t = torch.arange(16000) / 16000
    assert hop_periodicity(torch.sin(2 * torch.pi * 261.63 * t), 256) < 0.1  # middle C vs a 62.5 Hz frame rate
    assert hop_periodicity(torch.sin(2 * torch.pi * 250.0 * t), 256) > 0.99  # 4 x the frame rate: locked
    with pytest.raises(ParameterError, match="fewer than two cycles"):
        hop_periodicity(torch.randn(300), 256)
    with pytest.raises(ParameterError, match="one mono clip"):
        hop_periodicity(torch.randn(2, 1, 3000), 256)


# ---- harmonic share --------------------------------------------------------------------------------
def _harmonic_tone(midi, seconds=1.0, sample_rate=16000, n=7):
    t = torch.arange(int(seconds * sample_rate)) / sample_rate
    f = 440.0 * 2 ** ((midi - 69) / 12)
    return sum(torch.sin(2 * torch.pi * k * f * t) / k for k in range(1, n + 1))


@pytest.mark.parametrize("midi", [48, 60, 72])
def test_harmonic_share_of_a_clean_tone_is_one_and_of_the_wrong_pitch_is_low(midi):
    from workbench.metrics import harmonic_share

    tone = _harmonic_tone(midi)
    assert harmonic_share(tone, midi, 16000) > 0.99
    assert harmonic_share(tone, midi + 1, 16000) < 0.4  # a semitone off: the comb misses the partials


@pytest.mark.parametrize("snr_db", [20.0, 10.0, 3.0, 0.0])
def test_harmonic_share_with_known_noise_is_the_harmonic_power_share(snr_db):
    """Tone plus white noise: share = (P_tone + c * P_noise) / (P_tone + P_noise), where c is the share
    of white noise's own power that falls in the harmonic bands (measured on the noise alone)."""
    from workbench.metrics import harmonic_share

    gen = torch.Generator().manual_seed(1)
    tone = _harmonic_tone(60)
    noise = torch.randn(tone.shape[-1], generator=gen)
    noise = noise * (tone.pow(2).mean() / noise.pow(2).mean() / 10 ** (snr_db / 10)).sqrt()
    c = harmonic_share(noise, 60, 16000)
    p_tone, p_noise = float(tone.pow(2).mean()), float(noise.pow(2).mean())
    expected = (p_tone + c * p_noise) / (p_tone + p_noise)
    assert harmonic_share(tone + noise, 60, 16000) == pytest.approx(expected, abs=0.03)


def test_harmonic_share_falls_as_noise_rises_and_is_nan_for_silence():
    from workbench.metrics import harmonic_share

    tone = _harmonic_tone(55, sample_rate=8000)
    gen = torch.Generator().manual_seed(2)
    noise = torch.randn(tone.shape[-1], generator=gen)
    shares = [harmonic_share(tone + level * noise, 55, 8000) for level in (0.0, 0.1, 0.3, 1.0)]
    assert shares == sorted(shares, reverse=True)
    assert math.isnan(harmonic_share(torch.zeros(8000), 55, 8000))
    with pytest.raises(ParameterError, match="steady part has"):
        harmonic_share(torch.zeros(300), 55, 8000)
