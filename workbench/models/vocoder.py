"""Vocoder plumbing: f0 curves for a vocoder's frames, and the NSF source they drive.

The functions behind :class:`workbench.models.capabilities.Vocoder` and the vocoders with a
source (MelGAN, WaveGlow, FloWaveNet): pYIN f0 on a clip's frame grid, f0 for mel frames alone
(pYIN on their Griffin-Lim inversion), the checker for ``f0_hz`` input, and the source made
from an f0 curve.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from ..dsp.synth import midi_to_hz
from ..errors import ParameterError
from ._note import harmonic_source_from_f0


def pyin_f0_frames(x: torch.Tensor, sample_rate: int, hop_length: int, n_frames: int, fallback_hz: float,
                   fmin: float = 50.0, fmax: float = 2000.0) -> torch.Tensor:
    """pYIN f0 of each item of ``x`` ``(batch, time)`` on a frame grid ``(batch, n_frames)`` (Hz, float32).

    Frame ``j`` sits at sample ``j * hop_length``. Unvoiced gaps are interpolated in log
    frequency between voiced frames and held at the ends; a clip with no voiced frame gets
    ``fallback_hz`` throughout.
    """
    from ..metrics import f0 as pyin_f0

    grid = np.arange(n_frames) * hop_length
    pyin_hop = 2048 // 4 if sample_rate > 12000 else 1024 // 4  # metrics.f0's frame length / 4
    rows = []
    for item in x.detach().cpu():
        f = pyin_f0(item, sample_rate, fmin=fmin, fmax=fmax)
        at = np.arange(len(f)) * pyin_hop
        voiced = np.isfinite(f)
        if voiced.any():
            rows.append(np.exp(np.interp(grid, at[voiced], np.log(f[voiced]))))
        else:
            rows.append(np.full(n_frames, fallback_hz))
    return torch.tensor(np.stack(rows), dtype=torch.float32)


def f0_on_frames(x: torch.Tensor, config, fmin: float = 50.0, fmax: float = 2000.0) -> torch.Tensor:
    """pYIN f0 of samples ``(batch, time)`` on a vocoder's mel frames ``(batch, time // hop + 1)``.

    ``config`` gives ``sample_rate``, ``hop_length`` and ``pitch_range`` (its middle is the
    fallback for a clip with no voiced frame).
    """
    fallback = float(midi_to_hz(sum(config.pitch_range) / 2))
    return pyin_f0_frames(x, config.sample_rate, config.hop_length, x.shape[-1] // config.hop_length + 1,
                          fallback, fmin, fmax)


@functools.lru_cache(maxsize=8)
def _griffin_lim(sample_rate: int, n_fft: int, hop_length: int, n_mels: int):
    from . import create_model

    return create_model("griffinlim", "small", sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length,
                        n_mels=n_mels)


def f0_from_mel(mel: torch.Tensor, config, n_fft: int) -> torch.Tensor:
    """An f0 curve ``(batch, frames)`` for log-mel frames alone: pYIN on their Griffin-Lim inversion.

    What a vocoder with a source does when it is handed mel frames and nothing else. ``config``
    gives ``sample_rate``, ``hop_length`` and ``pitch_range`` (pYIN searches an octave beyond it).
    """
    import torch.nn.functional as F

    mel = mel[None] if mel.dim() == 2 else mel
    n_frames, hop = mel.shape[-1], config.hop_length
    short = 2 * n_fft // hop  # Griffin-Lim needs a few windows: repeat the last frame
    padded = F.pad(mel.detach().cpu().float(), (0, max(0, short - n_frames)), mode="replicate")
    gl = _griffin_lim(int(config.sample_rate), int(n_fft), int(hop), int(mel.shape[-2]))
    with torch.no_grad():
        audio = gl.generate(mel.shape[0], seconds=(padded.shape[-1] - 1) * hop / config.sample_rate,
                            cond={"mel": padded}, generator=0)
    lo, hi = config.pitch_range
    f0 = f0_on_frames(audio.samples[:, 0], config, fmin=midi_to_hz(lo - 12), fmax=midi_to_hz(hi + 12))
    return F.pad(f0, (0, max(0, n_frames - f0.shape[-1])), mode="replicate")[..., :n_frames]


def f0_frames(value, batch: int, n_frames: int, device=None) -> torch.Tensor:
    """An ``f0_hz`` conditioning value as ``(batch, n_frames)`` float32 Hz, checked.

    Takes ``(n_frames,)`` (shared by the batch) or ``(1 or batch, n_frames)``; finite, >= 0
    (0 = unvoiced).
    """
    f0 = torch.as_tensor(value, dtype=torch.float32, device=device)
    f0 = f0[None] if f0.dim() == 1 else f0
    if f0.dim() != 2 or f0.shape[0] not in (1, batch) or f0.shape[-1] != n_frames:
        raise ParameterError(f"f0_hz has shape {tuple(torch.as_tensor(value).shape)}; expected ({n_frames},) or "
                             f"({batch}, {n_frames}): one f0 in Hz per mel frame (the model's frames_from_clip('f0_hz', clip) makes it)")
    if not bool(torch.isfinite(f0).all()) or float(f0.min()) < 0:
        raise ParameterError("f0_hz holds NaN, infinite or negative values; use 0 for unvoiced frames")
    return f0.expand(batch, -1)


def f0_source(f0, batch: int, n_frames: int, n_samples: int, config, device=None) -> torch.Tensor:
    """A vocoder's source ``(batch, 2 * source_harmonics, n_samples)`` float32 from its f0 frames.

    ``config`` gives ``hop_length``, ``sample_rate`` and ``source_harmonics``; ``f0`` is checked by
    :func:`f0_frames` (None: a ParameterError saying how to make one).
    """
    if f0 is None:
        raise ParameterError(f"this vocoder hears a source: pass f0_hz ({batch}, {n_frames}) in Hz, one per mel "
                             "frame (the model's frames_from_clip('f0_hz', clip) makes it)")
    f0 = f0_frames(f0, batch, n_frames, device)
    return harmonic_source_from_f0(f0, config.hop_length, n_samples, config.sample_rate,
                                   config.source_harmonics).float()
