"""Display for the notebooks: inline figures, audio players with numbers, and ipywidgets
controls with a static fallback.

- :func:`setup`, :func:`is_fast`, :func:`has_front_end`: show figures inline, shorten loops;
- :func:`players`: labelled audio players side by side, with numbers next to each;
- :class:`Table`: rows of numbers that display as an HTML table (and as aligned text);
- :class:`Explorer`: ipywidgets controls around a function. Its default view is always drawn as
  ordinary output first (so saved notebooks and HTML exports show it), the controls below it;
  its callbacks run headless (set ``explorer.controls[name].value``).
"""

from __future__ import annotations

import html
import math
import os

import numpy as np

from ..audio import Audio
from ..errors import ParameterError

FAST_ENV = "WORKBENCH_FAST"
STATIC_ENV = "WORKBENCH_STATIC"


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


class Table:
    """Rows of cells under a header, shown as an HTML table in Jupyter and as aligned text elsewhere.

    Cells are formatted like :func:`players`' numbers (floats to 3 significant figures, NaN
    and None as a dash); ``notes`` are lines printed under the table.

    Examples
    --------
    >>> print(Table(["model", "bits"], [["wavenet", 4.7712], ["vae", None]], notes=["held-out notes"]))
    model    bits
    wavenet  4.77
    vae      —
    held-out notes
    """

    def __init__(self, headers, rows, title: str | None = None, notes=()):
        self.headers = [str(h) for h in headers]
        self.rows = [list(r) for r in rows]
        for r in self.rows:
            if len(r) != len(self.headers):
                raise ParameterError(f"a row has {len(r)} cells for {len(self.headers)} headers: {r!r}")
        self.title = title
        self.notes = [str(n) for n in notes]

    @staticmethod
    def cell(value) -> str:
        if value is None or (isinstance(value, float | np.floating) and math.isnan(value)):
            return "—"
        return _format(value)

    def __repr__(self) -> str:
        rows = [self.headers, *([self.cell(c) for c in r] for r in self.rows)]
        widths = [max(len(r[i]) for r in rows) for i in range(len(self.headers))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        return "\n".join(([self.title] if self.title else []) + lines + self.notes)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in self.headers)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(self.cell(c))}</td>" for c in r) + "</tr>"
                       for r in self.rows)
        caption = f"<caption>{html.escape(self.title)}</caption>" if self.title else ""
        notes = "".join(f"<br><small>{html.escape(n)}</small>" for n in self.notes)
        return f"<table>{caption}<tr>{head}</tr>{body}</table>{notes}"


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
    """Controls around ``fn``: its default view as ordinary output, then live widgets in Jupyter.

    ``fn(**values)`` returns what to show (figures, Audio, :class:`Players`, text, or a tuple of
    them). Displaying the explorer always shows ``fn`` at the controls' default values as
    ordinary cell output, so a saved notebook, an HTML export or a reader without a kernel sees
    the figure. In a kernel the controls follow, above an output area that ``fn`` redraws
    whenever a control changes.

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

    def widget(self, draw: bool = True):
        """The controls above an output area that ``fn`` redraws (built once).

        Like ``ipywidgets.interactive_output``, plus: the result and any error are kept, and
        nothing is printed when there is no IPython to display into (tests, scripts). ``draw``:
        run ``fn`` into the output area when the widget is built (False when the default view
        was just shown as ordinary output above it).
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
            if draw:
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

        show(self.run())  # the default view, as ordinary output: kept in saved copies and exports
        if has_front_end():
            display(self.widget(draw=False))
