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


def histograms(values: dict, bins: int = 101, value_range: tuple | None = None, xlabel: str = "",
               title: str | None = None, logy: bool = False) -> Figure:
    """One histogram panel per named array, side by side, on the same bins.

    Notebook: notebooks/02_mu_law.ipynb

    Examples
    --------
    >>> import numpy as np
    >>> fig = histograms({"a": np.zeros(10), "b": np.ones(10)}, bins=5, value_range=(-1, 1))
    >>> len(fig.axes)
    2
    """
    from .errors import ParameterError

    if not values:
        raise ParameterError("histograms needs at least one named array, e.g. {'samples': x}")
    arrays = {name: to_numpy(v).ravel() for name, v in values.items()}
    if value_range is None:
        value_range = (min(float(a.min()) for a in arrays.values()), max(float(a.max()) for a in arrays.values()))
    fig, axes = new_figure(1, len(arrays), width=min(4.0 * len(arrays), 12), row_height=2.8)
    for col, (name, a) in enumerate(arrays.items()):
        ax = axes[0, col]
        ax.hist(a, bins=bins, range=value_range, color=f"C{col}")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(xlabel)
        if logy:
            ax.set_yscale("log")
    axes[0, 0].set_ylabel("count")
    if title:
        fig.suptitle(title)
    return fig


def hist2d(x, y, xlabel: str = "", ylabel: str = "", title: str | None = None, bins: int = 60) -> Figure:
    """2-D histogram (log counts) of paired values: how ``y`` spreads at each ``x``.

    Notebook: notebooks/01_phase.ipynb

    Examples
    --------
    >>> import numpy as np
    >>> fig = hist2d(np.arange(100), np.arange(100) % 7)
    >>> len(fig.axes)  # the panel and its colour bar
    2
    """
    from matplotlib.colors import LogNorm

    fig, axes = new_figure(1, 1, width=6, row_height=3.4)
    ax = axes[0, 0]
    *_, im = ax.hist2d(to_numpy(x).ravel(), to_numpy(y).ravel(), bins=bins, norm=LogNorm(), cmap="viridis")
    fig.colorbar(im, ax=ax, label="count")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return fig


def density_1d(x, densities: dict, samples=None, title: str | None = None, xlabel: str = "x") -> Figure:
    """Densities on a grid ``x``: the first one (the target) filled, the others as lines.

    ``samples`` (optional) adds a normalised histogram of data behind the curves.

    Notebook: notebooks/04_mode_covering_vs_seeking.ipynb

    Examples
    --------
    >>> import numpy as np
    >>> x = np.linspace(-3, 3, 61)
    >>> fig = density_1d(x, {"target": np.exp(-x**2 / 2), "fit": np.exp(-x**2)})
    >>> len(fig.axes[0].lines)
    1
    """
    fig, axes = new_figure(1, 1, width=8, row_height=3.0)
    ax = axes[0, 0]
    x = to_numpy(x)
    if samples is not None:
        ax.hist(to_numpy(samples).ravel(), bins=80, range=(x.min(), x.max()), density=True, color="0.85",
                label="data")
    for i, (name, y) in enumerate(densities.items()):
        y = to_numpy(y)
        if i == 0:
            ax.fill_between(x, y, color="0.6", alpha=0.5, label=name)
        else:
            ax.plot(x, y, lw=1.8, color=f"C{i - 1}", label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return fig


def scatter_2d(panels: dict, reference=None, title: str | None = None, limit: float | None = None) -> Figure:
    """One scatter panel per named ``(n, 2)`` point set, on the same square axes.

    ``reference`` (optional, ``(m, 2)``) is drawn in grey behind every panel, e.g. the data.

    Notebook: notebooks/04_mode_covering_vs_seeking.ipynb

    Examples
    --------
    >>> import numpy as np
    >>> fig = scatter_2d({"a": np.zeros((5, 2)), "b": np.ones((5, 2))}, limit=2)
    >>> len(fig.axes)
    2
    """
    from .errors import ParameterError

    if not panels:
        raise ParameterError("scatter_2d needs at least one named point set, e.g. {'data': points}")
    points = {name: to_numpy(p).reshape(-1, 2) for name, p in panels.items()}
    ref = None if reference is None else to_numpy(reference).reshape(-1, 2)
    if limit is None:
        everything = np.concatenate([*points.values()] + ([ref] if ref is not None else []))
        limit = 1.1 * float(np.abs(everything).max())
    fig, axes = new_figure(1, len(points), width=min(3.2 * len(points), 13), row_height=3.2)
    for col, (name, p) in enumerate(points.items()):
        ax = axes[0, col]
        if ref is not None:
            ax.scatter(ref[:, 0], ref[:, 1], s=2, color="0.8")
        ax.scatter(p[:, 0], p[:, 1], s=2, color=f"C{col}", alpha=0.6)
        ax.set_xlim(-limit, limit)
        ax.set_ylim(-limit, limit)
        ax.set_aspect("equal")
        ax.set_title(name, fontsize=9)
    if title:
        fig.suptitle(title)
    return fig


def db_images(images: dict, sample_rate: int, hop_length: int = 256, vmin: float = -80.0,
              vmax: float = 0.0, n_cols: int = 4, title: str | None = None) -> Figure:
    """A grid of ``(freq, frames)`` dB spectrograms (arrays, not Audio) on one colour scale.

    For spectrogram-like things that are not sounds: an average of features, a model's output.

    Notebook: notebooks/04_mode_covering_vs_seeking.ipynb

    Examples
    --------
    >>> import numpy as np
    >>> fig = db_images({"a": np.zeros((9, 4)), "b": np.zeros((9, 4))}, 16000)
    >>> len(fig.axes)  # two panels and a colour bar
    3
    """
    from .errors import ParameterError

    if not images:
        raise ParameterError("db_images needs at least one named array, e.g. {'mean': db}")
    n_cols = min(n_cols, len(images))
    n_rows = math.ceil(len(images) / n_cols)
    fig, axes = new_figure(n_rows, n_cols, width=min(3.2 * n_cols, 13), row_height=2.4)
    im = None
    for i, (name, db) in enumerate(images.items()):
        ax = axes[i // n_cols, i % n_cols]
        db = to_numpy(db)
        extent = [0, db.shape[-1] * hop_length / sample_rate, 0, sample_rate / 2000]
        im = ax.imshow(db, origin="lower", aspect="auto", extent=extent, vmin=vmin, vmax=vmax, cmap="magma")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("kHz")
    for j in range(len(images), n_rows * n_cols):
        axes[j // n_cols, j % n_cols].set_axis_off()
    fig.colorbar(im, ax=axes, label="dB")
    if title:
        fig.suptitle(title)
    return fig


def timescales(spans: dict, marks: dict | None = None, title: str | None = None) -> Figure:
    """Durations in seconds as horizontal bars on a log axis; ``marks`` as labelled vertical lines.

    For comparing a receptive field with the periods of notes, a note, a bar, a phrase.

    Notebook: notebooks/03_receptive_fields.ipynb

    Examples
    --------
    >>> fig = timescales({"receptive field": 0.064}, {"A4 period": 1 / 440})
    >>> fig.axes[0].get_xscale()
    'log'
    """
    from .errors import ParameterError

    if not spans or min(float(s) for s in spans.values()) <= 0:
        raise ParameterError("timescales needs positive durations in seconds, e.g. {'note': 1.0}")
    names = list(spans)
    fig, axes = new_figure(1, 1, width=9, row_height=max(2.4, 0.35 * len(names) + 1))
    ax = axes[0, 0]
    ax.barh(range(len(names)), [float(spans[n]) for n in names], color="C0")
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("seconds (log scale)")
    for i, (name, seconds) in enumerate((marks or {}).items()):
        ax.axvline(float(seconds), color=f"C{(i % 8) + 1}", ls="--", lw=1, label=name)
    if marks:
        ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3, axis="x")
    if title:
        ax.set_title(title)
    return fig


def traces(x, ys: dict, xlabel: str = "", ylabel: str = "", title: str | None = None, logy: bool = False,
           width: float = 8.0) -> Figure:
    """Several named curves on one axis, drawn as plain lines (for long series; see :func:`line_plot`).

    Examples
    --------
    >>> import numpy as np
    >>> fig = traces(np.arange(1000), {"a": np.sin(np.arange(1000) / 50)}, logy=False)
    >>> len(fig.axes[0].lines)
    1
    """
    fig, axes = new_figure(1, 1, width=width, row_height=2.8)
    ax = axes[0, 0]
    x = to_numpy(x)
    for i, (label, y) in enumerate(ys.items()):
        ax.plot(x, to_numpy(y), lw=0.9, color=f"C{i}", label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(ys) > 1:
        ax.legend(fontsize=8)
    return fig


def piano_roll(notes: dict, ax=None, title: str | None = None, seconds: float | None = None) -> Figure:
    """Note sets drawn as piano rolls on one axis: pitch against time, each note a bar.

    Parameters
    ----------
    notes : dict label -> sequence of ``(onset_seconds, duration_seconds, pitch, velocity, ...)``
        Several sets overlay in different colours (a score and its transcription); a bar's
        shade follows its velocity.
    seconds : float, optional
        The time axis' end (default: the last offset).

    Returns
    -------
    Figure
    """
    if ax is None:
        fig, axes = new_figure(1, 1, width=9.0, row_height=3.2)
        ax = axes[0, 0]
    fig = ax.figure
    pitches, end = [], 0.0
    for k, (label, events) in enumerate(notes.items()):
        rows = [tuple(e) if isinstance(e, tuple | list) else e.as_tuple() for e in events]  # NoteEvent or tuples
        colour = matplotlib.colors.to_rgb(f"C{k}")
        for onset, duration, pitch, velocity, *_ in rows:
            shade = 0.35 + 0.65 * float(velocity) / 127
            ax.broken_barh([(onset, duration)], (pitch - 0.4 + 0.2 * k, 0.8 - 0.2 * k),
                           facecolors=(*colour, shade), edgecolors="none")
        pitches += [r[2] for r in rows]
        end = max([end] + [r[0] + r[1] for r in rows])
        ax.plot([], [], color=colour, lw=6, label=f"{label} ({len(rows)} notes)")
    if pitches:
        ax.set_ylim(min(pitches) - 2, max(pitches) + 2)
    ax.set_xlim(0, seconds or max(end, 1e-3))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("MIDI pitch")
    if len(notes) > 1 or title is None:
        ax.legend(loc="upper right", fontsize=8)
    if title:
        ax.set_title(title)
    return fig
