"""Figures: waveforms, spectrograms, phase, dilation stacks. Every function returns a Figure.

Nothing here knows about models; a model's ``visualise()`` calls these.
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from .audio import Audio  # noqa: E402
from .dsp import spectral  # noqa: E402


def _mono(audio: Audio, index: int = 0) -> np.ndarray:
    return audio.samples[index].mean(0).detach().cpu().numpy()


def new_figure(n_rows: int = 1, n_cols: int = 1, width: float = 8.0, row_height: float = 2.4, **kwargs):
    """A figure and its axes (not registered with pyplot's global state when possible)."""
    fig = Figure(figsize=(width, row_height * n_rows), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False, **kwargs)
    return fig, axes


def waveform(audio: Audio, index: int = 0, ax=None, title: str | None = None, color="C0") -> Figure:
    """Samples against time in seconds."""
    fig, axes = (ax.figure, None) if ax is not None else new_figure()
    ax = ax if ax is not None else axes[0, 0]
    y = _mono(audio, index)
    t = np.arange(y.shape[-1]) / audio.sample_rate
    ax.plot(t, y, lw=0.6, color=color)
    ax.set_xlim(0, t[-1] if len(t) > 1 else 1)
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("amplitude")
    if title:
        ax.set_title(title)
    return fig


def spectrogram(audio: Audio, index: int = 0, ax=None, title: str | None = None, n_fft: int = 1024,
                hop_length: int = 256, vmin: float = -80.0, vmax: float = 0.0) -> Figure:
    """Magnitude spectrogram in dB (fixed colour range so that figures compare)."""
    fig, axes = (ax.figure, None) if ax is not None else new_figure()
    ax = ax if ax is not None else axes[0, 0]
    n_fft = min(n_fft, 2 ** int(math.log2(max(16, audio.n_samples))))
    hop_length = min(hop_length, n_fft // 4)
    mag = spectral.magnitude(audio.samples[index].mean(0), n_fft, hop_length).numpy()
    db = 20 * np.log10(np.maximum(mag, 1e-5))
    extent = [0, audio.seconds, 0, audio.sample_rate / 2000]
    im = ax.imshow(db, origin="lower", aspect="auto", extent=extent, vmin=vmin, vmax=vmax, cmap="magma")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (kHz)")
    fig.colorbar(im, ax=ax, label="dB")
    if title:
        ax.set_title(title)
    return fig


def phase_plot(audio: Audio, index: int = 0, ax=None, title: str | None = None, n_fft: int = 1024,
               hop_length: int = 256, kind: str = "phase") -> Figure:
    """Wrapped phase (``kind="phase"``) or instantaneous frequency (``kind="if"``)."""
    fig, axes = (ax.figure, None) if ax is not None else new_figure()
    ax = ax if ax is not None else axes[0, 0]
    x = audio.samples[index].mean(0)
    if kind == "if":
        data = spectral.instantaneous_frequency(x, n_fft, hop_length).numpy()
        label, vmin, vmax, cmap = "IF (x pi rad / hop)", -1, 1, "twilight"
    else:
        data = spectral.phase(x, n_fft, hop_length).numpy()
        label, vmin, vmax, cmap = "phase (rad)", -math.pi, math.pi, "twilight"
    extent = [0, audio.seconds, 0, audio.sample_rate / 2000]
    im = ax.imshow(data, origin="lower", aspect="auto", extent=extent, vmin=vmin, vmax=vmax, cmap=cmap,
                   interpolation="nearest")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (kHz)")
    fig.colorbar(im, ax=ax, label=label)
    if title:
        ax.set_title(title)
    return fig


def overview(audio: Audio, index: int = 0, title: str | None = None, phase: str | None = None) -> Figure:
    """Waveform above spectrogram (and phase or IF below when ``phase`` is "phase" or "if")."""
    rows = 3 if phase else 2
    fig, axes = new_figure(rows, 1, row_height=2.2)
    waveform(audio, index, ax=axes[0, 0], title=title)
    spectrogram(audio, index, ax=axes[1, 0])
    if phase:
        phase_plot(audio, index, ax=axes[2, 0], kind=phase)
    return fig


def dilation_diagram(dilations, kernel_size: int = 2, sample_rate: int | None = None,
                     title: str | None = None, max_width: int = 96) -> Figure:
    """Which inputs reach the last output through a stack of causal dilated convolutions.

    Each row is a layer; a filled dot is a unit that the final output depends on. The bottom row
    spans the receptive field: (kernel_size - 1) * sum(dilations) + 1 samples.
    """
    dilations = list(dilations)
    rf = (kernel_size - 1) * sum(dilations) + 1
    width = min(rf, max_width)
    n_rows = len(dilations) + 1
    fig, axes = new_figure(1, 1, width=9, row_height=max(2.5, 0.28 * n_rows + 1))
    ax = axes[0, 0]
    # walk down from the output: the set of time offsets that matter at each level
    needed = [{0}]
    for d in reversed(dilations):
        needed.append({t - m * d for t in needed[-1] for m in range(kernel_size)})
    needed = needed[::-1]  # needed[0] = input level
    for level in range(n_rows):
        xs = np.arange(-width + 1, 1)
        ax.scatter(xs, np.full_like(xs, level), s=6, color="0.85", zorder=1)
        on = [t for t in needed[level] if t > -width]
        ax.scatter(on, [level] * len(on), s=14, color="C3" if level == 0 else "C0", zorder=3)
        if level < n_rows - 1:
            d = dilations[level]
            for t in needed[level + 1]:
                for m in range(kernel_size):
                    src = t - m * d
                    if src > -width and t > -width:
                        ax.plot([src, t], [level, level + 1], color="C0", lw=0.5, alpha=0.6, zorder=2)
    labels = ["input"] + [f"d={d}" for d in dilations]
    ax.set_yticks(range(n_rows), labels, fontsize=7)
    ax.set_xlabel("time offset (samples) from the predicted sample" +
                  (f" — showing the last {width} of {rf}" if width < rf else ""))
    note = f"receptive field {rf} samples"
    if sample_rate:
        note += f" = {1000 * rf / sample_rate:.1f} ms at {sample_rate} Hz"
    ax.set_title(title or note)
    if title:
        ax.text(0.01, 0.98, note, transform=ax.transAxes, va="top", fontsize=8)
    return fig


def line_plot(x, ys: dict, xlabel: str = "", ylabel: str = "", title: str = "", logx=False, logy=False) -> Figure:
    """Several named curves on one axis."""
    fig, axes = new_figure(1, 1, row_height=3.2)
    ax = axes[0, 0]
    for label, y in ys.items():
        ax.plot(x, y, marker="o", ms=3, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def close(fig: Figure) -> None:
    """Release a figure made with pyplot (figures made here need nothing)."""
    plt.close(fig)


def to_numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
