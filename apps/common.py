"""Pieces every tab shares: the cached model loader, clip input and checks, audio for Gradio and
its levels, legible figures, errors as ``gr.Error``, progress with cancellation, named API inputs.

Three rules the whole studio keeps:

- Audio goes to Gradio as int16 (:func:`to_gradio`). Gradio rescales float arrays to their
  peak, which would silently undo every loudness and quantisation comparison; where the studio
  changes a level itself (:func:`check_levels`), the page says so and by how much.
- Every figure goes through :func:`legible`, so its smallest label is at least
  :data:`MIN_LABEL_PX` screen pixels at the width it is shown.
- Nothing here holds a model at import time; :func:`load_cached` loads one on first use.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import html
import inspect
import keyword
import math
import os
import queue
import re
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402

from workbench.audio import Audio  # noqa: E402
from workbench.errors import AudioError, MissingDependencyError, WorkbenchError  # noqa: E402
from workbench.models.capabilities import ClipFrames, Streaming, Vocoder  # noqa: E402

#: Sample rate of the labs (phase, mu-law): the example clips' rate.
LAB_SAMPLE_RATE = 16_000
#: Uploads and recordings longer than this are refused (they would block a CPU for long).
MAX_INPUT_SECONDS = 30.0
#: Shorter clips are refused: the STFT needs a few frames.
MIN_INPUT_SECONDS = 0.1
#: Uploads above this rate are refused (nothing here needs ultrasound).
MAX_INPUT_SAMPLE_RATE = 96_000
MAX_INPUT_CHANNELS = 2
#: Gradio's upload limit (checked before a file reaches any callback).
MAX_FILE_SIZE = "50mb"

#: A sample at or above this magnitude counts as clipped (``generate`` clamps to [-1, 1], so a
#: network that overshoots leaves flat tops at full scale).
CLIP_LEVEL = 0.999
#: A waveform whose mean sits further than this from zero has a DC offset (removed, with a note).
DC_LEVEL = 0.01
#: A clip that clipped is brought to this peak (dB below full scale).
TARGET_PEAK_DB = -1.0
#: A clip whose peak is below this (dBFS) gets a warning: it is barely audible next to the others.
QUIET_DB = -40.0

#: The smallest text in a figure, in screen pixels at the width the figure is shown.
MIN_LABEL_PX = 10
#: Pixels per inch of the PNGs the plots are sent as (matplotlib's default figure dpi, which
#: ``savefig`` keeps): a figure made for ``width_px`` screen pixels is ``width_px * PLOT_DPI / 72`` wide.
PLOT_DPI = 100

#: Page style (``launch(css=...)``): tables never break a word (a model name such as
#: ``griffinlim`` stays on one line) and scroll sideways in a narrow column instead.
CSS = """
.wb-table { overflow-x: auto; }
.wb-table table { width: auto; border-collapse: collapse; }
.wb-table td, .wb-table th { word-break: keep-all; overflow-wrap: normal; hyphens: none;
                             padding: 2px 8px; vertical-align: top; text-align: left; }
.wb-table td:first-child, .wb-nowrap td { white-space: nowrap; }
.wb-table td.wb-num { text-align: right; white-space: nowrap; }
.wb-table table.wb-nowrap { font-size: 0.85em; }
.wb-table table.wb-nowrap td, .wb-table table.wb-nowrap th { padding: 2px 5px; }
"""


# ---- errors --------------------------------------------------------------------------------------
class Cancelled(Exception):
    """Raised inside a long computation when its user pressed Stop."""


def error(message: str) -> gr.Error:
    """A ``gr.Error`` with the message escaped (Gradio renders it as HTML)."""
    return gr.Error(html.escape(message, quote=False), print_exception=False)


@contextlib.contextmanager
def user_errors():
    """Turn the library's errors into ``gr.Error`` messages the user sees.

    Every :class:`~workbench.errors.WorkbenchError` already says what was received, what was
    expected and the fix, so its text goes to the user as it is.
    """
    try:
        yield
    except gr.Error:
        raise
    except Cancelled:
        raise error("stopped: the computation was cancelled") from None
    except WorkbenchError as exc:
        raise error(str(exc)) from None


# ---- models ---------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=8)
def load_cached(source: str):
    """A model loaded once per process: a registered name (shipped checkpoint) or a folder.

    Models are used only in ``eval()`` mode under ``torch.no_grad()``, so sessions can share them.
    """
    from workbench.models import load_model

    return load_model(source)


def model_sources(extra_checkpoints: dict | None = None) -> dict[str, str]:
    """Every model the studio can offer: label -> what :func:`load_cached` takes.

    Shipped checkpoints come first, then ``extra_checkpoints`` (label -> checkpoint folder).
    """
    from workbench.models import GenerativeModel, list_checkpoints, list_models

    audio = set(list_models(GenerativeModel))
    sources = {name: name for name in list_checkpoints() if name in audio}
    for label, path in (extra_checkpoints or {}).items():
        sources[str(label)] = str(Path(path))
    return sources


def available_models(extra_checkpoints: dict | None = None) -> tuple[dict, dict[str, str]]:
    """Load every source once: ``({label: model}, {label: reason it failed})``."""
    models, failures = {}, {}
    for label, source in model_sources(extra_checkpoints).items():
        try:
            models[label] = load_cached(source)
        except WorkbenchError as exc:
            failures[label] = str(exc)
    return models, failures


def vocoders(models: dict) -> dict:
    """The models that turn mel frames into a waveform (those declaring :class:`Vocoder`)."""
    return {label: m for label, m in models.items() if isinstance(m, Vocoder)}


def frames_from_clip(model, name: str, audio: Audio):
    """The ``name`` frames (``mel``, ``f0_hz``, ``loudness_db``) that ``model`` measures on ``audio``.

    Returns
    -------
    Tensor ``(..., frames)`` for one clip.

    Raises
    ------
    WorkbenchError
        The model cannot measure these frames on a clip (it does not declare :class:`ClipFrames`).
    """
    if not isinstance(model, ClipFrames):
        raise WorkbenchError(f"{model.name} cannot measure {name!r} frames on a clip; pick the '(none)' choice")
    mono = audio.resample(model.sample_rate).to_mono()
    return model.frames_from_clip(name, mono.samples[0, 0])


def clip_frames(model: ClipFrames, audio: Audio) -> dict:
    """Every dense conditioning ``model`` measures on ``audio`` (a vocoder's mel, and the f0 of its
    source where it has one): a ``cond`` dict."""
    mono = audio.resample(model.sample_rate).to_mono()
    return model.clip_frames(mono.samples[0, 0])


# ---- clips -----------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _examples() -> dict[str, Audio]:
    from workbench.data import examples

    return examples()


def example_names() -> list[str]:
    """Names of the clips shipped in ``assets/audio/``."""
    return list(_examples())


def example_clip(name: str, sample_rate: int = LAB_SAMPLE_RATE) -> Audio:
    """An example clip (mono) at ``sample_rate``."""
    clips = _examples()
    if name not in clips:
        raise error(f"no example clip named {name!r}; choose one of {', '.join(clips)}")
    return clips[name].resample(sample_rate)


def read_clip(path, sample_rate: int = LAB_SAMPLE_RATE, max_seconds: float = MAX_INPUT_SECONDS) -> Audio:
    """An uploaded or recorded file as mono ``Audio`` at ``sample_rate``, or a clear ``gr.Error``.

    Refuses what is not audio, empty, shorter than :data:`MIN_INPUT_SECONDS`, longer than
    ``max_seconds``, silent, NaN-filled, with more than two channels, or above
    :data:`MAX_INPUT_SAMPLE_RATE`.
    """
    if path is None:
        raise error("no clip given: pick an example, upload a file or record one")
    name = Path(str(path)).name
    try:
        audio = Audio.load(path, max_seconds=max_seconds)
    except AudioError as exc:  # the message names the server's temp path: show the file name only
        if "NaN or infinite" in str(exc):  # the library's fix (torch.nan_to_num) means nothing here
            raise error(f"{name!r} holds NaN or infinite samples (not numbers): the file is damaged or was "
                        "written by a computation that failed. Export it again from your audio editor "
                        "as 16-bit wav, or pick an example clip instead") from None
        raise error(str(exc).replace(str(path), name)) from None
    except Exception as exc:  # a file soundfile accepts in its header but cannot decode
        raise error(f"{name!r} could not be decoded as audio ({type(exc).__name__}); "
                    "pass a wav, flac, ogg or mp3 file") from None
    if audio.n_channels > MAX_INPUT_CHANNELS:
        raise error(f"{name!r} has {audio.n_channels} channels; the studio takes mono or stereo; "
                    "mix it down first")
    if audio.sample_rate > MAX_INPUT_SAMPLE_RATE:
        raise error(f"{name!r} is sampled at {audio.sample_rate} Hz; the studio takes up to "
                    f"{MAX_INPUT_SAMPLE_RATE} Hz; resample it first (e.g. to 48000 Hz)")
    if audio.seconds < MIN_INPUT_SECONDS:
        raise error(f"{name!r} is {1000 * audio.seconds:.0f} ms long; pass at least "
                    f"{1000 * MIN_INPUT_SECONDS:.0f} ms")
    if float(audio.samples.abs().max()) == 0.0:
        raise error(f"{name!r} is completely silent; pass a clip with some sound in it")
    return audio.to_mono().resample(sample_rate)


def choose_clip(example: str | None, upload, sample_rate: int = LAB_SAMPLE_RATE) -> tuple[Audio, str]:
    """The upload or recording when there is one, else the example: ``(audio, description)``."""
    if upload is not None:
        return read_clip(upload, sample_rate), f"your clip ({Path(str(upload)).name})"
    if not example:
        raise error("no clip given: pick an example, upload a file or record one")
    return example_clip(example, sample_rate), f"example '{example}'"


# ---- audio out ------------------------------------------------------------------------------------
def to_gradio(audio: Audio, index: int = 0) -> tuple[int, np.ndarray]:
    """``(sample_rate, int16 samples)``: what ``gr.Audio`` plays without rescaling."""
    return audio.sample_rate, audio.to_int16(index)


class LiveStream:
    """The chunks of one clip as a streaming ``gr.Audio`` takes them, so the first plays at once.

    Gradio streams audio as AAC, whose encoder holds back a few frames of 1024 samples and
    starts its process on the first chunk. At 8 kHz those frames are 128 ms each and a first
    chunk of a quarter second comes out of the encoder only with the next one; at
    :attr:`RATE` a frame is 21 ms. So the stream opens with :meth:`start` (a few milliseconds of
    silence, which starts the encoder while the model samples), and each chunk is raised to an
    integer multiple of its rate near :attr:`RATE` by linear interpolation from the last sample
    of the chunk before (the first from silence, where every clip starts). The player is a
    preview: the finished clip goes to its own player as it is.
    """

    RATE = 48_000
    START_SECONDS = 0.02

    def __init__(self, sample_rate: int):
        self.factor = max(1, round(self.RATE / sample_rate))
        self.sample_rate = sample_rate * self.factor
        self._last = 0.0

    def start(self) -> tuple[int, np.ndarray]:
        """The silence that opens the stream."""
        return self.sample_rate, np.zeros(int(self.START_SECONDS * self.sample_rate), np.int16)

    def chunk(self, audio: Audio) -> tuple[int, np.ndarray]:
        """The next chunk ``(1, 1, time)`` of the clip (its first item), at :attr:`sample_rate`, int16."""
        x = audio.samples[0, 0].double().numpy()
        before = np.concatenate([[self._last], x[:-1]])  # the sample each one is approached from
        steps = np.arange(1, self.factor + 1) / self.factor
        y = (before[:, None] + (x - before)[:, None] * steps[None, :]).reshape(-1)  # (time * factor,)
        self._last = float(x[-1])
        return self.sample_rate, np.round(np.clip(y, -1.0, 1.0) * 32767).astype(np.int16)


def playable(audio: Audio, limit: float = 1.0) -> tuple[Audio, float]:
    """Scale down a clip that would clip; return it and the gain applied (1.0 when untouched)."""
    peak = float(audio.samples.abs().max())
    if peak <= limit:
        return audio, 1.0
    gain = limit / peak
    return audio.with_samples(audio.samples * gain), gain


@dataclass(frozen=True)
class Levels:
    """What :func:`check_levels` found in a clip and did about it.

    Attributes
    ----------
    peak : float
        Largest absolute sample of the clip as generated.
    n_clipped : int
        Samples at or above :data:`CLIP_LEVEL`.
    dc : float
        Mean of the clip as generated (removed when beyond :data:`DC_LEVEL`).
    gain_db : float
        Gain applied (0 when only the DC offset, or nothing, was changed).
    notes : tuple of str
        One line per finding, for the page.
    """

    peak: float
    n_clipped: int
    dc: float
    gain_db: float
    notes: tuple[str, ...]


def _db(x: float) -> float:
    return 20 * math.log10(max(x, 1e-12))


def check_levels(audio: Audio, index: int = 0) -> tuple[Audio, Levels]:
    """Check item ``index`` for clipping, a DC offset and silence; return it fixed and what was done.

    A DC offset (mean beyond :data:`DC_LEVEL`) is removed; a clip with samples at full scale
    (:data:`CLIP_LEVEL`), or one that removing the offset pushed past it, is scaled to
    :data:`TARGET_PEAK_DB`. Nothing is ever made louder: a quiet clip only gets a warning, so
    levels stay comparable between models.

    Returns
    -------
    ``(Audio (1, 1, time), Levels)``: the clip as it should be played, and the notes.

    Examples
    --------
    >>> import torch
    >>> fixed, levels = check_levels(Audio(torch.tensor([0.0, 1.0, -1.0, 0.0]), 8000))
    >>> levels.n_clipped, round(levels.gain_db, 1), round(float(fixed.samples.abs().max()), 3)
    (2, -1.0, 0.891)
    """
    item = audio[index]
    x = item.samples.double()
    peak, dc = float(x.abs().max()), float(x.mean())
    n_clipped = int((x.abs() >= CLIP_LEVEL).sum())
    notes = []
    if peak == 0.0:
        return item, Levels(0.0, 0, 0.0, 0.0, ("the output is silent: every sample is zero",))
    if abs(dc) > DC_LEVEL:
        x = x - dc
        notes.append(f"removed a DC offset of {dc:+.3f} (the waveform's mean sat off zero: it wastes "
                     "headroom and clicks when playback starts and stops)")
    gain_db = 0.0
    after = float(x.abs().max())
    if n_clipped or after >= CLIP_LEVEL:
        gain_db = TARGET_PEAK_DB - _db(after)
        x = x * 10 ** (gain_db / 20)
        if n_clipped:
            why = (f"the model's output clipped: {n_clipped:,} samples ({100 * n_clipped / x.shape[-1]:.1f}%) "
                   f"sat at full scale (peak {peak:.3f}); generate clamps to [-1, 1], so those peaks are "
                   "flattened, and this only lowers the level")
        else:
            why = f"the output peaked at {after:.3f} once its DC offset was removed"
        notes.append(f"normalised by {gain_db:+.1f} dB to a {TARGET_PEAK_DB:g} dBFS peak: {why}")
    elif _db(peak) < QUIET_DB:
        notes.append(f"very quiet: the peak is {_db(peak):.0f} dBFS (left as made, so levels stay comparable; "
                     "turn your volume up)")
    return item.with_samples(x.float()), Levels(peak, n_clipped, dc, gain_db, tuple(notes))


@functools.lru_cache(maxsize=64)
def reference_note(instrument: str, pitch: int, velocity: int, seconds: float, sample_rate: int):
    """The same note from the real dataset (SoundFont notes), or ``None`` plus why not.

    Returns
    -------
    ``(Audio or None, message)``.
    """
    from workbench.data import SOUNDFONT_PROGRAMS, Notes

    if instrument not in SOUNDFONT_PROGRAMS:
        return None, f"the SoundFont dataset has no instrument {instrument!r}"
    try:
        notes = Notes(source="soundfont", instruments=(instrument,), pitches=(int(pitch),),
                      velocities=(int(velocity),), seconds=float(seconds), sample_rate=int(sample_rate))
        return notes.audio(0), ""
    except MissingDependencyError as exc:
        return None, str(exc)


# ---- long computations ---------------------------------------------------------------------------
class CancelFlags:
    """Which sessions asked to stop their running computation (one per Blocks, thread-safe).

    Gradio's ``cancels=`` stops waiting for an event, but a computation running in a worker
    thread goes on; the computation's progress callback checks these flags and stops it.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._flags: set[str] = set()

    def reset(self, session: str) -> None:
        with self._lock:
            self._flags.discard(session)

    def cancel(self, session: str) -> None:
        with self._lock:
            self._flags.add(session)

    def check(self, session: str) -> None:
        """Raise :class:`Cancelled` if ``session`` pressed Stop."""
        with self._lock:
            stop = session in self._flags
            self._flags.discard(session)
        if stop:
            raise Cancelled(session)


def streams(model) -> bool:
    """Whether the studio plays ``model``'s clip while it samples the rest: the model declares
    :class:`~workbench.models.capabilities.Streaming`, and ffmpeg is installed (Gradio encodes
    streamed audio with it). Otherwise the clip plays when it is finished."""
    return isinstance(model, Streaming) and shutil.which("ffmpeg") is not None


#: The name of :func:`read_ahead`'s worker threads.
READ_AHEAD_THREAD = "workbench-read-ahead"


def read_ahead(items):
    """Start computing the items of the iterator ``items`` in a worker thread; return an iterator
    that yields them in order as they come.

    A model's ``generate_stream`` samples a chunk when it is asked for one, and Gradio asks for
    the next only once it has encoded and sent the last; read ahead, the model keeps sampling
    meanwhile, so streaming does not make the whole clip later. The worker runs in a copy of the
    caller's context (Gradio's progress bar finds its event there). An error in the worker is
    raised by the returned iterator. To stop the worker early, make ``items`` raise (the
    studio's progress callback raises once Stop is pressed).
    """
    ready: queue.Queue = queue.Queue()
    end = object()

    def work():
        try:
            for item in items:
                ready.put((item, None))
        except Exception as exc:  # handed to the consumer, which raises it
            ready.put((None, exc))
        finally:
            ready.put((end, None))

    threading.Thread(target=contextvars.copy_context().run, args=(work,), name=READ_AHEAD_THREAD, daemon=True).start()

    def drain():
        while True:
            item, exc = ready.get()
            if exc is not None:
                raise exc
            if item is end:
                return
            yield item

    return drain()


def session_of(request) -> str:
    """The session id of a ``gr.Request`` (a fixed key when called outside a request)."""
    return getattr(request, "session_hash", None) or "local"


def progress_callback(progress, flags: CancelFlags, session: str, desc: str):
    """A model's ``progress(done, total)`` that drives ``gr.Progress`` and honours Stop."""

    def callback(done: int, total: int) -> None:
        flags.check(session)
        if progress is not None:
            progress((int(done), int(total)), desc=desc, unit="samples")

    return callback


def parameter_names(names) -> list[str]:
    """Python names for API parameters: ``f0_hz`` stays, ``x-y`` becomes ``x_y``, repeats get ``_2``."""
    out = []
    for name in names:
        clean = re.sub(r"\W+", "_", str(name)).strip("_") or "value"
        if clean[0].isdigit() or keyword.iskeyword(clean) or clean in ("progress", "request"):
            clean = "value_" + clean
        candidate, i = clean, 2
        while candidate in out:
            candidate, i = f"{clean}_{i}", i + 1
        out.append(candidate)
    return out


def with_named_inputs(names, handler):
    """Wrap ``handler(values, progress, request)`` as a function of one parameter per name.

    Gradio finds ``gr.Progress`` and ``gr.Request`` by inspecting a callback's positional
    parameters, and names an endpoint's API parameters after them; a callback over a model's own
    list of controls (its CondSpecs) gets a signature with one parameter per control, named after
    the control (``pitch``, ``instrument``, ``seconds``...), so ``gradio_client`` callers can pass
    them by name. A generator ``handler`` (one that yields outputs as they come) stays a generator,
    which is how Gradio knows to send each yield at once.
    """

    if inspect.isgeneratorfunction(handler):
        def callback(*args):
            *values, progress, request = args
            yield from handler(values, progress, request)
    else:
        def callback(*args):
            *values, progress, request = args
            return handler(values, progress, request)

    params = [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD)
              for name in parameter_names(names)]
    params.append(inspect.Parameter("progress", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                    default=gr.Progress()))
    params.append(inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                    default=None, annotation=gr.Request))
    callback.__signature__ = inspect.Signature(params)
    callback.__annotations__ = {"request": gr.Request}
    return callback


def endpoint(prefix: str, label: str) -> str:
    """An API name such as ``generate_wavenet`` for a model label (letters, digits, ``_``)."""
    return prefix + "_" + re.sub(r"[^0-9a-zA-Z_]+", "_", label)


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A small Markdown table (cells escaped)."""
    def cell(value) -> str:
        return html.escape(str(value)).replace("|", "\\|")

    lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
    return "\n".join(lines)


def html_table(header: list[str], rows: list[list], numeric: set[int] = frozenset(), links: set[int] = frozenset(),
               nowrap: bool = False) -> str:
    """An HTML table in the studio's style (class ``wb-table``: no word breaks; cells escaped).

    Columns in ``numeric`` are right-aligned; cells of columns in ``links`` are ``(text, url)``
    pairs (a plain string where there is no link). With ``nowrap`` no cell wraps at all (the table
    scrolls sideways where the page is narrow).
    """
    def cell(i: int, value) -> str:
        cls = ' class="wb-num"' if i in numeric else ""
        if i in links and isinstance(value, tuple):
            text, url = value
            return (f'<td{cls}><a href="{html.escape(url)}" target="_blank" rel="noopener">'
                    f"{html.escape(str(text))}</a></td>")
        return f"<td{cls}>{html.escape(str(value))}</td>"

    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(cell(i, v) for i, v in enumerate(row)) + "</tr>" for row in rows)
    table_class = ' class="wb-nowrap"' if nowrap else ""
    return (f'<div class="wb-table"><table{table_class}><thead><tr>{head}</tr></thead><tbody>{body}</tbody>'
            "</table></div>")


# ---- figures and page events ---------------------------------------------------------------------
def legible(fig, width_px: float):
    """Size ``fig`` to be shown ``width_px`` screen pixels wide with every label >= :data:`MIN_LABEL_PX`.

    The figure keeps its aspect ratio; its width becomes ``width_px`` points (so a point is a
    screen pixel where it is shown that wide) and any text smaller than :data:`MIN_LABEL_PX`
    points is enlarged to it. Saved at the figure's dpi (:data:`PLOT_DPI`). Returns ``fig``.
    """
    from matplotlib.text import Text

    width_in, height_in = fig.get_size_inches()
    new_width = width_px / 72
    fig.set_size_inches(new_width, height_in * new_width / width_in)
    for text in fig.findobj(Text):
        if text.get_text() and text.get_fontsize() < MIN_LABEL_PX:
            text.set_fontsize(MIN_LABEL_PX)
    return fig


def on_load(fn, outputs, inputs=None, **kwargs) -> None:
    """Run ``fn`` when the page opens (``Blocks.load`` of the Blocks being built).

    Lets a tab show a result for its default settings at once instead of empty plots.
    """
    from gradio.context import Context

    root = Context.root_block
    if root is None:  # built outside a Blocks: nothing to attach to
        return
    root.load(fn, inputs, outputs, api_visibility="private", **kwargs)
