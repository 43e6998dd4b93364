"""Oscillators, filtered noise, reverb and loudness (workbench.dsp.synth) against references."""

from __future__ import annotations

import math

import librosa
import numpy as np
import pytest
import torch

from workbench.dsp.synth import (
    a_weighted_loudness,
    a_weighting_db,
    exp_sigmoid,
    fft_convolve,
    filtered_noise,
    harmonic_synth,
    harmonic_synth_frames,
    noise_impulse_responses,
    remove_above_nyquist,
    reverb,
    upsample,
)
from workbench.errors import ParameterError

SR = 16000


def numpy_oscillator_bank(f0_hz, amplitudes, distribution, sample_rate):
    """The textbook oscillator bank: each harmonic integrates its own frequency, one by one."""
    n_harmonics, n = distribution.shape
    out = np.zeros(n)
    kept = np.zeros_like(distribution)
    for k in range(1, n_harmonics + 1):
        kept[k - 1] = np.where(k * f0_hz < sample_rate / 2, distribution[k - 1], 0.0)
    kept /= np.maximum(kept.sum(0, keepdims=True), 1e-7)
    for k in range(1, n_harmonics + 1):
        phase = 2 * np.pi * np.cumsum(k * f0_hz / sample_rate)
        out += amplitudes * kept[k - 1] * np.sin(phase)
    return out


def _spectrum_peak_hz(x: np.ndarray, sample_rate: int) -> tuple[float, float]:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * sample_rate / len(x)), sample_rate / len(x)


def test_harmonic_synth_matches_a_numpy_oscillator_bank_with_a_gliding_f0():
    n = 4000
    t = np.arange(n) / SR
    f0 = 220 + 200 * t / t[-1]  # a glide up to 420 Hz: harmonics 19+ cross Nyquist on the way
    amp = 0.5 * (1 - t / t[-1]) + 0.1
    rng = np.random.default_rng(0)
    dist = rng.uniform(0.1, 1.0, size=(24, n))
    ref = numpy_oscillator_bank(f0, amp, dist, SR)
    out = harmonic_synth(torch.tensor(f0)[None].float(), torch.tensor(amp)[None].float(),
                         torch.tensor(dist)[None].float(), SR)
    assert out.shape == (1, n)
    np.testing.assert_allclose(out[0].numpy(), ref, atol=2e-4)


@pytest.mark.parametrize("f0_hz", [110.0, 261.63, 1000.0, 3520.0])
def test_requested_f0_gives_the_fft_peak_within_one_bin(f0_hz):
    n = SR
    dist = torch.zeros(1, 8, n)
    dist[:, 0] = 1.0  # only the fundamental
    y = harmonic_synth(torch.full((1, n), f0_hz), torch.full((1, n), 0.5), dist, SR)
    peak, bin_hz = _spectrum_peak_hz(y[0].numpy(), SR)
    assert abs(peak - f0_hz) <= bin_hz


def test_frame_rate_synth_puts_the_fundamental_where_asked():
    frames = SR // 64 + 1
    amps = torch.zeros(1, 10, frames)
    amps[:, 0] = 0.5
    y = harmonic_synth_frames(torch.full((1, frames), 440.0), amps, 64, SR, SR)
    peak, bin_hz = _spectrum_peak_hz(y[0].numpy(), SR)
    assert abs(peak - 440.0) <= bin_hz


@pytest.mark.parametrize("synth", ["per_sample", "frames"])
def test_nothing_is_synthesised_above_nyquist(synth):
    """f0 = 3 kHz with 10 equal harmonics: only 3 and 6 kHz may sound; no aliases anywhere else."""
    n, f0 = SR, 3000.0
    if synth == "per_sample":
        y = harmonic_synth(torch.full((1, n), f0), torch.full((1, n), 0.5), torch.ones(1, 10, n), SR)
    else:
        frames = n // 64 + 1
        y = harmonic_synth_frames(torch.full((1, frames), f0), torch.full((1, 10, frames), 0.25), 64, n, SR)
    spectrum = np.abs(np.fft.rfft(y[0].numpy() * np.hanning(n))) ** 2
    freqs = np.fft.rfftfreq(n, 1 / SR)
    near_harmonics = (np.abs(freqs - f0) < 20) | (np.abs(freqs - 2 * f0) < 20)
    assert spectrum[~near_harmonics].sum() < 1e-6 * spectrum.sum()


def test_removing_harmonics_above_nyquist_renormalises_the_rest():
    f0 = torch.full((1, 5), 3000.0)
    dist = remove_above_nyquist(f0, torch.ones(1, 4, 5), SR)
    assert torch.allclose(dist[0, :, 0], torch.tensor([0.5, 0.5, 0.0, 0.0]))
    assert torch.allclose(dist.sum(1), torch.ones(1, 5))


def test_frame_rate_synth_equals_per_sample_synth_on_upsampled_controls():
    g = torch.Generator().manual_seed(1)
    frames, hop, n = 40, 64, 2500
    f0 = 150 + 30 * torch.rand(2, frames, generator=g)
    amps = torch.rand(2, 12, frames, generator=g)
    fast = harmonic_synth_frames(f0, amps, hop, n, SR)
    # the per-sample synth renormalises its distribution: hand it amplitude 1 and undo that
    up = upsample(amps, n, hop)
    slow = harmonic_synth(upsample(f0, n, hop), up.sum(1), up / up.sum(1, keepdim=True), SR)
    assert torch.allclose(fast, slow, atol=2e-4)


def test_exp_sigmoid_is_positive_bounded_and_monotone():
    x = torch.linspace(-30, 30, 101)
    y = exp_sigmoid(x)
    assert bool((y > 0).all()) and float(y.max()) <= 2.0 + 1e-6
    assert bool((torch.diff(y) >= 0).all())


def test_upsample_puts_frame_j_on_sample_j_times_hop_and_holds_the_last():
    frames = torch.tensor([[0.0, 1.0, 3.0]])
    y = upsample(frames, 10, 4)
    assert torch.allclose(y[0, [0, 4, 8]], frames[0])
    assert torch.allclose(y[0, 2], torch.tensor(0.5))
    assert float(y[0, 9]) == 3.0


def test_fft_convolve_matches_numpy_convolve():
    rng = np.random.default_rng(0)
    x, k = rng.standard_normal(300), rng.standard_normal(37)
    out = fft_convolve(torch.tensor(x), torch.tensor(k)).numpy()
    np.testing.assert_allclose(out, np.convolve(x, k), atol=1e-9)


def test_noise_filters_are_linear_phase_and_follow_their_magnitudes():
    mags = torch.rand(65, generator=torch.Generator().manual_seed(0)) + 0.5
    ir = noise_impulse_responses(mags)
    assert ir.shape == (128,)
    assert torch.allclose(ir[1:], ir[1:].flip(0), atol=1e-6)  # symmetric about the centre tap
    response = torch.fft.rfft(ir, 128).abs()
    assert float((response - mags).abs().mean() / mags.mean()) < 0.2  # the window smooths a little


def test_flat_filtered_noise_keeps_the_level_of_white_noise():
    y = filtered_noise(torch.ones(1, 65, SR // 64 + 1), SR, 64, generator=0)
    assert y.shape == (1, SR)
    assert abs(float(y.std()) - 1 / math.sqrt(3)) < 0.03  # uniform noise in [-1, 1)


def test_low_pass_filtered_noise_has_no_energy_above_its_cut_off():
    mags = torch.zeros(1, 65, SR // 64 + 1)
    mags[:, :17] = 1.0  # bands up to 2 kHz (band i is at i * 8000 / 64 Hz)
    y = filtered_noise(mags, SR, 64, generator=0)[0].numpy()
    spectrum = np.abs(np.fft.rfft(y)) ** 2
    freqs = np.fft.rfftfreq(SR, 1 / SR)
    assert spectrum[freqs > 3000].sum() < 0.01 * spectrum.sum()


def test_filtered_noise_is_reproducible_under_a_seed_and_checks_shapes():
    mags = torch.ones(2, 9, 11)
    assert torch.equal(filtered_noise(mags, 600, 64, generator=3), filtered_noise(mags, 600, 64, generator=3))
    assert not torch.equal(filtered_noise(mags, 600, 64, generator=3), filtered_noise(mags, 600, 64, generator=4))
    with pytest.raises(ParameterError, match="batch, n_bands, frames"):
        filtered_noise(torch.ones(9, 11), 600, 64)


def test_reverb_adds_delayed_copies_to_the_dry_signal():
    x = torch.zeros(1, 100)
    x[0, 0] = 1.0
    ir = torch.zeros(20)
    ir[0], ir[10] = 5.0, 0.5  # tap 0 is ignored: the direct sound is the dry path
    y = reverb(x, ir)
    expected = torch.zeros(1, 100)
    expected[0, 0], expected[0, 10] = 1.0, 0.5
    assert torch.allclose(y, expected, atol=1e-6)


def test_a_weighting_matches_librosa():
    freqs = np.linspace(10, 8000, 300)
    ours = a_weighting_db(torch.tensor(freqs)).numpy()
    np.testing.assert_allclose(ours, librosa.A_weighting(freqs), atol=1e-6)


def test_loudness_of_a_full_scale_1khz_sine_is_minus_3_db_and_tracks_gain():
    t = torch.arange(SR) / SR
    tone = torch.sin(2 * math.pi * 1000 * t)
    loud = a_weighted_loudness(tone, SR)
    assert loud.shape == (SR // 64 + 1,)
    assert abs(float(loud[20:-20].mean()) + 3.01) < 0.05
    quieter = a_weighted_loudness(0.1 * tone, SR)
    assert abs(float((loud - quieter)[20:-20].mean()) - 20.0) < 0.05
    bass = a_weighted_loudness(torch.sin(2 * math.pi * 100 * t), SR)
    assert float((loud - bass)[20:-20].mean()) > 15  # A-weighting: 100 Hz counts ~19 dB less
    assert float(a_weighted_loudness(torch.zeros(SR), SR).max()) == -100.0
