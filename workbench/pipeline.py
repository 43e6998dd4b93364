"""Music from notes: the legs of Wave2Midi2Wave, each a function (and a ``workbench`` command).

::

    notes_lm --compose--> notes --play--> audio --transcribe--> notes
                            |                                    |
                            +----------- note F1 (loop) ---------+

- :func:`compose`: a language model over note events writes a piece (``notes_lm``);
- :func:`play`: a synthesiser renders notes to audio (``midi2wave``, or FluidSynth: the ceiling);
- :func:`transcribe`: an Onsets and Frames model hears audio and writes notes (``transcriber``);
- :func:`loop`: play a score, transcribe what was played and score it against the score: how much
  of the music survives being played.

Each function takes a registered name (the shipped checkpoint), a checkpoint folder or a loaded
model, and notes as :class:`~workbench.scores.NoteEvent` lists, a MIDI / MusicXML / ABC file or a
:class:`~workbench.scores.Piece`.

Notebook: notebooks/09_music_from_notes.ipynb
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .audio import Audio
from .errors import ParameterError
from .scores import NoteEvent, Piece, clean_events, read_pieces

#: A piece longer than this is not played by a synthesiser that samples step by step (it would
#: block a CPU for minutes); play a part of it (``seconds=``) instead.
MAX_PLAY_SECONDS = 30.0


def _model(model, kind: type):
    from .models import load_model

    loaded = model if isinstance(model, kind) else load_model(model)
    if not isinstance(loaded, kind):
        raise ParameterError(f"{getattr(loaded, 'name', model)!r} is not a {kind.__name__}; pass one")
    return loaded


def notes_of(score) -> tuple[list[NoteEvent], tuple[int, ...] | None]:
    """Events (and General MIDI programs, where known) of a score given in any of the accepted forms.

    ``score`` is a list of :class:`NoteEvent` (or ``(onset_s, duration_s, pitch, velocity)``
    tuples), a :class:`Piece`, or the path of a ``.mid/.midi/.musicxml/.mxl/.xml/.abc`` file (its
    first piece).

    Raises
    ------
    ParameterError
        A file that is not a score, or a score with no notes.
    """
    if isinstance(score, str | os.PathLike):
        pieces = read_pieces(Path(score))
        score = pieces[0]
    if isinstance(score, Piece):
        return list(score.events), tuple(score.programs)
    events = [e if isinstance(e, NoteEvent) else NoteEvent(*e) for e in score]
    if not events:
        raise ParameterError("the score has no notes; pass at least one note")
    return clean_events(events), None


def compose(seconds: float = 20.0, *, model="notes_lm", temperature: float | None = None, generator=None,
            prompt=None, progress=None) -> list[NoteEvent]:
    """A new piece of about ``seconds`` written by a language model over note events."""
    from .models.notes_lm import NotesLM

    lm = _model(model, NotesLM)
    return lm.generate_events(1, seconds=seconds, temperature=temperature, generator=generator, prompt=prompt,
                              progress=progress)[0]


def play(score, *, model="midi2wave", seconds: float | None = None, temperature: float | None = None,
         generator=None, progress=None) -> Audio:
    """Render a score with a synthesiser model, or with FluidSynth (``model="fluidsynth"``).

    ``seconds`` cuts the score (notes starting later are left out); a score longer than
    :data:`MAX_PLAY_SECONDS` must be cut.

    Raises
    ------
    ParameterError
        No notes, a score too long, or a note the model cannot play (outside its pitch range).
    """
    events, programs = notes_of(score)
    end = max(e.offset_seconds for e in events)
    if seconds is not None:
        events = [e for e in events if e.onset_seconds < seconds]
        end = min(end, float(seconds))
    if end > MAX_PLAY_SECONDS:
        raise ParameterError(f"the score lasts {end:.1f} s; play at most {MAX_PLAY_SECONDS:g} s at a time "
                             f"(pass seconds={MAX_PLAY_SECONDS:g} to play its beginning)")
    if model == "fluidsynth":
        return fluidsynth(events, programs)
    from .models.midi2wave import Midi2Wave

    synth = _model(model, Midi2Wave)
    return synth.play(events, temperature=temperature, generator=generator, progress=progress)


def fluidsynth(events, programs=None, sample_rate: int = 16000, tail_seconds: float = 0.3) -> Audio:
    """The same notes rendered by FluidSynth and the FluidR3 GM SoundFont: what the models learn from.

    ``programs``: one instrument per part (a name from :data:`~workbench.data.SOUNDFONT_PROGRAMS`
    or a General MIDI number); a single one is used for every part; the flute by default.
    """
    from .data import SOUNDFONT_PROGRAMS, SoundFontRenderer

    events = [e if isinstance(e, NoteEvent) else NoteEvent(*e) for e in events]
    n_parts = max(e.part for e in events) + 1
    programs = [SOUNDFONT_PROGRAMS[p] if isinstance(p, str) else int(p) for p in (programs or ("flute",))]
    programs = tuple(programs * n_parts if len(programs) == 1 else programs)
    seconds = max(e.offset_seconds for e in events) + tail_seconds
    x = SoundFontRenderer(sample_rate).render_parts([e.as_tuple() for e in events], seconds, programs)
    return Audio(torch.from_numpy(x)[None, None], sample_rate)


def transcribe(audio: Audio, *, model="transcriber") -> list[NoteEvent]:
    """The notes a transcription model hears in ``audio``."""
    from .models.transcriber import Transcriber

    return _model(model, Transcriber).transcribe(audio)


def loop(score, *, synth="midi2wave", transcriber="transcriber", seconds: float | None = None,
         generator=0) -> dict:
    """Play ``score``, transcribe what was played, and score the transcription against the score.

    Returns
    -------
    dict with ``audio``, ``score`` and ``transcribed`` (events), and the note-level scores of
    :func:`workbench.models.transcriber.note_f1` (mir_eval): ``onset_f1`` (onsets within 50 ms,
    the same key), ``onset_offset_f1`` (offsets too), their precisions and recalls.
    """
    from .models.transcriber import note_f1

    events, _ = notes_of(score)
    if seconds is not None:
        events = [e for e in events if e.onset_seconds < seconds]
    audio = play(events, model=synth, seconds=seconds, generator=generator)
    heard = transcribe(audio, model=transcriber)
    return {"audio": audio, "score": events, "transcribed": heard, **note_f1(events, heard)}


__all__ = ["MAX_PLAY_SECONDS", "compose", "fluidsynth", "loop", "notes_of", "play", "transcribe"]
