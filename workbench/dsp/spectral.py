"""Short-time Fourier analysis with one convention, phase tools and Griffin-Lim.

Convention everywhere: Hann window of ``n_fft`` samples, ``hop_length`` hop, centred frames
(reflect padding), one-sided spectrum. Complex spectra have shape
``(batch, channels, n_fft // 2 + 1, frames)``.

Notebook: notebooks/01_phase.ipynb
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

from ..audio import Audio, like, to_tensor
from ..errors import ParameterError

DEFAULT_N_FFT = 1024
DEFAULT_HOP = 256


@dataclass(frozen=True)
class SpectralConfig:
    """STFT settings that travel together (one convention for the whole library)."""

    n_fft: int = DEFAULT_N_FFT
    hop_length: int = DEFAULT_HOP

    def __post_init__(self):
        _check_fft(self.n_fft, self.hop_length)


def _check_fft(n_fft, hop_length):
    if not isinstance(n_fft, int) or n_fft < 8:
        raise ParameterError(f"n_fft={n_fft!r} must be an integer >= 8, e.g. 1024")
    if not isinstance(hop_length, int) or not 1 <= hop_length <= n_fft:
        raise ParameterError(
            f"hop_length={hop_length!r} must be an integer in 1..n_fft ({n_fft}); n_fft // 4 is usual"
        )


def _window(n_fft: int, dtype, device) -> torch.Tensor:
    return torch.hann_window(n_fft, dtype=dtype, device=device)


def stft(x, n_fft: int = DEFAULT_N_FFT, hop_length: int = DEFAULT_HOP) -> torch.Tensor:
    """Complex STFT ``(batch, channels, freq, frames)`` of a waveform.

    Parameters
    ----------
    x : Tensor ``(..., time)`` or Audio
    n_fft, hop_length : int

    Returns
    -------
    Complex tensor with the leading dimensions of ``x`` plus ``(n_fft // 2 + 1, frames)``.

    Raises
    ------
    ParameterError
        Bad ``n_fft``/``hop_length`` or a signal shorter than ``n_fft // 2 + 1`` samples.
    """
    _check_fft(n_fft, hop_length)
    t, _ = to_tensor(x)
    if t.shape[-1] <= n_fft // 2:
        raise ParameterError(
            f"the signal has {t.shape[-1]} samples; n_fft={n_fft} needs more than {n_fft // 2}; "
            "use a smaller n_fft or a longer clip"
        )
    lead = t.shape[:-1]
    flat = t.reshape(-1, t.shape[-1])  # (batch * channels, time)
    spec = torch.stft(flat, n_fft, hop_length, window=_window(n_fft, flat.dtype, flat.device),
                      center=True, pad_mode="reflect", return_complex=True)
    return spec.reshape(*lead, *spec.shape[-2:])  # (..., freq, frames)


def istft(spec: torch.Tensor, n_fft: int = DEFAULT_N_FFT, hop_length: int = DEFAULT_HOP,
          length: int | None = None) -> torch.Tensor:
    """Inverse of :func:`stft` (overlap-add); ``length`` trims or pads to that many samples."""
    _check_fft(n_fft, hop_length)
    if not spec.is_complex():
        raise ParameterError("istft needs a complex spectrum; combine magnitude and phase first")
    lead = spec.shape[:-2]
    flat = spec.reshape(-1, *spec.shape[-2:])
    real_dtype = flat.real.dtype
    y = torch.istft(flat, n_fft, hop_length, window=_window(n_fft, real_dtype, flat.device),
                    center=True, length=length)
    return y.reshape(*lead, y.shape[-1])


def magnitude(x, n_fft: int = DEFAULT_N_FFT, hop_length: int = DEFAULT_HOP) -> torch.Tensor:
    """|STFT| of a waveform (or of a complex spectrum passed directly)."""
    if isinstance(x, torch.Tensor) and x.is_complex():
        return x.abs()
    return stft(x, n_fft, hop_length).abs()


def phase(x, n_fft: int = DEFAULT_N_FFT, hop_length: int = DEFAULT_HOP) -> torch.Tensor:
    """Wrapped phase in (-pi, pi] of the STFT (or of a complex spectrum passed directly)."""
    if isinstance(x, torch.Tensor) and x.is_complex():
        return x.angle()
    return stft(x, n_fft, hop_length).angle()


def _unwrap(p: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """numpy.unwrap along ``dim``: add multiples of 2 pi so consecutive steps are in [-pi, pi]."""
    d = torch.diff(p, dim=dim)
    d_wrapped = torch.remainder(d + math.pi, 2 * math.pi) - math.pi
    # keep +pi steps as +pi (numpy's convention) rather than folding them to -pi
    d_wrapped = torch.where((d_wrapped == -math.pi) & (d > 0), torch.full_like(d, math.pi), d_wrapped)
    correction = torch.cumsum(d_wrapped - d, dim=dim)
    first = p.narrow(dim, 0, 1)
    rest = p.narrow(dim, 1, p.shape[dim] - 1) + correction
    return torch.cat([first, rest], dim=dim)


def unwrapped_phase(x, n_fft: int = DEFAULT_N_FFT, hop_length: int = DEFAULT_HOP) -> torch.Tensor:
    """Phase unwrapped along time (frames), as ``numpy.unwrap(angle, axis=-1)``."""
    return _unwrap(phase(x, n_fft, hop_length), dim=-1)


def phase_to_if(p: torch.Tensor) -> torch.Tensor:
    """GANSynth's instantaneous frequency from a wrapped phase ``(..., freq, frames)``.

    The phase is unwrapped along time, differenced frame to frame, and divided by pi, so the
    result lies in [-1, 1]. The first frame keeps the phase itself (divided by pi) so that
    :func:`if_to_phase` can invert exactly.
    """
    unwrapped = _unwrap(p, dim=-1)
    dphase = torch.diff(unwrapped, dim=-1, prepend=torch.zeros_like(unwrapped[..., :1]))
    return dphase / math.pi


def if_to_phase(inst_freq: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`phase_to_if`: cumulative sum times pi, wrapped to (-pi, pi]."""
    unwrapped = torch.cumsum(inst_freq * math.pi, dim=-1)
    return torch.atan2(torch.sin(unwrapped), torch.cos(unwrapped))


def instantaneous_frequency(x, n_fft: int = DEFAULT_N_FFT, hop_length: int = DEFAULT_HOP) -> torch.Tensor:
    """Instantaneous frequency (GANSynth's representation), scaled to [-1, 1].

    Examples
    --------
    >>> import torch, math
    >>> sr, f = 16000, 1000.0
    >>> tone = torch.sin(2 * math.pi * f * torch.arange(sr) / sr)
    >>> inst = instantaneous_frequency(tone, 1024, 256)   # (freq, frames)
    >>> bin_ = round(f * 1024 / sr)
    >>> bool(inst[bin_, 2:-2].std() < 1e-3)            # a steady tone has a constant IF
    True
    """
    return phase_to_if(phase(x, n_fft, hop_length))


def _resynth(x, new_phase_fn, n_fft, hop_length):
    t, sr = to_tensor(x)
    spec = stft(t, n_fft, hop_length)
    mag = spec.abs()
    new_phase = new_phase_fn(mag)
    y = istft(torch.polar(mag, new_phase.to(mag.dtype)), n_fft, hop_length, length=t.shape[-1])
    return like(x, y, sr)


def random_phase(x, n_fft: int = DEFAULT_N_FFT, hop_length: int = DEFAULT_HOP, generator=None):
    """Keep the magnitude spectrogram, replace the phase by uniform noise, resynthesise.

    Examples
    --------
    >>> import torch
    >>> y = random_phase(torch.randn(8000), 512, 128, generator=0)
    >>> y.shape
    torch.Size([8000])
    """
    gen = make_generator(generator)
    return _resynth(
        x, lambda mag: (torch.rand(mag.shape, generator=gen) * 2 - 1) * math.pi, n_fft, hop_length
    )


def zero_phase(x, n_fft: int = DEFAULT_N_FFT, hop_length: int = DEFAULT_HOP):
    """Keep the magnitude spectrogram, set every phase to zero, resynthesise."""
    return _resynth(x, torch.zeros_like, n_fft, hop_length)


def swap_phase(a, b, n_fft: int = DEFAULT_N_FFT, hop_length: int = DEFAULT_HOP):
    """Magnitude of ``a`` with the phase of ``b`` (b is trimmed or zero-padded to a's length)."""
    ta, sr = to_tensor(a)
    tb, _ = to_tensor(b)
    if isinstance(a, Audio) and isinstance(b, Audio) and a.sample_rate != b.sample_rate:
        raise ParameterError(
            f"the clips have different sample rates ({a.sample_rate} and {b.sample_rate} Hz); "
            "resample one first"
        )
    n = ta.shape[-1]
    tb = tb[..., :n] if tb.shape[-1] >= n else torch.nn.functional.pad(tb, (0, n - tb.shape[-1]))
    if tb.shape[:-1] != ta.shape[:-1]:
        tb = tb.expand(*ta.shape[:-1], n) if tb.shape[:-1].numel() == 1 else tb
    mag = stft(ta, n_fft, hop_length).abs()
    ph = stft(tb, n_fft, hop_length).angle()
    y = istft(torch.polar(mag, ph), n_fft, hop_length, length=n)
    return like(a, y, sr)


def make_generator(generator) -> torch.Generator | None:
    """Accept ``None``, an int seed or a ``torch.Generator``; return a generator (or None)."""
    if generator is None or isinstance(generator, torch.Generator):
        return generator
    if isinstance(generator, int) and not isinstance(generator, bool):
        g = torch.Generator()
        g.manual_seed(generator)
        return g
    raise ParameterError(
        f"generator={generator!r} must be None, an int seed or a torch.Generator"
    )


def spectral_convergence_of(target_mag: torch.Tensor, mag: torch.Tensor) -> float:
    """``||target - mag||_F / ||target||_F`` (lower is better; 0 is a perfect match)."""
    return float(torch.linalg.vector_norm(target_mag - mag) / torch.linalg.vector_norm(target_mag).clamp_min(1e-12))


def griffin_lim(mag: torch.Tensor, n_iter: int = 32, momentum: float = 0.99,
                n_fft: int = DEFAULT_N_FFT, hop_length: int = DEFAULT_HOP,
                length: int | None = None, generator=None, return_convergence: bool = False):
    """Griffin-Lim phase reconstruction from a magnitude spectrogram.

    The same iteration as ``torchaudio.functional.griffinlim`` (fast Griffin-Lim with
    momentum, Perraudin et al. 2013), written out so it can report spectral convergence
    after every iteration:

    1. put the current phase estimate on the target magnitude and invert (istft);
    2. analyse the result again (stft): this is the nearest consistent spectrogram;
    3. take its phase, extrapolated with ``momentum``, as the new estimate.

    Parameters
    ----------
    mag : Tensor ``(..., freq, frames)``
        Target magnitude (not power).
    n_iter : int
        0 means "invert with the initial phase" (all zeros, or random with ``generator``).
    momentum : float
        0 gives the original Griffin-Lim; 0.99 is torchaudio's default.
    generator : None, int or torch.Generator
        If given, start from random phase; else from zero phase (torchaudio's ``rand_init=False``).
    return_convergence : bool
        Also return the list of spectral convergence values, one per iteration (length n_iter + 1,
        the first for the initial phase).

    Returns
    -------
    Tensor ``(..., time)`` or ``(Tensor, list[float])``.

    Raises
    ------
    ParameterError
        Negative ``n_iter``, ``momentum`` outside [0, 1), or a complex ``mag``.
    """
    if mag.is_complex():
        raise ParameterError("griffin_lim takes a magnitude; pass spec.abs(), not the complex spectrum")
    if not isinstance(n_iter, int) or n_iter < 0:
        raise ParameterError(f"n_iter={n_iter!r} must be a non-negative integer, e.g. 32")
    if not 0 <= momentum < 1:
        raise ParameterError(f"momentum={momentum!r} must be in [0, 1); 0.99 is usual")
    expected_bins = n_fft // 2 + 1
    if mag.shape[-2] != expected_bins:
        raise ParameterError(
            f"mag has {mag.shape[-2]} frequency bins but n_fft={n_fft} gives {expected_bins}; "
            "pass the n_fft the magnitude was computed with"
        )
    gen = make_generator(generator)
    if gen is not None:
        angles = torch.polar(torch.ones_like(mag), (torch.rand(mag.shape, generator=gen) * 2 - 1) * math.pi)
    else:
        angles = torch.polar(torch.ones_like(mag), torch.zeros_like(mag))
    convergence = []
    previous = torch.zeros_like(angles)
    for i in range(n_iter + 1):
        inverse = istft(mag * angles, n_fft, hop_length, length=length)
        rebuilt = stft(inverse, n_fft, hop_length)
        if length is None and rebuilt.shape[-1] != mag.shape[-1]:
            rebuilt = rebuilt[..., : mag.shape[-1]]
        if return_convergence:
            convergence.append(spectral_convergence_of(mag, rebuilt.abs()))
        if i == n_iter:
            break
        angles = rebuilt - previous * (momentum / (1 + momentum))
        angles = angles / (angles.abs() + 1e-16)
        previous = rebuilt
    out = istft(mag * angles, n_fft, hop_length, length=length)
    return (out, convergence) if return_convergence else out


def mel_filterbank(n_fft: int = DEFAULT_N_FFT, n_mels: int = 80, sample_rate: int = 16000,
                   f_min: float = 0.0, f_max: float | None = None) -> torch.Tensor:
    """Slaney-style mel filterbank ``(n_mels, n_fft // 2 + 1)`` (librosa's default); a fresh copy."""
    return _filterbank(n_fft, n_mels, sample_rate, f_min, f_max).clone()


@functools.lru_cache(maxsize=32)
def _filterbank(n_fft: int, n_mels: int, sample_rate: int, f_min: float, f_max: float | None) -> torch.Tensor:
    """The filterbank, built once per setting (log_mel runs every training step); never modify it."""
    import torchaudio.functional as AF

    fb = AF.melscale_fbanks(n_fft // 2 + 1, f_min, f_max or sample_rate / 2, n_mels, sample_rate,
                            norm="slaney", mel_scale="slaney")  # (freq, n_mels)
    return fb.T.contiguous()


def log_mel(x, sample_rate: int | None = None, n_fft: int = DEFAULT_N_FFT,
            hop_length: int = DEFAULT_HOP, n_mels: int = 80, floor: float = 1e-5) -> torch.Tensor:
    """Natural-log mel magnitude spectrogram ``(..., n_mels, frames)``.

    ``sample_rate`` is taken from an ``Audio``; pass it for a plain tensor.
    """
    t, sr = to_tensor(x)
    sample_rate = sr or sample_rate
    if sample_rate is None:
        raise ParameterError("log_mel needs sample_rate for a plain tensor; pass sample_rate=16000")
    mag = stft(t, n_fft, hop_length).abs()  # (..., freq, frames)
    fb = _filterbank(n_fft, n_mels, int(sample_rate), 0.0, None).to(mag.device, mag.dtype)
    mel = torch.matmul(fb, mag)  # (..., n_mels, frames)
    return torch.log(mel.clamp_min(floor))


def mel_to_linear_matrix(filterbank: torch.Tensor) -> torch.Tensor:
    """The approximate inverse of a mel filterbank that GANSynth's code uses: ``m^T diag(1 / s)``.

    ``m`` is the filterbank and ``s`` the column sums of ``m m^T``. A mel band's value goes back
    to the linear bins under its triangle, in proportion to the triangle, and the ``1 / s`` scaling
    undoes the band's weights on average, so a flat spectrum comes back about flat. It is not an
    exact inverse: there are as many mel bands as linear bins, but the high bands each pool several
    bins, and what the bins held separately is spread evenly again. A band that covers no bin
    (an all-zero row) maps to nothing.

    Parameters
    ----------
    filterbank : Tensor ``(n_mels, n_freq)``
        Non-negative weights, e.g. :func:`mel_filterbank`.

    Returns
    -------
    Tensor ``(n_freq, n_mels)``, same dtype: ``linear = inverse @ mel`` for ``mel`` ``(..., n_mels, frames)``.

    Raises
    ------
    ParameterError
        ``filterbank`` is not a 2-D matrix.

    Examples
    --------
    >>> fb = mel_filterbank(512, 128, 16000).double()
    >>> inverse = mel_to_linear_matrix(fb)
    >>> inverse.shape
    torch.Size([257, 128])
    >>> flat = inverse @ (fb @ torch.ones(257, 1, dtype=torch.float64))  # a flat spectrum, there and back
    >>> bool((flat[1:-12] - 1).abs().max() < 0.01)  # (DC and the top band's outer slope are left out)
    True
    """
    if filterbank.dim() != 2:
        raise ParameterError(f"filterbank has shape {tuple(filterbank.shape)}; pass one (n_mels, n_freq) matrix")
    sums = (filterbank @ filterbank.T).sum(0)  # (n_mels,)
    nonzero = sums != 0
    scale = torch.where(nonzero, 1 / torch.where(nonzero, sums, torch.ones_like(sums)), torch.zeros_like(sums))
    return filterbank.T * scale  # (n_freq, n_mels): m^T @ diag(scale)
