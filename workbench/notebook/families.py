"""The survey's table of model families, measured on the shipped checkpoints rather than typed.

For every model that ships a checkpoint (and the published model beside each aided variant, even
before its checkpoint exists) :func:`measure_model` times one voice, scores held-out notes in
bits per sample where the model has a likelihood, and generates a few notes to measure how
different the draws for one condition are (:func:`diversity`), whether they have the asked pitch
(pYIN) and how clean they are (:func:`workbench.metrics.harmonic_share`).

Notebook: notebooks/00_tour.ipynb
"""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import torch

from ..errors import ParameterError
from .display import Table

#: The order of the survey: likelihood-based families first, then adversarial, then the rest.
FAMILY_ORDER = ("autoregressive", "flow", "latent", "diffusion", "adversarial", "dsp", "spectral")


def diversity(clips, sample_rate: int) -> float:
    """Mean pairwise distance between clips: the mean absolute difference of their log-mel
    spectrograms (80 bands, ``n_fft`` 1024, hop 256), as ``benchmarks/adversarial.py`` measures it.

    Parameters
    ----------
    clips : Audio batch, or a list of Audio / tensors ``(time,)``
        At least two; compared over the shortest length.

    Raises
    ------
    ParameterError
        Fewer than two clips.

    Examples
    --------
    >>> import torch
    >>> tone = torch.sin(torch.arange(8000) * 0.1)
    >>> diversity([tone, tone], 16000)
    0.0
    """
    from ..audio import Audio
    from ..dsp.spectral import log_mel

    if isinstance(clips, Audio):
        clips = [clips.samples[i].mean(0) for i in range(clips.batch_size)]
    flat = [c.samples[0].mean(0) if isinstance(c, Audio) else torch.as_tensor(c).reshape(-1) for c in clips]
    if len(flat) < 2:
        raise ParameterError(f"diversity needs at least two clips, got {len(flat)}")
    n = min(c.shape[-1] for c in flat)
    mels = [log_mel(c[:n].float(), sample_rate, 1024, 256, 80) for c in flat]
    return float(np.mean([float((a - b).abs().mean()) for a, b in itertools.combinations(mels, 2)]))


def published_partner(name: str) -> str | None:
    """The registered published model an aided variant is built on (``wavenet+source`` ->
    ``wavenet``), found through the class hierarchy; None for a model without an added aid."""
    from ..models import REGISTRY, model_class
    from ..models.base import GenerativeModel

    cls = model_class(name)
    if not issubclass(cls, GenerativeModel) or cls.aid is None or cls.aid.in_paper:
        return None  # a model of notes, or no added aid
    for base in cls.__mro__[1:]:
        if not (isinstance(base, type) and issubclass(base, GenerativeModel)):
            continue
        if base.name in REGISTRY and model_class(base.name) is base and (base.aid is None or base.aid.in_paper):
            return base.name
    return None


def table_models() -> list[str]:
    """The models of the table: every shipped model of audio, with the published model listed just
    before its aided variant (whether or not it ships a checkpoint yet), in survey order."""
    from ..models import REGISTRY, list_checkpoints, model_class
    from ..models.base import GenerativeModel

    shipped = [n for n in list_checkpoints() if issubclass(model_class(n), GenerativeModel)]
    names: list[str] = []
    for name in shipped:
        partner = published_partner(name)
        for n in ((partner, name) if partner else (name,)):
            if n not in names:
                names.append(n)
    rank = {f: i for i, f in enumerate(FAMILY_ORDER)}
    order = {n: i for i, n in enumerate(REGISTRY)}  # the registry lists the published models first
    return sorted(names, key=lambda n: (rank.get(model_class(n).family, len(rank)),
                                        order[published_partner(n) or n], published_partner(n) is not None))


def _conditions(model, n_conditions: int) -> list[dict]:
    from ..evaluate import evaluation_notes

    grid, _ = evaluation_notes(model)
    if not grid:
        return []
    step = max(1, len(grid) // n_conditions)
    return grid[::step][:n_conditions]


def measure_model(name: str, n_conditions: int = 2, n_draws: int = 2, seconds: float = 0.5,
                  speed_seconds: float = 1.0, bits_notes: int = 2, seed: int = 0) -> dict:
    """One row of the family table, measured now on the shipped checkpoint of ``name``.

    1. speed: ``speed_seconds`` of audio for one voice, timed on the second call (the first one
       pays for compilation and caches), as seconds of audio per second of compute;
    2. bits per sample: mean of ``log_prob`` over ``bits_notes`` held-out notes (likelihood models);
    3. ``n_conditions`` held-out conditions x ``n_draws`` draws of ``seconds`` each, in one batch
       at the model's default temperature: pitch accuracy (pYIN within 50 cents), harmonic share,
       and diversity, the mean over conditions of :func:`diversity` among its draws (None where the
       model makes one output per condition).

    Returns
    -------
    dict with ``name``, ``family``, ``aid``, ``likelihood``, ``shipped`` and, when shipped,
    ``real_time_factor``, ``bits_per_sample``, ``diversity``, ``pitch_accuracy``,
    ``harmonic_share``, ``n_notes``, ``card_pitch_accuracy``, ``seconds_taken``.
    """
    from ..dsp.synth import midi_to_hz
    from ..evaluate import held_out_bits
    from ..metrics import cents_error, harmonic_share, median_f0
    from ..models import has_checkpoint, load_card, load_model, model_class

    cls = model_class(name)
    row = {"name": name, "family": cls.family, "likelihood": cls.likelihood, "sample_rate": None,
           "aid": cls.aid.kind + ("" if not cls.aid.in_paper else " (in the paper)") if cls.aid else "none",
           "shipped": has_checkpoint(name)}
    if not row["shipped"]:
        return row
    began = time.perf_counter()
    model = load_model(name)
    row["sample_rate"] = model.sample_rate
    longest = model.max_seconds or math.inf
    # 1. speed, warm: the first call compiles (WaveNet's kernel) and fills caches
    speed_seconds = min(speed_seconds, longest)
    model.generate(1, seconds=min(0.05, speed_seconds), generator=seed)
    start = time.perf_counter()
    model.generate(1, seconds=speed_seconds, generator=seed)
    row["real_time_factor"] = speed_seconds / (time.perf_counter() - start)
    # 2. bits per sample on held-out notes
    row["bits_per_sample"] = held_out_bits(model, max_notes=bits_notes) if model.likelihood != "none" else None
    # 3. a few notes: n_draws of each condition, one batch
    conds = _conditions(model, n_conditions)
    row.update(pitch_accuracy=None, harmonic_share=None, diversity=None, n_notes=0)
    if conds:
        batch = [c for c in conds for _ in range(n_draws)]
        cond = {k: [c[k] for c in batch] for k in batch[0]}
        audio = model.generate(len(batch), seconds=min(seconds, longest), cond=cond, generator=seed)
        hits, shares = [], []
        for i, c in enumerate(batch):
            midi = c["pitch"]
            f0 = median_f0(audio[i], fmin=max(30.0, midi_to_hz(midi - 12)), fmax=midi_to_hz(midi + 12))
            error = cents_error(f0, midi)
            hits.append(bool(np.isfinite(error) and abs(error) <= 50.0))
            share = harmonic_share(audio[i], midi)
            shares.append(0.0 if math.isnan(share) else share)
        row.update(pitch_accuracy=float(np.mean(hits)), harmonic_share=float(np.mean(shares)), n_notes=len(batch))
        if model.stochastic and n_draws > 1:
            row["diversity"] = float(np.mean([
                diversity([audio[j] for j in range(k * n_draws, (k + 1) * n_draws)], model.sample_rate)
                for k in range(len(conds))]))
    row["card_pitch_accuracy"] = load_card(name).get("metrics", {}).get("pitch_accuracy")
    row["seconds_taken"] = time.perf_counter() - began
    return row


def real_spread(model, cond: dict, seconds: float) -> float:
    """:func:`diversity` of the real notes nearest ``cond`` in ``model``'s data: the same instrument,
    pitches within two semitones, every velocity, cut to ``seconds``, at the model's sample rate."""
    from ..data import Notes

    c = model.config
    low, high = c.pitch_range
    pitches = range(max(low, cond["pitch"] - 2), min(high, cond["pitch"] + 2) + 1)
    notes = Notes(source=c.data_source, instruments=(cond.get("instrument", c.instruments[0]),),
                  pitches=pitches, velocities=c.velocities, seconds=c.note_seconds, sample_rate=c.sample_rate)
    n = int(seconds * c.sample_rate)
    return diversity([notes[i][0][0, :n] for i in range(len(notes))], c.sample_rate)


def real_diversity(name: str, n_conditions: int = 2, seconds: float = 0.5) -> float | None:
    """:func:`real_spread` for each of the held-out conditions :func:`measure_model` uses, averaged:
    the yardstick for the models' diversity (None when ``name`` ships no checkpoint)."""
    from ..models import has_checkpoint, load_model

    if not has_checkpoint(name):
        return None
    model = load_model(name)
    values = [real_spread(model, cond, seconds) for cond in _conditions(model, n_conditions)]
    return float(np.mean(values)) if values else None


def spread_against_real(model, cond: dict, n_draws: int = 8, seconds: float | None = None, seed: int = 0) -> dict:
    """How different ``n_draws`` draws of ``model`` for one condition are, against real notes near it.

    Returns
    -------
    dict: ``model`` and ``real`` (:func:`diversity`), ``ratio`` (model / real), ``audio`` (the draws),
    ``seconds``.
    """
    if n_draws < 2:
        raise ParameterError(f"n_draws={n_draws} must be at least 2 to measure a spread")
    seconds = min(seconds or model.default_seconds, model.max_seconds or math.inf)
    audio = model.generate(n_draws, seconds=seconds, cond=cond, generator=seed)
    own = diversity(audio, model.sample_rate)
    real = real_spread(model, cond, seconds)
    return {"model": own, "real": real, "ratio": own / real if real > 0 else math.nan, "audio": audio,
            "seconds": seconds}


#: The table's columns: (row key, header, format).
COLUMNS = (
    ("family", "family", "{}"), ("name", "model", "{}"), ("aid", "aid", "{}"),
    ("likelihood", "likelihood", "{}"), ("sample_rate", "kHz", "{:.3g}"), ("real_time_factor", "x real time", "{:.3g}"),
    ("bits_per_sample", "bits/sample", "{:.2f}"), ("diversity", "diversity", "{:.2f}"),
    ("pitch_accuracy", "pitch accuracy", "{:.0%}"), ("harmonic_share", "harmonic share", "{:.0%}"),
    ("card_pitch_accuracy", "card: pitch accuracy", "{:.0%}"),
)


def family_table(rows: list[dict], real: float | None = None) -> Table:
    """:func:`measure_model` rows as a :class:`Table`, with a note on what each column means."""
    cells = []
    for row in rows:
        if not row.get("shipped", True):
            cells.append([row["family"], row["name"], row["aid"], row["likelihood"], None,
                          "no checkpoint yet", *[None] * (len(COLUMNS) - 6)])  # nothing to measure yet
            continue
        line = []
        for key, _, fmt in COLUMNS:
            value = row.get(key)
            if value is None and key == "bits_per_sample" and row["likelihood"] == "none":
                line.append("n/a")
            elif value is None and key == "diversity" and row.get("n_notes"):
                line.append("n/a")
            elif key == "sample_rate":
                line.append(fmt.format(value / 1000))
            else:
                line.append(None if value is None else fmt.format(value))
        cells.append(line)
    n_notes = max((r.get("n_notes", 0) for r in rows), default=0)
    notes = [
        "x real time: seconds of audio per second of compute, one voice, timed after a warm-up call.",
        "bits/sample: held-out notes (exact for autoregressive models and flows, a bound for VAEs); "
        "n/a: no likelihood. Compare bits only at the same sample rate (kHz).",
        "diversity: mean pairwise log-mel distance between draws for one condition"
        + (f" (real notes of those conditions: {real:.2f})" if real is not None else "") + ".",
        f"pitch accuracy, harmonic share: {n_notes} notes generated now; the card's pitch accuracy "
        "comes from `workbench evaluate` over the whole test split.",
    ]
    return Table([h for _, h, _ in COLUMNS], cells, notes=notes)


def speed_comparison(wavenet_row: dict, samplernn_row: dict) -> str:
    """Why one autoregressive model samples faster than the other here, worded by the measured speeds."""
    a, b = wavenet_row.get("real_time_factor"), samplernn_row.get("real_time_factor")
    if a is None or b is None:
        missing = wavenet_row["name"] if a is None else samplernn_row["name"]
        return f"{missing} ships no checkpoint yet, so there is nothing to compare."
    head = (f"{wavenet_row['name']} makes {a:.2g} s of audio per second, {samplernn_row['name']} {b:.2g} s: ")
    if a > 1.2 * b:
        return head + (f"WaveNet is {a / b:.1f} times faster here, although SampleRNN runs its big tiers only every "
                       "2 and 8 samples. WaveNet samples with a compiled kernel (numba): one loop per step, the "
                       "layers' past kept in ring buffers. SampleRNN takes PyTorch steps, a few dozen small tensor "
                       "operations per sample whose overhead dwarfs their arithmetic.")
    if b > 1.2 * a:
        return head + (f"SampleRNN is {b / a:.1f} times faster here: its big tiers run only every 2 and 8 samples, "
                       "which outweighs WaveNet's compiled kernel on this machine.")
    return head + "about the same speed here; WaveNet's compiled kernel and SampleRNN's slow tiers even out."
