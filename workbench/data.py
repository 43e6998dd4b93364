"""Datasets: single notes of sampled instruments (a small NSynth), procedural notes, real music, your files.

- :class:`Notes` with ``source="soundfont"`` renders notes of real sampled instruments from the
  FluidR3 GM SoundFont through FluidSynth (Debian: ``apt-get install fluidsynth
  fluid-soundfont-gm``; Python: ``pip install pyfluidsynth``), about 1000x faster than real time.
- :class:`Notes` with ``source="synth"`` makes harmonic notes with exactly known f0 and partial
  amplitudes from pip packages alone.
- :class:`Scores` is real music: Bach chorales and folk tunes from the score corpus bundled in
  ``music21`` (or your MIDI / MusicXML / ABC files), rendered through the same SoundFont one part
  per MIDI channel, cut into segments with a sample-aligned piano roll (:mod:`workbench.scores`).
- :class:`AudioFolder` chunks your own recordings.
- :func:`examples` loads the short clips shipped in ``assets/audio/``.
"""

from __future__ import annotations

import itertools
import logging
import os
import zlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .audio import Audio, check_sample_rate
from .dsp.synth import adsr_envelope, midi_to_hz
from .errors import AudioError, MissingDependencyError, ParameterError

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "assets"

#: General MIDI programs (0-based) of the instruments the soundfont source offers.
SOUNDFONT_PROGRAMS: dict[str, int] = {
    "piano": 0,
    "electric_piano": 4,
    "vibraphone": 11,
    "marimba": 12,
    "organ": 19,
    "guitar": 24,
    "bass": 33,
    "violin": 40,
    "cello": 42,
    "strings": 48,
    "trumpet": 56,
    "sax": 65,
    "oboe": 68,
    "clarinet": 71,
    "flute": 73,
}

#: Procedural timbres: relative amplitude of harmonic k (1-based) and envelope shape.
SYNTH_TIMBRES: dict[str, dict] = {
    "sine": {"rolloff": 8.0, "odd_only": False, "attack": 0.02, "decay": 0.1, "sustain": 0.8},
    "bright": {"rolloff": 1.0, "odd_only": False, "attack": 0.005, "decay": 0.3, "sustain": 0.4},
    "hollow": {"rolloff": 1.0, "odd_only": True, "attack": 0.03, "decay": 0.1, "sustain": 0.8},
    "soft": {"rolloff": 2.0, "odd_only": False, "attack": 0.05, "decay": 0.2, "sustain": 0.6},
}

SOUNDFONT_PATHS = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
)


def find_soundfont(path: str | os.PathLike | None = None) -> Path:
    """Locate the FluidR3 GM SoundFont: ``path``, ``$WORKBENCH_SOUNDFONT`` or Debian's location.

    Raises
    ------
    MissingDependencyError
        When ``path`` or ``$WORKBENCH_SOUNDFONT`` names a missing file, or none is found;
        the message names the Debian package to install.
    """
    # A path the caller named must exist: never fall back silently to another SoundFont.
    named = ((path, "soundfont"), (os.environ.get("WORKBENCH_SOUNDFONT"), "$WORKBENCH_SOUNDFONT"))
    for given, name in named:
        if given:
            if Path(given).is_file():
                return Path(given)
            raise MissingDependencyError(
                f"{name}={str(given)!r} does not exist; pass the path of a .sf2 file, or leave it "
                "unset to use Debian's FluidR3 GM ('apt-get install fluid-soundfont-gm')"
            )
    for c in SOUNDFONT_PATHS:
        if Path(c).is_file():
            return Path(c)
    raise MissingDependencyError(
        "no General MIDI SoundFont found (looked in $WORKBENCH_SOUNDFONT and "
        f"{', '.join(SOUNDFONT_PATHS)}); install it with 'apt-get install fluid-soundfont-gm' "
        "or set WORKBENCH_SOUNDFONT to a .sf2 file; Notes(source='synth') needs nothing"
    )


#: The MIDI channel of each part when a piece renders (General MIDI keeps channel 9 for drums).
PART_CHANNELS = tuple(c for c in range(16) if c != 9)


def _import_fluidsynth():
    try:
        import fluidsynth  # pyfluidsynth
    except (ImportError, OSError) as exc:
        raise MissingDependencyError(
            f"FluidSynth is not usable ({exc}); install it with 'apt-get install fluidsynth' and "
            "'pip install pyfluidsynth' (or 'pip install -e .[soundfont]')"
        ) from None
    if not hasattr(fluidsynth, "Synth"):
        raise MissingDependencyError(
            "the 'fluidsynth' module found is not pyfluidsynth; 'pip install pyfluidsynth'"
        )
    return fluidsynth


class SoundFontRenderer:
    """Renders notes and note sequences from a SoundFont with FluidSynth, offline (no audio device).

    Reverb and chorus are off, so each note is the dry sampled instrument.
    """

    def __init__(self, sample_rate: int = 16000, soundfont: str | os.PathLike | None = None,
                 gain: float = 2.0):
        fluidsynth = _import_fluidsynth()
        self.sample_rate = check_sample_rate(sample_rate)
        if not 8000 <= self.sample_rate <= 96000:
            raise ParameterError(
                f"sample_rate={sample_rate} is outside FluidSynth's 8000..96000 Hz; render at "
                "16000 and resample"
            )
        self.path = find_soundfont(soundfont)
        self._fluidsynth = fluidsynth
        self.gain = gain
        self.synth = None
        self._open()

    def _open(self):
        """A new synth with the SoundFont loaded (about 0.1 s).

        Every render starts from a fresh synth: a reused one keeps state between notes (the same
        note rendered twice differed by up to 2e-3), and a dataset must be deterministic. Effects
        are off at creation (later settings do not reach a running synth): reverb and chorus tails
        would carry one note into the next.
        """
        if self.synth is not None:
            self.synth.delete()
        self.synth = self._fluidsynth.Synth(gain=self.gain, samplerate=float(self.sample_rate),
                                            **{"synth.reverb.active": 0, "synth.chorus.active": 0})
        self.sfid = self.synth.sfload(str(self.path))
        if self.sfid == -1:
            raise MissingDependencyError(f"FluidSynth could not load {self.path}")

    def _samples(self, n: int) -> np.ndarray:
        if n <= 0:
            return np.zeros(0, np.float32)
        stereo = np.asarray(self.synth.get_samples(n), dtype=np.float32).reshape(-1, 2)
        return stereo.mean(axis=1) / 32768.0  # (n,) mono in [-1, 1]

    def render_events(self, events, seconds: float, program: int) -> np.ndarray:
        """Render ``events`` = [(onset_s, duration_s, midi, velocity), ...] on one program."""
        self._open()
        self.synth.program_select(0, self.sfid, 0, program)
        changes = []
        for onset, duration, midi, velocity in events:
            changes.append((int(round(onset * self.sample_rate)), 1, 0, int(midi), int(velocity)))
            changes.append((int(round((onset + duration) * self.sample_rate)), 0, 0, int(midi), 0))
        return self._play(changes, int(round(seconds * self.sample_rate)))

    def render_parts(self, events, seconds: float, programs) -> np.ndarray:
        """Render ``events`` = [(onset_s, duration_s, midi, velocity, part), ...], one program per part.

        Part ``k`` plays General MIDI program ``programs[k]`` on its own MIDI channel
        (:data:`PART_CHANNELS`: 0..15 without 9, General MIDI's drum channel), so at most 15 parts.
        Like :meth:`render_events`, each call starts from a fresh synth: the same events render
        bit-identically.

        Returns
        -------
        numpy.ndarray
            ``(round(seconds * sample_rate),)`` float32 mono in [-1, 1].

        Raises
        ------
        ParameterError
            More than 15 programs, a program outside 0..127, or an event whose part has no program.
        """
        programs = [int(p) for p in programs]
        if len(programs) > len(PART_CHANNELS):
            raise ParameterError(
                f"{len(programs)} parts is more than the {len(PART_CHANNELS)} melodic MIDI channels; "
                "merge parts or render them in groups"
            )
        for program in programs:
            if not 0 <= program <= 127:
                raise ParameterError(f"program={program} is outside General MIDI's 0..127")
        self._open()
        for part, program in enumerate(programs):
            self.synth.program_select(PART_CHANNELS[part], self.sfid, 0, program)
        changes = []
        for onset, duration, midi, velocity, part in events:
            if not 0 <= part < len(programs):
                raise ParameterError(
                    f"an event of part {part} has no program ({len(programs)} given); pass one per part"
                )
            channel = PART_CHANNELS[part]
            changes.append((int(round(onset * self.sample_rate)), 1, channel, int(midi), int(velocity)))
            changes.append((int(round((onset + duration) * self.sample_rate)), 0, channel, int(midi), 0))
        return self._play(changes, int(round(seconds * self.sample_rate)))

    def _play(self, changes, n_total: int) -> np.ndarray:
        """Run ``changes`` = [(sample, on, channel, midi, velocity), ...] through the synth.

        Note-offs sort before note-ons at the same sample, so a repeated key is released first.
        """
        changes.sort(key=lambda c: (c[0], c[1]))
        out, position = [], 0
        for at, on, channel, midi, velocity in changes:
            at = min(at, n_total)
            out.append(self._samples(at - position))
            position = at
            if on:
                self.synth.noteon(channel, midi, velocity)
            else:
                self.synth.noteoff(channel, midi)
        out.append(self._samples(n_total - position))
        return np.concatenate(out).astype(np.float32)

    def render_note(self, midi: int, velocity: int, program: int, seconds: float,
                    hold_seconds: float) -> np.ndarray:
        """One note held ``hold_seconds`` and rendered for ``seconds`` in total."""
        return self.render_events([(0.0, hold_seconds, midi, velocity)], seconds, program)


@dataclass(frozen=True)
class NoteParams:
    """The exactly known parameters of a procedural note."""

    f0_hz: float
    harmonic_amplitudes: np.ndarray
    envelope: np.ndarray


#: The splits of every dataset: ``train`` to fit, ``validation`` to choose steps and settings,
#: ``test`` for the numbers a card reports.
SPLITS = ("all", "train", "validation", "test")


class Notes(Dataset):
    """Single notes, pitch x instrument x velocity, like a small NSynth.

    Yields ``(samples, cond)`` with ``samples`` of shape ``(1, time)`` float32 and
    ``cond = {"pitch": int, "instrument": str, "velocity": int}``. Deterministic: item ``i``
    is always the same sound.

    Parameters
    ----------
    source : {"soundfont", "synth"}
    instruments : sequence of str
        Names from :data:`SOUNDFONT_PROGRAMS` (soundfont) or :data:`SYNTH_TIMBRES` (synth).
    pitches : sequence of int
        MIDI notes.
    velocities : sequence of int
        1..127.
    seconds : float
        Length of each clip.
    hold_seconds : float, optional
        When the key is released; three quarters of ``seconds`` by default.
    sample_rate : int
    split : {"all", "train", "validation", "test"}
        ``test`` and ``validation`` are fixed, deterministic, disjoint 1-in-``test_every`` shares
        of the grid (by a hash of the note, so a note's split does not depend on the rest of the
        grid); ``train`` is the rest. Training evaluates and selects on ``validation``; the
        numbers a card reports come from ``test``.
    soundfont : path, optional
        Another .sf2 file (also ``$WORKBENCH_SOUNDFONT``).
    cache_dir : path, optional
        Keep rendered soundfont notes here as ``.npy`` files (also ``$WORKBENCH_NOTES_CACHE``).
        A dataset whose notes are all cached needs no FluidSynth: render on one machine with
        ``workbench render-notes MODEL --cache DIR`` and train on another (a GPU box).

    Raises
    ------
    ParameterError
        Unknown instrument, pitch outside 0..127, bad velocity or split.
    MissingDependencyError
        FluidSynth or the SoundFont is missing (names the apt package).

    Examples
    --------
    >>> ds = Notes(source="synth", instruments=("bright",), pitches=(60, 64), velocities=(100,))
    >>> audio, cond = ds[0]
    >>> audio.shape, cond
    (torch.Size([1, 16000]), {'pitch': 60, 'instrument': 'bright', 'velocity': 100})
    """

    def __init__(self, source: str = "soundfont", instruments=None, pitches=range(48, 73),
                 velocities=(100,), seconds: float = 1.0, hold_seconds: float | None = None,
                 sample_rate: int = 16000, split: str = "all", test_every: int = 10,
                 soundfont: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None):
        if source not in ("soundfont", "synth"):
            raise ParameterError(f"source={source!r} is not a note source; use 'soundfont' or 'synth'")
        known = SOUNDFONT_PROGRAMS if source == "soundfont" else SYNTH_TIMBRES
        if instruments is None:
            instruments = ("piano", "flute", "strings", "trumpet") if source == "soundfont" else tuple(known)
        if isinstance(instruments, str):
            instruments = (instruments,)
        for name in instruments:
            if name not in known:
                raise ParameterError(
                    f"instrument={name!r} is not available for source={source!r}; choose from "
                    f"{', '.join(known)}"
                )
        pitches = tuple(int(p) for p in pitches)
        velocities = tuple(int(v) for v in velocities)
        for p in pitches:
            if not 0 <= p <= 127:
                raise ParameterError(f"pitch={p} is outside MIDI 0..127")
        for v in velocities:
            if not 1 <= v <= 127:
                raise ParameterError(f"velocity={v} is outside MIDI 1..127")
        if not seconds > 0 or seconds > 30:
            raise ParameterError(f"seconds={seconds} must be in (0, 30]")
        if split not in SPLITS:
            raise ParameterError(f"split={split!r} must be one of {', '.join(SPLITS)}")
        self.source = source
        self.instruments = tuple(instruments)
        self.pitches = pitches
        self.velocities = velocities
        self.seconds = float(seconds)
        self.hold_seconds = float(hold_seconds) if hold_seconds is not None else 0.75 * self.seconds
        self.sample_rate = check_sample_rate(sample_rate)
        self.split = split
        self.test_every = test_every
        self.soundfont = soundfont
        grid = list(itertools.product(self.instruments, self.pitches, self.velocities))
        if split != "all":
            grid = [g for g in grid if self.split_of(*g) == split]
        self.items = grid
        self._cache: dict[int, torch.Tensor] = {}
        cache_dir = cache_dir if cache_dir is not None else os.environ.get("WORKBENCH_NOTES_CACHE")
        self.cache_dir = Path(cache_dir) if cache_dir else None
        # a machine without FluidSynth (a GPU box) can still train on notes rendered elsewhere
        if source == "soundfont" and not self.fully_cached:
            find_soundfont(soundfont)
            _import_fluidsynth()

    @property
    def fully_cached(self) -> bool:
        """Whether every note of this dataset is already rendered in ``cache_dir``."""
        return self.cache_dir is not None and all(self._cache_file(i).exists() for i in range(len(self)))

    def _cache_file(self, index: int) -> Path:
        instrument, pitch, velocity = self.items[index]
        font = Path(self.soundfont).stem if self.soundfont else "FluidR3_GM"
        return self.cache_dir / (f"{self.source}-{font}-{instrument}-{pitch}-{velocity}-{self.sample_rate}Hz-"
                                 f"{self.seconds:g}s-hold{self.hold_seconds:g}s.npy")

    def split_of(self, instrument: str, pitch: int, velocity: int) -> str:
        """``"test"``, ``"validation"`` or ``"train"``: where a note belongs, from a hash of the note alone."""
        bucket = zlib.crc32(f"{instrument}:{pitch}:{velocity}".encode()) % self.test_every
        return {0: "test", 1: "validation"}.get(bucket, "train")

    @cached_property
    def _renderer(self) -> SoundFontRenderer:
        return SoundFontRenderer(self.sample_rate, self.soundfont)

    def __len__(self) -> int:
        return len(self.items)

    def cond(self, index: int) -> dict:
        instrument, pitch, velocity = self.items[index]
        return {"pitch": pitch, "instrument": instrument, "velocity": velocity}

    def __getitem__(self, index: int):
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} is out of range for {len(self)} notes")
        index %= len(self)
        if index not in self._cache:
            self._cache[index] = self._render(index)
        return self._cache[index].clone(), self.cond(index)

    def audio(self, index: int) -> Audio:
        """Item ``index`` as an :class:`Audio`."""
        samples, _ = self[index]
        return Audio(samples, self.sample_rate)

    def find(self, pitch: int, instrument: str, velocity: int | None = None) -> int:
        """Index of the note with this pitch and instrument (and velocity, if given)."""
        for i, (inst, p, v) in enumerate(self.items):
            if p == pitch and inst == instrument and (velocity is None or v == velocity):
                return i
        raise ParameterError(
            f"no note with pitch={pitch}, instrument={instrument!r}"
            + (f", velocity={velocity}" if velocity is not None else "")
            + f" in this dataset (pitches {min(self.pitches)}..{max(self.pitches)}, "
            f"instruments {', '.join(self.instruments)})"
        )

    def _render(self, index: int) -> torch.Tensor:
        instrument, pitch, velocity = self.items[index]
        if self.source != "soundfont":
            return self._synth_note(index)[None]
        if self.cache_dir is not None and self._cache_file(index).exists():
            return torch.from_numpy(np.load(self._cache_file(index)))[None]
        x = self._renderer.render_note(pitch, velocity, SOUNDFONT_PROGRAMS[instrument],
                                       self.seconds, self.hold_seconds)
        if self.cache_dir is not None:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            np.save(self._cache_file(index), x.astype(np.float32))
        return torch.from_numpy(x)[None]  # (1, time)

    def params(self, index: int) -> NoteParams:
        """The exact parameters of a synth note (``source="synth"`` only)."""
        if self.source != "synth":
            raise ParameterError("params() exists only for source='synth'; soundfont notes are recordings")
        instrument, pitch, velocity = self.items[index]
        timbre = SYNTH_TIMBRES[instrument]
        f0_hz = midi_to_hz(pitch)
        k = np.arange(1, 41)
        amps = 1.0 / k ** timbre["rolloff"]
        if timbre["odd_only"]:
            amps = np.where(k % 2 == 1, amps, 0.0)
        amps = np.where(k * f0_hz < self.sample_rate / 2, amps, 0.0)
        amps = amps / amps.sum()
        n = int(round(self.seconds * self.sample_rate))
        env = adsr_envelope(n, self.sample_rate, timbre["attack"], timbre["decay"], timbre["sustain"],
                            release=max(1e-3, self.seconds - self.hold_seconds), hold=self.hold_seconds)
        env = env.numpy() * 0.6 * (velocity / 127.0)
        return NoteParams(f0_hz, amps.astype(np.float32), env.astype(np.float32))

    def _synth_note(self, index: int) -> torch.Tensor:
        p = self.params(index)
        n = p.envelope.shape[0]
        t = np.arange(n) / self.sample_rate
        k = np.arange(1, p.harmonic_amplitudes.shape[0] + 1)[:, None]
        tone = (p.harmonic_amplitudes[:, None] * np.sin(2 * np.pi * p.f0_hz * k * t[None])).sum(0)
        rng = np.random.default_rng(index)
        noise = 0.01 * rng.standard_normal(n)
        return torch.from_numpy(((tone + noise) * p.envelope).astype(np.float32))


AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif")


class AudioFolder(Dataset):
    """Fixed-length mono segments of every audio file under ``path``.

    Unreadable files are skipped with one warning that lists them.

    Yields ``(samples, {})`` with ``samples`` of shape ``(1, segment)``.

    Raises
    ------
    ParameterError
        ``path`` is not a folder, or holds no readable audio.
    """

    def __init__(self, path, segment_seconds: float = 1.0, sample_rate: int = 16000,
                 max_seconds_per_file: float = 600.0):
        path = Path(path)
        if not path.is_dir():
            raise ParameterError(f"{str(path)!r} is not a folder; pass a folder of audio files")
        if not segment_seconds > 0:
            raise ParameterError(f"segment_seconds={segment_seconds} must be positive")
        self.sample_rate = check_sample_rate(sample_rate)
        self.segment = int(round(segment_seconds * self.sample_rate))
        self.files, self.skipped = [], []
        segments = []
        for f in sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES):
            try:
                audio = Audio.load(f, sample_rate=self.sample_rate, mono=True,
                                   max_seconds=max_seconds_per_file)
            except AudioError as exc:
                self.skipped.append((f, str(exc)))
                continue
            x = audio.samples[0]  # (1, time)
            n = x.shape[-1] // self.segment
            if n == 0:
                x = torch.nn.functional.pad(x, (0, self.segment - x.shape[-1]))
                n = 1
            self.files.append(f)
            segments.extend(x[:, i * self.segment:(i + 1) * self.segment] for i in range(n))
        if self.skipped:
            log.warning("AudioFolder skipped %d unreadable file(s): %s", len(self.skipped),
                        "; ".join(f"{p.name} ({why})" for p, why in self.skipped))
        if not segments:
            raise ParameterError(
                f"no readable audio under {str(path)!r} (looked for {', '.join(AUDIO_SUFFIXES)})"
            )
        self.segments = segments

    def __len__(self) -> int:
        return len(self.segments)

    def __getitem__(self, index: int):
        return self.segments[index].clone(), {}


EXAMPLE_NAMES = ("piano", "flute", "strings", "chord", "melody")


def examples(sample_rate: int | None = None) -> dict[str, Audio]:
    """The short clips shipped in ``assets/audio/`` (made by ``scripts/make_examples.py``).

    Returns
    -------
    dict name -> Audio (mono, 16 kHz unless ``sample_rate`` resamples).
    """
    folder = ASSETS / "audio"
    out = {}
    for name in EXAMPLE_NAMES:
        f = folder / f"{name}.wav"
        if not f.exists():
            raise MissingDependencyError(
                f"example clip {f} is missing; run 'python scripts/make_examples.py' to render it"
            )
        out[name] = Audio.load(f, sample_rate=sample_rate, mono=True)
    return out


def note_dataset(config, split: str = "train", data: str = "notes"):
    """One split of the notes (or recordings) a note model's config describes.

    ``config`` has the fields of :class:`~workbench.models.base.NoteDataConfig`. ``data`` is
    ``"notes"`` (the configured source), ``"soundfont"``, ``"synth"`` or a folder of audio files
    (its segments split 80 / 10 / 10 in order).
    """
    if data in ("notes", "soundfont", "synth"):
        low, high = config.pitch_range
        return Notes(source=config.data_source if data == "notes" else data, instruments=config.instruments,
                     pitches=range(low, high + 1), velocities=config.velocities, seconds=config.note_seconds,
                     sample_rate=config.sample_rate, split=split)
    path = Path(data)
    if not path.is_dir():
        raise ParameterError(f"data={data!r} is not 'notes', 'soundfont', 'synth' or a folder of audio files")
    full = AudioFolder(path, config.note_seconds, config.sample_rate)
    n_held = max(1, len(full) // 10) if len(full) >= 3 else 0
    ranges = {"test": range(n_held), "validation": range(n_held, 2 * n_held),
              "train": range(2 * n_held, len(full)), "all": range(len(full))}
    if split not in ranges:
        raise ParameterError(f"split={split!r} must be one of {', '.join(ranges)}")
    if split == "all" or (not n_held and split == "train"):
        return full
    return torch.utils.data.Subset(full, ranges[split])


def collate(batch):
    """Stack ``(samples, cond)`` pairs: samples ``(batch, 1, time)``, cond a dict of lists/tensors.

    Numbers become a ``(batch,)`` tensor, tensors of one shape (a piano roll) are stacked,
    anything else (names) stays a list.
    """
    samples = torch.stack([b[0] for b in batch])
    conds = [b[1] for b in batch]
    cond = {}
    for key in conds[0] if conds else ():
        values = [c[key] for c in conds]
        if isinstance(values[0], int | float):
            cond[key] = torch.tensor(values)
        elif isinstance(values[0], torch.Tensor) and all(v.shape == values[0].shape for v in values):
            cond[key] = torch.stack(values)
        else:
            cond[key] = values
    return samples, cond


# Real music (scores.py renders with the SoundFontRenderer above, so it is imported last).
from .scores import (  # noqa: E402, F401
    NoteEvent,
    PerformanceVocabulary,
    Piece,
    Scores,
    ScoreTargets,
    decode_performance,
    encode_performance,
    events_from_midi,
    events_from_score,
    events_to_midi,
    read_pieces,
    targets,
)
