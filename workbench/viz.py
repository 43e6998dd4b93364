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


def magnitude_phase(audio: Audio, index: int = 0, title: str | None = None, kind: str = "phase",
                    n_fft: int = 1024, hop_length: int = 256, vmin: float = -80.0,
                    vmax: float = 0.0, width: float = 8.0) -> Figure:
    """Magnitude spectrogram (dB) above phase or instantaneous frequency, on fixed colour scales.

    The scales do not depend on the clip, so figures of different versions of one sound
    (original, random phase, Griffin-Lim, vocoded) compare by eye.

    Parameters
    ----------
    audio : Audio
    kind : {"phase", "if"}
        Wrapped phase in (-pi, pi] or instantaneous frequency in [-1, 1].
    vmin, vmax : float
        Magnitude colour range in dB.
    width : float
        Figure width in inches.

    Raises
    ------
    ParameterError
        ``kind`` is neither ``"phase"`` nor ``"if"``.

    Notebook: notebooks/01_phase.ipynb

    Examples
    --------
    >>> import torch
    >>> fig = magnitude_phase(Audio(torch.randn(8000) * 0.1, 16000), title="noise")
    >>> len(fig.axes)  # two panels and their colour bars
    4
    """
    from .errors import ParameterError

    if kind not in ("phase", "if"):
        raise ParameterError(f"kind={kind!r} must be 'phase' or 'if'")
    fig, axes = new_figure(2, 1, width=width, row_height=2.2)
    spectrogram(audio, index, ax=axes[0, 0], title=title, n_fft=n_fft, hop_length=hop_length,
                vmin=vmin, vmax=vmax)
    phase_plot(audio, index, ax=axes[1, 0], n_fft=n_fft, hop_length=hop_length, kind=kind)
    return fig


def companding_curve(bits: int = 8, mu: float | None = None) -> Figure:
    """Mu-law companding next to what uniform and mu-law quantisers do at ``bits`` bits.

    Left: the companding function F(x) = sign(x) ln(1 + mu |x|) / ln(1 + mu) against the
    identity. Right: input against quantised output for both quantisers: mu-law steps are
    fine near zero and coarse near full scale, uniform steps are the same everywhere.

    Notebook: notebooks/02_mu_law.ipynb

    Examples
    --------
    >>> fig = companding_curve(4)
    >>> len(fig.axes)
    2
    """
    from .dsp.quantise import (
        mu_law_compress,
        mu_law_decode,
        mu_law_encode,
        uniform_decode,
        uniform_encode,
    )

    x = torch.linspace(-1, 1, 4001)
    uniform = uniform_decode(uniform_encode(x, bits), bits)  # validates bits
    mu_law = mu_law_decode(mu_law_encode(x, bits, mu), bits, mu)  # validates mu
    mu_value = float(2**bits - 1) if mu is None else float(mu)
    fig, axes = new_figure(1, 2, width=9, row_height=3.2)
    left, right = axes[0]
    left.plot(x, x, color="0.6", lw=1, ls="--", label="identity")
    left.plot(x, mu_law_compress(x, mu_value), color="C3", label=f"mu-law, mu={mu_value:g}")
    left.set_xlabel("input x")
    left.set_ylabel("F(x)")
    left.set_title("companding curve")
    left.legend(loc="upper left")
    right.plot(x, x, color="0.6", lw=1, ls="--", label="identity")
    right.step(x, uniform, where="mid", color="C0", label="uniform")
    right.step(x, mu_law, where="mid", color="C3", label="mu-law")
    # zoom on quiet samples, where mu-law spends its levels
    zoom = right.inset_axes([0.58, 0.07, 0.4, 0.4])
    near = x.abs() <= 0.05
    zoom.plot(x[near], x[near], color="0.6", lw=1, ls="--")
    zoom.step(x[near], uniform[near], where="mid", color="C0")
    zoom.step(x[near], mu_law[near], where="mid", color="C3")
    zoom.set_title("|x| < 0.05", fontsize=7)
    zoom.tick_params(labelsize=6)
    right.set_xlabel("input x")
    right.set_ylabel("quantised x")
    right.set_title(f"{bits}-bit quantisers ({2 ** bits} levels)")
    right.legend(loc="upper left")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    return fig


def error_signals(reference: Audio, estimates: dict, index: int = 0, title: str | None = None) -> Figure:
    """``estimate - reference`` against time, one row per named estimate, on a shared y axis.

    Errors are usually far smaller than the signal, so the y axis fits the largest error
    instead of [-1, 1]; the same scale on every row keeps the rows comparable.

    Parameters
    ----------
    reference : Audio
    estimates : dict name -> Audio
        Clips at the reference's sample rate (compared over the shorter length).

    Raises
    ------
    ParameterError
        No estimates, or an estimate at another sample rate.

    Examples
    --------
    >>> import torch
    >>> ref = Audio(torch.zeros(100), 1000)
    >>> fig = error_signals(ref, {"noise": Audio(torch.randn(100) * 0.01, 1000)})
    >>> len(fig.axes)
    1
    """
    from .errors import ParameterError

    if not estimates:
        raise ParameterError("error_signals needs at least one estimate, e.g. {'mu-law': audio}")
    ref = _mono(reference, index)
    errors = {}
    for name, est in estimates.items():
        if est.sample_rate != reference.sample_rate:
            raise ParameterError(
                f"{name!r} is at {est.sample_rate} Hz but the reference at {reference.sample_rate} Hz; "
                "resample it first"
            )
        y = _mono(est, index)
        n = min(len(ref), len(y))
        errors[name] = y[:n] - ref[:n]
    peak = max(float(np.abs(e).max()) for e in errors.values()) or 1.0
    fig, axes = new_figure(len(errors), 1, row_height=1.8, sharex=True)
    for row, (name, e) in enumerate(errors.items()):
        ax = axes[row, 0]
        t = np.arange(len(e)) / reference.sample_rate
        ax.plot(t, e, lw=0.5, color=f"C{row}")
        ax.set_ylim(-1.05 * peak, 1.05 * peak)
        ax.set_ylabel("error")
        ax.set_title(f"{name}: estimate - reference", fontsize=9)
    axes[-1, 0].set_xlabel("time (s)")
    if title:
        fig.suptitle(title)
    return fig


def receptive_field_diagram(dilations, kernel_size: int = 2, sample_rate: int | None = None,
                            title: str | None = None, max_width: int = 96) -> Figure:
    """The picture of :func:`dilation_diagram`, computed only inside the visible window.

    Offsets only grow more negative from the output down to the input, so a unit left of the
    window can never lead back into it: pruning those keeps every level to at most
    ``max_width`` units, and the connections are drawn as one line collection. It stays fast
    for deep stacks (an interactive explorer redraws it on every slider move).

    Parameters
    ----------
    dilations : sequence of int
        One per layer, bottom to top.
    kernel_size : int
    sample_rate : int, optional
        Also state the receptive field in milliseconds.
    max_width : int
        Samples shown, counted back from the predicted one.

    Raises
    ------
    ParameterError
        No layers, a dilation below 1 or a kernel size below 2.

    Notebook: notebooks/03_receptive_fields.ipynb

    Examples
    --------
    >>> fig = receptive_field_diagram([1, 2, 4, 8] * 8, kernel_size=3, sample_rate=16000)
    >>> fig.axes[0].get_title()
    'receptive field 241 samples = 15.1 ms at 16000 Hz'
    """
    from matplotlib.collections import LineCollection

    from .errors import ParameterError

    dilations = [int(d) for d in dilations]
    if not dilations or min(dilations) < 1:
        raise ParameterError(f"dilations={dilations!r} must be one or more integers >= 1")
    if int(kernel_size) < 2:
        raise ParameterError(f"kernel_size={kernel_size!r} must be >= 2")
    rf = (kernel_size - 1) * sum(dilations) + 1
    width = min(rf, max_width)
    n_rows = len(dilations) + 1
    # 1. walk down from the output, keeping only offsets inside the window
    needed = [{0}]
    for d in reversed(dilations):
        needed.append({t - m * d for t in needed[-1] for m in range(kernel_size)
                       if t - m * d > -width})
    needed = needed[::-1]  # needed[0] = input level
    # 2. draw: grey units, the ones the output depends on in colour, their connections
    fig, axes = new_figure(1, 1, width=9, row_height=max(2.5, 0.28 * n_rows + 1))
    ax = axes[0, 0]
    grid_x, grid_y = np.meshgrid(np.arange(-width + 1, 1), np.arange(n_rows))
    ax.scatter(grid_x.ravel(), grid_y.ravel(), s=6, color="0.85", zorder=1)
    on = [(t, level) for level in range(1, n_rows) for t in needed[level]]
    ax.scatter(*zip(*on), s=14, color="C0", zorder=3)
    inputs = sorted(needed[0])
    ax.scatter(inputs, [0] * len(inputs), s=14, color="C3", zorder=3)
    segments = [((t - m * d, level), (t, level + 1))
                for level, d in enumerate(dilations) for t in needed[level + 1]
                for m in range(kernel_size) if t - m * d > -width]
    ax.add_collection(LineCollection(segments, colors="C0", linewidths=0.5, alpha=0.6, zorder=2))
    labels = ["input"] + [f"d={d}" for d in dilations]
    ax.set_yticks(range(n_rows), labels, fontsize=7 if n_rows < 40 else 4)
    ax.set_xlabel("time offset (samples) from the predicted sample" +
                  (f" — showing the last {width} of {rf}" if width < rf else ""))
    note = f"receptive field {rf} samples"
    if sample_rate:
        note += f" = {1000 * rf / sample_rate:.1f} ms at {sample_rate} Hz"
    ax.set_title(title or note)
    if title:
        ax.text(0.01, 0.98, note, transform=ax.transAxes, va="top", fontsize=8)
    return fig
