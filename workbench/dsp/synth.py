"""Oscillators and envelopes: the building blocks of procedural notes and DDSP.

Notebook: notebooks/08_spectrogram_and_dsp.ipynb
"""

from __future__ import annotations

import math

import torch

from ..errors import ParameterError


def midi_to_hz(midi) -> torch.Tensor | float:
    """MIDI note number to Hz (A4 = 69 = 440 Hz)."""
    if isinstance(midi, torch.Tensor):
        return 440.0 * 2.0 ** ((midi - 69.0) / 12.0)
    return 440.0 * 2.0 ** ((float(midi) - 69.0) / 12.0)


def hz_to_midi(hz) -> torch.Tensor | float:
    """Hz to (fractional) MIDI note number."""
    if isinstance(hz, torch.Tensor):
        return 69.0 + 12.0 * torch.log2(hz / 440.0)
    return 69.0 + 12.0 * math.log2(float(hz) / 440.0)


def sine(f0_hz: float, seconds: float, sample_rate: int = 16000, amplitude: float = 0.5,
         phase: float = 0.0) -> torch.Tensor:
    """A sine tone ``(time,)``."""
    t = torch.arange(int(round(seconds * sample_rate)), dtype=torch.float64) / sample_rate
    return (amplitude * torch.sin(2 * math.pi * f0_hz * t + phase)).float()


def adsr_envelope(n_samples: int, sample_rate: int, attack: float = 0.01, decay: float = 0.1,
                  sustain: float = 0.7, release: float = 0.2, hold: float | None = None) -> torch.Tensor:
    """Piecewise-linear attack / decay / sustain / release envelope ``(n_samples,)``.

    ``hold`` is when the key is released (seconds); by default ``release`` before the end.
    """
    seconds = n_samples / sample_rate
    hold = seconds - release if hold is None else hold
    t = torch.arange(n_samples, dtype=torch.float64) / sample_rate
    env = torch.where(t < attack, t / max(attack, 1e-9), torch.ones_like(t))
    in_decay = (t >= attack) & (t < attack + decay)
    env = torch.where(in_decay, 1 - (1 - sustain) * (t - attack) / max(decay, 1e-9), env)
    env = torch.where(t >= attack + decay, torch.full_like(t, sustain), env)
    rel = t >= hold
    env = torch.where(rel, sustain * (1 - (t - hold) / max(release, 1e-9)).clamp_min(0), env)
    return env.float()


def harmonic_synth(f0_hz: torch.Tensor, amplitudes: torch.Tensor, harmonic_distribution: torch.Tensor,
                   sample_rate: int = 16000, initial_phase: torch.Tensor | None = None) -> torch.Tensor:
    """Additive synthesis of harmonics of a time-varying f0 (DDSP's harmonic oscillator).

    Parameters
    ----------
    f0_hz : Tensor ``(batch, time)``
        Fundamental per sample.
    amplitudes : Tensor ``(batch, time)``
        Overall amplitude per sample (>= 0).
    harmonic_distribution : Tensor ``(batch, n_harmonics, time)``
        Relative harmonic amplitudes (>= 0). Harmonics at or above Nyquist are zeroed and the
        rest renormalised to sum to one.
    initial_phase : Tensor ``(batch, n_harmonics)``, optional

    Returns
    -------
    Tensor ``(batch, time)``.

    Raises
    ------
    ParameterError
        Mismatched shapes.
    """
    if f0_hz.dim() != 2 or amplitudes.shape != f0_hz.shape:
        raise ParameterError(
            f"f0_hz {tuple(f0_hz.shape)} and amplitudes {tuple(amplitudes.shape)} must both be (batch, time)"
        )
    if harmonic_distribution.dim() != 3 or harmonic_distribution.shape[0] != f0_hz.shape[0] \
            or harmonic_distribution.shape[2] != f0_hz.shape[1]:
        raise ParameterError(
            f"harmonic_distribution has shape {tuple(harmonic_distribution.shape)}; expected "
            f"(batch, n_harmonics, time) = ({f0_hz.shape[0]}, n, {f0_hz.shape[1]})"
        )
    n_harmonics = harmonic_distribution.shape[1]
    k = torch.arange(1, n_harmonics + 1, dtype=f0_hz.dtype, device=f0_hz.device)[None, :, None]
    freqs = f0_hz[:, None, :] * k  # (batch, n_harmonics, time)
    audible = (freqs < sample_rate / 2).to(harmonic_distribution.dtype)
    dist = harmonic_distribution * audible
    dist = dist / dist.sum(dim=1, keepdim=True).clamp_min(1e-7)
    # phase = 2 pi * cumulative sum of frequency / sample rate (integrating the frequency)
    phases = 2 * math.pi * torch.cumsum(freqs.double() / sample_rate, dim=-1)
    if initial_phase is not None:
        phases = phases + initial_phase[..., None].double()
    waves = torch.sin(phases).to(f0_hz.dtype)  # (batch, n_harmonics, time)
    return amplitudes * (dist * waves).sum(dim=1)
