"""Numbers that say how close two sounds are, and whether a note has the pitch asked for."""

from __future__ import annotations

import math

import numpy as np
import torch

from .audio import Audio, to_tensor
from .dsp.spectral import stft
from .dsp.synth import hz_to_midi, midi_to_hz
from .errors import ParameterError

LN2 = math.log(2.0)


def _pair(reference, estimate) -> tuple[torch.Tensor, torch.Tensor]:
    r, _ = to_tensor(reference)
    e, _ = to_tensor(estimate)
    n = min(r.shape[-1], e.shape[-1])
    return r[..., :n].double(), e[..., :n].double()


def snr(reference, estimate) -> float:
    """Signal-to-noise ratio in dB of ``estimate`` against ``reference`` (higher is better)."""
    r, e = _pair(reference, estimate)
    noise = (r - e).pow(2).sum()
    signal = r.pow(2).sum()
    if float(noise) == 0.0:
        return math.inf
    return float(10 * torch.log10(signal.clamp_min(1e-20) / noise))


def segmental_snr(reference, estimate, frame: int = 256, floor_db: float = -10.0,
                  ceil_db: float = 35.0) -> float:
    """Mean of per-frame SNRs (dB), each clipped to [floor_db, ceil_db]; frames of silence skipped."""
    r, e = _pair(reference, estimate)
    r = r.reshape(-1)
    e = e.reshape(-1)
    n = (r.shape[-1] // frame) * frame
    if n == 0:
        raise ParameterError(f"the clips are shorter than one frame ({frame} samples)")
    rf = r[:n].reshape(-1, frame)
    ef = e[:n].reshape(-1, frame)
    sig = rf.pow(2).sum(-1)
    noi = (rf - ef).pow(2).sum(-1)
    keep = sig > 1e-10
    if not bool(keep.any()):
        raise ParameterError("the reference is silent; segmental SNR is undefined")
    seg = 10 * torch.log10(sig[keep] / noi[keep].clamp_min(1e-20))
    return float(seg.clamp(floor_db, ceil_db).mean())


def spectral_convergence(reference, estimate, n_fft: int = 1024, hop_length: int = 256) -> float:
    """``|| |S_ref| - |S_est| ||_F / || |S_ref| ||_F`` (0 is a perfect magnitude match)."""
    r, e = _pair(reference, estimate)
    mr = stft(r, n_fft, hop_length).abs()
    me = stft(e, n_fft, hop_length).abs()
    return float(torch.linalg.vector_norm(mr - me) / torch.linalg.vector_norm(mr).clamp_min(1e-12))


def multi_resolution_stft_distance(reference, estimate,
                                   fft_sizes: tuple[int, ...] = (2048, 1024, 512, 256, 128, 64)) -> float:
    """Mean over FFT sizes of L1 log-magnitude distance plus spectral convergence.

    The multi-scale spectral distance of DDSP / Parallel WaveGAN, as one number (lower is better).
    """
    r, e = _pair(reference, estimate)
    total = 0.0
    for n_fft in fft_sizes:
        if r.shape[-1] <= n_fft // 2:
            continue
        mr = stft(r, n_fft, n_fft // 4).abs()
        me = stft(e, n_fft, n_fft // 4).abs()
        sc = torch.linalg.vector_norm(mr - me) / torch.linalg.vector_norm(mr).clamp_min(1e-12)
        log_l1 = (torch.log(mr.clamp_min(1e-5)) - torch.log(me.clamp_min(1e-5))).abs().mean()
        total += float(sc + log_l1)
    return total / len(fft_sizes)


def hop_periodicity(audio, hop: int) -> float:
    """How much of a clip repeats every ``hop`` samples: RMS of its mean ``hop``-long cycle over its RMS.

    A vocoder that turns each mel frame into ``hop`` samples with the same convolutions plays the
    same cycle for every frame of a steady note unless it finds the phase somewhere: its notes
    come out at a multiple of the frame rate (sample_rate / hop). This measures that: 1 for a
    clip that repeats exactly every ``hop`` samples (its mean removed first), about 1 / sqrt(cycles) for sound whose
    period has nothing to do with ``hop`` (noise, most real notes). Compare against the real
    note: one whose fundamental happens to sit near a multiple of the frame rate scores high too.
    """
    x, _ = to_tensor(audio)
    if x.numel() != x.shape[-1]:
        raise ParameterError(f"hop_periodicity takes one mono clip, not shape {tuple(x.shape)}; pass clips one at a time")
    x = x.reshape(-1).double()
    if not isinstance(hop, int) or hop < 1:
        raise ParameterError(f"hop={hop!r} must be a positive number of samples")
    n_cycles = x.shape[-1] // hop
    if n_cycles < 2:
        raise ParameterError(f"the clip has {x.shape[-1]} samples, fewer than two cycles of hop={hop}")
    x = x[: n_cycles * hop] - x[: n_cycles * hop].mean()  # a DC offset repeats trivially: leave it out
    cycles = x.reshape(n_cycles, hop)
    total = cycles.pow(2).mean().sqrt()
    if float(total) == 0.0:
        raise ParameterError("the clip is silent; hop periodicity is undefined")
    return float(cycles.mean(0).pow(2).mean().sqrt() / total)


def f0(audio, sample_rate: int | None = None, fmin: float = 40.0, fmax: float = 2000.0,
       frame_length: int | None = None) -> np.ndarray:
    """Frame-wise f0 in Hz via ``librosa.pyin`` (NaN where unvoiced), of the first item, mixed to mono.

    Returns
    -------
    ndarray ``(frames,)``.
    """
    import librosa

    t, sr = to_tensor(audio)
    sample_rate = sr or sample_rate
    if sample_rate is None:
        raise ParameterError("f0 needs a sample_rate for a plain tensor")
    y = t.reshape(-1, t.shape[-1])[0] if t.dim() > 1 else t
    if isinstance(audio, Audio) and audio.n_channels > 1:
        y = audio.samples[0].mean(0)
    y = y.detach().cpu().double().numpy()
    frame_length = frame_length or (2048 if sample_rate > 12000 else 1024)
    if y.shape[-1] < frame_length:
        y = np.pad(y, (0, frame_length - y.shape[-1]))
    f, _, _ = librosa.pyin(y, fmin=fmin, fmax=min(fmax, sample_rate / 2 - 1), sr=sample_rate,
                           frame_length=frame_length)
    return f


def median_f0(audio, sample_rate: int | None = None, **kwargs) -> float:
    """Median of the voiced pyin f0 frames (NaN if nothing is voiced)."""
    f = f0(audio, sample_rate, **kwargs)
    voiced = f[np.isfinite(f)]
    return float(np.median(voiced)) if voiced.size else math.nan


def cents_error(f_hz: float, midi: float) -> float:
    """Signed distance in cents of ``f_hz`` from MIDI note ``midi`` (NaN in, NaN out)."""
    if not np.isfinite(f_hz) or f_hz <= 0:
        return math.nan
    return 1200.0 * math.log2(f_hz / midi_to_hz(midi))


def is_pitched(audio, midi: float, sample_rate: int | None = None, tolerance_cents: float = 50.0) -> bool:
    """Whether the median pyin f0 lies within ``tolerance_cents`` of MIDI ``midi``."""
    fmin = max(30.0, midi_to_hz(midi - 12))
    fmax = midi_to_hz(midi + 12)
    err = cents_error(median_f0(audio, sample_rate, fmin=fmin, fmax=fmax), midi)
    return bool(np.isfinite(err) and abs(err) <= tolerance_cents)


def pitch_accuracy(audios, midis, sample_rate: int | None = None, tolerance_cents: float = 50.0) -> float:
    """Share of clips whose median pyin f0 is within ``tolerance_cents`` of the asked MIDI note.

    ``audios`` is an ``Audio`` batch or a list of ``Audio``; ``midis`` one note per item.
    """
    if isinstance(audios, Audio):
        audios = [audios[i] for i in range(audios.batch_size)]
    midis = list(midis)
    if len(audios) != len(midis):
        raise ParameterError(f"got {len(audios)} clips but {len(midis)} pitches; pass one pitch per clip")
    if not audios:
        raise ParameterError("pitch_accuracy needs at least one clip")
    hits = [is_pitched(a, m, sample_rate, tolerance_cents) for a, m in zip(audios, midis)]
    return float(np.mean(hits))


def harmonic_share(audio, midi: float, sample_rate: int | None = None, n_harmonics: int = 20,
                   tolerance_cents: float = 40.0, start: float = 0.1, end: float = 0.7) -> float:
    """Share of a note's spectral energy that lies at the harmonics of the asked pitch: clean sound.

    Pitch accuracy does not hear hiss: a note can sit at the right pitch under a broadband noise
    floor. This measures, over the steady part of the clip (from ``start`` to ``end``, fractions
    of its length), the power within ``tolerance_cents`` of each of the first ``n_harmonics``
    harmonics of MIDI ``midi`` (below Nyquist), divided by all power above 0 Hz. A clean
    harmonic note scores near 1, white noise near the share of the band the harmonics cover.

    The power spectrum is Welch's average of Hann-windowed periodograms
    (``scipy.signal.welch``), with the longest power-of-two window (at most 8192) that fits the
    steady part twice. A window cannot resolve finer than its main lobe (two bins either side),
    so each harmonic's band is the wider of ``tolerance_cents`` and two bins.

    Parameters
    ----------
    audio : Audio or Tensor ``(time,)``
        The first item, mixed to mono.
    midi : float
        The asked pitch.

    Returns
    -------
    float in [0, 1], NaN for a silent steady part.

    Raises
    ------
    ParameterError
        Bad ``start`` / ``end``, or a steady part too short to analyse (under 256 samples).

    Examples
    --------
    >>> import torch
    >>> t = torch.arange(16000) / 16000
    >>> tone = sum(torch.sin(2 * torch.pi * k * 261.63 * t) / k for k in range(1, 6))
    >>> round(harmonic_share(tone, 60, 16000), 2)
    1.0
    """
    from scipy.signal import welch

    t, sr = to_tensor(audio)
    sample_rate = sr or sample_rate
    if sample_rate is None:
        raise ParameterError("harmonic_share needs a sample_rate for a plain tensor")
    if isinstance(audio, Audio):
        y = audio.samples[0].mean(0)
    else:
        y = t.reshape(-1, t.shape[-1])[0] if t.dim() > 1 else t
    if not 0.0 <= start < end <= 1.0:
        raise ParameterError(f"start={start}, end={end} must satisfy 0 <= start < end <= 1 (fractions of the clip)")
    y = y.detach().cpu().double().numpy()
    steady = y[int(start * len(y)): int(end * len(y))]
    if len(steady) < 256:
        raise ParameterError(f"the steady part has {len(steady)} samples; pass a clip of at least "
                             f"{math.ceil(256 / (end - start))} samples")
    n_fft = int(min(8192, 2 ** math.floor(math.log2(len(steady) / 2))))
    freqs, power = welch(steady, fs=sample_rate, window="hann", nperseg=n_fft, noverlap=n_fft // 2,
                         detrend="constant", scaling="spectrum")
    audible = freqs > 0
    total = float(power[audible].sum())
    if total <= 0.0:
        return math.nan
    f0_hz = midi_to_hz(midi)
    k = np.arange(1, n_harmonics + 1)
    k = k[k * f0_hz < sample_rate / 2]
    width = np.maximum(k * f0_hz * (2 ** (tolerance_cents / 1200) - 1), 2 * sample_rate / n_fft)  # Hz, per harmonic
    near = (np.abs(freqs[None, :] - k[:, None] * f0_hz) <= width[:, None]).any(0)  # (freqs,)
    return float(power[audible & near].sum() / total)


def bits_per_sample(nll_nats: torch.Tensor | float) -> float:
    """Convert a mean negative log-likelihood per sample from nats to bits."""
    return float(nll_nats) / LN2


__all__ = [
    "bits_per_sample", "cents_error", "f0", "harmonic_share", "hz_to_midi", "is_pitched", "median_f0",
    "multi_resolution_stft_distance", "pitch_accuracy", "segmental_snr", "snr", "spectral_convergence",
]
