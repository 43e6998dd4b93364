"""STFT, phase, instantaneous frequency, phase resynthesis, Griffin-Lim and mel."""

from __future__ import annotations

import math

import librosa
import numpy as np
import pytest
import torch
import torchaudio.functional as AF

from workbench.audio import Audio
from workbench.dsp.spectral import (
    SpectralConfig,
    griffin_lim,
    if_to_phase,
    instantaneous_frequency,
    istft,
    log_mel,
    magnitude,
    mel_filterbank,
    mel_to_linear_matrix,
    phase,
    phase_to_if,
    random_phase,
    stft,
    swap_phase,
    unwrapped_phase,
    zero_phase,
)
from workbench.errors import ParameterError

SR = 16000
N_FFT = 1024
HOP = 256


def _noise(n=SR, seed=0, dtype=torch.float32) -> torch.Tensor:
    return 0.3 * torch.randn(n, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _band_spectrum(x) -> torch.Tensor:
    """Long-term magnitude spectrum in 40 mel bands, normalised to sum to one (level-free)."""
    fb = mel_filterbank(N_FFT, 40, SR).double()
    mag = magnitude(x, N_FFT, HOP).double()  # (..., freq, frames)
    mag = mag.reshape(-1, *mag.shape[-2:])  # (items, freq, frames)
    bands = (fb @ mag[0]).mean(-1)  # (40,)
    return bands / bands.sum()


# ---- STFT -----------------------------------------------------------------------------------


def test_stft_keeps_leading_dimensions_and_istft_inverts_it():
    x = torch.randn(2, 3, 4000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    spec = stft(x, 512, 128)
    assert spec.shape == (2, 3, 257, 4000 // 128 + 1)
    assert torch.allclose(istft(spec, 512, 128, length=4000), x, atol=1e-12)


def test_stft_of_too_short_signal_raises_with_the_fix():
    with pytest.raises(ParameterError, match=r"100 samples.*n_fft=1024.*smaller n_fft"):
        stft(torch.zeros(100), 1024, 256)


@pytest.mark.parametrize("n_fft, hop", [(4, 1), (1024, 0), (1024, 2048), (1024.0, 256)])
def test_bad_fft_settings_raise(n_fft, hop):
    with pytest.raises(ParameterError, match="n_fft=|hop_length="):
        SpectralConfig(n_fft, hop)


def test_istft_of_a_real_tensor_raises():
    with pytest.raises(ParameterError, match="complex"):
        istft(torch.zeros(513, 10))


# ---- phase and instantaneous frequency ---------------------------------------------------------


def test_unwrapped_phase_equals_numpy_unwrap():
    x = _noise(dtype=torch.float64)
    wrapped = phase(x, 512, 128).numpy()
    np.testing.assert_allclose(
        unwrapped_phase(x, 512, 128).numpy(), np.unwrap(wrapped, axis=-1), rtol=0, atol=1e-9
    )
    # float32: the same up to rounding of phases that grow to hundreds of radians
    x32 = x.float()
    np.testing.assert_allclose(
        unwrapped_phase(x32, 512, 128).numpy(),
        np.unwrap(phase(x32, 512, 128).numpy(), axis=-1),
        rtol=1e-6,
        atol=1e-4,
    )


def test_unwrap_keeps_numpys_convention_for_steps_of_exactly_pi():
    p = torch.tensor([0.0, math.pi, 0.0, -math.pi, 2.5, -2.5], dtype=torch.float64)
    np.testing.assert_allclose(
        unwrapped_phase(torch.polar(torch.ones(6, dtype=torch.float64), p)).numpy(),
        np.unwrap(np.angle(np.exp(1j * p.numpy()))),
        atol=1e-12,
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_magnitude_and_instantaneous_frequency_resynthesise_the_audio(dtype):
    # audio -> (magnitude, IF) -> phase via if_to_phase -> istft: the GANSynth representation
    # loses nothing (float32: RMS ~1e-6; float64: ~1e-15)
    x = _noise(dtype=dtype)
    mag = magnitude(x, N_FFT, HOP)
    inst = instantaneous_frequency(x, N_FFT, HOP)
    assert mag.shape == inst.shape
    assert float(inst.abs().max()) <= 1.0 + 1e-6  # scaled to [-1, 1]
    y = istft(torch.polar(mag, if_to_phase(inst)), N_FFT, HOP, length=x.shape[-1])
    inner = slice(N_FFT, -N_FFT)
    rms = float((y - x)[inner].pow(2).mean().sqrt())
    assert rms <= 1e-5
    if dtype == torch.float64:
        assert rms <= 1e-12


def test_if_to_phase_inverts_phase_to_if_up_to_wrapping():
    wrapped = phase(_noise(dtype=torch.float64), 512, 128)
    back = if_to_phase(phase_to_if(wrapped))
    difference = torch.remainder(back - wrapped + math.pi, 2 * math.pi) - math.pi
    assert float(difference.abs().max()) < 1e-9


def test_a_pure_tone_has_a_constant_instantaneous_frequency_at_its_bin():
    # bin 41 of a 1024-point FFT at 16 kHz is 640.625 Hz; per hop of 256 samples the phase
    # advances 2 pi * 640.625 * 256 / 16000 = 20.5 pi, i.e. pi / 2 after wrapping: IF = 0.5
    k = 41
    f0 = k * SR / N_FFT
    t = torch.arange(SR, dtype=torch.float64) / SR
    tone = 0.5 * torch.sin(2 * math.pi * f0 * t)
    inst = instantaneous_frequency(tone, N_FFT, HOP)[k, 4:-4]  # away from the padded edges
    assert torch.allclose(inst, torch.full_like(inst, 0.5), atol=1e-6)
    # a tone between bins also has a constant IF at its bin, just another value
    tone = 0.5 * torch.sin(2 * math.pi * 1234.5 * t)
    bin_ = round(1234.5 * N_FFT / SR)
    expected = (2 * math.pi * 1234.5 * HOP / SR + math.pi) % (2 * math.pi) - math.pi
    inst = instantaneous_frequency(tone, N_FFT, HOP)[bin_, 4:-4]
    assert float(inst.std()) < 1e-6
    assert float(inst.mean()) == pytest.approx(expected / math.pi, abs=1e-6)


# ---- phase resynthesis ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["piano", "flute", "chord"])
def test_random_phase_keeps_length_and_the_long_term_magnitude_spectrum(clips, name):
    # Random phase is not a consistent spectrogram: istft + stft smears each partial into its
    # neighbouring bins and, with 4 frames overlapping, roughly halves the level (frame by frame
    # the relative mean magnitude difference is 0.55..0.7). What survives is the spectral
    # *shape*: in 40 mel bands, the level-normalised long-term spectrum moves by L1 0.07..0.13
    # on the shipped clips (0.02 on white noise), while another instrument is > 1.0 away.
    x = clips[name]
    y = random_phase(x, N_FFT, HOP, generator=0)
    assert isinstance(y, Audio) and y.n_samples == x.n_samples and y.sample_rate == x.sample_rate
    assert float((_band_spectrum(y) - _band_spectrum(x)).abs().sum()) < 0.25
    other = clips["flute" if name != "flute" else "piano"]
    assert float((_band_spectrum(other) - _band_spectrum(x)).abs().sum()) > 1.0


def test_random_phase_keeps_the_spectrum_of_noise_closely():
    x = _noise(2 * SR)
    y = random_phase(x, N_FFT, HOP, generator=1)
    assert float((_band_spectrum(y) - _band_spectrum(x)).abs().sum()) < 0.06  # measured 0.02


def test_random_phase_is_reproducible_with_a_seed_and_differs_across_seeds():
    x = _noise(8000)
    assert torch.equal(
        random_phase(x, 512, 128, generator=3), random_phase(x, 512, 128, generator=3)
    )
    assert not torch.allclose(
        random_phase(x, 512, 128, generator=3), random_phase(x, 512, 128, generator=4)
    )
    g = torch.Generator().manual_seed(3)
    assert torch.equal(
        random_phase(x, 512, 128, generator=g), random_phase(x, 512, 128, generator=3)
    )


def test_random_phase_rejects_a_bad_generator():
    with pytest.raises(ParameterError, match="generator='seed'.*int seed or a torch.Generator"):
        random_phase(_noise(8000), 512, 128, generator="seed")


def test_zero_and_swap_phase_keep_shape_and_kind():
    x = torch.randn(2, 1, 5000, generator=torch.Generator().manual_seed(0))
    assert zero_phase(x, 512, 128).shape == x.shape
    assert isinstance(zero_phase(x, 512, 128), torch.Tensor)
    z = zero_phase(Audio(x, SR), 512, 128)
    assert isinstance(z, Audio) and z.samples.shape == x.shape and z.sample_rate == SR
    # b longer or shorter than a is trimmed or padded to a's length
    for n_b in (3000, 9000):
        b = torch.randn(n_b, generator=torch.Generator().manual_seed(1))
        assert swap_phase(x[0, 0], b, 512, 128).shape == (5000,)
    swapped = swap_phase(Audio(x[0], SR), Audio(x[1], SR), 512, 128)
    assert isinstance(swapped, Audio) and swapped.n_samples == 5000


def test_zero_and_random_phase_depend_only_on_the_magnitude():
    # -x has the same magnitude as x and every phase turned by pi: the outputs must not differ
    x = _noise(8000, dtype=torch.float64)
    assert torch.allclose(zero_phase(-x, 512, 128), zero_phase(x, 512, 128), atol=1e-12)
    assert torch.allclose(
        random_phase(-x, 512, 128, generator=2), random_phase(x, 512, 128, generator=2), atol=1e-12
    )
    assert float((zero_phase(x, 512, 128) - x).pow(2).mean()) > 0.5 * float(x.pow(2).mean())


def test_swap_phase_with_own_phase_gives_back_the_audio():
    x = _noise(8000, dtype=torch.float64)
    assert torch.allclose(swap_phase(x, x, 512, 128), x, atol=1e-10)


def test_swap_phase_refuses_different_sample_rates():
    with pytest.raises(ParameterError, match=r"16000 and 22050 Hz.*resample"):
        swap_phase(Audio(_noise(8000), 16000), Audio(_noise(8000), 22050))


# ---- Griffin-Lim ---------------------------------------------------------------------------


def test_griffin_lim_convergence_falls_with_iterations(clips):
    x = clips["piano"].samples[0, 0]
    mag = magnitude(x, N_FFT, HOP)
    _, convergence = griffin_lim(
        mag, n_iter=100, n_fft=N_FFT, hop_length=HOP, return_convergence=True
    )
    assert len(convergence) == 101
    at = [convergence[i] for i in (0, 8, 32, 100)]  # measured 0.91, 0.37, 0.088, 0.045
    assert at[0] > at[1] > at[2] > at[3]
    assert at[3] < 0.1


@pytest.mark.parametrize("n_iter", [0, 1, 8, 32])
@pytest.mark.parametrize("momentum", [0.0, 0.99])
def test_griffin_lim_equals_torchaudio(clips, n_iter, momentum):
    x = clips["flute"].samples[0, 0]
    mag = magnitude(x, N_FFT, HOP)
    ours = griffin_lim(
        mag, n_iter=n_iter, momentum=momentum, n_fft=N_FFT, hop_length=HOP, length=x.shape[-1]
    )
    theirs = AF.griffinlim(
        mag, torch.hann_window(N_FFT), N_FFT, HOP, N_FFT, 1.0, n_iter, momentum, x.shape[-1], False
    )
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)


def test_griffin_lim_from_random_phase_is_reproducible_with_a_seed():
    mag = magnitude(_noise(8000), 512, 128)
    a = griffin_lim(mag, n_iter=4, n_fft=512, hop_length=128, generator=7)
    b = griffin_lim(mag, n_iter=4, n_fft=512, hop_length=128, generator=7)
    assert torch.equal(a, b)
    assert not torch.equal(a, griffin_lim(mag, n_iter=4, n_fft=512, hop_length=128))


def test_griffin_lim_rejects_a_complex_spectrum_and_bad_settings():
    spec = stft(_noise(8000), 512, 128)
    with pytest.raises(ParameterError, match=r"spec.abs\(\)"):
        griffin_lim(spec, n_fft=512, hop_length=128)
    with pytest.raises(ParameterError, match=r"257 frequency bins but n_fft=1024"):
        griffin_lim(spec.abs(), n_fft=1024, hop_length=256)
    with pytest.raises(ParameterError, match=r"n_iter=-1"):
        griffin_lim(spec.abs(), n_iter=-1, n_fft=512, hop_length=128)
    with pytest.raises(ParameterError, match=r"momentum=1.0"):
        griffin_lim(spec.abs(), momentum=1.0, n_fft=512, hop_length=128)


# ---- mel ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sample_rate, n_fft, n_mels", [(16000, 1024, 80), (22050, 2048, 128), (16000, 512, 40)]
)
def test_mel_filterbank_matches_librosa_slaney(sample_rate, n_fft, n_mels):
    ours = mel_filterbank(n_fft, n_mels, sample_rate).numpy()
    reference = librosa.filters.mel(
        sr=sample_rate, n_fft=n_fft, n_mels=n_mels
    )  # slaney, slaney-norm
    assert ours.shape == reference.shape == (n_mels, n_fft // 2 + 1)
    # measured: at most 5e-6 of the largest weight
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-5 * np.abs(reference).max())


def test_log_mel_matches_librosa_melspectrogram(clips):
    audio = clips["flute"]
    ours = log_mel(audio, n_fft=N_FFT, hop_length=HOP, n_mels=80)
    assert ours.shape == (1, 1, 80, audio.n_samples // HOP + 1)
    mel = librosa.feature.melspectrogram(
        y=audio.samples[0, 0].numpy(),
        sr=SR,
        n_fft=N_FFT,
        hop_length=HOP,
        power=1.0,
        n_mels=80,
        pad_mode="reflect",
    )
    # measured: 1e-4 in natural-log units
    np.testing.assert_allclose(ours[0, 0].numpy(), np.log(np.maximum(mel, 1e-5)), rtol=0, atol=1e-3)


def test_log_mel_of_a_tensor_needs_the_sample_rate():
    with pytest.raises(ParameterError, match="sample_rate=16000"):
        log_mel(torch.zeros(4000))
    assert log_mel(torch.zeros(4000), sample_rate=SR).shape[-2] == 80


@pytest.mark.filterwarnings("ignore:At least one mel filterbank has all zero values")
def test_mel_to_linear_matrix_is_magentas_inverse_and_maps_nothing_from_an_empty_band():
    fb = mel_filterbank(128, 64, SR).double()  # (64, 65): bands narrower than a bin hold none
    empty = fb.sum(1) == 0
    assert bool(empty.any())
    # GANSynth's code (Magenta specgrams_helper._mel_to_linear_matrix), written with numpy
    m = fb.numpy()
    sums = (m @ m.T).sum(axis=0)
    expected = m.T @ np.diag([1.0 / s if abs(s) > 1e-8 else s for s in sums])
    inverse = mel_to_linear_matrix(fb)
    assert inverse.shape == (65, 64) and inverse.dtype == fb.dtype
    assert np.allclose(inverse.numpy(), expected, rtol=1e-10, atol=0)
    assert bool(torch.isfinite(inverse).all()) and float(inverse[:, empty].abs().max()) == 0
    with pytest.raises(ParameterError, match="shape"):
        mel_to_linear_matrix(fb[None])
