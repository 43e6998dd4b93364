"""Wave2Midi2Wave's synthesiser (Hawthorne et al. 2019, arXiv:1810.12247): a WaveNet that plays a score.

Music factorises into notes: ``p(audio) = p(notes) p(audio | notes)``. This model is the second
factor. It is the WaveNet of notebook 03 (causal dilated convolutions over 8-bit mu-law samples,
the same fast sampler), locally conditioned on a piano roll instead of one note's pitch::

    onsets, frames, velocities (3, pitches, frames at hop_length) + time since the last onset
      --non-causal conv net over frames (it may look ahead)--> a bias for every gate unit
      --held for hop_length samples--> the dilated stack, sample by sample

Nothing tells it the pitch as a waveform: there is no oscillator. Which notes sound arrives as
rows of the roll, and the network has to learn to turn "row 67 is on" into a waveform whose
period is that of G4: the point of the system is that it learns to play.

Alignment. Roll frame ``f`` covers samples ``f * hop .. (f + 1) * hop - 1``
(:func:`workbench.scores.targets`). The WaveNet's frame bias ``j`` is used around sample ``j * hop``
(``(position + hop // 2) // hop``), so a note-on reaches the network at most ``hop / 2`` samples
before its sample (4 ms at 8 kHz and hop 64): inside what the ear and the transcriber resolve.

Notebook: notebooks/09_music_from_notes.ipynb
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ParameterError
from ._note import TIMING_CONSTANTS
from .base import CondSpec, ScoreDataConfig
from .wavenet import WaveNet, WaveNetShape

#: The default score when none is given: a C major arpeggio up and down, quarter notes at 100 bpm.
DEFAULT_SCORE = tuple((0.6 * i, 0.55, pitch, 80) for i, pitch in enumerate((60, 64, 67, 72, 67, 64, 60)))


@dataclass(frozen=True)
class Midi2WaveConfig(WaveNetShape, ScoreDataConfig):
    sample_rate: int = 8000
    hop_length: int = 64  # roll frames: 125 per second at 8 kHz
    collection: str = "folk"
    programs: tuple | None = ("flute",)
    pitch_range: tuple = (48, 96)
    segment_seconds: float = 2.0
    transpose: tuple = (-2, -1, 0, 1, 2)
    onset_share: float = 0.1  # crops that start from silence, as generation does


PRESETS = {
    "tiny": dict(n_stacks=1, n_layers=6, residual_channels=16, gate_channels=32, skip_channels=32,
                 cond_channels=16, max_pieces=12, segment_seconds=0.5, crop_samples=512, transpose=(0,),
                 batch_size=2),
    "small": dict(n_layers=9, max_pieces=400),
}


class Midi2Wave(WaveNet):
    """WaveNet conditioned on a piano roll (onsets, frames, velocities): it plays any score."""

    name = "midi2wave"
    family = "autoregressive"
    likelihood = "exact"
    Config = Midi2WaveConfig
    PRESETS = PRESETS
    notebook = "notebooks/09_music_from_notes.ipynb"
    aid_fields = ()

    def _build_conditioning(self, n_bias: int) -> None:
        c = self.config
        low, high = c.pitch_range
        if not 0 <= low <= high <= 127:
            raise ParameterError(f"pitch_range={c.pitch_range!r} must satisfy 0 <= low <= high <= 127")
        n_in = 3 * (high - low + 1) + len(TIMING_CONSTANTS)
        # k=5 over frames: the roll's neighbourhood, 2 frames either side (it may look ahead)
        self.frame_net = nn.Sequential(
            nn.Conv1d(n_in, c.cond_channels, 5, padding=2), nn.Tanh(),
            nn.Conv1d(c.cond_channels, c.cond_channels, 5, padding=2), nn.Tanh(),
        )
        self.local_proj = nn.Conv1d(c.cond_channels, n_bias, 1)
        self.global_bias_vector = nn.Parameter(torch.zeros(n_bias))

    # ---- conditioning ---------------------------------------------------------------------------
    @property
    def n_pitches(self) -> int:
        low, high = self.config.pitch_range
        return high - low + 1

    @property
    def conditioning(self) -> tuple[CondSpec, ...]:
        c = self.config
        shape = f"({self.n_pitches}, frames) at {c.sample_rate / c.hop_length:g} frames/s, MIDI {c.pitch_range[0]}.."
        return (
            CondSpec("pianoroll", "frames", None, unit="roll",
                     help=f"{shape}{c.pitch_range[1]}: 1 where a note sounds (default: a C major arpeggio)"),
            CondSpec("onsets", "frames", None, unit="roll",
                     help=f"{shape}: 1 at each note-on (default: where the roll rises)"),
            CondSpec("velocities", "frames", None, unit="0..1",
                     help=f"{shape}: velocity / 127 at each note-on (default: 80)"),
        )

    @property
    def default_seconds(self) -> float:
        return DEFAULT_SCORE[-1][0] + DEFAULT_SCORE[-1][1] + 0.3

    def roll_from_events(self, events, seconds: float | None = None) -> dict[str, torch.Tensor]:
        """Conditioning for ``events`` (:class:`~workbench.scores.NoteEvent` or
        ``(onset_s, duration_s, pitch, velocity)`` tuples): ``{"pianoroll", "onsets", "velocities"}``.

        Raises
        ------
        ParameterError
            A note outside the model's pitch range (the message names it and the range).
        """
        from ..scores import NoteEvent, targets

        c = self.config
        events = [e if isinstance(e, NoteEvent) else NoteEvent(*e) for e in events]
        low, high = c.pitch_range
        outside = sorted({e.pitch for e in events if not low <= e.pitch <= high})
        if outside:
            raise ParameterError(f"pitch {outside[0]} is outside what {self.name} plays (MIDI {low}..{high}); "
                                 "transpose the score into that range")
        end = max((e.offset_seconds for e in events), default=0.0)
        seconds = end + 0.3 if seconds is None else float(seconds)
        n_frames = int(math.ceil(seconds * c.sample_rate / c.hop_length)) + 1
        t = targets(events, n_frames, c.hop_length, c.sample_rate, c.pitch_range)
        return {"pianoroll": t["roll"], "onsets": t["onsets"], "velocities": t["velocities"]}

    def _rolls(self, cond: dict, batch: int) -> torch.Tensor:
        """The three roll channels ``(batch, 3, pitches, frames)`` from a cond dict (defaults filled)."""
        roll = cond.get("pianoroll")
        if roll is None:
            return self._rolls(self.roll_from_events(DEFAULT_SCORE), batch)
        roll = torch.as_tensor(roll, dtype=torch.float32)
        roll = roll[None] if roll.dim() == 2 else roll
        if roll.dim() != 3 or roll.shape[1] != self.n_pitches or roll.shape[0] not in (1, batch):
            raise ParameterError(f"pianoroll has shape {tuple(roll.shape)}; expected ({self.n_pitches}, frames) "
                                 f"for MIDI {self.config.pitch_range[0]}..{self.config.pitch_range[1]} "
                                 "(roll_from_events makes one from notes)")
        onsets = cond.get("onsets")
        if onsets is None:  # a note-on where the roll rises
            onsets = (roll - F.pad(roll, (1, 0))[..., :-1]).clamp_min(0)
        velocities = cond.get("velocities")
        if velocities is None:
            velocities = onsets * (80 / 127)
        parts = [torch.as_tensor(p, dtype=torch.float32) for p in (onsets, roll, velocities)]
        parts = [p[None] if p.dim() == 2 else p for p in parts]
        if {p.shape[1:] for p in parts} != {roll.shape[1:]}:
            raise ParameterError("pianoroll, onsets and velocities must have the same (pitches, frames) shape")
        return torch.stack([p.expand(batch, -1, -1) for p in parts], dim=1)

    def frame_features(self, rolls: torch.Tensor, n_frames: int) -> torch.Tensor:
        """``(batch, 3 * pitches + timing, n_frames)``: the roll channels (cut or padded with silence
        to ``n_frames``) and the time since the last onset of any note, as decaying exponentials."""
        c = self.config
        rolls = rolls[..., :n_frames]
        rolls = F.pad(rolls, (0, n_frames - rolls.shape[-1]))
        b = rolls.shape[0]
        # frames since the last onset: a running count reset wherever any note starts
        any_onset = rolls[:, 0].amax(dim=1) > 0  # (batch, frames)
        idx = torch.arange(n_frames, device=rolls.device).expand(b, -1)
        last = torch.where(any_onset, idx, torch.full_like(idx, -10**6)).cummax(dim=1).values
        seconds = (idx - last).clamp_max(10**5).to(rolls.dtype) * (c.hop_length / c.sample_rate)
        timing = torch.exp(-seconds[:, None] / torch.tensor(TIMING_CONSTANTS, device=rolls.device)[:, None])
        return torch.cat([rolls.flatten(1, 2), timing.to(rolls.dtype)], dim=1)

    def prepare_cond(self, cond: dict, batch: int, n_samples: int):
        rolls = self._rolls(cond, batch).to(self.device, self.embed.weight.dtype)
        feats = self.frame_features(rolls, self.n_frames_for(n_samples))
        local = self.local_proj(self.frame_net(feats))  # (batch, layers * gate, frames)
        g = self.global_bias_vector.expand(batch, -1)
        return g, local, None

    def _cond_tensors(self, cond: dict | None, n: int) -> dict:
        return self.check_cond(cond, n)

    def _clip_cond(self, cond: dict | None, x: torch.Tensor) -> dict:
        return self._cond_tensors(cond, x.shape[0])

    def _batch_cond(self, samples: torch.Tensor, cond: dict) -> dict:
        return {k: cond[k] for k in ("pianoroll", "onsets", "velocities")}

    @classmethod
    def card_summary(cls, metrics: dict) -> str | None:
        if "loop_model_onset_f1" not in metrics:
            return None
        return (f"its playing transcribed back: note onset F1 {metrics['loop_model_onset_f1']:.1%} against the "
                f"score (FluidSynth's rendering of the same notes: {metrics['loop_fluidsynth_onset_f1']:.1%}), "
                f"first {metrics['loop_seconds']:g} s of {len(metrics['loop_pieces'])} test pieces")

    # ---- data -------------------------------------------------------------------------------------
    def dataset(self, split: str = "train", data: str = "scores"):
        """Rendered segments of the configured collection with onsets, roll and velocities."""
        from ..scores import ScoreTargets

        return ScoreTargets(super().dataset(split, data))

    # ---- generation ---------------------------------------------------------------------------------
    def code_request(self, n: int, seconds: float, cond: dict) -> tuple[int, dict]:
        """The score decides the length where one is given; else ``seconds`` of the default score."""
        c = self.config
        rolls = self._rolls(cond, n)
        n_samples = max(1, int(round(seconds * c.sample_rate)))
        if cond.get("pianoroll") is not None:  # the score decides the length
            n_samples = rolls.shape[-1] * c.hop_length
        return n_samples, {"pianoroll": rolls[:, 1], "onsets": rolls[:, 0], "velocities": rolls[:, 2]}

    def play(self, events, *, temperature: float | None = None, generator=None, progress=None, **options):
        """Render note events (or ``(onset_s, duration_s, pitch, velocity)`` tuples) to audio."""
        cond = self.roll_from_events(events)
        seconds = (cond["pianoroll"].shape[-1]) * self.config.hop_length / self.sample_rate
        return self.generate(1, seconds=seconds, cond=cond, temperature=temperature, generator=generator,
                             progress=progress, **options)

    # ---- figure -----------------------------------------------------------------------------------
    def visualise(self, audio=None, cond: dict | None = None):
        """The conditioning the network hears (roll, onsets) over the dilated stack's receptive field."""
        from ..viz import new_figure

        rolls = self._rolls(self.check_cond(cond, 1), 1)[0]
        c = self.config
        fig, axes = new_figure(2, 1, width=8, row_height=2.4)
        seconds = rolls.shape[-1] * c.hop_length / c.sample_rate
        extent = [0, seconds, c.pitch_range[0] - 0.5, c.pitch_range[1] + 0.5]
        axes[0, 0].imshow(rolls[1].numpy(), origin="lower", aspect="auto", extent=extent, cmap="Greys")
        axes[0, 0].imshow(rolls[0].numpy(), origin="lower", aspect="auto", extent=extent, cmap="Reds", alpha=0.6)
        axes[0, 0].set_ylabel("MIDI pitch")
        axes[0, 0].set_title(f"the score as the network hears it: roll (grey), onsets (red), "
                             f"{c.sample_rate / c.hop_length:g} frames/s")
        ax = axes[1, 0]
        rf_ms = 1000 * self.receptive_field / c.sample_rate
        ax.barh([0], [rf_ms], color="tab:blue")
        ax.barh([1], [1000 * c.hop_length / c.sample_rate], color="tab:orange")
        ax.set_yticks([0, 1], [f"receptive field ({self.receptive_field} samples)", "one roll frame"])
        ax.set_xlabel("milliseconds")
        ax.set_title("what each sample's prediction sees of the audio, against the score's frame")
        return fig
