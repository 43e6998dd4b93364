"""Onsets and Frames: a piano-roll transcriber that hears notes in audio and writes them down.

Every other model in the workbench turns notes (or nothing) into audio; this one goes back,
from audio to notes, so that what a music model plays can be checked note by note. It is the
model of Hawthorne et al. (2018), with the offset and velocity heads of Wave2Midi2Wave (2019)::

    audio --log-mel, one frame per piano-roll frame--> mel (frames, n_mels)
      |
      +-> acoustic --BiLSTM--> linear --> onset probability    (frames, pitches)--+
      +-> acoustic --BiLSTM--> linear --> offset probability   (frames, pitches)--+ detached
      +-> acoustic --linear--> frame activation  --------------------------------concat
      |                                             --BiLSTM--> linear --> frame probability
      +-> acoustic --linear--> velocity (trained at onset frames only)

Each ``acoustic`` box is its own copy of the paper's conv stack (two 3x3 convs with batch norm
and ReLU, a max-pool over frequency, a third conv, another pool, dropout, then a fully connected
layer per frame). The onset head is the key idea: onsets are short, loud and easy to hear, so a
head trained only to find them is good at it, and the frame head is *told* where the onsets are
(its inputs include the onset predictions, with the gradient stopped so that the frame loss does
not pull the onset head toward frames). Decoding then only lets a note begin where an onset
fires (:func:`decode_notes`), which removes the flickering note fragments a frame-only
transcriber makes.

The mel features stop at ``f_max`` (4 kHz): audio generated at 8 kHz holds nothing above that,
and audio at 16 kHz is then seen the same way, so one transcriber serves both rates.

What differs from the paper, and why:

- widths for a CPU (8 and 16 conv channels, 256 per frame, 64 LSTM units per direction, against
  48, 96, 768 and 256) and frames at the piano roll's hop (256 samples, 16 ms, against 32 ms);
- each onset and offset label lasts ``onset_seconds`` (32 ms, the paper's length: two frames
  here), see :meth:`Transcriber.widen`;
- every output starts at a low probability (:data:`PRIOR_LOGIT`), and each training segment gets
  a random loudness (``gain_db``) so that quieter or louder synthesis is still heard.

Training data come from :class:`~workbench.scores.ScoreTargets`: :class:`~workbench.data.Scores` segments whose
``cond`` holds all four targets from :meth:`Scores.targets` (the onsets cannot be recomputed from
the piano roll: a repeated note and a held one look the same there).

References
----------
C. Hawthorne, E. Elsen, J. Song, A. Roberts, I. Simon, C. Raffel, J. Engel, S. Oore, D. Eck,
"Onsets and Frames: Dual-Objective Piano Transcription", ISMIR 2018, https://arxiv.org/abs/1710.11153

C. Hawthorne, A. Stasyuk, A. Roberts, I. Simon, C.-Z. A. Huang, S. Dieleman, E. Elsen, J. Engel,
D. Eck, "Enabling Factorized Piano Music Modeling and Generation with the MAESTRO Dataset"
(Wave2Midi2Wave), ICLR 2019, https://arxiv.org/abs/1810.12247

Notebook: notebooks/09_music_from_notes.ipynb
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..audio import Audio, check_audio
from ..dsp.spectral import make_generator, mel_filterbank, stft
from ..dsp.synth import midi_to_hz
from ..errors import ParameterError
from ..scores import DEFAULT_VELOCITY, NoteEvent, ScoreTargets, targets
from .base import Model, ScoreDataConfig

#: The longest clip :meth:`Transcriber.transcribe` takes, in seconds (what `workbench transcribe` loads).
MAX_TRANSCRIBE_SECONDS = 600.0
#: mir_eval's note-matching tolerances (the MIREX ones), used by :func:`note_f1`.
ONSET_TOLERANCE = 0.05
OFFSET_RATIO = 0.2
OFFSET_MIN_TOLERANCE = 0.05
#: Initial bias of every note logit: sigmoid(-4) is about 2 %, roughly the share of a roll's cells that are on.
PRIOR_LOGIT = -4.0


@dataclass(frozen=True)
class TranscriberConfig(ScoreDataConfig):
    collection: str = "folk"  # music21's corpus: "folk" (one flute) or "chorales" (four organ voices)
    transpose: tuple = (-2, -1, 0, 1, 2)  # semitone shifts of the training pieces
    # features: log-mel at the piano roll's frame rate (hop_length), bands up to f_max
    n_fft: int = 1024  # a 64 ms window: onsets stay sharp at a 16 ms hop
    n_mels: int = 128
    f_min: float = 30.0
    f_max: float = 4000.0
    # network
    conv_channels: int = 8  # the first two convs; the third has twice as many
    acoustic_size: int = 256  # per-frame output of each acoustic stack
    rnn_size: int = 64  # LSTM units per direction
    conv_dropout: float = 0.25
    fc_dropout: float = 0.5
    # training
    onset_seconds: float = 0.032  # how long each onset (and offset) label lasts, as in the paper
    gain_db: tuple = (-12.0, 6.0)  # random loudness of each training segment (low, high dB); (0, 0) for none
    velocity_weight: float = 1.0
    learning_rate: float = 1e-3
    # decoding
    onset_threshold: float = 0.5
    frame_threshold: float = 0.5


PRESETS = {
    "tiny": dict(max_pieces=20, segment_seconds=1.0, n_fft=512, n_mels=32, conv_channels=4, acoustic_size=32,
                 rnn_size=16, conv_dropout=0.0, fc_dropout=0.0, gain_db=(0.0, 0.0), transpose=(0,), batch_size=4),
    "small": dict(),
}


# --------------------------------------------------------------------------------------------
# Features
# --------------------------------------------------------------------------------------------


def transcription_features(samples: torch.Tensor, sample_rate: int, hop_length: int, n_fft: int = 1024,
                           n_mels: int = 128, f_min: float = 30.0, f_max: float = 4000.0,
                           floor: float = 1e-5) -> torch.Tensor:
    """Log-mel frames aligned with the piano roll: frame ``f`` is centred on roll frame ``f``.

    The roll's frame ``f`` holds samples ``f * hop .. (f + 1) * hop - 1`` (:func:`~workbench.scores.targets`),
    so its centre is ``f * hop + hop / 2``. A centred STFT puts frame ``f``'s centre at ``f * hop``;
    dropping the first ``hop // 2`` samples moves it onto the roll frame's centre::

        samples     |0 . . . . . . .|hop . . . . . .|2hop . . . . .|
        roll        |    frame 0    |    frame 1    |    frame 2   |
        STFT (x)    ^0              ^1              ^2                centred at f * hop
        STFT (x[hop/2:])    ^0              ^1              ^2        centred at f * hop + hop / 2

    The clip is zero-padded at the end, so there is always one mel frame per roll frame,
    ``ceil(time / hop_length)`` of them.

    Parameters
    ----------
    samples : Tensor ``(batch, time)`` or ``(batch, 1, time)``
    sample_rate, hop_length, n_fft, n_mels : int
    f_min, f_max : float
        Band edges of the mel filterbank (Slaney mel scale and area normalisation, librosa's default).
    floor : float
        Magnitudes below it are clamped before the log.

    Returns
    -------
    Tensor ``(batch, frames, n_mels)``: natural log of mel-weighted STFT magnitudes.

    Examples
    --------
    >>> transcription_features(torch.zeros(2, 16000), 16000, 256).shape
    torch.Size([2, 63, 128])
    """
    if samples.dim() == 3:
        samples = samples[:, 0]  # (batch, time)
    n_frames = math.ceil(samples.shape[-1] / hop_length)
    x = F.pad(samples, (0, n_fft + hop_length))[..., hop_length // 2:]  # (batch, time + pad - hop // 2)
    mag = stft(x, n_fft, hop_length).abs()[..., :n_frames]  # (batch, freq, frames)
    fb = mel_filterbank(n_fft, n_mels, sample_rate, f_min, f_max).to(mag)  # (n_mels, freq)
    mel = torch.matmul(fb, mag)  # (batch, n_mels, frames)
    return torch.log(mel.clamp_min(floor)).transpose(1, 2)  # (batch, frames, n_mels)


# --------------------------------------------------------------------------------------------
# Network
# --------------------------------------------------------------------------------------------


class AcousticModel(nn.Module):
    """The paper's conv stack: ``(batch, frames, n_mels)`` -> ``(batch, frames, size)``.

    Convolutions see a few neighbouring frames and mel bands; the pools halve the frequency axis
    only (time keeps its resolution, one output per roll frame); the fully connected layer then
    mixes all remaining bands of one frame.
    """

    def __init__(self, n_mels: int, channels: int, size: int, conv_dropout: float, fc_dropout: float):
        super().__init__()
        c = channels
        self.convs = nn.Sequential(
            nn.Conv2d(1, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(),
            nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(),
            nn.MaxPool2d((1, 2)), nn.Dropout(conv_dropout),
            nn.Conv2d(c, 2 * c, 3, padding=1), nn.BatchNorm2d(2 * c), nn.ReLU(),
            nn.MaxPool2d((1, 2)), nn.Dropout(conv_dropout),
        )
        self.fc = nn.Sequential(nn.Linear(2 * c * (n_mels // 4), size), nn.ReLU(), nn.Dropout(fc_dropout))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        h = self.convs(mel[:, None])  # (batch, 2c, frames, n_mels // 4)
        h = h.permute(0, 2, 1, 3).flatten(2)  # (batch, frames, 2c * n_mels // 4)
        return self.fc(h)  # (batch, frames, size)


class BiLSTMHead(nn.Module):
    """A bidirectional LSTM over frames, then one logit per pitch: ``(batch, frames, in)`` -> ``(batch, frames, pitches)``."""

    def __init__(self, in_size: int, rnn_size: int, n_pitches: int):
        super().__init__()
        self.rnn = nn.LSTM(in_size, rnn_size, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * rnn_size, n_pitches)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.out(self.rnn(h)[0])  # (batch, frames, 2 * rnn_size) -> (batch, frames, pitches)


# --------------------------------------------------------------------------------------------
# Decoding and metrics (pure functions)
# --------------------------------------------------------------------------------------------


def decode_notes(onsets, frames, velocities=None, *, hop_length: int, sample_rate: int, pitch_low: int = 21,
                 onset_threshold: float = 0.5, frame_threshold: float = 0.5) -> list[NoteEvent]:
    """Notes from onset and frame probabilities: the paper's inference rule.

    For each pitch, a note starts at a frame whose onset probability exceeds ``onset_threshold``
    while the previous frame's did not (a rising edge), and lasts while the frame probability
    stays above ``frame_threshold`` or the onset keeps firing; a new rising edge of the same pitch
    ends it and starts the next note (a repeated note). A note lasts at least one frame. Frame
    activity without an onset before it starts nothing::

        onset    . 9 9 . . . . 9 . . . .          (probabilities x 10)
        frame    . . 8 8 8 8 . 8 8 . 8 8
        notes    [---------)   [---)              two notes; the last frames have no onset

    Times are the first sample of a frame (``frame * hop_length / sample_rate``), the inverse of
    :func:`~workbench.scores.targets`: notes decoded from a piece's targets come back as the piece
    on the frame grid.

    Parameters
    ----------
    onsets, frames : array or Tensor ``(pitches, n_frames)``
        Probabilities (or 0/1 targets).
    velocities : array or Tensor ``(pitches, n_frames)``, optional
        Velocity / 127 (the velocity head's output); read at each note's onset frame. Notes get
        :data:`~workbench.scores.DEFAULT_VELOCITY` without it.
    hop_length, sample_rate : int
    pitch_low : int
        MIDI pitch of row 0.
    onset_threshold, frame_threshold : float

    Returns
    -------
    list of NoteEvent, sorted by onset then pitch.

    Raises
    ------
    ParameterError
        ``onsets`` and ``frames`` of different shapes, or not 2-D.

    Examples
    --------
    >>> on = np.zeros((1, 8)); on[0, 1] = 0.9
    >>> fr = np.zeros((1, 8)); fr[0, 1:4] = 0.8
    >>> [(n.onset_seconds, n.offset_seconds, n.pitch) for n in decode_notes(on, fr, hop_length=100,
    ...                                                                       sample_rate=1000, pitch_low=60)]
    [(0.1, 0.4, 60)]
    """
    onsets, frames = _numpy(onsets), _numpy(frames)
    if onsets.ndim != 2 or onsets.shape != frames.shape:
        raise ParameterError(f"onsets {onsets.shape} and frames {frames.shape} must both be (pitches, n_frames)")
    velocities = None if velocities is None else _numpy(velocities)
    seconds_per_frame = hop_length / sample_rate
    on = onsets > onset_threshold  # (pitches, n_frames)
    active = frames > frame_threshold
    # 1. rising edges: above threshold now, not in the frame before
    starts = on & ~np.pad(on, ((0, 0), (1, 0)))[:, :-1]
    n_frames = on.shape[1]
    notes = []
    for row, start in zip(*np.nonzero(starts), strict=True):
        # 2. the note lasts while the frame (or the onset) stays on, until the next rising edge
        end = start + 1
        while end < n_frames and (active[row, end] or on[row, end]) and not starts[row, end]:
            end += 1
        velocity = DEFAULT_VELOCITY
        if velocities is not None:
            velocity = int(np.clip(round(float(velocities[row, start]) * 127), 1, 127))
        onset = float(start) * seconds_per_frame
        notes.append(NoteEvent(onset, float(end) * seconds_per_frame - onset, int(pitch_low + row), velocity))
    return sorted(notes, key=lambda n: (n.onset_seconds, n.pitch))


def _numpy(x) -> np.ndarray:
    return x.detach().cpu().float().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float32)


def _intervals(events) -> tuple[np.ndarray, np.ndarray]:
    events = list(events)
    intervals = np.array([[e.onset_seconds, e.offset_seconds] for e in events], dtype=float).reshape(-1, 2)
    pitches = np.array([float(midi_to_hz(e.pitch)) for e in events], dtype=float)
    return intervals, pitches


def note_f1(reference_events, estimated_events) -> dict[str, float]:
    """Note-level precision, recall and F1 with ``mir_eval.transcription`` (the MIREX rules).

    Two notes match when their pitches agree (within 50 cents, so the same MIDI key) and their
    onsets lie within :data:`ONSET_TOLERANCE` (50 ms) of each other; each note matches at most one.
    ``onset_*`` counts onsets only (``offset_ratio=None``). ``onset_offset_*`` also needs the
    offsets within the larger of :data:`OFFSET_RATIO` (20 %) of the reference note's duration and
    :data:`OFFSET_MIN_TOLERANCE` (50 ms). Velocities are ignored.

    Parameters
    ----------
    reference_events, estimated_events : iterable of NoteEvent

    Returns
    -------
    dict with ``onset_precision``, ``onset_recall``, ``onset_f1``, ``onset_offset_precision``,
    ``onset_offset_recall``, ``onset_offset_f1``, ``n_reference``, ``n_estimated``. Where either
    list is empty every score is 0 (mir_eval's convention).

    Examples
    --------
    >>> notes = [NoteEvent(0.0, 0.5, 60), NoteEvent(0.5, 0.5, 64)]
    >>> note_f1(notes, notes)["onset_f1"]
    1.0
    """
    from mir_eval.transcription import precision_recall_f1_overlap

    ref_intervals, ref_pitches = _intervals(reference_events)
    est_intervals, est_pitches = _intervals(estimated_events)
    out = {"n_reference": float(len(ref_pitches)), "n_estimated": float(len(est_pitches))}
    for name, ratio in (("onset", None), ("onset_offset", OFFSET_RATIO)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # mir_eval warns about empty lists; the zeros say it
            p, r, f, _ = precision_recall_f1_overlap(
                ref_intervals, ref_pitches, est_intervals, est_pitches, onset_tolerance=ONSET_TOLERANCE,
                offset_ratio=ratio, offset_min_tolerance=OFFSET_MIN_TOLERANCE)
        out.update({f"{name}_precision": float(p), f"{name}_recall": float(r), f"{name}_f1": float(f)})
    return out


def frame_f1(reference_roll, estimated_roll) -> dict[str, float]:
    """Frame-level precision, recall and F1: every (pitch, frame) cell is one yes/no decision.

    Parameters
    ----------
    reference_roll, estimated_roll : array or Tensor ``(pitches, n_frames)``
        Piano rolls (values above 0.5 count as on); the shorter one is padded with silence.

    Returns
    -------
    dict with ``frame_precision``, ``frame_recall``, ``frame_f1`` (0 where nothing is on in either).

    Examples
    --------
    >>> frame_f1(np.eye(3), np.eye(3))["frame_f1"]
    1.0
    """
    ref, est = _numpy(reference_roll) > 0.5, _numpy(estimated_roll) > 0.5
    n = max(ref.shape[-1], est.shape[-1])
    ref = np.pad(ref, ((0, 0), (0, n - ref.shape[-1])))
    est = np.pad(est, ((0, 0), (0, n - est.shape[-1])))
    hits = float((ref & est).sum())
    precision = hits / max(float(est.sum()), 1.0)
    recall = hits / max(float(ref.sum()), 1.0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"frame_precision": precision, "frame_recall": recall, "frame_f1": f1}


def _concatenate(pieces: list[list[NoteEvent]], seconds: list[float], gap: float = 1.0) -> list[NoteEvent]:
    """Lay pieces end to end, ``gap`` seconds apart: one mir_eval call then counts every note once
    (a micro-average over notes, not a mean of per-piece scores)."""
    out, t0 = [], 0.0
    for events, length in zip(pieces, seconds, strict=True):
        out += [NoteEvent(e.onset_seconds + t0, e.duration_seconds, e.pitch, e.velocity, e.part) for e in events]
        t0 += length + gap
    return out


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------


class Transcriber(Model):
    """Onsets and Frames: audio in, notes out (``predict``, ``transcribe``), trained on rendered scores.

    Examples
    --------
    >>> model = Transcriber.from_preset("tiny")
    >>> probs = model.predict(Audio(torch.randn(1, 8000) * 0.1, 16000))
    >>> probs["onsets"].shape  # (pitches, frames)
    torch.Size([88, 32])
    """

    name = "transcriber"
    family = "transcription"
    #: Read by listings that print every model's likelihood column; a transcriber models no audio.
    likelihood: ClassVar[str] = "none"
    Config = TranscriberConfig
    PRESETS = PRESETS
    notebook = "notebooks/09_music_from_notes.ipynb"

    def __init__(self, config: TranscriberConfig):
        super().__init__(config)
        c = config
        low, high = c.pitch_range
        if not 0 <= low <= high <= 127:
            raise ParameterError(f"pitch_range={c.pitch_range!r} must satisfy 0 <= low <= high <= 127, e.g. (21, 108)")
        if c.n_mels < 4 or c.f_max > c.sample_rate / 2 or not 0 <= c.f_min < c.f_max:
            raise ParameterError(f"n_mels={c.n_mels}, f_min={c.f_min}, f_max={c.f_max} at sample_rate={c.sample_rate}: "
                                 "need n_mels >= 4 and 0 <= f_min < f_max <= sample_rate / 2")
        p = self.n_pitches

        def acoustic():
            return AcousticModel(c.n_mels, c.conv_channels, c.acoustic_size, c.conv_dropout, c.fc_dropout)

        self.onset_stack, self.onset_head = acoustic(), BiLSTMHead(c.acoustic_size, c.rnn_size, p)
        self.offset_stack, self.offset_head = acoustic(), BiLSTMHead(c.acoustic_size, c.rnn_size, p)
        self.frame_stack, self.frame_activation = acoustic(), nn.Linear(c.acoustic_size, p)
        self.frame_head = BiLSTMHead(3 * p, c.rnn_size, p)  # activation + onsets + offsets
        self.velocity_stack, self.velocity_head = acoustic(), nn.Linear(c.acoustic_size, p)
        # Start every probability at the share of cells a piano roll has on (about 2 %, not 50 %):
        # otherwise the first hundreds of steps only learn how rare notes are, and the LSTM heads
        # sit on that plateau before they learn where the notes are.
        for layer in (self.onset_head.out, self.offset_head.out, self.frame_head.out, self.frame_activation):
            nn.init.constant_(layer.bias, PRIOR_LOGIT)

    @property
    def n_pitches(self) -> int:
        low, high = self.config.pitch_range
        return high - low + 1

    @property
    def sample_rate(self) -> int:
        return int(self.config.sample_rate)

    @property
    def frames_per_second(self) -> float:
        return self.config.sample_rate / self.config.hop_length

    @classmethod
    def card_summary(cls, metrics: dict) -> str | None:
        if "onset_f1" not in metrics:
            return None
        return (f"note onset F1 {metrics['onset_f1']:.1%} (with offsets {metrics['onset_offset_f1']:.1%}, "
                f"frames {metrics['frame_f1']:.1%}) on the test pieces")

    def measure(self) -> dict:
        """Note and frame F1 on the test split's whole pieces (:func:`evaluate_split`)."""
        return evaluate_split(self, "test")

    # ---- data -----------------------------------------------------------------------------
    def dataset(self, split: str = "train", data: str = "scores") -> ScoreTargets:
        """Segments of the configured collection (or a folder of your scores) with all four targets.

        ``data`` is ``"scores"`` (or ``"notes"``, the training loop's default: the same thing)
        or a folder of MIDI / MusicXML / ABC files; see :meth:`Model.dataset`.
        """
        return ScoreTargets(super().dataset(split, data))

    # ---- the network ----------------------------------------------------------------------
    def features(self, samples: torch.Tensor) -> torch.Tensor:
        """Log-mel input ``(batch, frames, n_mels)`` of samples ``(batch, 1, time)`` at the config's rate."""
        c = self.config
        return transcription_features(samples, c.sample_rate, c.hop_length, c.n_fft, c.n_mels, c.f_min, c.f_max)

    def forward(self, mel: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits of every head from log-mel frames.

        Parameters
        ----------
        mel : Tensor ``(batch, frames, n_mels)``

        Returns
        -------
        dict of Tensors ``(batch, frames, pitches)``: ``onsets``, ``offsets``, ``frames`` (logits)
        and ``velocities`` (velocity / 127, unbounded).
        """
        onset_logits = self.onset_head(self.onset_stack(mel))
        offset_logits = self.offset_head(self.offset_stack(mel))
        activation = torch.sigmoid(self.frame_activation(self.frame_stack(mel)))  # (batch, frames, pitches)
        # the frame head is told where onsets and offsets are, but its loss must not train those
        # heads: detach() stops the gradient (the paper's "stop gradient")
        combined = torch.cat([activation, torch.sigmoid(onset_logits).detach(),
                              torch.sigmoid(offset_logits).detach()], dim=-1)  # (batch, frames, 3 * pitches)
        frame_logits = self.frame_head(combined)
        velocities = self.velocity_head(self.velocity_stack(mel))
        return {"onsets": onset_logits, "offsets": offset_logits, "frames": frame_logits, "velocities": velocities}

    # ---- training ---------------------------------------------------------------------------
    def losses(self, batch, generator=None) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """The four losses of a batch and the network's outputs.

        Parameters
        ----------
        batch : (samples ``(batch, 1, time)``, cond)
            ``cond`` holds ``pianoroll``, ``onsets``, ``offsets``, ``velocities``, each
            ``(batch, pitches, frames)`` (:class:`~workbench.scores.ScoreTargets` through ``collate``).
        generator : torch.Generator, optional
            Draws the random gain of each segment while training.

        Returns
        -------
        (losses, outputs): ``losses`` has ``loss`` (their sum) and ``onset_loss``,
        ``offset_loss``, ``frame_loss``, ``velocity_loss``; ``outputs`` are :meth:`forward`'s.

        Raises
        ------
        ParameterError
            A target is missing or its shape does not match the audio.
        """
        samples, cond = batch
        samples = samples.to(self.device)
        missing = [k for k in ("pianoroll", "onsets", "offsets", "velocities") if k not in cond]
        if missing:
            raise ParameterError(f"the batch's cond lacks {', '.join(missing)}; build it with "
                                 "Transcriber.dataset(), whose items hold all four targets")
        low, high = self.config.gain_db
        if self.training and high > low:
            gain_db = low + (high - low) * torch.rand(samples.shape[0], 1, 1, generator=make_generator(generator))
            samples = samples * 10 ** (gain_db.to(samples) / 20)  # (batch, 1, time)
        out = self(self.features(samples))
        # targets are (batch, pitches, frames); the network works in (batch, frames, pitches)
        target = {k: cond[k].to(self.device).transpose(1, 2) for k in ("pianoroll", "onsets", "offsets", "velocities")}
        if target["pianoroll"].shape != out["frames"].shape:
            raise ParameterError(f"targets of shape {tuple(target['pianoroll'].shape)} (batch, frames, pitches) do "
                                 f"not match the audio's {tuple(out['frames'].shape)}; use the config's "
                                 "hop_length and pitch_range for both")
        bce = F.binary_cross_entropy_with_logits
        onset_loss = bce(out["onsets"], self.widen(target["onsets"]))
        offset_loss = bce(out["offsets"], self.widen(target["offsets"]))
        frame_loss = bce(out["frames"], target["pianoroll"])
        # velocity: squared error at onset frames only (elsewhere the target means nothing),
        # averaged over the onsets (the paper's velocity loss)
        weight = target["onsets"]
        velocity_loss = (weight * (target["velocities"] - out["velocities"]) ** 2).sum() / weight.sum().clamp_min(1)
        loss = onset_loss + offset_loss + frame_loss + self.config.velocity_weight * velocity_loss
        return ({"loss": loss, "onset_loss": onset_loss, "offset_loss": offset_loss, "frame_loss": frame_loss,
                 "velocity_loss": velocity_loss}, out)

    def widen(self, labels: torch.Tensor) -> torch.Tensor:
        """Onset (or offset) labels ``(batch, frames, pitches)`` stretched to last ``onset_seconds``.

        A one-frame label asks the network to pick a 16 ms frame inside an attack that its 64 ms
        window smears over several frames; it hedges, and no frame crosses 0.5. The paper labels
        32 ms per onset; the decoder starts the note at the first of those frames::

            onsets     . 1 . . . . 1 .
            widened    . 1 1 . . . 1 1      (onset_seconds = 2 frames)
        """
        n = max(1, round(self.config.onset_seconds * self.frames_per_second))
        out = labels
        for k in range(1, n):
            out = torch.maximum(out, F.pad(labels, (0, 0, k, 0))[:, :-k])  # shifted k frames later
        return out

    def training_step(self, batch, generator=None) -> dict:
        """Loss on one batch of :class:`TranscriptionData` items (see :meth:`losses`)."""
        return self.losses(batch, generator)[0]

    @torch.no_grad()
    def eval_step(self, batch, generator=None) -> dict:
        """Held-out losses plus note and frame F1 of the batch's segments (the training loop logs these).

        The reference notes are the targets decoded by the same rule as the predictions
        (:func:`decode_notes`), so a note already sounding when a segment starts counts in neither.
        """
        was_training = self.training
        self.eval()
        losses, out = self.losses(batch, generator)
        self.train(was_training)
        logs = {k: float(v) for k, v in losses.items()}
        cond = batch[1]
        refs, ests, lengths = [], [], []
        est_rolls, ref_rolls = [], []
        for b in range(out["frames"].shape[0]):
            probs = {k: torch.sigmoid(out[k][b].T) for k in ("onsets", "frames")}
            ests.append(self.decode(probs["onsets"], probs["frames"], out["velocities"][b].T))
            refs.append(self.decode(cond["onsets"][b], cond["pianoroll"][b]))
            lengths.append(out["frames"].shape[1] / self.frames_per_second)
            est_rolls.append(self.roll(ests[-1], out["frames"].shape[1]))
            ref_rolls.append(cond["pianoroll"][b])
        scores = note_f1(_concatenate(refs, lengths), _concatenate(ests, lengths))
        logs.update({k: v for k, v in scores.items() if k.endswith("f1")})
        logs["frame_f1"] = frame_f1(torch.cat(ref_rolls, -1), torch.cat(est_rolls, -1))["frame_f1"]
        return logs

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        return [torch.optim.Adam(self.parameters(), lr=self.config.learning_rate)]

    # ---- inference --------------------------------------------------------------------------
    def decode(self, onsets, frames, velocities=None) -> list[NoteEvent]:
        """:func:`decode_notes` with this model's frame rate, pitch range and thresholds."""
        c = self.config
        return decode_notes(onsets, frames, velocities, hop_length=c.hop_length, sample_rate=c.sample_rate,
                            pitch_low=c.pitch_range[0], onset_threshold=c.onset_threshold,
                            frame_threshold=c.frame_threshold)

    def roll(self, events, n_frames: int) -> torch.Tensor:
        """The piano roll ``(pitches, n_frames)`` of note events on this model's frame grid."""
        c = self.config
        return targets(events, n_frames, c.hop_length, c.sample_rate, c.pitch_range)["roll"]

    def check_input(self, audio: Audio, max_seconds: float = MAX_TRANSCRIBE_SECONDS) -> torch.Tensor:
        """Validate a clip and bring it to this model: mono samples ``(1, 1, time)`` at its sample rate.

        Raises
        ------
        ParameterError
            Not an ``Audio``, more than one clip, longer than ``max_seconds``, NaN or inf, or silent.
        """
        if not isinstance(audio, Audio):
            raise ParameterError(f"expected an Audio, got {type(audio).__name__}; wrap samples as "
                                 "Audio(x, sample_rate)")
        if audio.samples.shape[0] != 1:
            raise ParameterError(f"the Audio holds {audio.samples.shape[0]} clips; transcribe one at a time "
                                 "(index the batch: Audio(audio.samples[i], audio.sample_rate))")
        seconds = audio.samples.shape[-1] / audio.sample_rate
        if seconds > max_seconds:
            raise ParameterError(f"the clip lasts {seconds:.1f} s; the transcriber takes at most {max_seconds:g} s "
                                 "at once; cut it into shorter pieces")
        check_audio(audio.samples, allow_silence=False)  # NaN, inf, empty, silent
        if audio.sample_rate != self.sample_rate:
            audio = audio.resample(self.sample_rate)
        return audio.to_mono().samples.to(self.device)  # (1, 1, time)

    @torch.no_grad()
    def predict(self, audio: Audio) -> dict[str, torch.Tensor]:
        """Every head's output for one clip, as probabilities.

        Parameters
        ----------
        audio : Audio
            One clip at any sample rate (resampled to the model's), up to :data:`MAX_TRANSCRIBE_SECONDS`.

        Returns
        -------
        dict of Tensors ``(pitches, frames)`` on the CPU: ``onsets``, ``offsets``, ``frames``
        (probabilities) and ``velocities`` (velocity / 127, clamped to 0..1), plus ``mel``
        ``(n_mels, frames)``, the input the network saw.

        Raises
        ------
        ParameterError
            See :meth:`check_input`.
        """
        samples = self.check_input(audio)
        was_training = self.training
        self.eval()
        mel = self.features(samples)
        out = self(mel)
        self.train(was_training)
        probs = {k: torch.sigmoid(out[k][0].T).cpu() for k in ("onsets", "offsets", "frames")}
        probs["velocities"] = out["velocities"][0].T.clamp(0, 1).cpu()
        probs["mel"] = mel[0].T.cpu()
        return probs

    def transcribe(self, audio: Audio) -> list[NoteEvent]:
        """The notes of one clip: :meth:`predict`, then :func:`decode_notes`.

        Parameters
        ----------
        audio : Audio
            One clip at any sample rate.

        Returns
        -------
        list of NoteEvent (seconds from the clip's start, MIDI pitch, velocity from the velocity head).

        Raises
        ------
        ParameterError
            See :meth:`check_input`.
        """
        probs = self.predict(audio)
        return self.decode(probs["onsets"], probs["frames"], probs["velocities"])

    # ---- the figure ---------------------------------------------------------------------------
    def visualise(self, audio: Audio | None = None, events=None):
        """The log-mel input, the predicted frames with onsets marked, and the reference roll if given.

        Parameters
        ----------
        audio : Audio, optional
            The clip to transcribe; by default a synthetic arpeggio of three harmonic tones (whose
            notes are then the reference).
        events : iterable of NoteEvent, optional
            The notes actually played, drawn as a third panel.

        Returns
        -------
        matplotlib Figure
        """
        from ..viz import new_figure

        if audio is None:
            audio, events = _demo_clip(self.sample_rate)
        probs = self.predict(audio)
        n_frames = probs["frames"].shape[1]
        seconds = n_frames / self.frames_per_second
        low, high = self.config.pitch_range
        rows = 3 if events is not None else 2
        fig, axes = new_figure(rows, 1, width=9, row_height=2.3, sharex=True)
        axes = axes[:, 0]
        axes[0].imshow(probs["mel"].numpy(), origin="lower", aspect="auto", cmap="magma",
                       extent=[0, seconds, 0, self.config.n_mels])
        axes[0].set(ylabel="mel band", title=f"log-mel input ({self.config.f_min:g}..{self.config.f_max:g} Hz)")
        extent = [0, seconds, low - 0.5, high + 0.5]
        axes[1].imshow(probs["frames"].numpy(), origin="lower", aspect="auto", cmap="Greys", vmin=0, vmax=1,
                       extent=extent)
        on = probs["onsets"].numpy() > self.config.onset_threshold
        rows_, cols = np.nonzero(on)
        axes[1].scatter((cols + 0.5) / self.frames_per_second, rows_ + low, s=12, c="C3", marker="|",
                        label="onset > threshold")
        axes[1].set(ylabel="MIDI pitch", title="predicted frame probability, onsets in red")
        if len(cols):
            axes[1].legend(loc="upper right", fontsize=8)
        if events is not None:
            axes[2].imshow(self.roll(list(events), n_frames).numpy(), origin="lower", aspect="auto", cmap="Blues",
                           vmin=0, vmax=1, extent=extent)
            axes[2].set(ylabel="MIDI pitch", title="reference piano roll")
        pitches = [i for i in range(low, high + 1)
                   if probs["frames"][i - low].max() > 0.5 or (events is not None and any(e.pitch == i for e in events))]
        if pitches:
            for ax in axes[1:]:
                ax.set_ylim(min(pitches) - 3, max(pitches) + 3)
        axes[-1].set_xlabel("time (s)")
        return fig


def _demo_clip(sample_rate: int) -> tuple[Audio, list[NoteEvent]]:
    """A C major arpeggio of harmonic tones (decaying partials) and its notes."""
    from ..dsp.synth import adsr_envelope, sine

    events = [NoteEvent(0.1 + 0.4 * k, 0.35, pitch) for k, pitch in enumerate((60, 64, 67, 72))]
    n = int(2.0 * sample_rate)
    x = torch.zeros(n)
    for e in events:
        length = int(e.duration_seconds * sample_rate)
        tone = sum(sine(float(midi_to_hz(e.pitch)) * h, e.duration_seconds, sample_rate, 0.3 / h) for h in (1, 2, 3, 4))
        start = int(e.onset_seconds * sample_rate)
        x[start:start + length] += tone[:length] * adsr_envelope(length, sample_rate, release=0.05)
    return Audio(x[None], sample_rate), events


def evaluate_split(model: Transcriber, split: str = "test", max_pieces: int | None = None,
                   data: str = "scores", progress: bool = False) -> dict[str, float]:
    """Transcribe whole held-out pieces of the model's collection and score the notes.

    Each piece of ``split`` (``test`` by default: pieces never seen in training, in no
    transposition) is rendered as the model was trained (its collection, instruments and sample
    rate), transcribed whole, and compared with the score's notes inside the model's pitch range.
    All pieces are laid end to end before scoring, so every note counts once (a micro-average).

    Parameters
    ----------
    model : Transcriber
    split : {"test", "validation", "train"}
    max_pieces : int, optional
        Only the first pieces of the split.
    data : str
        ``"scores"`` (the model's collection) or a folder of your own scores.
    progress : bool
        Show a progress bar.

    Returns
    -------
    dict: :func:`note_f1`'s scores, ``frame_f1`` (on the decoded notes' piano roll), ``pieces``,
    ``seconds``.

    Raises
    ------
    ParameterError
        Unknown split or no piece in it.
    """
    if split not in ("test", "validation", "train"):
        raise ParameterError(f"split={split!r} must be 'test', 'validation' or 'train'")
    scores = model.dataset(split, data).scores  # whole pieces; transposed versions only in "train"
    low, high = model.config.pitch_range
    indices = range(len(scores.pieces) if max_pieces is None else min(max_pieces, len(scores.pieces)))
    if progress:
        from tqdm.auto import tqdm

        indices = tqdm(indices, desc=f"transcribe {split}", leave=False)
    refs, ests, lengths, ref_rolls, est_rolls = [], [], [], [], []
    for i in indices:
        audio = scores.audio(i)
        events = [e for e in scores.pieces[i].events if low <= e.pitch <= high]
        estimated = model.transcribe(audio)
        n_frames = math.ceil(audio.samples.shape[-1] / model.config.hop_length)
        refs.append(events)
        ests.append(estimated)
        lengths.append(audio.samples.shape[-1] / audio.sample_rate)
        ref_rolls.append(model.roll(events, n_frames))
        est_rolls.append(model.roll(estimated, n_frames))
    if not refs:
        raise ParameterError(f"split={split!r} holds no piece; raise max_pieces in the config")
    out = note_f1(_concatenate(refs, lengths), _concatenate(ests, lengths))
    out.update(frame_f1(torch.cat(ref_rolls, -1), torch.cat(est_rolls, -1)))
    out.update({"pieces": float(len(refs)), "seconds": float(sum(lengths))})
    return out


__all__ = ["AcousticModel", "Transcriber", "TranscriberConfig", "decode_notes",
           "evaluate_split", "frame_f1", "note_f1", "transcription_features"]
