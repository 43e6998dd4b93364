"""What the teaching notebooks share: display setup, players, widgets and small experiments.

Notebooks hold prose and calls; anything longer than a few lines that they need lives here,
with a test (``tests/test_notebook_helpers.py``):

- :func:`setup`, :func:`is_fast`, :func:`has_front_end`: show figures inline, shorten loops;
- :func:`players`: labelled audio players side by side, with numbers next to each;
- :class:`Explorer`: ipywidgets controls around a function, and one static call without a
  front end; its callbacks run headless (set ``explorer.controls[name].value``);
- :func:`load_or_create`: the shipped checkpoint, or an untrained tiny model and a note saying so;
- receptive fields (notebooks/03): :func:`measure_receptive_field`, :func:`training_step_cost`,
  :func:`receptive_field_view`;
- phase (notebooks/01): :func:`phase_acceleration`, :func:`griffin_lim_view`;
- quantisation (notebooks/02): :func:`snr_by_bits`, :func:`code_entropy`, :func:`next_code_distribution`,
  :func:`quantisation_view`;
- mode covering and seeking (notebooks/04): :class:`Mixture`, :func:`fit_mixture`, :func:`kl_divergences`,
  :func:`ring_mixture`, :func:`mode_coverage`, :func:`covering_vs_seeking`.

Notebooks: notebooks/00_tour.ipynb .. notebooks/04_mode_covering_vs_seeking.ipynb
"""

from __future__ import annotations

import html
import math
import os
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .audio import Audio
from .dsp import spectral as S
from .dsp.quantise import mu_law_encode
from .dsp.quantise import quantise as _quantise
from .errors import ParameterError
from .metrics import snr, spectral_convergence

FAST_ENV = "WORKBENCH_FAST"
STATIC_ENV = "WORKBENCH_STATIC"


# ---- display ---------------------------------------------------------------------------------
def is_fast() -> bool:
    """Whether ``$WORKBENCH_FAST`` asks notebooks to shorten their loops (the test suite sets it)."""
    return os.environ.get(FAST_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _ipython():
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipykernel
        return None
    return get_ipython()


def has_front_end() -> bool:
    """True inside a Jupyter kernel (widgets can render), unless ``$WORKBENCH_STATIC`` is set."""
    if os.environ.get(STATIC_ENV, "").strip().lower() not in ("", "0", "false", "no"):
        return False
    shell = _ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def setup(dpi: int = 80) -> bool:
    """Show :mod:`workbench.viz` figures inline as PNG; returns whether IPython is running.

    ``viz`` draws on bare ``matplotlib.figure.Figure`` objects (no pyplot state), which IPython
    does not know how to display until a formatter is registered for them.
    """
    shell = _ipython()
    if shell is None:
        return False
    from IPython.core.pylabtools import select_figure_formats

    select_figure_formats(shell, {"png"}, dpi=dpi, bbox_inches="tight")
    return True


def show(*items) -> None:
    """Display each item (tuples and lists are flattened; None is skipped)."""
    from IPython.display import display

    for item in items:
        if item is None:
            continue
        if isinstance(item, tuple | list):
            show(*item)
        else:
            display(item)


class Text:
    """Plain text that displays as itself (not as a quoted string)."""

    def __init__(self, text: str):
        self.text = str(text)

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(self.text)}</pre>"


# ---- players ----------------------------------------------------------------------------------
def _format(value) -> str:
    if isinstance(value, float | np.floating):
        return "inf" if math.isinf(value) else f"{value:.3g}"
    return str(value)


class Players:
    """A table of labelled players, one row per clip, with optional number columns."""

    def __init__(self, clips: dict, numbers: dict | None = None, title: str | None = None):
        if not clips:
            raise ParameterError("players needs at least one clip, e.g. {'original': audio}")
        for label, clip in clips.items():
            if not isinstance(clip, Audio):
                raise ParameterError(f"clip {label!r} is a {type(clip).__name__}; pass Audio objects")
        self.clips = dict(clips)
        self.numbers = {name: dict(column) for name, column in (numbers or {}).items()}
        for name, column in self.numbers.items():
            extra = set(column) - set(self.clips)
            if extra:
                raise ParameterError(f"numbers[{name!r}] names clips that are not there: {sorted(extra)}")
        self.title = title

    def rows(self) -> list[list[str]]:
        return [[label, f"{clip.seconds:.2f} s @ {clip.sample_rate} Hz",
                 *(_format(col.get(label, "")) for col in self.numbers.values())]
                for label, clip in self.clips.items()]

    def __repr__(self) -> str:
        header = ["clip", "length", *self.numbers]
        rows = [header, *self.rows()]
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
        return "\n".join(([self.title] if self.title else []) + lines)

    def _repr_html_(self) -> str:
        import base64

        head = "".join(f"<th>{html.escape(h)}</th>" for h in ("clip", "player", *self.numbers))
        body = []
        for (label, clip), row in zip(self.clips.items(), self.rows()):
            b64 = base64.b64encode(clip.wav_bytes(0)).decode("ascii")
            player = f'<audio controls preload="none" src="data:audio/wav;base64,{b64}"></audio>'
            cells = "".join(f"<td>{html.escape(c)}</td>" for c in row[2:])
            body.append(f"<tr><td>{html.escape(label)}</td><td>{player}</td>{cells}</tr>")
        caption = f"<caption>{html.escape(self.title)}</caption>" if self.title else ""
        return f"<table>{caption}<tr>{head}</tr>{''.join(body)}</table>"


def players(clips: dict, numbers: dict | None = None, title: str | None = None) -> Players:
    """Players side by side: ``clips`` label -> Audio, ``numbers`` column -> {label: value}.

    Examples
    --------
    >>> import torch
    >>> a = Audio(torch.zeros(800), 8000)
    >>> print(players({"silence": a}, {"peak": {"silence": 0.0}}))
    clip     length            peak
    silence  0.10 s @ 8000 Hz  0
    """
    return Players(clips, numbers, title)


# ---- widgets ---------------------------------------------------------------------------------
def _as_widget(name: str, spec):
    import ipywidgets as widgets

    if isinstance(spec, widgets.ValueWidget):
        widget = spec
    else:
        widget = widgets.interactive.widget_from_abbrev(spec)
        if widget is None:
            raise ParameterError(
                f"control {name}={spec!r} is not a widget or an ipywidgets abbreviation "
                "((min, max, step), a list of choices, a bool)"
            )
    if not widget.description:
        widget.description = name
    if hasattr(widget, "continuous_update"):
        widget.continuous_update = False  # recompute when the slider is released
    return widget


def _another_value(w):
    """Another value the widget ``w`` accepts (or its own value if it has no other)."""
    options = getattr(w, "options", None)
    if options:
        values = [o[1] if isinstance(o, tuple) else o for o in options]
        return next((v for v in values if v != w.value), w.value)
    if isinstance(w.value, bool):
        return not w.value
    step = getattr(w, "step", None) or 1
    low, high = getattr(w, "min", None), getattr(w, "max", None)
    up = w.value + step
    if high is None or up <= high:
        return type(w.value)(up)
    down = w.value - step
    return type(w.value)(down) if low is None or down >= low else w.value


class Explorer:
    """Controls around ``fn``: live widgets in Jupyter, one static call anywhere else.

    ``fn(**values)`` returns what to show (figures, Audio, :class:`Players`, text, or a tuple of
    them). In a kernel the explorer displays the controls and re-runs ``fn`` into an output area
    whenever a control changes; without a front end it shows
    ``fn`` at the controls' default values once.

    Parameters
    ----------
    fn : callable
    **controls
        name -> an ipywidgets widget or an abbreviation: ``(min, max, step)`` for a slider,
        a list of choices for a dropdown, a bool for a checkbox.

    Attributes
    ----------
    result : object
        What the last call returned.
    error : Exception or None
        What the last call raised (widgets otherwise swallow callback errors).
    n_calls : int

    Examples
    --------
    >>> import ipywidgets as widgets
    >>> ex = Explorer(lambda bits: 6.02 * bits, bits=widgets.IntSlider(value=8, min=2, max=16))
    >>> round(ex.run(), 2)
    48.16
    >>> _ = ex.widget()                  # builds the controls and calls fn once
    >>> ex.controls["bits"].value = 4    # what moving the slider does
    >>> round(ex.result, 2), ex.n_calls
    (24.08, 3)
    """

    def __init__(self, fn, **controls):
        if not callable(fn):
            raise ParameterError(f"Explorer needs a function, got {type(fn).__name__}")
        if not controls:
            raise ParameterError("Explorer needs at least one control, e.g. bits=(2, 16, 1)")
        self.fn = fn
        self.controls = {name: _as_widget(name, spec) for name, spec in controls.items()}
        self.result = None
        self.error = None
        self.n_calls = 0
        self._widget = None

    def values(self) -> dict:
        """The controls' current values."""
        return {name: w.value for name, w in self.controls.items()}

    def run(self, **overrides):
        """Call ``fn`` with the controls' values (and ``overrides``); keep and return the result."""
        values = {**self.values(), **overrides}
        try:
            self.result = self.fn(**values)
        except Exception as exc:
            self.error = exc
            raise
        self.error = None
        self.n_calls += 1
        return self.result

    def widget(self):
        """The controls above an output area that ``fn`` redraws (built once, runs ``fn`` once).

        Like ``ipywidgets.interactive_output``, plus: the result and any error are kept, and
        nothing is printed when there is no IPython to display into (tests, scripts).
        """
        import ipywidgets as widgets

        if self._widget is None:
            out = widgets.Output()

            def redraw(change=None):
                if _ipython() is None:  # headless: run the callback, nowhere to show it
                    self.run()
                    return
                with out:
                    out.clear_output(wait=True)
                    show(self.run())

            for w in self.controls.values():
                w.observe(redraw, names="value")
            box = widgets.HBox(list(self.controls.values()), layout=widgets.Layout(flex_flow="row wrap"))
            self._widget = widgets.VBox([box, out])
            redraw()
        return self._widget

    def set(self, **values):
        """Set controls as a user would (each change runs ``fn``); return the last result."""
        for name, value in values.items():
            if name not in self.controls:
                raise ParameterError(f"no control named {name!r}; controls: {', '.join(self.controls)}")
            self.controls[name].value = value
        if self.error is not None:
            raise self.error
        return self.result

    def exercise(self) -> dict:
        """Move every control once, as a user would, and check that ``fn`` ran without error.

        Each control in turn goes to another allowed value (the next option, or one slider step
        away) and stays there. Used by the test suite to run a notebook's callbacks headless.

        Returns
        -------
        dict control name -> the value it was moved to.

        Raises
        ------
        Exception
            Whatever ``fn`` raised.
        """
        self.widget()
        if self.error is not None:
            raise self.error
        moved = {}
        for name, w in self.controls.items():
            other = _another_value(w)
            if other == w.value:
                continue
            before = self.n_calls
            w.value = other
            if self.error is not None:
                raise self.error
            if self.n_calls != before + 1:
                raise RuntimeError(f"moving {name} to {other!r} did not run the callback")
            moved[name] = other
        return moved

    def _ipython_display_(self):
        from IPython.display import display

        if has_front_end():
            display(self.widget())
        else:
            show(self.run())


# ---- models ----------------------------------------------------------------------------------
def load_or_create(name: str, preset: str = "tiny", **overrides):
    """The shipped checkpoint of ``name`` if there is one, else a fresh ``preset`` model.

    Returns
    -------
    (model, note)
        The model in eval mode and one sentence saying which it is (print it).
    """
    from .models import create_model, has_checkpoint, load_card, load_model

    if has_checkpoint(name):
        model = load_model(name)
        card = load_card(name)
        steps = card.get("steps")
        wall = card.get("wall_time_s")
        trained = f" (trained {steps} steps in {wall / 60:.0f} min)" if steps and wall else ""
        return model.eval(), f"loaded the shipped {name} checkpoint{trained}"
    model = create_model(name, preset, **overrides).eval()
    return model, (f"note: assets/checkpoints/{name}/ holds no checkpoint yet, so this is an UNTRAINED "
                   f"{name} ({preset!r} preset): it will make noise, not notes. Train one with "
                   f"'workbench train {name}'.")


# ---- receptive fields (notebooks/03) ---------------------------------------------------------
def measure_receptive_field(model, n_samples: int | None = None) -> int:
    """Receptive field of a WaveNet-like model measured with gradients, in samples.

    Feeds random features ``(1, channels, n_samples)`` through ``model.forward_features``,
    backpropagates from the last output step and counts the span of inputs whose gradient is
    non-zero. Doubles ``n_samples`` until the span no longer touches the first input.

    Raises
    ------
    ParameterError
        The model has no ``forward_features`` (it is not a convolutional autoregressive model).
    """
    if not hasattr(model, "forward_features"):
        raise ParameterError(f"{type(model).__name__} has no forward_features; pass a WaveNet")
    channels = model.embed.weight.shape[1]
    n = n_samples or 256
    gen = torch.Generator().manual_seed(0)
    was_training = model.training
    model.eval()
    try:
        while True:
            x = torch.randn(1, channels, n, generator=gen, dtype=model.embed.weight.dtype, requires_grad=True)
            model.forward_features(x)[0, :, -1].sum().backward()
            support = (x.grad.abs().sum(dim=1)[0] > 0).nonzero().flatten()  # inputs that matter
            model.zero_grad(set_to_none=True)
            if int(support.min()) > 0 or n >= 1 << 22:
                return int(support.max() - support.min() + 1)
            n *= 2
    finally:
        model.train(was_training)


def training_step_cost(model, n_targets: int = 256, batch_size: int = 1, repeats: int = 3,
                       generator=0) -> dict:
    """Activation memory and time of one teacher-forced training step with full context.

    Every target sees a full receptive field of real samples (as in ``WaveNet.training_step``
    away from the onset), so the input is ``receptive_field + n_targets - 1`` samples long.

    What is measured:

    - ``activation_bytes``: bytes of the tensors autograd keeps for the backward pass (counted
      with ``torch.autograd.graph.saved_tensors_hooks``, each storage once, parameters excluded).
      This is the part of training memory that grows with depth and input length; the step's
      peak adds parameters, gradients and short-lived temporaries on top.
    - ``step_seconds``: wall time of forward + backward, the fastest of ``repeats`` runs.

    Returns
    -------
    dict with ``receptive_field``, ``n_layers`` (convolution layers), ``input_samples``,
    ``activation_bytes``, ``step_seconds``, ``n_parameters``.
    """
    from .dsp.spectral import make_generator

    rf = model.receptive_field
    n_in = rf + n_targets - 1
    gen = make_generator(generator) or torch.Generator().manual_seed(0)
    codes = torch.randint(0, model.n_classes, (batch_size, n_in + 1), generator=gen)
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    best, saved_bytes = math.inf, 0
    model.train()
    for _ in range(max(1, repeats)):
        saved: dict[int, int] = {}

        def pack(t, saved=saved):
            storage = t.untyped_storage()
            if storage.data_ptr() not in params:
                saved[storage.data_ptr()] = storage.nbytes()
            return t

        model.zero_grad(set_to_none=True)
        start = time.perf_counter()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            logits = model(codes[:, :-1])[..., rf - 1:]  # (batch, classes, n_targets)
            loss = F.cross_entropy(logits, codes[:, rf:])
        loss.backward()
        best = min(best, time.perf_counter() - start)
        saved_bytes = sum(saved.values())
    model.zero_grad(set_to_none=True)
    model.eval()
    return {"receptive_field": rf, "n_layers": len(model.dilations), "input_samples": n_in,
            "activation_bytes": saved_bytes, "step_seconds": best, "n_parameters": model.n_parameters}


def receptive_field_view(n_layers: int, n_stacks: int, kernel_size: int, sample_rate: int = 16000,
                         preset: str = "tiny"):
    """A fresh WaveNet with this stack: its dilation diagram, and its receptive field by formula and by gradients.

    Returns
    -------
    (Figure, Text)
    """
    from .models import create_model
    from .viz import receptive_field_diagram

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = create_model("wavenet", preset, n_layers=int(n_layers), n_stacks=int(n_stacks),
                             kernel_size=int(kernel_size), timing=False).double()
    formula = (kernel_size - 1) * sum(model.dilations) + 1
    measured = measure_receptive_field(model)
    fig = receptive_field_diagram(model.dilations, kernel_size, sample_rate=sample_rate,
                                  title=f"{n_stacks} stack(s) x {n_layers} layers, kernel {kernel_size}")
    text = Text(f"formula (k - 1) * sum(dilations) + 1 = {formula} samples; measured by gradients: "
                f"{measured} samples = {1000 * measured / sample_rate:.1f} ms at {sample_rate} Hz "
                f"({len(model.dilations)} layers)")
    return fig, text


# ---- phase (notebooks/01) --------------------------------------------------------------------
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
    from .viz import new_figure, spectrogram

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


# ---- quantisation (notebooks/02) -------------------------------------------------------------
def snr_by_bits(audio, bits=range(2, 17), kind: str = "mu_law") -> np.ndarray:
    """SNR (dB) of ``audio`` after ``bits``-bit quantisation, for each bit depth."""
    return np.array([snr(audio, _quantise(audio, int(b), kind)) for b in bits])


def code_entropy(codes: torch.Tensor, bits: int) -> float:
    """Entropy in bits of the histogram of integer codes (at most ``bits``: all levels equally used)."""
    counts = torch.bincount(codes.flatten(), minlength=2**bits).double()
    p = counts[counts > 0] / counts.sum()
    return float(-(p * torch.log2(p)).sum())


def next_code_distribution(audio, bits: int = 8, previous: int | None = None, width: int = 2) -> dict:
    """The distribution of the next mu-law code given that the previous one is near ``previous``.

    Collects every sample whose predecessor's code lies within ``width`` of ``previous`` (the
    code of silence by default), fits two models of the next code on the even-numbered cases
    and scores both on the odd-numbered ones:

    - a categorical over all ``2**bits`` codes (a histogram, add-one smoothed): WaveNet's softmax;
    - a Gaussian over the code value, fitted by maximum likelihood and discretised to the codes.

    Returns
    -------
    dict: ``counts`` (all cases, per code), ``categorical`` and ``gaussian`` (probabilities per
    code), ``bits_categorical`` and ``bits_gaussian`` (held-out bits per sample), ``n_cases``.

    Raises
    ------
    ParameterError
        Fewer than 20 cases match.
    """
    x = Audio(audio.samples[:1], audio.sample_rate).samples[0, 0] if isinstance(audio, Audio) else audio
    codes = mu_law_encode(x, bits).flatten()
    levels = 2**bits
    previous = int(mu_law_encode(torch.zeros(()), bits)) if previous is None else int(previous)
    cases = codes[1:][(codes[:-1] - previous).abs() <= width]
    if cases.numel() < 20:
        raise ParameterError(f"only {cases.numel()} samples follow a code within {width} of {previous}; "
                             "widen the window or use a longer clip")
    train, test = cases[0::2], cases[1::2]
    counts = torch.bincount(train, minlength=levels).double() + 1.0
    categorical = counts / counts.sum()
    mean, std = train.double().mean(), train.double().std().clamp_min(0.5)
    edges = torch.arange(levels + 1, dtype=torch.float64) - 0.5
    cdf = 0.5 * (1 + torch.erf((edges - mean) / (std * math.sqrt(2))))
    gaussian = (cdf[1:] - cdf[:-1]).clamp_min(1e-12)
    gaussian = gaussian / gaussian.sum()
    return {"counts": torch.bincount(cases, minlength=levels).numpy(), "categorical": categorical.numpy(),
            "gaussian": gaussian.numpy(), "n_cases": int(cases.numel()),
            "bits_categorical": float(-torch.log2(categorical[test]).mean()),
            "bits_gaussian": float(-torch.log2(gaussian[test]).mean())}


def quantisation_view(audio: Audio, bits: int = 8, zoom_seconds: float = 0.01):
    """Uniform vs mu-law at ``bits`` bits: zoomed waveforms, error signals, players with SNR.

    Returns
    -------
    (Figure, Players)
    """
    from .viz import new_figure

    uniform = _quantise(audio, bits, "uniform")
    mu_law = _quantise(audio, bits, "mu_law")
    x = audio.samples[0, 0].numpy()
    start = int(np.argmax(np.abs(x)))  # zoom where the clip is loudest, then further in the tail
    n = max(8, int(zoom_seconds * audio.sample_rate))
    quiet = min(len(x) - n, max(0, len(x) * 3 // 4))
    fig, axes = new_figure(2, 2, width=11, row_height=2.4)
    for col, (where, label) in enumerate(((min(start, len(x) - n), "loudest part"), (quiet, "quiet tail"))):
        t = (np.arange(where, where + n)) / audio.sample_rate * 1000
        ax = axes[0, col]
        ax.plot(t, x[where:where + n], color="0.3", lw=1.2, label="original")
        ax.step(t, uniform.samples[0, 0, where:where + n].numpy(), where="mid", color="C0", lw=0.9,
                label="uniform")
        ax.step(t, mu_law.samples[0, 0, where:where + n].numpy(), where="mid", color="C3", lw=0.9,
                label="mu-law")
        ax.set_title(f"{label}, {bits} bits")
        ax.set_xlabel("time (ms)")
        ax.legend(fontsize=7)
        err = axes[1, col]
        err.plot(t, (uniform.samples[0, 0] - audio.samples[0, 0])[where:where + n].numpy(), color="C0",
                 label="uniform error")
        err.plot(t, (mu_law.samples[0, 0] - audio.samples[0, 0])[where:where + n].numpy(), color="C3",
                 label="mu-law error")
        err.set_xlabel("time (ms)")
        err.set_ylabel("error")
        err.legend(fontsize=7)
    table = players({"original": audio, f"uniform {bits} bits": uniform, f"mu-law {bits} bits": mu_law},
                    {"SNR (dB)": {f"uniform {bits} bits": snr(audio, uniform),
                                  f"mu-law {bits} bits": snr(audio, mu_law)}})
    return fig, table


# ---- mode covering and mode seeking (notebooks/04) -------------------------------------------
class Mixture(nn.Module):
    """A mixture of Gaussians with diagonal covariance in ``dim`` dimensions, differentiable.

    Parameters
    ----------
    weights : Tensor ``(k,)`` (normalised here)
    means : Tensor ``(k, dim)``
    stds : Tensor ``(k, dim)`` or ``(k,)``
    trainable : bool
        Make the parameters learnable (a model to fit) or buffers (a fixed target).

    Examples
    --------
    >>> import torch
    >>> m = Mixture(torch.ones(2), torch.tensor([[-2.0], [2.0]]), torch.ones(2))
    >>> round(float(m.log_prob(torch.zeros(1, 1)).exp()), 4)   # N(0; +-2, 1) at 0
    0.054
    """

    def __init__(self, weights, means, stds, trainable: bool = False):
        super().__init__()
        weights = torch.as_tensor(weights, dtype=torch.float64)
        means = torch.as_tensor(means, dtype=torch.float64)
        if means.dim() == 1:
            means = means[:, None]  # (k, 1)
        stds = torch.as_tensor(stds, dtype=torch.float64)
        if stds.dim() == 1 and stds.shape[0] == means.shape[0]:
            stds = stds[:, None].expand_as(means)  # one std per component, shared by every dimension
        if weights.dim() != 1 or weights.shape[0] != means.shape[0] or stds.shape != means.shape:
            raise ParameterError(f"weights {tuple(weights.shape)}, means {tuple(means.shape)} and stds "
                                 f"{tuple(stds.shape)} disagree; pass k weights, (k, dim) means and stds")
        if bool((weights < 0).any()) or bool((stds <= 0).any()):
            raise ParameterError("weights must be >= 0 and stds > 0")
        values = {"logits": torch.log(weights / weights.sum()).clamp_min(-30.0),
                  "means": means.clone(), "log_stds": torch.log(stds).clone()}
        for key, value in values.items():
            if trainable:
                setattr(self, key, nn.Parameter(value))
            else:
                self.register_buffer(key, value)

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @property
    def weights(self) -> torch.Tensor:
        return torch.softmax(self.logits, 0)

    @property
    def stds(self) -> torch.Tensor:
        return self.log_stds.exp()

    def component_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log N(x; mean_k, std_k) for every component: ``(n, dim)`` -> ``(n, k)``."""
        z = (x[:, None, :] - self.means[None]) / self.stds[None]  # (n, k, dim)
        return (-0.5 * z.pow(2) - self.log_stds[None] - 0.5 * math.log(2 * math.pi)).sum(-1)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log density ``(n,)`` of points ``(n, dim)``."""
        x = torch.as_tensor(x, dtype=torch.float64)
        return torch.logsumexp(self.component_log_prob(x) + torch.log_softmax(self.logits, 0)[None], dim=1)

    def sample(self, n: int, generator=None) -> torch.Tensor:
        """``n`` points ``(n, dim)`` (not differentiable)."""
        from .dsp.spectral import make_generator

        gen = make_generator(generator)
        with torch.no_grad():
            k = torch.multinomial(self.weights, n, replacement=True, generator=gen)
            eps = torch.randn(n, self.dim, generator=gen, dtype=torch.float64)
            return self.means[k] + self.stds[k] * eps


def kl_divergences(target: Mixture, model: Mixture, n: int = 20000, generator=0) -> dict:
    """Monte Carlo KL(target || model) ("forward") and KL(model || target) ("reverse"), in nats."""
    from .dsp.spectral import make_generator

    gen = make_generator(generator)
    with torch.no_grad():
        xp = target.sample(n, gen)
        xq = model.sample(n, gen)
        forward = float((target.log_prob(xp) - model.log_prob(xp)).mean())
        reverse = float((model.log_prob(xq) - target.log_prob(xq)).mean())
    return {"forward": forward, "reverse": reverse}


def fit_mixture(target: Mixture, n_components: int = 1, objective: str = "forward", steps: int = 300,
                lr: float = 0.1, n_samples: int = 512, init_means=None, init_std: float | None = None,
                generator=0) -> Mixture:
    """Fit a ``n_components`` Gaussian mixture to ``target`` by forward or reverse KL.

    - ``"forward"``: maximum likelihood on samples of the target, i.e. minimise KL(p || q).
      Every region where p has mass must get mass under q, or the loss explodes: mode covering.
    - ``"reverse"``: minimise KL(q || p) = E_q[log q - log p] with the reparameterisation trick
      (needs p's density, as probability density distillation does with a teacher WaveNet).
      q is punished only where it puts mass that p lacks: mode seeking.

    Both start from the same point: components on ``init_means`` ``(k, dim)`` (random target samples
    by default) with standard deviation ``init_std`` (the target's spread by default).

    Raises
    ------
    ParameterError
        Unknown ``objective`` or a bad ``n_components``.
    """
    from .dsp.spectral import make_generator

    if objective not in ("forward", "reverse"):
        raise ParameterError(f"objective={objective!r} must be 'forward' (maximum likelihood) or 'reverse'")
    if isinstance(n_components, bool) or not isinstance(n_components, int) or n_components < 1:
        raise ParameterError(f"n_components={n_components!r} must be a positive integer")
    gen = make_generator(generator) or torch.Generator().manual_seed(0)
    data = target.sample(n_samples, gen)  # (n, dim)
    if init_means is None:
        start = data[torch.randperm(n_samples, generator=gen)[:n_components]]
    else:
        start = torch.as_tensor(init_means, dtype=torch.float64).reshape(n_components, target.dim)
    spread = data.std(0, keepdim=True).expand(n_components, -1)
    if init_std is not None:
        spread = torch.full_like(spread, float(init_std))
    model = Mixture(torch.ones(n_components), start, spread, trainable=True)
    eps = torch.randn(n_samples // n_components + 1, target.dim, generator=gen, dtype=torch.float64)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        optimiser.zero_grad()
        if objective == "forward":
            loss = -model.log_prob(data).mean()  # = KL(p || q) + H(p)
        else:
            # one reparameterised batch per component, weighted by the component's weight
            x = model.means[:, None] + model.stds[:, None] * eps[None]  # (k, m, dim)
            flat = x.reshape(-1, target.dim)
            gap = (model.log_prob(flat) - target.log_prob(flat)).view(n_components, -1)  # log q - log p
            loss = (model.weights * gap.mean(1)).sum()  # = KL(q || p)
        loss.backward()
        optimiser.step()
    return model.requires_grad_(False)


def ring_mixture(n_modes: int = 8, radius: float = 2.0, std: float = 0.05) -> Mixture:
    """``n_modes`` equal Gaussians on a circle: the classic 2-D test of mode collapse."""
    angles = torch.arange(n_modes, dtype=torch.float64) * 2 * math.pi / n_modes
    means = radius * torch.stack([angles.cos(), angles.sin()], 1)
    return Mixture(torch.ones(n_modes), means, torch.full((n_modes,), std))


def mode_coverage(points: torch.Tensor, target: Mixture, n_std: float = 3.0, min_share: float = 0.001) -> dict:
    """Which of the target's modes ``points`` land on.

    Returns
    -------
    dict: ``modes_hit`` (modes with at least ``min_share`` of the points within ``n_std`` of
    their mean), ``n_modes``, ``on_mode`` (share of points within ``n_std`` of some mode: quality),
    ``shares`` (per mode).
    """
    points = torch.as_tensor(points, dtype=torch.float64)
    z = ((points[:, None, :] - target.means[None]) / target.stds[None]).pow(2).sum(-1).sqrt()  # (n, k)
    near = z <= n_std
    shares = near.double().mean(0)
    return {"modes_hit": int((shares >= min_share).sum()), "n_modes": target.means.shape[0],
            "on_mode": float(near.any(1).double().mean()), "shares": shares.numpy()}


@dataclass
class ConditionStudy:
    """Many sounds that fit one condition, and what covering and seeking models would answer."""

    n_candidates: int
    spread_db: float  # mean distance between two candidates
    covering_gap_db: float  # distance from the covering answer (the mean) to the nearest candidate
    seeking_loss_db: float  # mean distance from the seeking answer (one candidate) to all candidates
    seeking_index: int
    covering_db: np.ndarray  # (freq, frames) the mean log-magnitude
    covering_audio: Audio  # Griffin-Lim of the mean magnitude
    mean_waveform: Audio  # the mean of the waveforms (a Gaussian's ML mean in sample space)


def log_magnitude_db(audio: Audio, n_fft: int = 1024, hop_length: int = 256, floor_db: float = -80.0) -> torch.Tensor:
    """``(batch, freq, frames)`` magnitude in dB re. full scale, floored at ``floor_db``."""
    mag = S.magnitude(audio.samples[:, 0], n_fft, hop_length)
    return (20 * torch.log10(mag.clamp_min(1e-12) / (n_fft / 4))).clamp_min(floor_db)


def covering_vs_seeking(candidates: Audio, n_fft: int = 1024, hop_length: int = 256, n_iter: int = 32,
                        generator=0) -> ConditionStudy:
    """Treat ``candidates`` as the conditional distribution of sounds given one condition.

    Distances are mean absolute differences of dB magnitude spectrograms. The covering answer is
    what a unimodal Gaussian fitted by maximum likelihood predicts: the mean of the candidates'
    features. The seeking answer is one real candidate, the medoid (the densest spot of the set).

    Raises
    ------
    ParameterError
        Fewer than two candidates.
    """
    if candidates.batch_size < 2:
        raise ParameterError(f"got {candidates.batch_size} candidate; a distribution needs at least 2")
    feats = log_magnitude_db(candidates, n_fft, hop_length)  # (n, freq, frames)
    flat = feats.flatten(1)
    dist = torch.cdist(flat, flat, p=1) / flat.shape[1]  # (n, n) mean |dB difference|
    n = flat.shape[0]
    spread = float(dist.sum() / (n * (n - 1)))
    seek = int(dist.sum(1).argmin())
    mean = feats.mean(0)  # (freq, frames)
    gap = float((flat - mean.flatten()[None]).abs().mean(1).min())
    loss = float(dist[seek].sum() / (n - 1))
    mag = 10 ** (mean / 20) * (n_fft / 4)
    y = S.griffin_lim(mag, n_iter, n_fft=n_fft, hop_length=hop_length, length=candidates.n_samples,
                      generator=generator)
    return ConditionStudy(n, spread, gap, loss, seek, mean.numpy(), Audio(y, candidates.sample_rate),
                          Audio(candidates.samples.mean(0), candidates.sample_rate))


__all__ = [
    "ConditionStudy", "Explorer", "Mixture", "Players", "Text", "code_entropy", "covering_vs_seeking",
    "fit_mixture", "griffin_lim_view", "has_front_end", "is_fast", "kl_divergences", "load_or_create",
    "log_magnitude_db", "measure_receptive_field", "mode_coverage", "next_code_distribution", "phase_acceleration", "players",
    "quantisation_view", "receptive_field_view", "ring_mixture", "setup", "show", "snr_by_bits",
    "training_step_cost",
]
