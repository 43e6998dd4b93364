"""Phase: how it moves in a steady note, and what Griffin-Lim rebuilds from magnitudes alone.

Notebook: notebooks/01_phase.ipynb
"""

from __future__ import annotations

import math

import torch

from ..audio import Audio
from ..dsp import spectral as S
from ..metrics import spectral_convergence
from .display import players


def _wrap(p: torch.Tensor) -> torch.Tensor:
    return torch.remainder(p + math.pi, 2 * math.pi) - math.pi


def phase_acceleration(audio, n_fft: int = 1024, hop_length: int = 256) -> dict:
    """How predictable the phase of each STFT bin is from its own past, next to its level.

    A steady partial advances its phase by the same amount every hop, so the second difference
    of phase along time (wrapped to (-pi, pi]) is near 0. Where there is no partial, the phase is
    that of noise: with frames that do not overlap the second difference is uniform (mean absolute
    value pi / 2); overlapping frames share samples, which keeps it smaller, so compare with white
    noise analysed with the same ``n_fft`` and ``hop_length``.

    Returns
    -------
    dict of flat arrays over (bin, frame): ``level_db`` (magnitude in dB re. the loudest bin) and
    ``jump`` (|wrapped second difference of phase|, radians).
    """
    spec = S.stft(Audio(audio.samples[:1], audio.sample_rate).samples[0, 0], n_fft, hop_length)
    mag, ph = spec.abs(), spec.angle()  # (freq, frames)
    jump = _wrap(ph[:, 2:] - 2 * ph[:, 1:-1] + ph[:, :-2]).abs()
    level = 20 * torch.log10(mag[:, 1:-1].clamp_min(1e-10) / mag.max().clamp_min(1e-10))
    return {"level_db": level.flatten().numpy(), "jump": jump.flatten().numpy()}


def griffin_lim_view(audio: Audio, n_fft: int = 1024, hop_length: int = 256, n_iter: int = 32,
                     generator=0):
    """Griffin-Lim from ``audio``'s magnitude: convergence curve, spectrograms and players.

    Returns
    -------
    (Figure, Players)
    """
    from ..viz import new_figure, spectrogram

    x = audio.samples[0, 0]
    mag = S.magnitude(x, n_fft, hop_length)
    y, conv = S.griffin_lim(mag, n_iter, n_fft=n_fft, hop_length=hop_length, length=x.shape[-1],
                            generator=generator, return_convergence=True)
    rebuilt = Audio(y, audio.sample_rate)
    fig, axes = new_figure(1, 3, width=12, row_height=2.8)
    axes[0, 0].plot(range(len(conv)), conv, marker="o", ms=2)
    axes[0, 0].set_xlabel("iteration")
    axes[0, 0].set_ylabel("spectral convergence")
    axes[0, 0].set_yscale("log")
    axes[0, 0].grid(alpha=0.3)
    axes[0, 0].set_title(f"n_fft={n_fft}, hop={hop_length}")
    spectrogram(audio, ax=axes[0, 1], title="original", n_fft=n_fft, hop_length=hop_length)
    spectrogram(rebuilt, ax=axes[0, 2], title=f"Griffin-Lim, {n_iter} iterations", n_fft=n_fft,
                hop_length=hop_length)
    sc = spectral_convergence(audio, rebuilt, n_fft, hop_length)
    table = players({"original": audio, f"Griffin-Lim ({n_iter} it.)": rebuilt},
                    {"spectral convergence": {"original": 0.0, f"Griffin-Lim ({n_iter} it.)": sc}})
    return fig, table
