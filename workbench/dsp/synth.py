"""Oscillators, envelopes, filtered noise, reverb and loudness: the building blocks of DDSP.

DDSP (Engel et al. 2020) puts these inside a neural network: the network predicts a few
interpretable controls per frame (f0, an overall amplitude, a harmonic distribution, noise
band magnitudes), and the functions here turn them into samples. Every function is
differentiable in its amplitudes and magnitudes, so a spectral loss on the output trains
the network that predicts them.

Shapes: per-sample signals are ``(batch, time)``; frame-rate controls put the control axis
before time: ``(batch, n_harmonics, frames)``, ``(batch, n_bands, frames)``.

Notebook: notebooks/08_spectrogram_and_dsp.ipynb
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

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


def exp_sigmoid(x: torch.Tensor, exponent: float = 10.0, max_value: float = 2.0,
                threshold: float = 1e-7) -> torch.Tensor:
    """DDSP's output nonlinearity: ``max_value * sigmoid(x) ** log(exponent) + threshold``.

    Positive, bounded by ``max_value + threshold``, and exponential-looking over most of its
    range, so a network can move an amplitude across many decibels with small steps.

    Examples
    --------
    >>> import torch
    >>> y = exp_sigmoid(torch.tensor([-50.0, 0.0, 50.0]))
    >>> bool((y > 0).all()) and float(y.max()) <= 2.0 + 1e-6
    True
    """
    return max_value * torch.sigmoid(x) ** math.log(exponent) + threshold


def remove_above_nyquist(f0_hz: torch.Tensor, harmonic_distribution: torch.Tensor,
                         sample_rate: int = 16000, normalise: bool = True) -> torch.Tensor:
    """Zero the harmonics at or above Nyquist and (by default) renormalise the rest to sum to one.

    Parameters
    ----------
    f0_hz : Tensor ``(batch, time)``
    harmonic_distribution : Tensor ``(batch, n_harmonics, time)``
        Non-negative relative amplitudes, on the same time grid as ``f0_hz``.

    Returns
    -------
    Tensor ``(batch, n_harmonics, time)``; a frame whose harmonics are all above Nyquist is all zeros.
    """
    n_harmonics = harmonic_distribution.shape[1]
    k = torch.arange(1, n_harmonics + 1, dtype=f0_hz.dtype, device=f0_hz.device)[None, :, None]
    audible = (f0_hz[:, None, :] * k < sample_rate / 2).to(harmonic_distribution.dtype)
    dist = harmonic_distribution * audible  # (batch, n_harmonics, time)
    if normalise:
        dist = dist / dist.sum(dim=1, keepdim=True).clamp_min(1e-7)
    return dist


def upsample(frames: torch.Tensor, n_samples: int, hop_length: int) -> torch.Tensor:
    """Linear interpolation of frame-rate controls to sample rate.

    Frame ``j`` sits at sample ``j * hop_length`` (the centred-STFT convention of
    :mod:`workbench.dsp.spectral`); after the last frame the last value is held::

        frames   0         1         2
        samples  |----+----|----+----|----...
                 0   hop/2 hop       2 hop

    Parameters
    ----------
    frames : Tensor ``(..., n_frames)``
    n_samples : int
    hop_length : int

    Returns
    -------
    Tensor ``(..., n_samples)``.
    """
    lead = frames.shape[:-1]
    flat = frames.reshape(-1, 1, frames.shape[-1])  # (items, 1, n_frames)
    flat = F.pad(flat, (0, 1), mode="replicate")  # one more frame: hold the last value
    n_frames = flat.shape[-1]
    # align_corners: frame j lands exactly on sample j * hop_length
    up = F.interpolate(flat, size=(n_frames - 1) * hop_length + 1, mode="linear", align_corners=True)
    up = up[..., :n_samples]
    if up.shape[-1] < n_samples:
        up = F.pad(up, (0, n_samples - up.shape[-1]), mode="replicate")
    return up.reshape(*lead, n_samples)


def harmonic_synth(f0_hz: torch.Tensor, amplitudes: torch.Tensor, harmonic_distribution: torch.Tensor,
                   sample_rate: int = 16000, initial_phase: torch.Tensor | None = None) -> torch.Tensor:
    """Additive synthesis of harmonics of a time-varying f0 (DDSP's harmonic oscillator).

    Harmonic ``k`` has instantaneous frequency ``k * f0_hz[t]``; its phase is the running sum
    of that frequency (``2 pi * cumsum(k * f0 / sample_rate)``), so f0 may glide without clicks.

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
        Radians.

    Returns
    -------
    Tensor ``(batch, time)``.

    Raises
    ------
    ParameterError
        Mismatched shapes.

    Examples
    --------
    >>> import torch
    >>> f0 = torch.full((1, 16000), 440.0)
    >>> y = harmonic_synth(f0, torch.full((1, 16000), 0.5), torch.ones(1, 3, 16000))
    >>> y.shape
    torch.Size([1, 16000])
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
    dist = remove_above_nyquist(f0_hz, harmonic_distribution, sample_rate)
    # 1. the fundamental's phase in cycles, integrated in float64 and wrapped to [0, 1)
    cycles = torch.cumsum(f0_hz.detach().double() / sample_rate, dim=-1)  # (batch, time)
    cycles = (cycles - cycles.floor()).to(amplitudes.dtype)
    # 2. harmonic k runs k times as fast: its phase is k times the fundamental's
    k = torch.arange(1, n_harmonics + 1, dtype=cycles.dtype, device=f0_hz.device)[None, :, None]
    phases = (2 * math.pi) * cycles[:, None, :] * k  # (batch, n_harmonics, time)
    if initial_phase is not None:
        phases = phases + initial_phase[..., None].to(phases.dtype)
    waves = torch.sin(phases)  # (batch, n_harmonics, time)
    return amplitudes * (dist * waves).sum(dim=1)


def harmonic_synth_frames(f0_hz: torch.Tensor, harmonic_amplitudes: torch.Tensor, hop_length: int,
                          n_samples: int, sample_rate: int = 16000) -> torch.Tensor:
    """:func:`harmonic_synth` driven by frame-rate controls, without building per-sample amplitudes.

    Same sound as upsampling every control linearly (:func:`upsample`) and calling
    :func:`harmonic_synth`, but the sum over harmonics is a matrix product per block of
    ``hop_length`` samples, which makes training several times faster::

        block j:  y[t] = (1 - w_t) * sum_k A[k, j] sin(k phase_t) + w_t * sum_k A[k, j+1] sin(k phase_t)
                  w_t = (t - j * hop) / hop

    Harmonics at or above Nyquist are removed frame by frame (as DDSP does); the amplitudes are
    used as given (not renormalised).

    Parameters
    ----------
    f0_hz : Tensor ``(batch, frames)``
    harmonic_amplitudes : Tensor ``(batch, n_harmonics, frames)``
        Absolute amplitude of each harmonic (amplitude times distribution).
    hop_length, n_samples, sample_rate : int

    Returns
    -------
    Tensor ``(batch, n_samples)``.
    """
    if f0_hz.dim() != 2 or harmonic_amplitudes.dim() != 3 or harmonic_amplitudes.shape[0] != f0_hz.shape[0] \
            or harmonic_amplitudes.shape[2] != f0_hz.shape[1]:
        raise ParameterError(
            f"f0_hz {tuple(f0_hz.shape)} must be (batch, frames) and harmonic_amplitudes "
            f"{tuple(harmonic_amplitudes.shape)} (batch, n_harmonics, frames) on the same frames"
        )
    batch, n_harmonics, _ = harmonic_amplitudes.shape
    amps = remove_above_nyquist(f0_hz, harmonic_amplitudes, sample_rate, normalise=False)
    n_blocks = -(-n_samples // hop_length)
    # 1. phase of the fundamental per sample (f0 interpolated), wrapped to [0, 1) cycles
    f0 = upsample(f0_hz, n_blocks * hop_length, hop_length)  # (batch, blocks * hop)
    cycles = torch.cumsum(f0.detach().double() / sample_rate, dim=-1)
    cycles = (cycles - cycles.floor()).to(amps.dtype).view(batch, n_blocks, 1, hop_length)
    k = torch.arange(1, n_harmonics + 1, dtype=amps.dtype, device=amps.device)[:, None]  # (n_harmonics, 1)
    waves = torch.sin((2 * math.pi) * cycles * k)  # (batch, blocks, n_harmonics, hop)
    # 2. amplitudes at the two frames around each block (the last frame held)
    amps = F.pad(amps, (0, max(0, n_blocks + 1 - amps.shape[-1])), mode="replicate")
    a0 = amps[..., :n_blocks].transpose(1, 2)[..., None, :]  # (batch, blocks, 1, n_harmonics)
    a1 = amps[..., 1: n_blocks + 1].transpose(1, 2)[..., None, :]
    # 3. the sums over harmonics as matrix products, then linear cross-fade inside the block
    start = (a0 @ waves)[..., 0, :]  # (batch, blocks, hop)
    end = (a1 @ waves)[..., 0, :]
    w = torch.arange(hop_length, dtype=amps.dtype, device=amps.device) / hop_length
    y = start * (1 - w) + end * w  # (batch, blocks, hop)
    return y.reshape(batch, n_blocks * hop_length)[:, :n_samples]


def fft_convolve(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Full linear convolution along the last axis through the FFT.

    Parameters
    ----------
    x : Tensor ``(..., n)``
    kernel : Tensor ``(..., m)``, broadcastable against ``x``'s leading dimensions

    Returns
    -------
    Tensor ``(..., n + m - 1)``.
    """
    n = x.shape[-1] + kernel.shape[-1] - 1
    n_fft = 1 << (n - 1).bit_length()  # next power of two: no circular wrap-around
    y = torch.fft.irfft(torch.fft.rfft(x, n_fft) * torch.fft.rfft(kernel, n_fft), n_fft)
    return y[..., :n]


def noise_impulse_responses(magnitudes: torch.Tensor) -> torch.Tensor:
    """Linear-phase FIR filters from frequency-response magnitudes (DDSP's frequency filter).

    ``n_bands`` magnitudes, evenly spaced from 0 Hz to Nyquist, are read as a zero-phase
    frequency response; its inverse real FFT is an impulse response centred on sample 0, which is
    rolled to the middle of ``2 * (n_bands - 1)`` taps and shaped by a Hann window (shorter
    ripples, and the response stays close to the magnitudes asked for).

    Parameters
    ----------
    magnitudes : Tensor ``(..., n_bands)``
        Non-negative, linear (not dB).

    Returns
    -------
    Tensor ``(..., 2 * (n_bands - 1))``: a filter with a delay of ``n_bands - 1`` samples.
    """
    n_bands = magnitudes.shape[-1]
    if n_bands < 2:
        raise ParameterError(f"need at least 2 noise bands, got {n_bands}")
    ir = torch.fft.irfft(magnitudes.to(torch.complex64 if magnitudes.dtype == torch.float32
                                       else torch.complex128))  # (..., 2 * (n_bands - 1)), zero phase
    size = ir.shape[-1]
    ir = torch.roll(ir, size // 2, dims=-1)  # centred: linear phase, delay size // 2
    return ir * torch.hann_window(size, dtype=ir.dtype, device=ir.device)  # periodic: symmetric about the centre


def filtered_noise(magnitudes: torch.Tensor, n_samples: int, hop_length: int,
                   generator=None, noise: torch.Tensor | None = None) -> torch.Tensor:
    """White noise shaped by a time-varying filter, one FIR per frame (DDSP's filtered noise).

    1. Uniform noise in [-1, 1) is cut into blocks of ``hop_length`` samples, block ``j`` centred on
       frame ``j`` (sample ``j * hop_length``);
    2. block ``j`` is convolved with the impulse response of frame ``j``'s magnitudes
       (:func:`noise_impulse_responses`);
    3. the filtered blocks, longer by the filter length, are overlap-added and the filter's delay
       removed::

           block j          |---hop---|
           filtered         |---hop---|~~~~ filter tail ~~~~|
           block j + 1                |---hop---|~~~~ ... (overlap-added)

    Parameters
    ----------
    magnitudes : Tensor ``(batch, n_bands, frames)``
        Linear magnitudes from 0 Hz to Nyquist, one column per frame.
    n_samples : int
    hop_length : int
        Samples between frames.
    generator : None, int or torch.Generator
        Randomness of the noise.
    noise : Tensor ``(batch, frames * hop_length)``, optional
        Use this excitation instead of drawing one (tests pass their own).

    Returns
    -------
    Tensor ``(batch, n_samples)``.

    Raises
    ------
    ParameterError
        Bad shapes.

    Examples
    --------
    >>> import torch
    >>> flat = torch.ones(1, 65, 251)  # every band at 1: white noise, unchanged level
    >>> y = filtered_noise(flat, 16000, 64, generator=0)
    >>> y.shape
    torch.Size([1, 16000])
    """
    from .spectral import make_generator

    if magnitudes.dim() != 3:
        raise ParameterError(f"magnitudes has shape {tuple(magnitudes.shape)}; expected (batch, n_bands, frames)")
    batch, n_bands, n_frames = magnitudes.shape
    if noise is None:
        gen = make_generator(generator)
        noise = torch.rand(batch, n_frames * hop_length, generator=gen, dtype=magnitudes.dtype) * 2 - 1
        noise = noise.to(magnitudes.device)
    elif noise.shape != (batch, n_frames * hop_length):
        raise ParameterError(f"noise has shape {tuple(noise.shape)}; expected ({batch}, {n_frames * hop_length})")
    ir = noise_impulse_responses(magnitudes.transpose(1, 2))  # (batch, frames, taps)
    taps = ir.shape[-1]
    blocks = noise.reshape(batch, n_frames, hop_length)  # (batch, frames, hop)
    filtered = fft_convolve(blocks, ir)  # (batch, frames, hop + taps - 1)
    # overlap-add: block j starts at output sample j * hop
    width = hop_length + taps - 1
    out = F.fold(filtered.transpose(1, 2), output_size=(1, (n_frames - 1) * hop_length + width),
                 kernel_size=(1, width), stride=(1, hop_length))[:, 0, 0]  # (batch, total)
    # block j's centre (j * hop + hop // 2), delayed by taps // 2, belongs at sample j * hop
    start = hop_length // 2 + taps // 2
    out = out[:, start: start + n_samples]
    if out.shape[-1] < n_samples:
        out = F.pad(out, (0, n_samples - out.shape[-1]))
    return out


def reverb(x: torch.Tensor, impulse_response: torch.Tensor, dry: bool = True) -> torch.Tensor:
    """Convolution reverb, trimmed to the input's length.

    Parameters
    ----------
    x : Tensor ``(batch, time)``
    impulse_response : Tensor ``(taps,)`` or ``(batch, taps)``
        The wet response; its first tap is treated as 0 so that the direct sound comes only from
        the dry path.
    dry : bool
        Add the dry signal (``x + x * ir``), as DDSP's trainable reverb does.

    Returns
    -------
    Tensor ``(batch, time)``.
    """
    ir = impulse_response
    ir = F.pad(ir[..., 1:], (1, 0))  # no energy at lag 0: that is the dry path's job
    wet = fft_convolve(x, ir)[..., : x.shape[-1]]
    return x + wet if dry else wet


def a_weighting_db(frequencies_hz: torch.Tensor, min_db: float = -80.0) -> torch.Tensor:
    """The A-weighting curve (IEC 61672) in dB: 0 dB at 1 kHz, much less at low frequencies.

    Written out to show the formula; ``librosa.A_weighting`` gives the same numbers (tested)::

        R_A(f) = 12194^2 f^4 / ((f^2 + 20.6^2) sqrt((f^2 + 107.7^2)(f^2 + 737.9^2)) (f^2 + 12194^2))
        A(f)   = 20 log10 R_A(f) + 2.0 dB

    (with the pole frequencies to more digits, as the standard and librosa give them).
    """
    f2 = frequencies_hz.double() ** 2
    p1, p2, p3, p4 = 20.598997**2, 107.65265**2, 737.86223**2, 12194.217**2
    r = p4 * f2**2 / ((f2 + p1) * torch.sqrt((f2 + p2) * (f2 + p3)) * (f2 + p4))
    db = 20 * torch.log10(r.clamp_min(1e-30)) + 2.0
    return db.clamp_min(min_db).to(frequencies_hz.dtype if frequencies_hz.is_floating_point() else torch.float32)


def a_weighted_loudness(x, sample_rate: int = 16000, n_fft: int = 1024, hop_length: int = 64,
                        min_db: float = -100.0) -> torch.Tensor:
    """Perceptual loudness per frame: A-weighted mean-square power in dB (DDSP's loudness feature).

    The power spectrum of each frame is weighted by the A curve and summed, scaled so that the
    result is the A-weighted mean square of the signal: a full-scale 1 kHz sine reads -3 dB,
    silence reads ``min_db``. Frames follow the library's centred STFT: frame ``j`` is centred on
    sample ``j * hop_length``, so a clip of ``n`` samples has ``n // hop_length + 1`` frames.

    Parameters
    ----------
    x : Tensor ``(..., time)`` or Audio
    sample_rate : int
        Taken from an ``Audio``.
    n_fft, hop_length : int
    min_db : float
        Floor.

    Returns
    -------
    Tensor ``(..., frames)`` in dB.

    Examples
    --------
    >>> import torch, math
    >>> tone = torch.sin(2 * math.pi * 1000 * torch.arange(16000) / 16000)
    >>> round(float(a_weighted_loudness(tone)[10:-10].mean()), 1)
    -3.0
    """
    from ..audio import to_tensor
    from .spectral import stft

    t, sr = to_tensor(x)
    sample_rate = sr or sample_rate
    while n_fft > 16 and t.shape[-1] <= n_fft // 2:  # very short clips: a shorter window
        n_fft //= 2
    power = stft(t, n_fft, hop_length).abs().pow(2)  # (..., freq, frames)
    freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    weight = 10 ** (a_weighting_db(freqs, min_db=-200.0) / 10)  # power weights
    window_energy = torch.hann_window(n_fft, dtype=torch.float64).pow(2).sum()
    # Parseval: the one-sided power summed over bins is ~ (n_fft / 2) * sum((x w)^2)
    scale = 1.0 / (n_fft / 2 * window_energy)
    weighted = (power * (weight * scale).to(power.dtype)[:, None]).sum(dim=-2)  # (..., frames)
    return (10 * torch.log10(weighted.clamp_min(1e-30))).clamp_min(min_db)
