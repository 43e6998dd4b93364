"""Spectrogram figures that show what the notebooks' text says: harmonics and flat IF lines.

:mod:`workbench.viz` draws every clip on one fixed scale (0 dB at full scale, 0 to Nyquist), so
figures of different versions of a sound compare by eye. For a single note that hides what a
learner should see: a generated note's magnitude saturates the scale, the harmonics of a
262 Hz note crowd into the bottom eighth of the image, and a clip cut mid-note ends in a bright
column (the last frames' windows run into the cut). These figures draw dB relative to the
clip's loudest bin, zoom the frequency axis, leave out the frames that overlap the clip's end,
and grey out phase and instantaneous frequency where the bin is too quiet to have a meaningful
phase (notebook 01, section 3).

Notebooks: notebooks/00_tour.ipynb, 01_phase.ipynb, 05_autoregressive.ipynb, 07_adversarial.ipynb
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..audio import Audio
from ..dsp import spectral
from ..errors import ParameterError


def relative_db(audio: Audio, index: int = 0, n_fft: int = 1024, hop_length: int = 256) -> tuple[np.ndarray, int]:
    """Magnitude in dB relative to the clip's loudest bin, ``(freq, frames)``, and how many leading
    frames lie wholly inside the clip (the rest see the padding past its end).

    Returns
    -------
    (db, n_inside)
    """
    n_fft, hop_length = _fit_fft(audio.n_samples, n_fft, hop_length)
    mag = spectral.magnitude(audio.samples[index].mean(0), n_fft, hop_length).double().numpy()
    db = 20 * np.log10(np.maximum(mag, 1e-12) / max(float(mag.max()), 1e-12))
    # frame j is centred on sample j * hop; its window reaches n_fft // 2 past that
    n_inside = max(1, (audio.n_samples - n_fft // 2) // hop_length + 1)
    return db, min(n_inside, db.shape[-1])


def _fit_fft(n_samples: int, n_fft: int, hop_length: int) -> tuple[int, int]:
    """Shrink the window for short clips (at least four windows fit) and keep the hop at most a quarter of it."""
    n_fft = max(64, min(n_fft, 2 ** int(math.log2(max(64, n_samples // 4)))))
    return n_fft, min(hop_length, n_fft // 4)


def _frames_extent(n_frames: int, hop_length: int, sample_rate: int, fmax_hz: float) -> list[float]:
    half = 0.5 * hop_length / sample_rate
    return [-half, (n_frames - 1) * hop_length / sample_rate + half, 0, fmax_hz / 1000]


def note_spectrogram(audio: Audio, index: int = 0, ax=None, title: str | None = None, fmax_hz: float | None = None,
                     dynamic_db: float = 70.0, n_fft: int = 1024, hop_length: int = 256):
    """A note's spectrogram in dB re. its loudest bin (0 at the top of the scale, ``-dynamic_db`` at
    the bottom), from 0 to ``fmax_hz`` (default Nyquist), without the frames that run past the end.

    Returns
    -------
    Figure

    Raises
    ------
    ParameterError
        ``fmax_hz`` or ``dynamic_db`` not positive.

    Examples
    --------
    >>> import torch
    >>> t = torch.arange(8000) / 16000
    >>> fig = note_spectrogram(Audio(torch.sin(2 * torch.pi * 440 * t), 16000), fmax_hz=2000)
    >>> tuple(float(v) for v in fig.axes[0].get_ylim())
    (0.0, 2.0)
    """
    from ..viz import new_figure

    nyquist = audio.sample_rate / 2
    fmax_hz = nyquist if fmax_hz is None else float(fmax_hz)
    if not 0 < fmax_hz or not dynamic_db > 0:
        raise ParameterError(f"fmax_hz={fmax_hz} and dynamic_db={dynamic_db} must be positive")
    fmax_hz = min(fmax_hz, nyquist)
    fig, axes = (ax.figure, None) if ax is not None else new_figure(row_height=2.6)
    ax = ax if ax is not None else axes[0, 0]
    n_fft, hop_length = _fit_fft(audio.n_samples, n_fft, hop_length)
    db, n_inside = relative_db(audio, index, n_fft, hop_length)
    top = int(round(fmax_hz / nyquist * (db.shape[0] - 1))) + 1
    im = ax.imshow(db[:top, :n_inside], origin="lower", aspect="auto", cmap="magma", vmin=-dynamic_db, vmax=0,
                   extent=_frames_extent(n_inside, hop_length, audio.sample_rate, fmax_hz), interpolation="nearest")
    ax.set_ylim(0, fmax_hz / 1000)
    ax.set_xlim(0, audio.seconds)  # the frames past the end are left out, not drawn
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (kHz)")
    fig.colorbar(im, ax=ax, label="dB re. loudest bin")
    if title:
        ax.set_title(title)
    return fig


def note_overview(audio: Audio, index: int = 0, title: str | None = None, fmax_hz: float | None = None,
                  dynamic_db: float = 70.0):
    """Waveform above :func:`note_spectrogram`: :func:`workbench.viz.overview` for a single note."""
    from ..viz import new_figure, waveform

    fig, axes = new_figure(2, 1, row_height=2.2)
    waveform(audio, index, ax=axes[0, 0], title=title)
    note_spectrogram(audio, index, ax=axes[1, 0], fmax_hz=fmax_hz, dynamic_db=dynamic_db)
    return fig


def harmonics_view(audio: Audio, index: int = 0, title: str | None = None, kind: str = "phase",
                   fmax_hz: float = 2000.0, floor_db: float = -40.0, n_fft: int = 1024, hop_length: int = 256):
    """Magnitude (dB re. the loudest bin) above phase or instantaneous frequency, zoomed to
    ``0 .. fmax_hz`` and with bins below ``floor_db`` greyed out in the lower panel.

    A quiet bin's phase is noise (notebook 01, section 3); hiding it leaves the harmonics: the
    wrapped phase of each cycles through its colours, and its instantaneous frequency is a flat
    line of one colour.

    Parameters
    ----------
    kind : {"phase", "if"}
    floor_db : float
        Bins quieter than this, relative to the loudest, are masked (grey).

    Returns
    -------
    Figure

    Raises
    ------
    ParameterError
        Unknown ``kind``, or ``floor_db`` not negative.

    Examples
    --------
    >>> import torch
    >>> t = torch.arange(16000) / 16000
    >>> fig = harmonics_view(Audio(torch.sin(2 * torch.pi * 440 * t), 16000), kind="if")
    >>> tuple(float(v) for v in fig.axes[1].get_ylim())
    (0.0, 2.0)
    """
    import matplotlib

    from ..viz import new_figure

    if kind not in ("phase", "if"):
        raise ParameterError(f"kind={kind!r} must be 'phase' or 'if'")
    if not floor_db < 0:
        raise ParameterError(f"floor_db={floor_db} must be negative (dB below the loudest bin)")
    fig, axes = new_figure(2, 1, row_height=2.3)
    note_spectrogram(audio, index, ax=axes[0, 0], title=title, fmax_hz=fmax_hz, n_fft=n_fft, hop_length=hop_length)
    x = audio.samples[index].mean(0)
    n_fft, hop_length = _fit_fft(audio.n_samples, n_fft, hop_length)
    db, n_inside = relative_db(audio, index, n_fft, hop_length)
    if kind == "if":
        data = spectral.instantaneous_frequency(x, n_fft, hop_length).numpy()
        label, low, high = "IF (x pi rad / hop)", -1.0, 1.0
    else:
        data = spectral.phase(x, n_fft, hop_length).numpy()
        label, low, high = "phase (rad)", -math.pi, math.pi
    nyquist = audio.sample_rate / 2
    top = int(round(min(fmax_hz, nyquist) / nyquist * (db.shape[0] - 1))) + 1
    shown = np.ma.masked_where(db[:top, :n_inside] < floor_db, data[:top, :n_inside])
    cmap = matplotlib.colormaps["twilight"].with_extremes(bad="0.85")
    ax = axes[1, 0]
    im = ax.imshow(shown, origin="lower", aspect="auto", cmap=cmap, vmin=low, vmax=high, interpolation="nearest",
                   extent=_frames_extent(n_inside, hop_length, audio.sample_rate, min(fmax_hz, nyquist)))
    ax.set_ylim(0, min(fmax_hz, nyquist) / 1000)
    ax.set_xlim(0, audio.seconds)  # the frames past the end are left out, not drawn
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (kHz)")
    ax.set_title(f"{'wrapped phase' if kind == 'phase' else 'instantaneous frequency'}; "
                 f"grey: bins below {floor_db:g} dB", fontsize=9)
    fig.colorbar(im, ax=ax, label=label)
    return fig


def spectrograms_side_by_side(clips: dict, fmax_hz: float | None = None, dynamic_db: float = 70.0,
                              title: str | None = None, n_fft: int = 1024, hop_length: int = 256):
    """:func:`note_spectrogram` of each named clip, in one row, for comparing versions of a sound.

    Raises
    ------
    ParameterError
        No clips.
    """
    from ..viz import new_figure

    if not clips:
        raise ParameterError("spectrograms_side_by_side needs at least one clip, e.g. {'original': audio}")
    fig, axes = new_figure(1, len(clips), width=min(4.6 * len(clips), 14), row_height=3.0)
    for col, (name, clip) in enumerate(clips.items()):
        note_spectrogram(clip, ax=axes[0, col], title=name, fmax_hz=fmax_hz, dynamic_db=dynamic_db,
                         n_fft=n_fft, hop_length=hop_length)
    if title:
        fig.suptitle(title)
    return fig


def masked_share(audio: Audio, floor_db: float = -40.0, fmax_hz: float = 2000.0, n_fft: int = 1024,
                 hop_length: int = 256) -> float:
    """Share of the bins below ``fmax_hz`` that :func:`harmonics_view` greys out (quieter than
    ``floor_db`` re. the loudest bin)."""
    db, n_inside = relative_db(audio, 0, n_fft, hop_length)
    top = int(round(min(fmax_hz, audio.sample_rate / 2) / (audio.sample_rate / 2) * (db.shape[0] - 1))) + 1
    return float(torch.as_tensor(db[:top, :n_inside] < floor_db).double().mean())
