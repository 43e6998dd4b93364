"""Real music: scores as note events, rendered to audio and aligned to samples.

The score corpus bundled inside ``music21`` (Bach chorales, thousands of folk tunes) or your own
MIDI / MusicXML / ABC files become :class:`Piece` objects: a list of :class:`NoteEvent` (onset and
duration in seconds, MIDI pitch, velocity, part) and a General MIDI program per part. A piece
renders through FluidSynth and the FluidR3 GM SoundFont (one MIDI channel per part, the same route
as :class:`~workbench.data.Notes`), and :class:`Scores` cuts the audio into fixed-length training
segments whose piano roll is aligned to the samples (:func:`targets`).

The pieces of a collection, in the library's terms:

- ``"chorales"``: Bach's four-part chorales (``music21.corpus.chorales``, Riemenschneider order);
- ``"folk"``: monophonic folk tunes from the Essen collection, O'Neill's *Music of Ireland* (1850)
  and Ryan's *Mammoth Collection* (1883), taken in turn from each source.

:func:`encode_performance` / :func:`decode_performance` turn events into the Performance RNN
token vocabulary (Oore et al. 2018) for language models over notes.

Alignment, the rule every function here follows (frame ``f`` holds samples
``f * hop_length .. (f + 1) * hop_length - 1``; an event at ``t`` seconds lands in frame
``floor(t * sample_rate / hop_length)``)::

    samples   |0 . . . |hop . . |2hop . .|3hop . .|4hop . .|
    frames    |   0    |   1    |   2    |   3    |   4    |
    note          on^(t=1.3 hop)              off^(t=3.6 hop)
    onsets    |   .    |   1    |   .    |   .    |   .    |
    roll      |   .    |   1    |   1    |   .    |   .    |   frames onset .. offset - 1
    offsets   |   .    |   .    |   .    |   1    |   .    |   (at least one frame of roll)
"""

from __future__ import annotations

import bisect
import hashlib
import importlib.metadata
import json
import logging
import math
import os
import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

# the renderer and SoundFont lookup, used as module attributes (so tests can block FluidSynth)
from . import data as _data
from .audio import Audio, check_sample_rate
from .errors import MissingDependencyError, ParameterError

log = logging.getLogger(__name__)

#: Tempo when a score has no metronome mark, in beats per minute: the beat of its time signature
#: (a half note in 4/2, a dotted quarter in 6/8), a quarter note where it has none.
DEFAULT_BPM = 100.0
#: Velocity of every note when a score has no dynamics.
DEFAULT_VELOCITY = 80
#: File types :func:`read_pieces` and ``Scores(files=...)`` read.
SCORE_SUFFIXES = (".mid", ".midi", ".musicxml", ".mxl", ".xml", ".abc")
MIDI_SUFFIXES = (".mid", ".midi")
#: The collections of ``music21``'s corpus and the instrument each plays on by default.
COLLECTIONS: dict[str, str] = {"chorales": "organ", "folk": "flute"}
#: Where the folk tunes come from, inside ``music21``'s corpus.
FOLK_SOURCES = ("essenFolksong", "oneills1850", "ryansMammoth")
#: Resolution of the MIDI files :func:`events_to_midi` writes (ticks per quarter at 120 qpm:
#: one tick is 1/1920 s).
MIDI_RESOLUTION = 960
#: Bumped when the events JSON changes meaning (old cache files are then ignored).
EVENTS_FORMAT = 1
_NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def _note_name(pitch: int) -> str:
    return f"{_NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"


# --------------------------------------------------------------------------------------------
# Note events and pieces
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NoteEvent:
    """One note: when it starts and how long it lasts (seconds), which key, how hard, which part.

    Raises
    ------
    ParameterError
        A negative onset, a duration that is not positive, a pitch outside 0..127, a velocity
        outside 1..127 or a negative part.

    Examples
    --------
    >>> NoteEvent(0.5, 0.25, 60, 100).offset_seconds
    0.75
    """

    onset_seconds: float
    duration_seconds: float
    pitch: int
    velocity: int = DEFAULT_VELOCITY
    part: int = 0

    def __post_init__(self):
        if not (math.isfinite(self.onset_seconds) and self.onset_seconds >= 0):
            raise ParameterError(f"onset_seconds={self.onset_seconds} must be a time >= 0")
        if not (math.isfinite(self.duration_seconds) and self.duration_seconds > 0):
            raise ParameterError(f"duration_seconds={self.duration_seconds} must be positive")
        if not 0 <= self.pitch <= 127:
            raise ParameterError(f"pitch={self.pitch} is outside MIDI 0..127")
        if not 1 <= self.velocity <= 127:
            raise ParameterError(f"velocity={self.velocity} is outside MIDI 1..127")
        if self.part < 0:
            raise ParameterError(f"part={self.part} must be >= 0")

    @property
    def offset_seconds(self) -> float:
        """When the key is released."""
        return self.onset_seconds + self.duration_seconds

    def as_tuple(self) -> tuple:
        """``(onset_seconds, duration_seconds, pitch, velocity, part)``, the renderer's form."""
        return (self.onset_seconds, self.duration_seconds, self.pitch, self.velocity, self.part)


def _event_order(e: NoteEvent):
    return (e.onset_seconds, e.part, e.pitch, e.duration_seconds, e.velocity)


def clean_events(events: Iterable[NoteEvent]) -> list[NoteEvent]:
    """Sort events by onset and make each part's keys playable: one sounding note per pitch.

    A MIDI channel cannot hold one key down twice, so where two notes of the same pitch overlap in
    one part, the earlier is cut where the later starts (two at the same onset keep the longer).
    Notes of different parts may overlap freely (they render on different channels).

    Returns
    -------
    list of NoteEvent, sorted by ``(onset, part, pitch)``.
    """
    by_key: dict[tuple[int, int], list[NoteEvent]] = {}
    for e in sorted(events, key=lambda e: (e.onset_seconds, -e.duration_seconds)):
        kept = by_key.setdefault((e.part, e.pitch), [])
        if kept and kept[-1].onset_seconds == e.onset_seconds:
            continue  # the same key struck twice at once: the longer (first) one stays
        if kept and e.onset_seconds < kept[-1].offset_seconds:
            last = kept[-1]
            kept[-1] = NoteEvent(last.onset_seconds, e.onset_seconds - last.onset_seconds, last.pitch,
                                 last.velocity, last.part)
        kept.append(e)
    return sorted((e for kept in by_key.values() for e in kept), key=_event_order)


@dataclass(frozen=True)
class Piece:
    """A piece of music as note events, with a General MIDI program for each part.

    Parameters
    ----------
    id : str
        Stable name (its split comes from a hash of it): ``"bach/bwv269"``,
        ``"essenFolksong/ballad10/6"``, or a file's path relative to the folder given.
    title, collection : str
    events : tuple of NoteEvent
        Sorted by onset.
    programs : tuple of int
        General MIDI program (0-based) of each part; ``len(programs)`` is the number of parts.

    Raises
    ------
    ParameterError
        No events, an event whose part has no program, or a program outside 0..127.

    Examples
    --------
    >>> piece = Piece("demo", "Demo", "files", (NoteEvent(0.0, 0.5, 60), NoteEvent(0.5, 1.0, 67)), (73,))
    >>> piece.seconds, piece.n_parts, piece.transposed(2).events[0].pitch
    (1.5, 1, 62)
    """

    id: str
    title: str
    collection: str
    events: tuple
    programs: tuple

    def __post_init__(self):
        if not self.events:
            raise ParameterError(
                f"piece {self.id!r} holds no notes; a score needs at least one pitched note to render"
            )
        object.__setattr__(self, "events", tuple(sorted(self.events, key=_event_order)))
        object.__setattr__(self, "programs", tuple(int(p) for p in self.programs))
        for p in self.programs:
            if not 0 <= p <= 127:
                raise ParameterError(f"program={p} of piece {self.id!r} is outside General MIDI's 0..127")
        parts = max(e.part for e in self.events) + 1
        if parts > len(self.programs):
            raise ParameterError(
                f"piece {self.id!r} has {parts} parts but {len(self.programs)} program(s); give one per part"
            )

    @property
    def seconds(self) -> float:
        """Total length: the last note's release."""
        return max(e.offset_seconds for e in self.events)

    @property
    def n_parts(self) -> int:
        return len(self.programs)

    @property
    def pitch_range(self) -> tuple[int, int]:
        """Lowest and highest MIDI pitch played."""
        pitches = [e.pitch for e in self.events]
        return min(pitches), max(pitches)

    def transposed(self, semitones: int) -> Piece:
        """The piece moved by ``semitones`` (every pitch; times, velocities and parts stay).

        Raises
        ------
        ParameterError
            A pitch would leave MIDI 0..127.
        """
        low, high = self.pitch_range
        if not (0 <= low + semitones and high + semitones <= 127):
            raise ParameterError(
                f"transposing {self.id!r} ({low}..{high}) by {semitones} leaves MIDI 0..127; "
                "use a smaller shift"
            )
        events = tuple(NoteEvent(e.onset_seconds, e.duration_seconds, e.pitch + semitones, e.velocity, e.part)
                       for e in self.events)
        return Piece(self.id, self.title, self.collection, events, self.programs)

    def truncated(self, seconds: float) -> Piece:
        """The piece cut at ``seconds``: later notes dropped, notes sounding then released then."""
        events = tuple(NoteEvent(e.onset_seconds, min(e.offset_seconds, seconds) - e.onset_seconds, e.pitch,
                                 e.velocity, e.part) for e in self.events if e.onset_seconds < seconds)
        return Piece(self.id, self.title, self.collection, events, self.programs)

    def to_dict(self) -> dict:
        """JSON-ready form (floats written exactly; :meth:`from_dict` reads it back equal)."""
        return {"id": self.id, "title": self.title, "collection": self.collection,
                "programs": list(self.programs), "events": [list(e.as_tuple()) for e in self.events]}

    @classmethod
    def from_dict(cls, d: dict) -> Piece:
        events = tuple(NoteEvent(float(on), float(dur), int(p), int(v), int(k)) for on, dur, p, v, k in d["events"])
        return cls(d["id"], d["title"], d["collection"], events, tuple(d["programs"]))


# --------------------------------------------------------------------------------------------
# Scores (music21) and MIDI files (pretty_midi) <-> events
# --------------------------------------------------------------------------------------------


def _import_music21():
    try:
        import music21
    except ImportError as exc:
        raise MissingDependencyError(
            f"music21 is not usable ({exc}); 'pip install music21' (its corpus holds the scores). "
            "Pieces already parsed into the cache need no music21"
        ) from None
    return music21


def _import_pretty_midi():
    try:
        import pretty_midi
    except ImportError as exc:
        raise MissingDependencyError(f"pretty_midi is not usable ({exc}); 'pip install pretty_midi'") from None
    return pretty_midi


def _tempo_map(score, default_bpm: float) -> list[tuple[float, float, float]]:
    """``[(offset_quarters, start_seconds, qpm), ...]`` from the score's metronome marks."""
    from music21 import meter, tempo

    flat = score.flatten()
    marks: dict[float, float] = {}
    for mark in flat.getElementsByClass(tempo.MetronomeMark):
        qpm = mark.getQuarterBPM()
        if qpm and qpm > 0:
            marks.setdefault(float(mark.offset), float(qpm))  # parts repeat the same mark
    if not marks:
        # no mark: default_bpm beats of the time signature (Essen tunes count in half notes)
        signature = next(iter(flat.getElementsByClass(meter.TimeSignature)), None)
        beat = float(signature.beatDuration.quarterLength) if signature is not None else 1.0
        return [(0.0, 0.0, float(default_bpm) * (beat if beat > 0 else 1.0))]
    offsets = sorted(marks)
    segments = [(0.0, 0.0, marks[offsets[0]])]  # the first mark also holds before it (a pickup)
    for offset in offsets[1:]:
        q0, s0, qpm = segments[-1]
        segments.append((offset, s0 + (offset - q0) * 60.0 / qpm, marks[offset]))
    return segments


def _seconds_at(quarters: float, tempo_map) -> float:
    i = bisect.bisect_right([s[0] for s in tempo_map], quarters) - 1
    q0, s0, qpm = tempo_map[max(i, 0)]
    return s0 + (quarters - q0) * 60.0 / qpm


def events_from_score(score, *, default_bpm: float = DEFAULT_BPM, default_velocity: int = DEFAULT_VELOCITY,
                      expand_repeats: bool = True) -> list[NoteEvent]:
    """Note events of a ``music21`` score: one per sounding pitch, tied notes merged.

    Parameters
    ----------
    score : music21.stream.Score or Part
    default_bpm : float
        Tempo where the score has no metronome mark, in beats of its (first) time signature per
        minute: 100 is 100 quarters in 4/4, 100 halves in 4/2, 100 dotted quarters in 6/8, and
        100 quarters without a signature. Marks, where present, set the tempo; the first one
        also covers a pickup before it.
    default_velocity : int
        Velocity where no dynamic mark applies (a part's own marks first, else the score's).
    expand_repeats : bool
        Play repeats and first/second endings out, where ``music21`` can expand them (otherwise
        the score is read as written).

    Returns
    -------
    list of NoteEvent, sorted by onset; ``part`` is the index in ``score.parts``. Grace notes,
    chord symbols and unpitched notes are left out; overlapping same-pitch notes in one part are
    cut (:func:`clean_events`).

    Examples
    --------
    >>> from music21 import note, stream
    >>> part = stream.Part([note.Note("C4", quarterLength=1), note.Note("E4", quarterLength=2)])
    >>> [(e.onset_seconds, round(e.duration_seconds, 6), e.pitch) for e in events_from_score(part)]
    [(0.0, 0.6, 60), (0.6, 1.2, 64)]
    """
    _import_music21()
    from music21 import chord, dynamics, harmony, note, repeat
    from music21.exceptions21 import Music21Exception

    if not 1 <= default_velocity <= 127:
        raise ParameterError(f"default_velocity={default_velocity} is outside MIDI 1..127")
    if not default_bpm > 0:
        raise ParameterError(f"default_bpm={default_bpm} must be a positive tempo (beats per minute)")
    if expand_repeats:
        try:
            score = score.expandRepeats()
        except (Music21Exception, repeat.ExpanderException, ValueError, IndexError) as exc:
            log.debug("repeats of %s not expanded (%s); read as written", score, exc)
    tempo_map = _tempo_map(score, default_bpm)
    parts = list(score.parts) if score.hasPartLikeStreams() else [score]

    def dynamic_marks(stream) -> list[tuple[float, int]]:
        marks = [(float(d.offset), d.volumeScalar) for d in stream.flatten().getElementsByClass(dynamics.Dynamic)
                 if d.volumeScalar is not None]
        return sorted((o, min(127, max(1, round(v * 127)))) for o, v in marks)

    score_marks = dynamic_marks(score)
    events = []
    for index, part in enumerate(parts):
        flat = part.stripTies().flatten()
        marks = dynamic_marks(part) or score_marks
        mark_offsets = [m[0] for m in marks]
        for n in flat.notes:
            if isinstance(n, harmony.Harmony) or n.duration.isGrace or n.quarterLength <= 0:
                continue
            if isinstance(n, chord.Chord):
                pitches = [p.midi for p in n.pitches]
            elif isinstance(n, note.Note):
                pitches = [n.pitch.midi]
            else:
                continue  # unpitched percussion
            start_q = float(n.offset)
            onset = _seconds_at(start_q, tempo_map)
            duration = _seconds_at(start_q + float(n.quarterLength), tempo_map) - onset
            velocity = n.volume.velocity if n.volume.velocityScalar is not None else None
            if velocity is None:
                i = bisect.bisect_right(mark_offsets, start_q) - 1
                velocity = marks[i][1] if i >= 0 else default_velocity
            for pitch in pitches:
                if 0 <= pitch <= 127:
                    events.append(NoteEvent(onset, duration, int(pitch), int(min(127, max(1, velocity))), index))
    return clean_events(events)


def _score_programs(score, default: int = 0) -> tuple[int, ...]:
    """The General MIDI program each part of a score names (``default`` where it names none)."""
    parts = list(score.parts) if score.hasPartLikeStreams() else [score]
    out = []
    for part in parts:
        instrument = part.getInstrument(returnDefault=False)
        program = getattr(instrument, "midiProgram", None)
        out.append(int(program) if program is not None and 0 <= program <= 127 else default)
    return tuple(out)


def events_from_midi(midi) -> list[NoteEvent]:
    """Note events of a MIDI file (a path or a ``pretty_midi.PrettyMIDI``); drum tracks are left out.

    Parts are the file's melodic instruments in order, or the part numbers that
    :func:`events_to_midi` wrote in the track names (``"part 3"``), so empty parts keep their index.

    Raises
    ------
    ParameterError
        The file is not a readable MIDI file (the message names it).

    Examples
    --------
    >>> events = [NoteEvent(0.0, 0.5, 60, 90), NoteEvent(0.5, 0.5, 64, 70, part=1)]
    >>> events_from_midi(events_to_midi(events)) == events
    True
    """
    pm = _read_midi(midi) if isinstance(midi, str | os.PathLike) else midi
    instruments = [i for i in pm.instruments if not i.is_drum]
    numbered = [re.fullmatch(r"part (\d+)", i.name or "") for i in instruments]
    by_name = all(numbered) and len({int(m.group(1)) for m in numbered}) == len(numbered)
    events = []
    for k, instrument in enumerate(instruments):
        part = int(numbered[k].group(1)) if by_name else k
        for n in instrument.notes:
            if n.end > n.start and 1 <= n.velocity:
                events.append(NoteEvent(float(n.start), float(n.end - n.start), int(n.pitch), int(n.velocity), part))
    return clean_events(events)


def _midi_programs(pm) -> tuple[int, ...]:
    instruments = [i for i in pm.instruments if not i.is_drum]
    numbered = [re.fullmatch(r"part (\d+)", i.name or "") for i in instruments]
    if instruments and all(numbered):
        programs = {int(m.group(1)): i.program for m, i in zip(numbered, instruments, strict=True)}
        return tuple(programs.get(k, 0) for k in range(max(programs) + 1))
    return tuple(i.program for i in instruments)


def _read_midi(path):
    pretty_midi = _import_pretty_midi()
    try:
        return pretty_midi.PrettyMIDI(str(path))
    except Exception as exc:  # mido and pretty_midi raise many kinds on a broken file
        raise ParameterError(
            f"{str(path)!r} is not a readable MIDI file ({type(exc).__name__}: {exc}); pass a Standard "
            "MIDI File (.mid) or a MusicXML/ABC score"
        ) from None


def events_to_midi(events: Iterable[NoteEvent], path: str | os.PathLike | None = None,
                   programs: Sequence[int] | None = None):
    """Write events to a MIDI file: one track per part, named ``"part k"``, with its program.

    Times are kept to one tick (1/1920 s at the file's 120 qpm and :data:`MIDI_RESOLUTION`), so
    ``events_from_midi(events_to_midi(e))`` equals ``e`` to half a tick, and exactly once ``e``
    has been through a file.

    Parameters
    ----------
    events : iterable of NoteEvent
    path : path, optional
        Where to write; the ``PrettyMIDI`` object is returned either way.
    programs : sequence of int, optional
        General MIDI program of each part (piano, 0, by default).

    Returns
    -------
    pretty_midi.PrettyMIDI
    """
    pretty_midi = _import_pretty_midi()
    events = list(events)
    n_parts = max([e.part + 1 for e in events] + [len(programs or ())])
    programs = list(programs or ()) + [0] * (n_parts - len(programs or ()))
    pm = pretty_midi.PrettyMIDI(resolution=MIDI_RESOLUTION, initial_tempo=120.0)
    tracks = [pretty_midi.Instrument(program=int(p), name=f"part {k}") for k, p in enumerate(programs)]
    for e in events:
        tracks[e.part].notes.append(pretty_midi.Note(velocity=e.velocity, pitch=e.pitch,
                                                     start=e.onset_seconds, end=e.offset_seconds))
    pm.instruments.extend(tracks)
    if path is not None:
        pm.write(str(path))
    return pm


def read_pieces(path: str | os.PathLike, *, piece_id: str | None = None, collection: str = "files",
                default_bpm: float = DEFAULT_BPM, default_velocity: int = DEFAULT_VELOCITY,
                expand_repeats: bool = True) -> list[Piece]:
    """The pieces in one file: ``.mid``/``.midi`` through pretty_midi, MusicXML and ABC through music21.

    An ABC file may hold many tunes: each becomes a piece, ``"<piece_id>/<tune number>"``.
    Programs come from the file (its MIDI instruments, or the MusicXML part's instrument; piano
    where none is named).

    Raises
    ------
    ParameterError
        The suffix is not one of :data:`SCORE_SUFFIXES`, the file cannot be read as one (the
        message names the file), or it holds no notes.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "two.mid"
    >>> _ = events_to_midi([NoteEvent(0.0, 0.5, 60), NoteEvent(0.5, 0.5, 62)], f, programs=[73])
    >>> [(p.id, len(p.events), p.programs) for p in read_pieces(f)]
    [('two.mid', 2, (73,))]
    """
    path = Path(path)
    piece_id = piece_id or path.name
    suffix = path.suffix.lower()
    if suffix not in SCORE_SUFFIXES:
        raise ParameterError(f"{str(path)!r} is not a score file; expected one of {', '.join(SCORE_SUFFIXES)}")
    if not path.is_file():
        raise ParameterError(f"{str(path)!r} does not exist; pass the path of a MIDI, MusicXML or ABC file")
    if suffix in MIDI_SUFFIXES:
        pm = _read_midi(path)
        scores = [(piece_id, path.stem, events_from_midi(pm), _midi_programs(pm))]
    else:
        music21 = _import_music21()
        try:
            parsed = music21.converter.parse(str(path))
        except Exception as exc:  # music21 raises many kinds on a file it cannot read
            raise ParameterError(
                f"{str(path)!r} is not a readable {suffix[1:]} score ({type(exc).__name__}: {exc}); pass a MIDI, "
                "MusicXML or ABC file"
            ) from None
        if isinstance(parsed, music21.stream.Opus):
            tunes = [(f"{piece_id}/{s.metadata.number if s.metadata and s.metadata.number else k + 1}", s)
                     for k, s in enumerate(parsed.scores)]
        else:
            tunes = [(piece_id, parsed)]
        scores = []
        for name, score in tunes:
            title = (score.metadata.title if score.metadata is not None else None) or path.stem
            events = events_from_score(score, default_bpm=default_bpm, default_velocity=default_velocity,
                                       expand_repeats=expand_repeats)
            scores.append((name, title, events, _score_programs(score)))
    pieces = []
    for name, title, events, programs in scores:
        if not events:
            raise ParameterError(
                f"{str(path)!r} holds no notes{'' if name == piece_id else f' in tune {name!r}'}; "
                "pass a score with at least one pitched note"
            )
        n_parts = max(max(e.part for e in events) + 1, len(programs))
        programs = tuple(programs) + (0,) * (n_parts - len(programs))
        pieces.append(Piece(name, str(title), collection, tuple(events), programs))
    return pieces


# --------------------------------------------------------------------------------------------
# Aligned targets
# --------------------------------------------------------------------------------------------


def _frame(t: float, frames_per_second: float) -> int:
    # a hair of tolerance so that 0.3 s at 100 frames/s is frame 30, not 29.999... -> 29
    return math.floor(t * frames_per_second + 1e-6)


def targets(events: Iterable[NoteEvent], n_frames: int, hop_length: int, sample_rate: int,
            pitch_range: tuple[int, int] = (21, 108), start_seconds: float = 0.0) -> dict[str, torch.Tensor]:
    """Frame-level targets aligned to the samples: piano roll, onsets, offsets, velocities.

    Frame ``f`` holds samples ``f * hop_length .. (f + 1) * hop_length - 1``; an event at ``t``
    seconds lands in frame ``floor((t - start_seconds) * sample_rate / hop_length)``, so sample
    ``floor(t * sample_rate)`` is less than one hop past that frame's first sample::

        samples   |0 . . . |hop . . |2hop . .|3hop . .|
        frames    |   0    |   1    |   2    |   3    |
        note          on^                off^
        onsets    |   1    |   .    |   .    |   .    |
        roll      |   1    |   1    |   .    |   .    |   onset frame .. offset frame - 1
        offsets   |   .    |   .    |   1    |   .    |   (a short note keeps one roll frame)

    Parameters
    ----------
    events : iterable of NoteEvent
    n_frames, hop_length, sample_rate : int
    pitch_range : (low, high)
        Inclusive MIDI range of the rows; notes outside it are left out.
    start_seconds : float
        Time of frame 0's first sample (a segment's start); notes sounding across it appear in
        the roll from frame 0 without an onset.

    Returns
    -------
    dict of float32 tensors, each ``(high - low + 1, n_frames)``: ``roll`` (1 where a note
    sounds), ``onsets`` and ``offsets`` (1 at the frame of a note-on / note-off), ``velocities``
    (velocity / 127 at onset frames, 0 elsewhere).

    Raises
    ------
    ParameterError
        A negative ``n_frames``, a ``hop_length`` or ``sample_rate`` that is not positive, or a
        ``pitch_range`` outside 0..127.

    Examples
    --------
    >>> t = targets([NoteEvent(0.02, 0.05, 60, 127)], n_frames=8, hop_length=160, sample_rate=16000,
    ...             pitch_range=(60, 61))
    >>> t["roll"][0].tolist(), t["onsets"][0].nonzero().item(), t["offsets"][0].nonzero().item()
    ([0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0], 2, 7)
    """
    low, high = _check_pitch_range(pitch_range)
    if n_frames < 0:
        raise ParameterError(f"n_frames={n_frames} must be >= 0")
    if hop_length < 1:
        raise ParameterError(f"hop_length={hop_length} must be a positive number of samples")
    check_sample_rate(sample_rate)
    fps = sample_rate / hop_length
    shape = (high - low + 1, n_frames)
    roll, onsets, offsets, velocities = (np.zeros(shape, np.float32) for _ in range(4))
    for e in events:
        if not low <= e.pitch <= high:
            continue
        row = e.pitch - low
        on = _frame(e.onset_seconds - start_seconds, fps)
        off = _frame(e.offset_seconds - start_seconds, fps)
        roll[row, max(on, 0):max(min(max(off, on + 1), n_frames), 0)] = 1.0
        if 0 <= on < n_frames:
            onsets[row, on] = 1.0
            velocities[row, on] = max(velocities[row, on], e.velocity / 127.0)
        if 0 <= off < n_frames:
            offsets[row, off] = 1.0
    return {"roll": torch.from_numpy(roll), "onsets": torch.from_numpy(onsets),
            "offsets": torch.from_numpy(offsets), "velocities": torch.from_numpy(velocities)}


def _check_pitch_range(pitch_range) -> tuple[int, int]:
    try:
        low, high = (int(p) for p in pitch_range)
    except (TypeError, ValueError):
        raise ParameterError(f"pitch_range={pitch_range!r} must be (low, high) MIDI notes, e.g. (21, 108)") from None
    if not 0 <= low <= high <= 127:
        raise ParameterError(f"pitch_range={pitch_range!r} must satisfy 0 <= low <= high <= 127, e.g. (21, 108)")
    return low, high


# --------------------------------------------------------------------------------------------
# Performance RNN vocabulary
# --------------------------------------------------------------------------------------------


class PerformanceVocabulary:
    """The Performance RNN event vocabulary (Oore et al. 2018), one integer per token.

    ========================  ==========================================================
    tokens                    meaning
    ========================  ==========================================================
    0 .. 127                  NOTE_ON pitch
    128 .. 255                NOTE_OFF pitch
    256 .. 256 + S - 1        TIME_SHIFT by 1 .. S steps of ``step_seconds`` (S = ``max_shift_steps``)
    256 + S .. 256 + S + V-1  SET_VELOCITY bin 0 .. V - 1 (V = ``velocity_bins``), for later NOTE_ONs
    ========================  ==========================================================

    Times are quantised to ``step_seconds`` (a note lasts at least one step); velocity 1..127 to
    ``velocity_bins`` equal bins, decoded to the middle of the bin. The vocabulary has no parts or
    voices: decoded notes are all part 0, and a NOTE_OFF ends the oldest sounding note of its pitch
    (first in, first out, as Magenta's decoder does). So polyphony round-trips, unisons included,
    except a note that starts and ends strictly inside another of the same pitch: the same keys go
    down and up at the same times, but the two durations come back paired the other way.

    Raises
    ------
    ParameterError
        ``step_seconds`` not positive, ``max_shift_steps`` or ``velocity_bins`` outside 1..127.

    Examples
    --------
    >>> vocab = PerformanceVocabulary()
    >>> tokens = vocab.encode([NoteEvent(0.0, 0.5, 60, 100)])
    >>> vocab.names(tokens)
    ['SET_VELOCITY 24 (~98)', 'NOTE_ON 60 (C4)', 'TIME_SHIFT 50 (500 ms)', 'NOTE_OFF 60 (C4)']
    >>> vocab.decode(tokens)
    [NoteEvent(onset_seconds=0.0, duration_seconds=0.5, pitch=60, velocity=98, part=0)]
    """

    def __init__(self, step_seconds: float = 0.01, max_shift_steps: int = 100, velocity_bins: int = 32):
        if not (math.isfinite(step_seconds) and step_seconds > 0):
            raise ParameterError(f"step_seconds={step_seconds} must be positive, e.g. 0.01 (10 ms)")
        if not 1 <= int(max_shift_steps) <= 10000:
            raise ParameterError(f"max_shift_steps={max_shift_steps} must be in 1..10000, e.g. 100")
        if not 1 <= int(velocity_bins) <= 127:
            raise ParameterError(f"velocity_bins={velocity_bins} must be in 1..127, e.g. 32")
        self.step_seconds = float(step_seconds)
        self.max_shift_steps = int(max_shift_steps)
        self.velocity_bins = int(velocity_bins)
        self.note_on_offset, self.note_off_offset = 0, 128
        self.time_shift_offset = 256
        self.velocity_offset = 256 + self.max_shift_steps
        self.size = self.velocity_offset + self.velocity_bins
        # velocity v in bin (v - 1) * bins // 127; a bin decodes to the middle of its velocities
        bins = (np.arange(1, 128) - 1) * self.velocity_bins // 127
        self._bin_of = {v: int(b) for v, b in zip(range(1, 128), bins, strict=True)}
        self._velocity_of = [int(np.arange(1, 128)[bins == b].mean().round()) for b in range(self.velocity_bins)]

    def __len__(self) -> int:
        return self.size

    def __repr__(self) -> str:
        return (f"PerformanceVocabulary(step_seconds={self.step_seconds}, max_shift_steps={self.max_shift_steps}, "
                f"velocity_bins={self.velocity_bins}; {self.size} tokens)")

    def velocity_bin(self, velocity: int) -> int:
        return self._bin_of[int(velocity)]

    def bin_velocity(self, bin_index: int) -> int:
        """The velocity a SET_VELOCITY bin decodes to (the middle of its range)."""
        return self._velocity_of[bin_index]

    def name(self, token: int) -> str:
        """What a token means, e.g. ``"NOTE_ON 60 (C4)"`` or ``"TIME_SHIFT 3 (30 ms)"``."""
        token = self._check_token(token)
        if token < 128:
            return f"NOTE_ON {token} ({_note_name(token)})"
        if token < 256:
            return f"NOTE_OFF {token - 128} ({_note_name(token - 128)})"
        if token < self.velocity_offset:
            steps = token - self.time_shift_offset + 1
            return f"TIME_SHIFT {steps} ({steps * self.step_seconds * 1000:g} ms)"
        b = token - self.velocity_offset
        return f"SET_VELOCITY {b} (~{self.bin_velocity(b)})"

    def names(self, tokens: Iterable[int]) -> list[str]:
        return [self.name(t) for t in tokens]

    def _check_token(self, token) -> int:
        token = int(token)
        if not 0 <= token < self.size:
            raise ParameterError(f"token {token} is outside this vocabulary's 0..{self.size - 1}; "
                                 "decode with the settings that encoded it")
        return token

    def _steps(self, seconds: float) -> int:
        return int(round(seconds / self.step_seconds))

    def encode(self, events: Iterable[NoteEvent]) -> list[int]:
        """Tokens of ``events`` (parts are merged; see the class notes)."""
        changes = []  # (step, 0 = off | 1 = on, pitch, off step for ons, velocity)
        for e in events:
            on = self._steps(e.onset_seconds)
            off = max(self._steps(e.offset_seconds), on + 1)
            changes.append((on, 1, e.pitch, off, e.velocity))
            changes.append((off, 0, e.pitch, 0, 0))
        # 1. at one step, releases come first; 2. same-pitch note-ons in order of release, so that
        #    the decoder's first-in first-out pairing gives each note-off to the right note
        changes.sort(key=lambda c: c[:4])
        tokens, now, velocity_bin = [], 0, None
        for step, on, pitch, _, velocity in changes:
            while step > now:  # 3. time shifts, at most max_shift_steps each
                shift = min(step - now, self.max_shift_steps)
                tokens.append(self.time_shift_offset + shift - 1)
                now += shift
            if on:
                b = self.velocity_bin(velocity)
                if b != velocity_bin:
                    tokens.append(self.velocity_offset + b)
                    velocity_bin = b
                tokens.append(self.note_on_offset + pitch)
            else:
                tokens.append(self.note_off_offset + pitch)
        return tokens

    def decode(self, tokens: Iterable[int]) -> list[NoteEvent]:
        """Events from tokens, all part 0. A NOTE_OFF with no sounding note is ignored; notes still
        sounding at the end are released there (after at least one step).

        Raises
        ------
        ParameterError
            A token outside the vocabulary.
        """
        now, velocity = 0, DEFAULT_VELOCITY
        sounding: dict[int, list[tuple[int, int]]] = {}
        notes = []
        for token in tokens:
            token = self._check_token(token)
            if token < 128:
                sounding.setdefault(token, []).append((now, velocity))
            elif token < 256:
                started = sounding.get(token - 128)
                if started:
                    on, v = started.pop(0)
                    notes.append((on, max(now, on + 1), token - 128, v))
            elif token < self.velocity_offset:
                now += token - self.time_shift_offset + 1
            else:
                velocity = self.bin_velocity(token - self.velocity_offset)
        for pitch, started in sounding.items():
            notes.extend((on, max(now, on + 1), pitch, v) for on, v in started)
        step = self.step_seconds
        return sorted((NoteEvent(on * step, (off - on) * step, pitch, v) for on, off, pitch, v in notes),
                      key=_event_order)


def encode_performance(events: Iterable[NoteEvent], step_seconds: float = 0.01, max_shift_steps: int = 100,
                       velocity_bins: int = 32) -> list[int]:
    """Events to Performance RNN tokens (see :class:`PerformanceVocabulary`).

    Examples
    --------
    >>> encode_performance([NoteEvent(0.0, 0.1, 60, 100)])
    [380, 60, 265, 188]
    """
    return PerformanceVocabulary(step_seconds, max_shift_steps, velocity_bins).encode(events)


def decode_performance(tokens: Iterable[int], step_seconds: float = 0.01, max_shift_steps: int = 100,
                       velocity_bins: int = 32) -> list[NoteEvent]:
    """Performance RNN tokens to events, all part 0 (see :class:`PerformanceVocabulary`).

    Examples
    --------
    >>> decode_performance([380, 60, 265, 188])
    [NoteEvent(onset_seconds=0.0, duration_seconds=0.1, pitch=60, velocity=98, part=0)]
    """
    return PerformanceVocabulary(step_seconds, max_shift_steps, velocity_bins).decode(tokens)


# --------------------------------------------------------------------------------------------
# Collections of music21's corpus
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """Where a piece comes from: a corpus path (or a file) and the tune number inside it."""

    id: str
    title: str
    path: str
    number: int | None = None


def split_of(piece_id: str, test_every: int = 10) -> str:
    """``"test"``, ``"validation"`` or ``"train"``: a piece's split, from a hash of its id alone.

    Examples
    --------
    >>> split_of("bach/bwv269") in ("train", "validation", "test")
    True
    """
    bucket = zlib.crc32(piece_id.encode()) % test_every
    return {0: "test", 1: "validation"}.get(bucket, "train")


def _list_chorales() -> list[Source]:
    from music21 import corpus

    titles = {}
    for bwv, info in corpus.chorales.ChoraleList().byBWV.items():
        titles[str(bwv)] = info.get("title") or ""
    out = []
    for name in dict.fromkeys(corpus.chorales.Iterator(returnType="filename")):  # 'bach/bwv269'
        found = corpus.getWork(name)
        stem = name.split("/")[-1]
        order = (".mxl", ".musicxml", ".xml", ".krn")
        found = [Path(p) for p in (found if isinstance(found, list) else [found]) if Path(p).suffix in order]
        exact = [p for p in found if p.stem == stem]
        if not exact and len(found) == 1:  # 'bach/bwv18.5-l' is stored as bwv18.5-lz.mxl
            exact = found
        exact = sorted(exact, key=lambda p: order.index(p.suffix))
        if not exact:
            log.warning("chorale %s has no score file in music21's corpus; left out", name)
            continue
        bwv = stem.removeprefix("bwv")
        title = titles.get(bwv) or titles.get(bwv.split(".")[0]) or ""
        out.append(Source(name, f"BWV {bwv}" + (f": {title}" if title else ""), f"bach/{exact[0].name}"))
    return out


def _list_folk() -> list[Source]:
    from music21 import corpus

    by_source: dict[str, list] = {s: [] for s in FOLK_SOURCES}
    bundle = corpus.corpora.CoreCorpus().metadataBundle
    # the bundle has no __iter__ and iterating through __getitem__ copies its 15000 entries each step
    # (40 s); its ordered dict of entries is the same list in 2 s
    entries = getattr(bundle, "_metadataEntries", None)
    for entry in (entries.values() if entries is not None else bundle):
        path = Path(entry.sourcePath)
        if path.parts and path.parts[0] in by_source and path.suffix == ".abc":
            by_source[path.parts[0]].append(entry)
    lists = []
    for entries in by_source.values():
        opus_files = {str(e.sourcePath) for e in entries if e.number is not None}
        tunes = [e for e in entries if e.number is not None or str(e.sourcePath) not in opus_files]
        tunes.sort(key=lambda e: (str(e.sourcePath), int(e.number or 0)))
        lists.append([Source(str(Path(e.sourcePath).with_suffix("")) + (f"/{e.number}" if e.number else ""),
                             (e.metadata.title if e.metadata is not None else None) or "",
                             str(e.sourcePath), int(e.number) if e.number else None) for e in tunes])
    # take the sources in turn, so that the first few pieces already mix the three styles
    out = []
    for k in range(max(len(x) for x in lists)):
        out.extend(x[k] for x in lists if k < len(x))
    return out


def list_collection(collection: str, cache_dir: str | os.PathLike | None = None) -> list[Source]:
    """The pieces of a collection of ``music21``'s corpus, in a fixed order.

    With ``cache_dir`` the listing is read from (or written to) ``index/<collection>-music21-<version>.json``
    there, so a cached dataset needs no music21.

    Raises
    ------
    ParameterError
        An unknown collection.
    """
    if collection not in COLLECTIONS:
        raise ParameterError(f"collection={collection!r} is not one of {', '.join(COLLECTIONS)}; "
                             "or pass your own files with files=[...]")
    file = None
    if cache_dir is not None:
        try:
            version = importlib.metadata.version("music21")
        except importlib.metadata.PackageNotFoundError:
            version = "none"
        file = Path(cache_dir) / "index" / f"{collection}-music21-{version}.json"
        if file.exists():
            return [Source(**s) for s in json.loads(file.read_text())]
    _import_music21()
    sources = _list_chorales() if collection == "chorales" else _list_folk()
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(file, json.dumps([s.__dict__ for s in sources]))
    return sources


def _write_atomic(file: Path, text: str):
    tmp = file.with_name(file.name + f".{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(file)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", name).strip("_") or "piece"


def _resolve_programs(programs, default) -> tuple[tuple[int, ...] | None, bool]:
    """``None`` (use ``default``), one name/number for every part, or one per part -> (numbers, single)."""
    if programs is None:
        programs = default
    if programs is None:
        return None, False
    single = isinstance(programs, str | int)
    out = []
    for p in ([programs] if single else list(programs)):
        if isinstance(p, str):
            if p not in _data.SOUNDFONT_PROGRAMS:
                raise ParameterError(f"program {p!r} is not a known instrument; use one of "
                                     f"{', '.join(_data.SOUNDFONT_PROGRAMS)} or a General MIDI number 0..127")
            p = _data.SOUNDFONT_PROGRAMS[p]
        if isinstance(p, bool) or not isinstance(p, int | np.integer) or not 0 <= p <= 127:
            raise ParameterError(f"program {p!r} must be an instrument name or a General MIDI number 0..127")
        out.append(int(p))
    if not out:
        raise ParameterError("programs=() names no instrument; pass one name, or one per part")
    return tuple(out), single


# --------------------------------------------------------------------------------------------
# The dataset
# --------------------------------------------------------------------------------------------


class Scores(Dataset):
    """Real music rendered to audio: fixed-length segments with their sample-aligned piano roll.

    Yields ``(samples, cond)``: ``samples`` ``(1, segment)`` float32 and
    ``cond = {"pianoroll": (n_pitches, n_frames) float32}``, the roll of that segment at
    ``sample_rate / hop_length`` frames per second (:func:`targets`; all four targets through
    :meth:`targets`). Deterministic: item ``i`` is always the same sound.

    Parameters
    ----------
    collection : {"chorales", "folk"}
        A collection of ``music21``'s corpus (ignored when ``files`` is given).
    files : path or sequence of paths, optional
        Your own ``.mid/.midi/.musicxml/.mxl/.xml/.abc`` files, or a folder searched for them.
    split : {"all", "train", "validation", "test"}
        By piece, from a hash of the piece id (:func:`split_of`, about 80/10/10): a piece and all
        its transpositions are in one split, whichever other pieces are loaded.
    max_pieces : int, optional
        Use only the first pieces of the collection (in its fixed order), before splitting: the
        splits of one ``max_pieces`` are disjoint parts of the same pieces.
    segment_seconds : float
        Length of each item.
    hop_seconds : float, optional
        Start of one segment to the next (``segment_seconds``, no overlap, by default).
    pad_last : bool
        Keep the last, partial segment of each piece, padded with silence (True), or drop it;
        a piece shorter than one segment is then dropped too.
    sample_rate, hop_length : int
        Audio rate and samples per piano-roll frame.
    pitch_range : (low, high)
        Rows of the piano roll, inclusive MIDI range.
    transpose : iterable of int
        Semitone shifts (``range(-3, 4)``): each shifted version of a piece is its own audio, in
        the piece's split. A version with a pitch outside ``pitch_range`` is skipped.
    programs : str, int or sequence, optional
        Instrument of every part (a name from :data:`~workbench.data.SOUNDFONT_PROGRAMS` or a
        General MIDI number), or one per part. The collection's own by default
        (:data:`COLLECTIONS`); your files' own instruments for ``files``.
    max_seconds : float
        A piece longer than this is refused (or cut, with ``truncate=True``).
    truncate : bool
    tail_seconds : float
        Rendered after the last note's release, so that it rings out.
    default_bpm, default_velocity : float, int
        Tempo and loudness where a score marks none (:func:`events_from_score`).
    soundfont : path, optional
        Another .sf2 file (also ``$WORKBENCH_SOUNDFONT``).
    cache_dir : path, optional
        Keep the listing, the parsed events (JSON) and the rendered audio (``.npy``) here (also
        ``$WORKBENCH_SCORES_CACHE``); a dataset whose pieces are all cached needs neither
        music21 nor FluidSynth. Layout::

            index/<collection>-music21-<version>.json     the collection's pieces
            events/<collection>/<piece>.<options>.json     parsed events of a corpus piece
            events/files/<file>.<content hash>.<options>.json
            audio/<collection>/<piece>.<shift>.<rate>Hz.<hash of events and sound>.npy

        Without it, parsed pieces and rendered audio are kept in memory.
    progress : bool
        Show a progress bar while parsing.

    Raises
    ------
    ParameterError
        Unknown collection or split; bad lengths, shifts, programs or range; a piece too long; a
        file that is not a score or holds no notes; no segment left in the split.
    MissingDependencyError
        Parsing needs music21 or rendering needs FluidSynth / the SoundFont, and it is missing.

    Examples
    --------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> _ = events_to_midi([NoteEvent(0.0, 0.5, 60), NoteEvent(0.5, 0.5, 64)], f"{folder}/tune.mid", [73])
    >>> ds = Scores(files=folder, segment_seconds=0.5, hop_length=160)
    >>> len(ds), ds[0][0].shape, ds[0][1]["pianoroll"].shape
    (3, torch.Size([1, 8000]), torch.Size([88, 50]))
    """

    def __init__(self, collection: str = "chorales", *, files=None, split: str = "all",
                 max_pieces: int | None = None, segment_seconds: float = 2.0, hop_seconds: float | None = None,
                 pad_last: bool = True, sample_rate: int = 16000, hop_length: int = 256,
                 pitch_range: tuple[int, int] = (21, 108), transpose: Iterable[int] = (0,), programs=None,
                 max_seconds: float = 300.0, truncate: bool = False, tail_seconds: float = 0.5,
                 default_bpm: float = DEFAULT_BPM, default_velocity: int = DEFAULT_VELOCITY,
                 soundfont: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None,
                 progress: bool = False):
        if split not in _data.SPLITS:
            raise ParameterError(f"split={split!r} must be one of {', '.join(_data.SPLITS)}")
        if files is None and collection not in COLLECTIONS:
            raise ParameterError(f"collection={collection!r} is not one of {', '.join(COLLECTIONS)}; "
                                 "or pass your own files with files=[...]")
        if max_pieces is not None and (isinstance(max_pieces, bool) or int(max_pieces) < 1):
            raise ParameterError(f"max_pieces={max_pieces} must be a positive count (or None for all)")
        for name, value in (("segment_seconds", segment_seconds), ("max_seconds", max_seconds)):
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ParameterError(f"{name}={value} must be a positive number of seconds")
        if hop_seconds is not None and not (math.isfinite(hop_seconds) and hop_seconds > 0):
            raise ParameterError(f"hop_seconds={hop_seconds} must be a positive number of seconds")
        if not (math.isfinite(tail_seconds) and tail_seconds >= 0):
            raise ParameterError(f"tail_seconds={tail_seconds} must be >= 0")
        if isinstance(hop_length, bool) or not isinstance(hop_length, int) or hop_length < 1:
            raise ParameterError(f"hop_length={hop_length!r} must be a positive number of samples, e.g. 256")
        self.shifts = tuple(dict.fromkeys(int(k) for k in transpose))
        if not self.shifts or any(abs(k) > 48 for k in self.shifts):
            raise ParameterError(f"transpose={tuple(transpose)!r} must hold semitone shifts within -48..48, "
                                 "e.g. range(-3, 4)")
        self.collection = "files" if files is not None else collection
        self.split = split
        self.max_pieces = None if max_pieces is None else int(max_pieces)
        self.sample_rate = check_sample_rate(sample_rate)
        self.hop_length = hop_length
        self.segment = int(round(segment_seconds * self.sample_rate))
        self.hop = int(round((hop_seconds or segment_seconds) * self.sample_rate))
        self.n_frames = math.ceil(self.segment / hop_length)
        self.pad_last = bool(pad_last)
        self.pitch_range = _check_pitch_range(pitch_range)
        self.max_seconds, self.truncate, self.tail_seconds = float(max_seconds), bool(truncate), float(tail_seconds)
        self.parse_options = {"default_bpm": float(default_bpm), "default_velocity": int(default_velocity),
                              "expand_repeats": True, "format": EVENTS_FORMAT}
        self.soundfont = soundfont
        cache_dir = cache_dir if cache_dir is not None else os.environ.get("WORKBENCH_SCORES_CACHE")
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.progress = progress
        default_program = COLLECTIONS.get(collection) if files is None else None
        self.programs, self._one_program = _resolve_programs(programs, default_program)
        self._audio: dict[int, np.ndarray] = {}

        # 1. which pieces: the collection's listing (or the files), the first max_pieces, this split
        pieces = self._load_files(files) if files is not None else self._load_collection()
        # 2. instruments, length limit
        self.pieces = [self._prepare(p) for p in pieces]
        # 3. versions (transpositions) inside the pitch range, then segments
        low, high = self.pitch_range
        self.versions, skipped = [], 0
        for i, piece in enumerate(self.pieces):
            p_low, p_high = piece.pitch_range
            for k in self.shifts:
                if low <= p_low + k and p_high + k <= high:
                    self.versions.append((i, k))
                else:
                    skipped += 1
        if skipped:
            log.info("Scores: %d transposed version(s) left out, outside pitch_range %s", skipped, self.pitch_range)
        self.items = []
        for v in range(len(self.versions)):
            self.items.extend((v, start) for start in self._starts(self._n_samples(v)))
        if not self.items:
            raise ParameterError(
                f"no segment in split={split!r} ({len(self.pieces)} piece(s), {len(self.versions)} version(s) "
                f"within pitch_range {self.pitch_range}); raise max_pieces, use split='all', widen pitch_range "
                "or use pad_last=True"
            )
        # a machine without FluidSynth (a GPU box) can still train on audio rendered elsewhere
        if not self.fully_cached:
            _data.find_soundfont(soundfont)
            _data._import_fluidsynth()

    # -- pieces -----------------------------------------------------------------------------

    def _options_tag(self) -> str:
        return f"{zlib.crc32(json.dumps(self.parse_options, sort_keys=True).encode()):08x}"

    def _load_collection(self) -> list[Piece]:
        sources = list_collection(self.collection, self.cache_dir)
        if self.max_pieces is not None:
            sources = sources[: self.max_pieces]
        if self.split != "all":
            sources = [s for s in sources if split_of(s.id) == self.split]
        pieces = []
        for source in self._progress(sources, f"parse {self.collection}"):
            file = None
            if self.cache_dir is not None:
                file = self.cache_dir / "events" / self.collection / f"{_safe(source.id)}.{self._options_tag()}.json"
                if file.exists():
                    pieces.extend(Piece.from_dict(d) for d in json.loads(file.read_text())["pieces"])
                    continue
            piece = self._parse_source(source)
            if piece is None:
                continue
            if file is not None:
                file.parent.mkdir(parents=True, exist_ok=True)
                _write_atomic(file, json.dumps({"pieces": [piece.to_dict()]}))
            pieces.append(piece)
        return pieces

    def _parse_source(self, source: Source) -> Piece | None:
        music21 = _import_music21()
        try:
            if source.number is not None:
                score = music21.corpus.parse(source.path, number=source.number)
            else:
                score = music21.corpus.parse(source.path)
            if isinstance(score, music21.stream.Opus):
                score = score.scores[0]
            events = events_from_score(score, default_bpm=self.parse_options["default_bpm"],
                                       default_velocity=self.parse_options["default_velocity"])
        except (music21.exceptions21.Music21Exception, ValueError, IndexError, KeyError) as exc:
            log.warning("Scores: %s could not be parsed (%s); left out", source.id, exc)
            return None
        if not events:
            log.warning("Scores: %s holds no notes; left out", source.id)
            return None
        n_parts = max(len(score.parts) if score.hasPartLikeStreams() else 1, max(e.part for e in events) + 1)
        return Piece(source.id, source.title, self.collection, tuple(events), (0,) * n_parts)

    def _load_files(self, files) -> list[Piece]:
        if isinstance(files, str | os.PathLike):
            files = [files]
        paths = []
        for f in files:
            f = Path(f)
            if f.is_dir():
                found = sorted(p for p in f.rglob("*") if p.suffix.lower() in SCORE_SUFFIXES and p.is_file())
                if not found:
                    raise ParameterError(f"no score files under {str(f)!r} (looked for {', '.join(SCORE_SUFFIXES)})")
                paths.extend((p, p.relative_to(f).as_posix()) for p in found)
            else:
                if f.suffix.lower() not in SCORE_SUFFIXES:
                    raise ParameterError(f"{str(f)!r} is not a score file; expected one of {', '.join(SCORE_SUFFIXES)}")
                if not f.is_file():
                    raise ParameterError(f"{str(f)!r} does not exist; pass the path of a MIDI, MusicXML or ABC file")
                paths.append((f, f.name))
        ids = [i for _, i in paths]
        if len(set(ids)) != len(ids):  # same names in several folders: tell them apart by the full path
            paths = [(p, p.resolve().as_posix()) for p, _ in paths]
        if self.max_pieces is not None:
            paths = paths[: self.max_pieces]
        if self.split != "all":
            paths = [(p, i) for p, i in paths if split_of(i) == self.split]
        pieces = []
        for path, piece_id in self._progress(paths, "parse files"):
            file = None
            if self.cache_dir is not None:
                digest = hashlib.sha1(path.read_bytes()).hexdigest()[:12]
                file = self.cache_dir / "events" / "files" / f"{_safe(piece_id)}.{digest}.{self._options_tag()}.json"
                if file.exists():
                    pieces.extend(Piece.from_dict(d) for d in json.loads(file.read_text())["pieces"])
                    continue
            found = read_pieces(path, piece_id=piece_id, default_bpm=self.parse_options["default_bpm"],
                                default_velocity=self.parse_options["default_velocity"])
            if file is not None:
                file.parent.mkdir(parents=True, exist_ok=True)
                _write_atomic(file, json.dumps({"pieces": [p.to_dict() for p in found]}))
            pieces.extend(found)
        return pieces

    def _prepare(self, piece: Piece) -> Piece:
        """The piece with this dataset's instruments, checked against ``max_seconds``."""
        if self.programs is not None:
            programs = self.programs * piece.n_parts if self._one_program else self.programs
            if len(programs) < piece.n_parts:
                raise ParameterError(
                    f"piece {piece.id!r} has {piece.n_parts} parts but programs names {len(self.programs)}; "
                    "give one instrument for all parts or one per part"
                )
            piece = Piece(piece.id, piece.title, piece.collection, piece.events, programs[: piece.n_parts])
        if piece.seconds > self.max_seconds:
            if not self.truncate:
                raise ParameterError(
                    f"piece {piece.id!r} lasts {piece.seconds:.1f} s, longer than max_seconds={self.max_seconds:g}; "
                    "raise max_seconds, or pass truncate=True to cut it there"
                )
            piece = piece.truncated(self.max_seconds)
        return piece

    def _progress(self, items, desc):
        if not self.progress:
            return items
        from tqdm.auto import tqdm

        return tqdm(items, desc=desc, leave=False)

    # -- audio ------------------------------------------------------------------------------

    def version(self, v: int) -> Piece:
        """Version ``v``: a piece in one transposition."""
        i, k = self.versions[v]
        return self.pieces[i] if k == 0 else self.pieces[i].transposed(k)

    def _n_samples(self, v: int) -> int:
        return int(round((self.pieces[self.versions[v][0]].seconds + self.tail_seconds) * self.sample_rate))

    def _starts(self, n: int) -> list[int]:
        """Segment starts in a piece of ``n`` samples; the last partial one only with ``pad_last``."""
        starts = list(range(0, n - self.segment + 1, self.hop))
        if self.pad_last and (not starts or starts[-1] + self.segment < n):
            starts.append(starts[-1] + self.hop if starts else 0)
        return starts

    def _audio_file(self, v: int) -> Path:
        piece = self.version(v)
        font = Path(self.soundfont).stem if self.soundfont else "FluidR3_GM"
        spec = json.dumps({"events": [e.as_tuple() for e in piece.events], "programs": piece.programs,
                           "sample_rate": self.sample_rate, "n_samples": self._n_samples(v), "soundfont": font,
                           "gain": 2.0}, sort_keys=True)
        digest = hashlib.sha1(spec.encode()).hexdigest()[:16]
        shift = self.versions[v][1]
        return (self.cache_dir / "audio" / self.collection /
                f"{_safe(piece.id)}.{shift:+d}.{self.sample_rate}Hz.{digest}.npy")

    @property
    def fully_cached(self) -> bool:
        """Whether every version's audio is already rendered in ``cache_dir``."""
        return self.cache_dir is not None and all(self._audio_file(v).exists() for v in range(len(self.versions)))

    @cached_property
    def _renderer(self):
        return _data.SoundFontRenderer(self.sample_rate, self.soundfont)

    def render(self, v: int) -> np.ndarray:
        """Version ``v`` rendered whole: ``(n_samples,)`` float32 (read-only when cached on disk)."""
        if v not in self._audio:
            file = self._audio_file(v) if self.cache_dir is not None else None
            if file is not None and file.exists():
                self._audio[v] = np.load(file, mmap_mode="r")
            else:
                piece = self.version(v)
                x = self._renderer.render_parts([e.as_tuple() for e in piece.events], self._n_samples(v) /
                                                self.sample_rate, piece.programs)
                if file is not None:
                    file.parent.mkdir(parents=True, exist_ok=True)
                    tmp = file.with_name(file.name + f".{os.getpid()}.tmp.npy")
                    np.save(tmp, x)
                    tmp.replace(file)
                    x = np.load(file, mmap_mode="r")  # the page cache holds it, not this process
                self._audio[v] = x
        return self._audio[v]

    def audio(self, piece: int | str, transpose: int = 0) -> Audio:
        """A whole piece (by index in :attr:`pieces` or id) as an :class:`Audio`."""
        index = self._piece_index(piece)
        if (index, transpose) not in self.versions:
            raise ParameterError(f"transpose={transpose} is not among this dataset's versions of "
                                 f"{self.pieces[index].id!r}; use one of {self.shifts}")
        x = self.render(self.versions.index((index, transpose)))
        return Audio(torch.from_numpy(np.array(x))[None], self.sample_rate)

    def _piece_index(self, piece) -> int:
        if isinstance(piece, str):
            for i, p in enumerate(self.pieces):
                if p.id == piece:
                    return i
            raise ParameterError(f"no piece {piece!r} in this dataset; its pieces are {[p.id for p in self.pieces[:5]]}...")
        if not 0 <= piece < len(self.pieces):
            raise ParameterError(f"piece={piece} is out of range for {len(self.pieces)} pieces")
        return piece

    # -- items ------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.items)

    def _check_index(self, index: int) -> int:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} is out of range for {len(self)} segments")
        return index % len(self)

    def segment_info(self, index: int) -> dict:
        """Where item ``index`` comes from: piece id, title, transposition, start in seconds."""
        v, start = self.items[self._check_index(index)]
        i, k = self.versions[v]
        return {"piece": self.pieces[i].id, "title": self.pieces[i].title, "transpose": k,
                "start_seconds": start / self.sample_rate, "split": split_of(self.pieces[i].id)}

    def targets(self, index: int) -> dict[str, torch.Tensor]:
        """All four aligned targets of item ``index`` (:func:`targets`), each ``(n_pitches, n_frames)``."""
        v, start = self.items[self._check_index(index)]
        t0, t1 = start / self.sample_rate, (start + self.segment) / self.sample_rate
        events = [e for e in self.version(v).events if e.onset_seconds < t1 and e.offset_seconds >= t0]
        return targets(events, self.n_frames, self.hop_length, self.sample_rate, self.pitch_range, t0)

    def __getitem__(self, index: int):
        index = self._check_index(index)
        v, start = self.items[index]
        x = np.array(self.render(v)[start:start + self.segment], dtype=np.float32)
        x = np.pad(x, (0, self.segment - x.shape[0]))  # the last segment: padded with silence
        return torch.from_numpy(x)[None], {"pianoroll": self.targets(index)["roll"]}  # (1, segment)

    # -- dataset card -----------------------------------------------------------------------

    def describe(self) -> dict:
        """The dataset card: pieces, versions, segments and hours of audio per split, pitch range,
        notes per second (mean over pieces) and parts per piece.

        Returns
        -------
        dict, JSON-ready.
        """
        splits = ("train", "validation", "test")
        pieces = {s: 0 for s in splits}
        versions = {s: 0 for s in splits}
        seconds = {s: 0.0 for s in splits}
        segments = {s: 0 for s in splits}
        for p in self.pieces:
            pieces[split_of(p.id)] += 1
        for v, (i, _) in enumerate(self.versions):
            versions[split_of(self.pieces[i].id)] += 1
            seconds[split_of(self.pieces[i].id)] += self._n_samples(v) / self.sample_rate
        for v, _ in self.items:
            segments[split_of(self.pieces[self.versions[v][0]].id)] += 1
        lows, highs = zip(*(p.pitch_range for p in self.pieces), strict=True)
        parts: dict[str, int] = {}
        for p in self.pieces:
            parts[str(p.n_parts)] = parts.get(str(p.n_parts), 0) + 1
        return {
            "collection": self.collection,
            "split": self.split,
            "pieces": {**pieces, "all": len(self.pieces)},
            "versions": {**versions, "all": len(self.versions)},
            "segments": {**segments, "all": len(self.items)},
            "hours": {**{s: seconds[s] / 3600 for s in splits}, "all": sum(seconds.values()) / 3600},
            "pitch_range": [min(lows), max(highs)],
            "notes_per_second": float(np.mean([len(p.events) / p.seconds for p in self.pieces])),
            "notes": sum(len(p.events) for p in self.pieces),
            "parts": dict(sorted(parts.items(), key=lambda kv: int(kv[0]))),
            "transpose": list(self.shifts),
            "segment_seconds": self.segment / self.sample_rate,
            "sample_rate": self.sample_rate,
            "frames_per_second": self.sample_rate / self.hop_length,
        }


class ScoreTargets(Dataset):
    """:class:`Scores` segments with every aligned target, for models that need more than the roll.

    Yields ``(samples (1, time), {"pianoroll", "onsets", "offsets", "velocities"})``, each target
    ``(pitches, frames)`` from :meth:`Scores.targets`: the roll alone cannot tell a repeated note
    from a held one; the onsets can.

    Parameters
    ----------
    scores : Scores
    """

    def __init__(self, scores: Scores):
        self.scores = scores

    def __len__(self) -> int:
        return len(self.scores)

    def __getitem__(self, index: int):
        samples, _ = self.scores[index]  # (1, segment)
        t = self.scores.targets(index)
        return samples, {"pianoroll": t["roll"], "onsets": t["onsets"], "offsets": t["offsets"],
                         "velocities": t["velocities"]}

    def describe(self) -> dict:
        """The dataset card of the underlying :class:`Scores`."""
        return self.scores.describe()
