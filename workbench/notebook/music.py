"""Music from notes: what notebook 09 measures and draws.

Notebook: notebooks/09_music_from_notes.ipynb
"""

from __future__ import annotations

import numpy as np

from ..scores import NoteEvent, Scores


def held_out_tunes(n_pieces: int = 400, sample_rate: int = 16000) -> Scores:
    """The folk collection's test split among its first ``n_pieces`` tunes: pieces no model here
    trained on (``Scores`` parses only those first tunes, so a small ``n_pieces`` is quick)."""
    return Scores("folk", split="test", max_pieces=n_pieces, segment_seconds=2.0, sample_rate=sample_rate)


def first_seconds(events, seconds: float) -> list[NoteEvent]:
    """The notes that start in the first ``seconds``, cut to end there."""
    out = []
    for e in events:
        if e.onset_seconds < seconds:
            out.append(NoteEvent(e.onset_seconds, min(e.duration_seconds, seconds - e.onset_seconds),
                                 e.pitch, e.velocity, e.part))
    return out


def timescale_spans(sample_rate: int, receptive_field: int, pieces) -> dict[str, float]:
    """The durations the survey's timescales argument compares, in seconds: one sample, one period
    of A4, a WaveNet's receptive field, a note, a bar, a phrase and a whole tune of ``pieces``
    (their median length; the note and bar lengths are their median note and four median beats)."""
    durations = [e.duration_seconds for p in pieces for e in p.events]
    onsets = np.concatenate([np.diff([e.onset_seconds for e in p.events]) for p in pieces if len(p.events) > 1])
    beat = float(np.median(onsets[onsets > 0])) if onsets.size else 0.5
    return {
        f"one sample at {sample_rate} Hz": 1 / sample_rate,
        "one period of A4 (440 Hz)": 1 / 440,
        f"a WaveNet's receptive field ({receptive_field} samples)": receptive_field / sample_rate,
        "a note (median)": float(np.median(durations)),
        "a bar (4 median beats)": 4 * beat,
        "a phrase (4 bars)": 16 * beat,
        "a folk tune (median)": float(np.median([p.seconds for p in pieces])),
    }
