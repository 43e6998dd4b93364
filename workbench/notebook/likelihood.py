"""What a likelihood model's numbers say: where its bits go, what temperature does to its notes, and
how a published model compares with its aided variant.

- :func:`surprise_profile`: bits per sample over a note against its loudness, attack vs sustain;
- :func:`temperature_sweep`, :func:`temperature_figure`: harmonic share and pitch of notes
  generated at several temperatures;
- :func:`card_or_live`, :func:`pair_table`: pitch accuracy and harmonic share from a
  checkpoint's card, or measured now on a few notes where the card lacks them.

Notebooks: notebooks/04_mode_covering_vs_seeking.ipynb, 05_autoregressive.ipynb,
06_flows_and_latents.ipynb, 07_adversarial.ipynb
"""

from __future__ import annotations

import math

import numpy as np

from ..audio import Audio
from ..errors import ParameterError
from .display import Table


def surprise_profile(model, clip: Audio, cond: dict, window: int = 80, attack_seconds: float = 0.05,
                     floor_db: float = -60.0) -> dict:
    """Bits per sample of a real note under ``model``, window by window, against the note's loudness.

    The note starts at its first window within 40 dB of its loudest; the **attack** is the first
    ``attack_seconds`` from there, the **sustain** everything after. Loudness is each window's RMS
    in dB re. the loudest window; the correlation is Pearson's over the windows louder than
    ``floor_db`` (silence before the onset left out).

    Returns
    -------
    dict: ``seconds``, ``bits`` and ``loudness_db`` (one value per window), ``attack_bits`` and
    ``sustain_bits`` (means over the samples), ``correlation``, ``onset_seconds``,
    ``attack_seconds``.

    Raises
    ------
    ParameterError
        A clip shorter than the attack plus two windows.
    """
    x = clip.samples[:1]
    n_windows = x.shape[-1] // window
    attack = int(round(attack_seconds * clip.sample_rate))
    if n_windows < 2 or attack + 2 * window > x.shape[-1]:
        raise ParameterError(f"the clip has {x.shape[-1]} samples; it needs more than {attack + 2 * window} for "
                             f"an attack of {attack_seconds} s and windows of {window} samples")
    bits = -model.encode(clip[0] if clip.batch_size > 1 else clip, cond).data["log_likelihood_bits"][0].double()
    bits = bits[: n_windows * window]
    per_window = bits.view(n_windows, window).mean(-1).numpy()
    rms = x[0, 0, : n_windows * window].double().view(n_windows, window).pow(2).mean(-1).sqrt().numpy()
    loudness = 20 * np.log10(np.maximum(rms, 1e-12) / max(float(rms.max()), 1e-12))
    onset_window = int(np.argmax(loudness > -40.0))
    start = onset_window * window
    keep = loudness > floor_db
    varies = keep.sum() > 2 and per_window[keep].std() > 0 and loudness[keep].std() > 0
    correlation = float(np.corrcoef(per_window[keep], loudness[keep])[0, 1]) if varies else math.nan
    return {"seconds": np.arange(n_windows) * window / clip.sample_rate, "bits": per_window,
            "loudness_db": loudness, "attack_bits": float(bits[start: start + attack].mean()),
            "sustain_bits": float(bits[start + attack:].mean()), "correlation": correlation,
            "onset_seconds": start / clip.sample_rate, "attack_seconds": attack_seconds}


def describe_surprise(profile: dict) -> str:
    """One sentence on a :func:`surprise_profile`, worded by its numbers."""
    a, s, r = profile["attack_bits"], profile["sustain_bits"], profile["correlation"]
    if a > 1.1 * s:
        parts = f"the attack costs more than the sustain ({a:.2f} against {s:.2f} bits per sample)"
    elif s > 1.1 * a:
        parts = f"the sustain costs more than the attack ({s:.2f} against {a:.2f} bits per sample)"
    else:
        parts = f"attack and sustain cost about the same ({a:.2f} and {s:.2f} bits per sample)"
    if not math.isfinite(r):
        follow = "bits and loudness cannot be correlated here (one of them does not vary)"
    elif r > 0.5:
        follow = f"bits follow loudness closely (correlation {r:+.2f})"
    elif r > 0.2:
        follow = f"bits follow loudness loosely (correlation {r:+.2f})"
    elif r < -0.2:
        follow = f"quieter windows cost more bits (correlation {r:+.2f})"
    else:
        follow = f"bits hardly follow loudness (correlation {r:+.2f})"
    return f"{parts}; {follow}."


def _batch(conds: list[dict]) -> dict:
    return {k: [c[k] for c in conds] for k in conds[0]}


def notes_for(model, n_notes: int) -> list[dict]:
    """``n_notes`` held-out conditions spread over the model's test split (as ``workbench evaluate`` uses)."""
    from ..evaluate import evaluation_notes

    grid, _ = evaluation_notes(model)
    if not grid:
        raise ParameterError(f"{model.name} takes no pitch; there are no notes to measure")
    step = max(1, len(grid) // n_notes)
    return grid[::step][:n_notes]


def measure_notes(model, conds: list[dict], seconds: float, temperature: float | None = None, seed: int = 0) -> dict:
    """Generate one note per condition (one batch) and measure each: pitch hit (pYIN within 50
    cents) and harmonic share.

    Returns
    -------
    dict: ``pitch_accuracy``, ``harmonic_share`` (means), ``shares``, ``hits``, ``audio``.
    """
    from ..dsp.synth import midi_to_hz
    from ..metrics import cents_error, harmonic_share, median_f0

    temperature = model.default_temperature if temperature is None else temperature
    seconds = min(seconds, model.max_seconds or math.inf)
    audio = model.generate(len(conds), seconds=seconds, cond=_batch(conds), temperature=temperature, generator=seed)
    hits, shares = [], []
    for i, c in enumerate(conds):
        midi = c["pitch"]
        error = cents_error(median_f0(audio[i], fmin=max(30.0, midi_to_hz(midi - 12)), fmax=midi_to_hz(midi + 12)), midi)
        hits.append(bool(np.isfinite(error) and abs(error) <= 50.0))
        share = harmonic_share(audio[i], midi)
        shares.append(0.0 if math.isnan(share) else share)
    return {"pitch_accuracy": float(np.mean(hits)), "harmonic_share": float(np.mean(shares)),
            "hits": hits, "shares": shares, "audio": audio}


def temperature_sweep(model, temperatures=(0.6, 0.8, 1.0, 1.2), n_notes: int = 3, seconds: float = 0.5,
                      seed: int = 0) -> dict:
    """Generate the same ``n_notes`` held-out conditions at each temperature (same seed) and measure them.

    Returns
    -------
    dict temperature -> :func:`measure_notes`' dict (its ``audio`` is the batch).
    """
    temperatures = [float(t) for t in temperatures]
    if not temperatures or min(temperatures) <= 0:
        raise ParameterError(f"temperatures={temperatures!r} must be positive numbers")
    conds = notes_for(model, n_notes)
    return {t: measure_notes(model, conds, seconds, temperature=t, seed=seed) for t in temperatures}


def temperature_figure(sweep: dict, title: str | None = None):
    """Harmonic share and pitch accuracy against temperature, from :func:`temperature_sweep`."""
    from ..viz import line_plot

    temps = list(sweep)
    fig = line_plot(temps, {"harmonic share": [sweep[t]["harmonic_share"] for t in temps],
                            "pitch accuracy": [sweep[t]["pitch_accuracy"] for t in temps]},
                    xlabel="temperature", ylabel="share", title=title or "temperature against clean sound")
    fig.axes[0].set_ylim(-0.03, 1.03)
    return fig


def describe_temperature(sweep: dict) -> str:
    """One sentence on a :func:`temperature_sweep`, worded by its numbers."""
    temps = sorted(sweep)
    low, high = temps[0], temps[-1]
    a, b = sweep[low]["harmonic_share"], sweep[high]["harmonic_share"]
    if a > b + 0.05:
        trend = "falls as the temperature rises"
    elif b > a + 0.05:
        trend = "rises with the temperature"
    else:
        trend = "hardly changes with the temperature"
    return (f"harmonic share {trend}: {a:.0%} at T={low:g}, {b:.0%} at T={high:g}"
            + (f", {sweep[1.0]['harmonic_share']:.0%} at T=1" if 1.0 in sweep and 1.0 not in (low, high) else "")
            + ".")


def card_or_live(name: str, n_notes: int = 2, seconds: float = 0.5) -> dict:
    """Pitch accuracy and harmonic share of the shipped checkpoint ``name``: from its card where the
    card has them (measured by ``workbench evaluate`` over the test split), else measured now on
    ``n_notes`` held-out notes at the model's default temperature.

    Returns
    -------
    dict: ``name``, ``aid``, ``shipped``, ``pitch_accuracy``, ``harmonic_share``, ``temperature``,
    and ``source`` for each number (``"card"``, ``"measured now, N notes"``).
    """
    from ..models import has_checkpoint, load_card, load_model, model_class

    cls = model_class(name)
    row = {"name": name, "aid": cls.aid.kind if cls.aid else "none", "shipped": has_checkpoint(name),
           "pitch_accuracy": None, "harmonic_share": None, "temperature": None, "source": {}}
    if not row["shipped"]:
        return row
    metrics = load_card(name).get("metrics", {})
    row["temperature"] = metrics.get("temperature")
    for key in ("pitch_accuracy", "harmonic_share"):
        if metrics.get(key) is not None:
            row[key], row["source"][key] = float(metrics[key]), "card"
    missing = [k for k in ("pitch_accuracy", "harmonic_share") if row[k] is None]
    if missing:
        model = load_model(name)
        live = measure_notes(model, notes_for(model, n_notes), seconds)
        for key in missing:
            row[key], row["source"][key] = live[key], f"measured now, {n_notes} notes"
        row["temperature"] = row["temperature"] or model.default_temperature
    return row


def pair_table(pairs, n_notes: int = 2, seconds: float = 0.5) -> tuple[Table, dict]:
    """Published models beside their aided variants: :func:`card_or_live` for each name.

    Parameters
    ----------
    pairs : sequence of (published name, aided name)

    Returns
    -------
    (Table, dict name -> :func:`card_or_live` row)
    """
    rows = {}
    cells = []
    for pair in pairs:
        for name in pair:
            row = card_or_live(name, n_notes, seconds)
            rows[name] = row
            if not row["shipped"]:
                cells.append([name, row["aid"], "no checkpoint yet", None, None])
                continue
            sources = sorted(set(row["source"].values()))
            cells.append([name, row["aid"], f"{row['pitch_accuracy']:.0%}", f"{row['harmonic_share']:.0%}",
                          "; ".join(sources)])
    table = Table(["model", "aid", "pitch accuracy", "harmonic share", "from"], cells,
                  notes=["pitch accuracy: share of notes within 50 cents of the asked pitch (pYIN); harmonic "
                         "share: share of a note's energy at the asked pitch's harmonics; both at the model's "
                         "default temperature."])
    return table, rows


def compare_pair(rows: dict, published: str, aided: str, key: str = "pitch_accuracy") -> str:
    """One sentence comparing ``key`` of a published model and its aided variant, worded by what is known."""
    label = key.replace("_", " ")
    a, b = rows[published], rows[aided]
    if not b["shipped"]:
        return f"{aided} ships no checkpoint yet: nothing to compare."
    if not a["shipped"]:
        return (f"{published} (no aid) ships no checkpoint yet; {aided} reaches {label} {b[key]:.0%} with its "
                f"{b['aid']}. Run this cell again once {published} is trained.")
    va, vb = a[key], b[key]
    if vb > va + 0.05:
        verdict = "the aid helps"
    elif va > vb + 0.05:
        verdict = "the published model does better without it"
    else:
        verdict = "about the same with and without the aid"
    return f"{label} {va:.0%} without the {b['aid']} ({published}) against {vb:.0%} with it ({aided}): {verdict}."


def surprise_figure(profile: dict, title: str | None = None):
    """Bits per sample (window means) above the note's loudness, from :func:`surprise_profile`,
    with the attack shaded."""
    from ..viz import new_figure

    fig, axes = new_figure(2, 1, row_height=2.0, sharex=True)
    t = profile["seconds"]
    for ax, key, label, color in ((axes[0, 0], "bits", "bits per sample", "C0"),
                                  (axes[1, 0], "loudness_db", "loudness (dB re. peak)", "C1")):
        ax.plot(t, profile[key], color=color, lw=1.0)
        ax.axvspan(profile["onset_seconds"], profile["onset_seconds"] + profile["attack_seconds"], color="0.85",
                   zorder=0, label="attack")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8, loc="upper right")
    axes[1, 0].set_xlabel("time (s)")
    axes[0, 0].set_title(title or f"surprise against loudness (correlation {profile['correlation']:+.2f})")
    return fig
