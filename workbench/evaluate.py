"""Model zoo metrics: pitch accuracy and clean sound (harmonic share) of generated notes, held-out
bits per sample, speed, size.

``workbench evaluate NAME --write-card`` measures a checkpoint and stores the numbers in its
``card.json`` under ``"metrics"`` (evaluate owns that section and rewrites it whole); the app's
model zoo and the README read them from there. Benchmarks store theirs under
``"benchmarks"`` (:func:`write_benchmark`). Every number is measured on the test split, at the
model's default temperature, and :func:`reproduce_card` measures it again.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from .dsp.synth import midi_to_hz
from .metrics import cents_error, harmonic_share, median_f0
from .models import checkpoint_dir, list_checkpoints, load_card, load_model, model_class
from .models.base import GenerativeModel
from .models.capabilities import LatentModel
from .models.midi2wave import Midi2Wave


def evaluation_notes(model: GenerativeModel, split: str = "test") -> tuple[list[dict], str]:
    """The conditions a card's pitch numbers are measured on: one per note of the ``test`` split.

    The notes are the model's own held-out ones (by hash of the note, disjoint from the
    ``validation`` notes training chooses checkpoints on, and from the training notes). A grid too
    small to hold out any note (the tiny presets) falls back to :func:`pitch_grid`.

    Returns
    -------
    ``(conditions, where they come from)``; conditions hold ``pitch`` and, where the model takes
    them, ``instrument`` and ``velocity``.
    """
    from .train import make_dataset

    specs = {s.name for s in model.conditioning}
    if "pitch" not in specs:
        return [], "none"
    notes = make_dataset(model, "notes", split)
    conds = []
    for instrument, pitch, velocity in notes.items:
        cond = {"pitch": pitch}
        if "instrument" in specs:
            cond["instrument"] = instrument
        if "velocity" in specs:
            cond["velocity"] = velocity
        if cond not in conds:
            conds.append(cond)
    if conds:
        return conds, f"the {split} split's notes"
    return pitch_grid(model), f"a pitch grid (the {split} split of this small note grid is empty)"


def pitch_grid(model: GenerativeModel, n_pitches: int = 5) -> list[dict]:
    """A fixed grid of conditions: ``n_pitches`` evenly spread pitches x every instrument."""
    specs = {s.name: s for s in model.conditioning}
    if "pitch" not in specs:
        return []
    low, high = specs["pitch"].range
    pitches = sorted({int(round(p)) for p in np.linspace(low, high, n_pitches)})
    instruments = specs["instrument"].choices if "instrument" in specs else (None,)
    grid = []
    for inst in instruments:
        for p in pitches:
            cond = {"pitch": p}
            if inst is not None:
                cond["instrument"] = inst
            grid.append(cond)
    return grid


def measure_pitch(model: GenerativeModel, grid: list[dict], seeds=(0,), seconds: float | None = None,
                  temperature: float | None = None, tolerance_cents: float = 50.0, progress=None) -> dict:
    """Generate one note per grid entry and seed; pyin each.

    Each note is drawn on its own (batch 1, the generator seeded with ``seed``), so any one of
    them can be drawn again alone: :func:`reproduce_card` checks a card by redrawing a few.
    ``temperature`` defaults to the model's ``default_temperature``.

    Returns
    -------
    dict with ``pitch_accuracy`` (share within ``tolerance_cents``), ``harmonic_share`` (mean over
    the notes of :func:`workbench.metrics.harmonic_share`: energy at the asked pitch's harmonics)
    and per-note ``notes``.
    """
    seconds = seconds or float(model.config.note_seconds)
    temperature = model.default_temperature if temperature is None else temperature
    notes = [score_note(model, g, seed, seconds, temperature, tolerance_cents, progress)
             for seed in seeds for g in grid]
    return {"pitch_accuracy": float(np.mean([n["hit"] for n in notes])),
            "harmonic_share": mean_share(notes),
            "notes": notes, "tolerance_cents": tolerance_cents, "temperature": temperature, "seconds": seconds}


def score_note(model: GenerativeModel, note: dict, seed: int, seconds: float, temperature: float,
               tolerance_cents: float = 50.0, progress=None) -> dict:
    """Draw one note (``note`` holds its pitch, instrument, velocity) with ``seed``; what pYIN hears."""
    cond = {k: [note[k]] for k in ("pitch", "instrument", "velocity") if k in note}
    audio = model.generate(1, seconds=seconds, cond=cond, temperature=temperature, generator=seed,
                           progress=progress)[0]
    midi = note["pitch"]
    f = median_f0(audio, fmin=max(30.0, midi_to_hz(midi - 12)), fmax=midi_to_hz(midi + 12))
    err = cents_error(f, midi)
    share = harmonic_share(audio, midi)
    return {**{k: note[k] for k in cond}, "seed": seed, "f0_hz": None if math.isnan(f) else round(f, 2),
            "cents": None if math.isnan(err) else round(err, 1),
            "hit": bool(np.isfinite(err) and abs(err) <= tolerance_cents),
            "harmonic_share": None if math.isnan(share) else round(share, 4)}


def mean_share(notes: list[dict]) -> float:
    """The mean harmonic share of scored notes (a note pYIN could not measure counts 0)."""
    return round(float(np.mean([0.0 if n["harmonic_share"] is None else n["harmonic_share"] for n in notes])), 4)


def reconstruction_pitch(model: GenerativeModel, max_notes: int = 20, tolerance_cents: float = 50.0) -> dict:
    """Pitch accuracy of ``decode(encode(note))`` on held-out notes: a latent model's decoder given
    the latents of a real note, against :func:`measure_pitch`'s draws from the prior.

    A VAE whose prior samples hold no pitch can still rebuild a note from its posterior: then the
    decoder works and the prior's latents are what it cannot use.
    """
    from .audio import Audio
    from .train import make_dataset

    test_set = make_dataset(model, "notes", "test")
    hits = []
    for i in range(min(len(test_set), max_notes)):
        samples, cond = test_set[i]
        with torch.no_grad():
            audio = model.decode(model.encode(Audio(samples, model.sample_rate), cond))
        midi = cond["pitch"]
        err = cents_error(median_f0(audio, fmin=max(30.0, midi_to_hz(midi - 12)), fmax=midi_to_hz(midi + 12)), midi)
        hits.append(bool(np.isfinite(err) and abs(err) <= tolerance_cents))
    return {"reconstruction_pitch_accuracy": float(np.mean(hits)), "reconstruction_notes": len(hits)}


def held_out_bits(model: GenerativeModel, max_notes: int = 32) -> float | None:
    """Mean bits per sample of the model's first ``max_notes`` test items (notes, or segments of
    held-out pieces), each scored under the conditioning it comes with (None without a likelihood)."""
    items = held_out_bits_per_item(model, range(max_notes))
    return None if items is None else float(np.mean(items))


def held_out_bits_per_item(model: GenerativeModel, indices) -> list[float] | None:
    """Bits per sample of the test items at ``indices`` (those the split has), each under its own
    conditioning; None for a model without a likelihood."""
    if model.likelihood == "none":
        return None
    from .audio import Audio
    from .train import make_dataset

    test_set = make_dataset(model, "notes", "test")
    takes = {s.name for s in model.conditioning}
    values = []
    for i in indices:
        if i >= len(test_set):
            break
        samples, cond = test_set[i]
        cond = {k: v for k, v in cond.items() if k in takes}
        values.append(float(model.log_prob(Audio(samples, model.sample_rate), cond)[0]))
    return values


def score_loop(model: GenerativeModel, transcriber="transcriber", split: str = "test", max_pieces: int = 4,
               seconds: float = 8.0) -> dict:
    """How much of a score survives being played: a synthesiser of scores plays the first ``seconds``
    of held-out pieces, a transcriber writes down what it hears, and mir_eval scores that against
    the score (:func:`workbench.pipeline.loop`); FluidSynth's rendering of the same notes is the
    ceiling, measured the same way.
    """
    from .models.transcriber import note_f1
    from .pipeline import fluidsynth, transcribe
    from .train import make_dataset

    scores = make_dataset(model, "notes", split).scores
    ear = load_model(transcriber) if isinstance(transcriber, str) else transcriber
    rows = {"model": [], "fluidsynth": []}
    pieces = []
    for piece in scores.pieces[:max_pieces]:
        events = [e for e in piece.events if e.onset_seconds < seconds]
        played = model.play(events, generator=0)
        ceiling = fluidsynth(events, model.config.programs or piece.programs)
        rows["model"].append(note_f1(events, transcribe(played, model=ear)))
        rows["fluidsynth"].append(note_f1(events, transcribe(ceiling, model=ear)))
        pieces.append(piece.id)
    out = {"loop_pieces": pieces, "loop_seconds": seconds}
    for who, found in rows.items():
        for key in ("onset_f1", "onset_offset_f1"):
            out[f"loop_{who}_{key}"] = round(float(np.mean([r[key] for r in found])), 4)
    return out


def measure_speed(model: GenerativeModel, seconds: float = 0.5, batch: int = 1, **kwargs) -> dict:
    """Samples per second and real-time factor of ``generate`` (one run, after a warm-up)."""
    model.generate(batch, seconds=min(seconds, 0.05), generator=0, **kwargs)
    began = time.perf_counter()
    audio = model.generate(batch, seconds=seconds, generator=0, **kwargs)
    took = time.perf_counter() - began
    per_second = audio.n_samples * batch / took
    return {"samples_per_second": round(per_second, 1),
            "real_time_factor": round(per_second / model.sample_rate, 3), "batch": batch,
            "threads": torch.get_num_threads()}


def evaluate_checkpoint(name_or_dir, *, write_card: bool = False, n_seeds: int = 1,
                        temperature: float | None = None, progress: bool = False) -> dict:
    """Measure a checkpoint; with ``write_card`` store the numbers in its card.json."""
    model = load_model(name_or_dir)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(desc=f"evaluate {model.name}", unit="sample", unit_scale=True)

    def tick(done, total):
        if bar is not None:
            bar.total = total
            bar.n = done
            bar.refresh()

    report: dict = {"model": model.name, "parameters": model.n_parameters}
    if isinstance(model, GenerativeModel):
        grid, where = evaluation_notes(model)
        if grid:
            report["notes_from"] = where
            report.update(measure_pitch(model, grid, seeds=tuple(range(n_seeds)), temperature=temperature,
                                        progress=tick))
            if report["temperature"] != 1.0:  # also as trained, for comparison with the other models
                report["pitch_accuracy_at_temperature_1"] = measure_pitch(
                    model, grid, seeds=tuple(range(n_seeds)), temperature=1.0)["pitch_accuracy"]
        if isinstance(model, LatentModel):
            report.update(reconstruction_pitch(model))
        bits = held_out_bits_per_item(model, range(HELD_OUT_ITEMS))
        if bits is not None:
            report["bits_per_sample"] = round(float(np.mean(bits)), 4)
            report["bits_per_item"] = [round(b, 4) for b in bits]
        if isinstance(model, Midi2Wave):
            report.update(score_loop(model))
        report.update(measure_speed(model))
    report.update(model.measure())
    report["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    if bar is not None:
        bar.close()
    report["seeds"] = list(range(n_seeds))
    report["reproduce_tolerance"] = REPRODUCE_TOLERANCE
    if write_card:
        card_file = _card_file(name_or_dir)
        card = json.loads(card_file.read_text()) if card_file.exists() else {}
        card["metrics"] = report  # evaluate owns this section: nothing stale or typed survives
        card["evaluate_command"] = f"workbench evaluate {name_or_dir} --seeds {n_seeds} --write-card"
        card_file.write_text(json.dumps(card, indent=2) + "\n")
    return report


#: How far a re-measurement may drift from a card's number: pYIN on a note that sits at the edge
#: of the tolerance can flip when float sums round differently (other threads, another CPU).
REPRODUCE_TOLERANCE = {"pitch_accuracy": 0.1, "harmonic_share": 0.02, "bits_per_sample": 0.005}

#: How many held-out test items the card's bits per sample averages.
HELD_OUT_ITEMS = 32


def _card_file(name_or_dir) -> Path:
    path = Path(name_or_dir) if Path(name_or_dir).is_dir() else checkpoint_dir(str(name_or_dir))
    return path / "card.json"


def write_benchmark(name_or_dir, section: str, values: dict, command: str) -> None:
    """Store a benchmark's numbers in a checkpoint's card under ``benchmarks.<section>``."""
    card_file = _card_file(name_or_dir)
    card = json.loads(card_file.read_text()) if card_file.exists() else {}
    card.setdefault("benchmarks", {})[section] = {**values, "command": command,
                                                  "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    card_file.write_text(json.dumps(card, indent=2) + "\n")


def reproduce_card(name_or_dir, max_notes: int | None = None) -> dict[str, tuple[float, float, float]]:
    """Measure a checkpoint's card numbers again, the way the card says they were measured.

    With ``max_notes``, only that many of the card's notes (spread evenly over its list) are drawn
    again, and only that many of its held-out items scored: each was measured on its own, so the
    card's value over the same notes is known, and the card's own averages are checked against its
    per-note lists. The pitch tolerance then allows one note in ``max_notes`` to flip.

    Returns
    -------
    dict metric -> ``(card value, value now, tolerance)`` for pitch accuracy, harmonic share and
    held-out bits per sample (where the card has them).
    """
    model = load_model(name_or_dir)
    metrics = json.loads(_card_file(name_or_dir).read_text())["metrics"]
    tolerance = {**REPRODUCE_TOLERANCE, **metrics.get("reproduce_tolerance", {})}
    out = {}
    if "pitch_accuracy" in metrics:
        notes = metrics["notes"]
        out["card pitch_accuracy = mean of its notes"] = (
            metrics["pitch_accuracy"], float(np.mean([n["hit"] for n in notes])), 1e-9)
        out["card harmonic_share = mean of its notes"] = (metrics["harmonic_share"], mean_share(notes), 1e-4)
        chosen = _spread(notes, max_notes)
        now = [score_note(model, n, n["seed"], metrics["seconds"], metrics["temperature"],
                          metrics["tolerance_cents"]) for n in chosen]
        flip = 0.0 if max_notes is None else 1.0 / len(chosen) + 1e-9
        out["pitch_accuracy"] = (float(np.mean([n["hit"] for n in chosen])), float(np.mean([n["hit"] for n in now])),
                                 max(tolerance["pitch_accuracy"], flip))
        out["harmonic_share"] = (mean_share(chosen), mean_share(now), tolerance["harmonic_share"])
    if "bits_per_sample" in metrics:
        items = metrics.get("bits_per_item")
        if items is None or max_notes is None:
            out["bits_per_sample"] = (metrics["bits_per_sample"], held_out_bits(model), tolerance["bits_per_sample"])
        else:
            out["card bits_per_sample = mean of its items"] = (metrics["bits_per_sample"], float(np.mean(items)), 1e-3)
            indices = sorted(set(_spread(list(range(len(items))), max_notes)))
            now = held_out_bits_per_item(model, indices)
            out["bits_per_sample"] = (float(np.mean([items[i] for i in indices])), float(np.mean(now)),
                                      tolerance["bits_per_sample"])
    return out


def _spread(items: list, k: int | None) -> list:
    """``k`` of ``items`` spread evenly over the list (all of them when ``k`` is None)."""
    if k is None or k >= len(items):
        return list(items)
    return [items[round(i * (len(items) - 1) / max(1, k - 1))] for i in range(k)]


def zoo_row(name: str, cls: type[GenerativeModel], card: dict) -> dict:
    """One model zoo row from a checkpoint's card and its model class (what the model declares)."""
    metrics = card.get("metrics", {})
    devices = sorted({r.get("device", "cpu") for r in card.get("runs", [])} - {"cpu"})
    return {
        "name": name,
        "family": cls.family,
        "likelihood": cls.likelihood,
        "aid": cls.aid.kind if cls.aid else "none",
        "parameters": card.get("parameters"),
        "bits_per_sample": metrics.get("bits_per_sample"),
        "pitch_accuracy": metrics.get("pitch_accuracy"),
        "harmonic_share": metrics.get("harmonic_share"),
        "temperature": metrics.get("temperature"),
        "uses_temperature": cls.uses_temperature,
        "samples_per_second": metrics.get("samples_per_second"),
        "real_time_factor": metrics.get("real_time_factor"),
        "steps": card.get("steps"),
        "wall_time_s": card.get("wall_time_s"),
        "devices": devices,
        "notebook": cls.notebook,
    }


def zoo_rows() -> list[dict]:
    """One row per shipped checkpoint of a model of audio, from its card: what the model zoo shows."""
    return [zoo_row(name, model_class(name), load_card(name)) for name in list_checkpoints()
            if issubclass(model_class(name), GenerativeModel)]


def music_rows() -> list[dict]:
    """One row per shipped checkpoint whose numbers are its own kind (:meth:`Model.card_summary`):
    the transcriber's note F1, the language model's NLL per event, the score synthesiser's loop."""
    rows = []
    for name in list_checkpoints():
        cls, card = model_class(name), load_card(name)
        summary = cls.card_summary(card.get("metrics", {}))
        if summary is not None:
            rows.append({"name": name, "family": cls.family, "parameters": card.get("parameters"),
                         "result": summary, "notebook": cls.notebook})
    return rows


def music_table() -> tuple[list[str], list[list[str]]]:
    """Headers and cells of the music table (:func:`music_rows`)."""
    rows = music_rows()
    return (["model", "family", "parameters", "measured"],
            [[r["name"], r["family"], f"{r['parameters']:,}" if r["parameters"] else NOT_MEASURED, r["result"]]
             for r in rows])


#: The zoo table's columns: ``(row key, header)``. The studio's model zoo and the README show
#: these, formatted by :func:`format_zoo_row`, so both give the same numbers.
ZOO_COLUMNS = (
    ("name", "model"), ("aid", "aid"), ("family", "family"), ("likelihood", "likelihood"),
    ("parameters", "parameters"), ("bits_per_sample", "held-out bits/sample"),
    ("pitch_accuracy", "pitch accuracy"), ("harmonic_share", "harmonic share"),
    ("temperature", "temperature"), ("samples_per_second", "samples/s"),
    ("real_time_factor", "x real time"), ("steps", "training steps"), ("wall_time_s", "wall time"),
)
#: A cell that was not measured (yet).
NOT_MEASURED = "—"
#: A cell that cannot have a value for this model.
NOT_APPLICABLE = "n/a"
#: What the blank cells mean, for a note under the table.
ZOO_NOTE = (
    f"{NOT_MEASURED} : not measured yet (the card has no such number: `workbench evaluate NAME --write-card` "
    f"measures pitch accuracy, harmonic share, bits and speed). {NOT_APPLICABLE} : cannot apply: held-out "
    "bits/sample need a likelihood (GANs, DDSP and the spectral models have none); a temperature only where "
    "sampling has one. Pitch accuracy: share of generated notes within 50 cents of the asked pitch (pYIN). "
    "Harmonic share: the share of a note's energy at the asked pitch's harmonics (100% = a clean note). "
    "Temperature: the one these numbers were measured at (the model's default). Speeds: one voice (batch 1) "
    "on the machine that wrote the card, with the CPU threads it records."
)


def format_zoo_row(row: dict) -> list[str]:
    """A :func:`zoo_rows` row as the cells of :data:`ZOO_COLUMNS`: percentages, thousands separators,
    :data:`NOT_MEASURED` / :data:`NOT_APPLICABLE` for blanks."""

    def fmt(value, spec: str) -> str:
        return NOT_MEASURED if value is None else spec.format(value)

    bits = NOT_APPLICABLE if row["likelihood"] == "none" else fmt(row.get("bits_per_sample"), "{:.2f}")
    temperature = (NOT_APPLICABLE if not row.get("uses_temperature", True)
                   else fmt(row.get("temperature"), "{:g}"))
    wall = row.get("wall_time_s")
    wall_text = (NOT_MEASURED if wall is None else f"{wall:.0f} s" if wall < 60 else f"{wall / 60:,.0f} min")
    if wall is not None and row.get("devices"):
        wall_text += f" (partly on {', '.join(row['devices'])})"
    cells = {
        "name": row["name"], "aid": row.get("aid") or "none", "family": row["family"],
        "likelihood": row["likelihood"], "parameters": fmt(row.get("parameters"), "{:,}"),
        "bits_per_sample": bits, "pitch_accuracy": fmt(row.get("pitch_accuracy"), "{:.0%}"),
        "harmonic_share": fmt(row.get("harmonic_share"), "{:.0%}"), "temperature": temperature,
        "samples_per_second": fmt(row.get("samples_per_second"), "{:,.0f}"),
        "real_time_factor": fmt(row.get("real_time_factor"), "{:,.1f}"),
        "steps": fmt(row.get("steps"), "{:,}"), "wall_time_s": wall_text,
    }
    return [cells[key] for key, _ in ZOO_COLUMNS]


def zoo_table(rows: list[dict] | None = None) -> tuple[list[str], list[list[str]]]:
    """Headers and formatted cells of the zoo table (default: :func:`zoo_rows`)."""
    rows = zoo_rows() if rows is None else rows
    return [header for _, header in ZOO_COLUMNS], [format_zoo_row(row) for row in rows]
