"""Griffin-Lim as a model: keep a magnitude spectrogram, rebuild a phase that fits it.

No network and nothing to train: ``encode`` is the STFT magnitude, ``decode`` is (fast)
Griffin-Lim (:func:`workbench.dsp.spectral.griffin_lim`, iterations and momentum from the
config). It is here as the baseline of the spectrogram route and as the simplest vocoder:

- ``generate(cond={"mel": frames})`` inverts log-mel frames (mel -> linear magnitude by the
  filterbank's pseudo-inverse, then Griffin-Lim). Any model that predicts mel frames can use it.
- ``generate(cond={"pitch", "instrument", "velocity"})`` generates nothing new, honestly: it
  renders that very note from the dataset's source (the SoundFont, or the procedural synth),
  keeps only its magnitude and rebuilds the phase from a *random* initial phase drawn from the
  seed. So the seed matters, and what you hear is what magnitude-only resynthesis loses.

Notebook: notebooks/08_spectrogram_and_dsp.ipynb
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..audio import Audio
from ..dsp.spectral import griffin_lim, make_generator, mel_filterbank, stft
from ..errors import ParameterError
from ._note import note_specs
from .base import Aid, CondSpec, Encoding, GenerativeModel, NoteDataConfig
from .capabilities import Vocoder


@dataclass(frozen=True)
class GriffinLimConfig(NoteDataConfig):
    n_fft: int = 1024
    hop_length: int = 256
    n_iter: int = 32
    momentum: float = 0.99  # 0 is the original algorithm; 0.99 "fast Griffin-Lim"
    n_mels: int = 80  # the mel frames this vocoder inverts (workbench.dsp.log_mel's convention)


PRESETS = {
    "tiny": dict(n_iter=4, n_mels=40, instruments=("piano", "flute"), pitch_range=(60, 62),
                 velocities=(100,), note_seconds=0.25, batch_size=2),
    "small": dict(),
}


def mel_to_magnitude(log_mel_frames: torch.Tensor, sample_rate: int, n_fft: int,
                     floor: float = 1e-5) -> torch.Tensor:
    """Undo :func:`workbench.dsp.spectral.log_mel` as well as it can be undone.

    ``exp`` undoes the log; the mel filterbank (n_mels x n_freq, far fewer rows than columns)
    is undone by its pseudo-inverse, the least-squares magnitude with the smallest energy,
    clipped at zero (as ``torchaudio.transforms.InverseMelScale`` does). Detail finer than a
    mel band is lost for good: harmonics above a few kHz blur into bands.

    Parameters
    ----------
    log_mel_frames : Tensor ``(..., n_mels, frames)``
        Natural-log mel magnitudes.
    sample_rate, n_fft : int
        The settings the frames were computed with.
    floor : float
        Values at ``log(floor)`` are treated as silence.

    Returns
    -------
    Tensor ``(..., n_fft // 2 + 1, frames)``.
    """
    n_mels = log_mel_frames.shape[-2]
    fb = mel_filterbank(n_fft, n_mels, sample_rate).double()  # (n_mels, freq)
    mel = (log_mel_frames.double().exp() - floor).clamp_min(0)
    mag = torch.linalg.pinv(fb) @ mel  # (..., freq, frames)
    return mag.clamp_min(0).to(log_mel_frames.dtype)


#: Griffin-Lim's "generate" renders the real note and keeps its magnitude: the pitch is the data's.
RE_RENDERED = Aid(
    "re-rendered data",
    "generate() resynthesises the real dataset note from its magnitude alone (a random initial phase "
    "made consistent): nothing is learned, so its pitch is the recording's",
    "Griffin and Lim 1984; Perraudin, Balazs and Sondergaard 2013 (fast Griffin-Lim)", in_paper=True)


class GriffinLim(Vocoder, GenerativeModel):
    """Magnitude in, phase rebuilt by Griffin-Lim: the spectral baseline and the default vocoder."""

    name = "griffinlim"
    family = "spectral"
    likelihood = "none"
    Config = GriffinLimConfig
    PRESETS = PRESETS
    notebook = "notebooks/08_spectrogram_and_dsp.ipynb"
    uses_temperature = False  # the only randomness is the initial phase, drawn from the seed
    aid = RE_RENDERED

    def __init__(self, config: GriffinLimConfig):
        super().__init__(config)
        if config.n_iter < 0 or not 0 <= config.momentum < 1:
            raise ParameterError(f"n_iter={config.n_iter} must be >= 0 and momentum={config.momentum} in [0, 1)")
        self._renderer = None  # the SoundFont synth, opened on first use
        self._notes: dict = {}  # rendered notes: FluidSynth renders of one note differ slightly run to run

    @property
    def conditioning(self) -> tuple[CondSpec, ...]:
        c = self.config
        return (
            *note_specs(c, pitch="the dataset note whose magnitude is inverted",
                        instrument="the dataset instrument whose magnitude is inverted",
                        velocity="how hard the dataset note is struck"),
            CondSpec("mel", "frames", None, unit="log-mel",
                     help=f"({c.n_mels}, frames) log-mel at n_fft {c.n_fft}, hop {c.hop_length}: "
                          "invert these instead of a dataset note"),
        )

    # ---- the representation -------------------------------------------------------------------
    def magnitude(self, x: torch.Tensor) -> torch.Tensor:
        """``|STFT|`` ``(batch, freq, frames)`` of samples ``(batch, time)``."""
        return stft(x, self.config.n_fft, self.config.hop_length).abs()

    def invert(self, mag: torch.Tensor, length: int | None = None, generator=None, n_iter: int | None = None,
               momentum: float | None = None, return_convergence: bool = False):
        """Griffin-Lim on magnitudes ``(batch, freq, frames)`` with this model's settings."""
        c = self.config
        return griffin_lim(mag, c.n_iter if n_iter is None else n_iter, c.momentum if momentum is None else momentum,
                           c.n_fft, c.hop_length, length=length, generator=generator,
                           return_convergence=return_convergence)

    def convergence(self, audio: Audio, n_iter: int | None = None, momentum: float | None = None,
                    generator=0) -> list[float]:
        """Spectral convergence after each iteration (``n_iter + 1`` values, the first from the initial phase)."""
        x = self.check_audio_input(audio)[:1, 0]
        _, values = self.invert(self.magnitude(x), x.shape[-1], generator, n_iter, momentum, return_convergence=True)
        return values

    def render_note(self, pitch: int, instrument: str, velocity: int, seconds: float) -> torch.Tensor:
        """The dataset note itself ``(time,)``, rendered from the configured source (and kept)."""
        key = (int(pitch), instrument, int(velocity), float(seconds))
        if key not in self._notes:
            if len(self._notes) >= 64:
                self._notes.pop(next(iter(self._notes)))
            self._notes[key] = self._render(*key)
        return self._notes[key].clone()

    def _render(self, pitch: int, instrument: str, velocity: int, seconds: float) -> torch.Tensor:
        c = self.config
        if c.data_source == "soundfont":
            from ..data import SOUNDFONT_PROGRAMS, SoundFontRenderer

            if self._renderer is None:
                self._renderer = SoundFontRenderer(c.sample_rate)
            x = self._renderer.render_note(pitch, velocity, SOUNDFONT_PROGRAMS[instrument], seconds,
                                           0.75 * seconds)
            return torch.from_numpy(x)
        from ..data import Notes

        notes = Notes(source=c.data_source, instruments=(instrument,), pitches=(pitch,),
                      velocities=(velocity,), seconds=seconds, sample_rate=c.sample_rate)
        return notes[0][0][0]

    # ---- the contract -----------------------------------------------------------------------------
    def _generate(self, n, seconds, cond, temperature, generator, progress):
        c = self.config
        gen = make_generator(generator)
        mel = cond.get("mel")
        if mel is not None:
            # a vocoder: log-mel frames -> magnitude -> Griffin-Lim from random phase
            mel = mel[None] if mel.dim() == 2 else mel
            if mel.dim() != 3 or mel.shape[0] not in (1, n):
                raise ParameterError(f"mel has shape {tuple(mel.shape)}; expected (n_mels, frames) or ({n}, n_mels, frames)")
            if mel.shape[-2] != c.n_mels:
                raise ParameterError(f"mel has {mel.shape[-2]} bands; this model inverts n_mels={c.n_mels}; "
                                     f"make it with this model's mel_of or set n_mels")
            mag = mel_to_magnitude(mel.float(), c.sample_rate, c.n_fft).expand(n, -1, -1)
            length = (mag.shape[-1] - 1) * c.hop_length
        else:
            # the dataset note's magnitude, its phase thrown away
            length = max(1, int(round(seconds * c.sample_rate)))
            render_seconds = max(seconds, 1.5 * c.n_fft / c.sample_rate)
            notes = [self.render_note(p, i, v, render_seconds)[: max(length, c.n_fft)]
                     for p, i, v in zip(cond["pitch"], cond["instrument"], cond["velocity"])]
            mag = self.magnitude(torch.stack(notes))
        if gen is None:  # no seed given: a random start all the same (drawn, never seeding globally)
            gen = torch.Generator().manual_seed(int(torch.randint(2**62, ()).item()))
        out = self.invert(mag, max(length, (mag.shape[-1] - 1) * c.hop_length), generator=gen)
        return out[:, None, :length]

    def encode(self, audio: Audio, cond: dict | None = None) -> Encoding:
        """The magnitude spectrogram (the phase is dropped: that is the point)."""
        x = self.check_audio_input(audio)[:, 0]  # (batch, time)
        return Encoding("magnitude", {"magnitude": self.magnitude(x)}, self.sample_rate,
                        meta={"n_samples": x.shape[-1], "n_fft": self.config.n_fft,
                              "hop_length": self.config.hop_length})

    def decode(self, encoding: Encoding, generator=None) -> Audio:
        """Griffin-Lim from zero phase (or random phase with ``generator``)."""
        mag = encoding.data["magnitude"]
        if mag.shape[-2] != self.config.n_fft // 2 + 1:
            raise ParameterError(f"the magnitude has {mag.shape[-2]} bins; this model uses n_fft={self.config.n_fft}")
        y = self.invert(mag, encoding.meta.get("n_samples"), generator=generator)
        return Audio(y[:, None].clamp(-1, 1), self.sample_rate)

    # ---- "training": nothing to learn, the loop only measures --------------------------------------
    def configure_optimizers(self) -> list:
        return []

    def training_step(self, batch, generator=None) -> dict:
        """Spectral convergence of Griffin-Lim on the batch (no gradients: there are no weights)."""
        samples, _ = batch
        x = samples[:, 0]
        mag = self.magnitude(x)
        y = self.invert(mag, x.shape[-1], generator=generator)
        rebuilt = self.magnitude(y)
        sc = torch.linalg.vector_norm(mag - rebuilt) / torch.linalg.vector_norm(mag).clamp_min(1e-12)
        return {"loss": sc, "spectral_convergence": sc}

    def train_step(self, batch, optimizers, *, generator=None, clip=None, sync=None) -> dict:
        with torch.no_grad():
            logs = self.training_step(batch, generator=generator)
        return {k: float(v) for k, v in logs.items()}

    # ---- figure -------------------------------------------------------------------------------------
    def visualise(self, audio: Audio | None = None):
        """Spectral convergence per iteration (plain vs fast Griffin-Lim) and the spectrograms."""
        from ..viz import new_figure, spectrogram

        c = self.config
        if audio is None:
            spec = {s.name: s.default for s in self.conditioning if s.kind != "frames"}
            x = self.render_note(spec["pitch"], spec["instrument"], spec["velocity"], c.note_seconds)
            audio = Audio(x, c.sample_rate)
        x = self.check_audio_input(audio)[:1, 0]
        mag = self.magnitude(x)
        fig, axes = new_figure(3, 1, width=8, row_height=2.3)
        ax = axes[0, 0]
        for momentum, label in ((0.0, "Griffin-Lim (momentum 0)"), (c.momentum, f"fast Griffin-Lim (momentum {c.momentum:g})")):
            y, values = self.invert(mag, x.shape[-1], generator=0, momentum=momentum, return_convergence=True)
            ax.plot(range(len(values)), values, marker="o", ms=3, label=label)
        ax.set_xlabel("iteration")
        ax.set_ylabel("spectral convergence")
        ax.set_yscale("log")
        ax.set_title("Griffin-Lim: a phase that fits the magnitude, found by alternating projections")
        ax.legend()
        ax.grid(alpha=0.3)
        spectrogram(Audio(x, c.sample_rate), ax=axes[1, 0], title="original")
        spectrogram(Audio(y.clamp(-1, 1), c.sample_rate), ax=axes[2, 0],
                    title=f"rebuilt from the magnitude after {c.n_iter} iterations, random initial phase")
        return fig
