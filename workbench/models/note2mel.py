"""Note-to-mel: predict log-mel frames from a note, then let a vocoder make the samples.

The two-stage pipeline of Tacotron 2 and the motivation of MelNet: a 1 s note is 63 mel
frames of 80 numbers at hop 256 instead of 16,000 samples, so the first stage can be a small
network that sees the whole note at once. Here it is a non-autoregressive conv net::

    pitch, instrument, velocity --embeddings + the pitch's harmonic comb in mel bands--> g
    time since onset / since release (decaying exponentials, per frame)           --> h
    h + g --residual conv blocks (kernel 5), g added in every block--> log-mel (n_mels, frames)

trained with L1 on log-mel. A dataset note is fully determined by (pitch, instrument,
velocity), so one deterministic prediction per note is the right model here; the seed only
reaches the vocoder (Griffin-Lim's random initial phase).

Vocoders are chosen by name when rendering: ``"griffinlim"`` always, plus every shipped
checkpoint of a model that declares itself a :class:`~workbench.models.capabilities.Vocoder`
(a MelGAN, a WaveGlow, a WaveNet vocoder), looked up in the registry at call time
(:func:`available_vocoders`).

Notebook: notebooks/08_spectrogram_and_dsp.ipynb
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..audio import Audio
from ..dsp.spectral import log_mel, make_generator, mel_filterbank
from ..dsp.synth import midi_to_hz
from ..errors import ParameterError
from ._note import HARMONIC_COMB, note_specs
from .base import CondSpec, Encoding, GenerativeModel, NoteDataConfig
from .capabilities import Vocoder

#: Onset and release time constants (seconds) of the frame features exp(-t / T).
ONSET_CONSTANTS = (0.02, 0.05, 0.1, 0.3, 1.0)
RELEASE_CONSTANTS = (0.03, 0.1, 0.3)
#: Notes' default: the key is released after this share of the clip.
HOLD_SHARE = 0.75
#: The vocoder that needs no checkpoint.
GRIFFIN_LIM = "griffinlim"


@dataclass(frozen=True)
class NoteToMelConfig(NoteDataConfig):
    n_fft: int = 1024
    hop_length: int = 256
    n_mels: int = 80
    hidden_size: int = 128
    n_blocks: int = 4
    kernel_size: int = 5
    embed_size: int = 32
    vocoder: str = "griffinlim"  # default vocoder name
    vocoder_iterations: int = 32  # Griffin-Lim iterations when it is the vocoder
    # conditioning and data
    batch_size: int = 16
    learning_rate: float = 2e-3


PRESETS = {
    "tiny": dict(n_mels=40, hidden_size=32, n_blocks=2, embed_size=8, vocoder_iterations=4,
                 instruments=("piano", "flute"), pitch_range=(60, 62), velocities=(100,),
                 note_seconds=0.25, batch_size=4),
    "small": dict(),
}


def available_vocoders() -> list[str]:
    """Vocoder names usable now: ``"griffinlim"`` plus every shipped checkpoint of a :class:`Vocoder`.

    Looked up in the registry on every call, so a vocoder trained after this module was
    imported shows up.
    """
    from . import list_checkpoints, model_class

    names = [GRIFFIN_LIM]
    names += [name for name in list_checkpoints() if name not in names and issubclass(model_class(name), Vocoder)]
    return names


class _Block(nn.Module):
    """Residual conv block with the note's global conditioning added inside."""

    def __init__(self, channels: int, kernel_size: int):
        super().__init__()
        self.conv1 = nn.Conv1d(channels, channels, kernel_size, padding=kernel_size // 2)
        self.conv2 = nn.Conv1d(channels, channels, kernel_size, padding=kernel_size // 2)
        self.norm = nn.GroupNorm(1, channels)
        self.cond = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.norm(self.conv1(x)) + self.cond(g)[..., None], 0.1)
        return x + self.conv2(h)


class NoteToMel(GenerativeModel):
    """A conv net that draws a note's log-mel spectrogram; a vocoder turns it into sound."""

    name = "note2mel"
    family = "spectral"
    likelihood = "none"
    Config = NoteToMelConfig
    PRESETS = PRESETS
    notebook = "notebooks/08_spectrogram_and_dsp.ipynb"
    #: The mel prediction is deterministic; the vocoder samples at its own default temperature.
    uses_temperature = False
    aid = HARMONIC_COMB  # the comb in mel bands (note2mel is this workbench's own model, named for what it does)

    def __init__(self, config: NoteToMelConfig):
        super().__init__(config)
        c = config
        h = c.hidden_size
        n_pitches = c.pitch_range[1] - c.pitch_range[0] + 1
        self.pitch_embed = nn.Embedding(n_pitches, c.embed_size)
        self.instrument_embed = nn.Embedding(len(c.instruments), c.embed_size)
        # global: embeddings, pitch and velocity as numbers, the harmonic comb (n_mels)
        self.global_net = nn.Sequential(nn.Linear(2 * c.embed_size + 2 + c.n_mels, h), nn.LeakyReLU(0.1),
                                        nn.Linear(h, h))
        self.frame_in = nn.Conv1d(len(ONSET_CONSTANTS) + len(RELEASE_CONSTANTS), h, 1)
        self.blocks = nn.ModuleList(_Block(h, c.kernel_size) for _ in range(c.n_blocks))
        self.out = nn.Conv1d(h, c.n_mels, 1)
        self.spectral_shape = nn.Linear(h, c.n_mels)  # the note's time-invariant spectral envelope
        self._vocoders: dict = {}  # loaded vocoders by name
        self._vocoder_names: tuple = (None, ())  # (checkpoint signature, names) of the last registry scan

    @property
    def conditioning(self) -> tuple[CondSpec, ...]:
        c = self.config
        vocoders = self.vocoder_choices()
        default = c.vocoder if c.vocoder in vocoders else GRIFFIN_LIM
        return (
            *note_specs(c, pitch="the note",
                        instrument="which sampled instrument's spectrogram to draw",
                        velocity="how hard the key is struck"),
            CondSpec("vocoder", "choice", default, choices=vocoders,
                     help="what turns the mel frames into samples (any shipped model that takes mel frames)"),
        )

    def n_frames_for(self, n_samples: int) -> int:
        return n_samples // self.config.hop_length + 1

    def vocoder_choices(self) -> tuple[str, ...]:
        """:func:`available_vocoders`, rescanned only when the shipped checkpoints change."""
        from . import checkpoint_dir, list_checkpoints

        signature = tuple((name, (checkpoint_dir(name) / "config.json").stat().st_mtime_ns)
                          for name in list_checkpoints() if (checkpoint_dir(name) / "config.json").exists())
        if signature != self._vocoder_names[0]:
            self._vocoder_names = (signature, tuple(available_vocoders()))
        return self._vocoder_names[1]

    # ---- features ------------------------------------------------------------------------------
    def mel_of(self, x: torch.Tensor) -> torch.Tensor:
        """Target log-mel frames ``(batch, n_mels, frames)`` of samples ``(batch, time)``."""
        c = self.config
        return log_mel(x, c.sample_rate, c.n_fft, c.hop_length, c.n_mels)

    def harmonic_comb(self, pitch: torch.Tensor) -> torch.Tensor:
        """Where a note's harmonics fall in the mel bands: ``(batch, n_mels)``, peak 1.

        Harmonic ``k`` of ``f0`` puts weight ``1 / k`` on its FFT bin; the mel filterbank then
        says which bands light up. The network reads the pitch as this picture, so a pitch it
        never heard on one instrument still lands its harmonics in the right bands.
        """
        c = self.config
        n_freq = c.n_fft // 2 + 1
        f0 = midi_to_hz(pitch.double())[:, None]  # (batch, 1)
        k = torch.arange(1, 200, dtype=torch.float64)[None]
        bins = f0 * k * c.n_fft / c.sample_rate  # (batch, harmonics)
        weight = (1.0 / k) * (bins < n_freq - 1)
        line = torch.zeros(pitch.shape[0], n_freq, dtype=torch.float64)
        low = bins.floor().long().clamp_max(n_freq - 2)
        frac = bins - low
        line.scatter_add_(1, low, weight * (1 - frac))
        line.scatter_add_(1, low + 1, weight * frac)
        comb = line @ mel_filterbank(c.n_fft, c.n_mels, c.sample_rate).double().T  # (batch, n_mels)
        comb = comb / comb.amax(-1, keepdim=True).clamp_min(1e-12)
        return comb.float().to(self.device)

    def frame_features(self, n_frames: int, batch: int, seconds: float) -> torch.Tensor:
        """Time since the onset and since the release, as decaying exponentials ``(batch, 8, frames)``."""
        c = self.config
        t = torch.arange(n_frames, dtype=torch.float32) * c.hop_length / c.sample_rate
        onset = torch.exp(-t[None] / torch.tensor(ONSET_CONSTANTS)[:, None])
        since_release = (t - HOLD_SHARE * seconds).clamp_min(0)
        released = (t >= HOLD_SHARE * seconds).float()
        release = released * (1 - torch.exp(-since_release[None] / torch.tensor(RELEASE_CONSTANTS)[:, None]))
        return torch.cat([onset, release]).to(self.device).expand(batch, -1, -1)

    # ---- the network ------------------------------------------------------------------------------
    def forward(self, cond: dict, n_frames: int, seconds: float) -> torch.Tensor:
        """Log-mel frames ``(batch, n_mels, n_frames)`` for notes ``cond`` (pitch, instrument, velocity)."""
        c = self.config
        pitch = torch.as_tensor(cond["pitch"], device=self.device).long()
        inst = cond["instrument"]
        inst = inst.to(self.device) if isinstance(inst, torch.Tensor) else self.cond_index("instrument", inst)
        vel = torch.as_tensor(cond["velocity"], dtype=torch.float32, device=self.device)
        numbers = torch.stack([(pitch.float() - 60) / 12, vel / 127], dim=-1)  # (batch, 2)
        g = self.global_net(torch.cat([self.pitch_embed(pitch - c.pitch_range[0]), self.instrument_embed(inst),
                                       numbers, self.harmonic_comb(pitch)], dim=-1))  # (batch, hidden)
        h = self.frame_in(self.frame_features(n_frames, pitch.shape[0], seconds)) + g[..., None]
        for block in self.blocks:
            h = block(h, g)  # (batch, hidden, frames)
        return self.out(h) + self.spectral_shape(g)[..., None]  # (batch, n_mels, frames)

    def predict_mel(self, n: int = 1, *, seconds: float = 1.0, cond: dict | None = None) -> torch.Tensor:
        """The first stage alone: validated ``cond`` -> log-mel ``(n, n_mels, frames)``."""
        checked = self.check_cond(cond, n)
        n_samples = max(1, int(round(seconds * self.sample_rate)))
        with torch.no_grad():
            return self(checked, self.n_frames_for(n_samples), seconds)

    # ---- the vocoder stage ------------------------------------------------------------------------------
    def get_vocoder(self, name: str) -> GenerativeModel:
        """A vocoder by name: Griffin-Lim in this model's mel convention, or a shipped checkpoint."""
        if name not in self._vocoders:
            if name not in self.vocoder_choices():
                raise ParameterError(
                    f"vocoder={name!r} is not available; choose from {', '.join(self.vocoder_choices())}")
            from . import create_model, load_model

            c = self.config
            ours = {GRIFFIN_LIM: lambda: create_model(
                GRIFFIN_LIM, "small", sample_rate=c.sample_rate, n_fft=c.n_fft, hop_length=c.hop_length,
                n_mels=c.n_mels, n_iter=c.vocoder_iterations)}
            self._vocoders[name] = ours.get(name, lambda: load_model(name))()
        return self._vocoders[name]

    def _same_convention(self, vocoder: Vocoder) -> bool:
        """Whether the vocoder's ``mel_of`` computes exactly our frames (checked on fixed noise)."""
        if vocoder.sample_rate != self.sample_rate:
            return False
        probe = 0.1 * torch.randn(1, 4 * self.config.n_fft, generator=torch.Generator().manual_seed(0))
        ours, theirs = self.mel_of(probe), vocoder.mel_of(probe.to(vocoder.device)).cpu()
        return ours.shape == theirs.shape and torch.allclose(ours, theirs, atol=1e-4)

    def vocode(self, mel: torch.Tensor, vocoder: str | GenerativeModel | None = None, *, cond: dict | None = None,
               generator=None) -> Audio:
        """The second stage: log-mel ``(batch, n_mels, frames)`` -> Audio through a vocoder.

        A vocoder whose mel convention differs from ours (another hop, n_mels or sample rate)
        gets its frames from its own ``mel_of`` applied to a quick Griffin-Lim rendering of ours:
        mel frames carry no phase, so only the framing changes, not the information.
        """
        voc = self.get_vocoder(vocoder or self.config.vocoder) if not isinstance(vocoder, GenerativeModel) else vocoder
        if not isinstance(voc, Vocoder):
            raise ParameterError(f"{voc.name} is not a mel vocoder; choose from {', '.join(self.vocoder_choices())}")
        frames = mel
        if not self._same_convention(voc):
            rough = self.get_vocoder(GRIFFIN_LIM).generate(mel.shape[0], cond={"mel": mel}, generator=0)
            frames = voc.mel_of(rough.resample(voc.sample_rate).samples[:, 0].to(voc.device))
        names = {s.name: s for s in voc.conditioning}
        vcond = {"mel": frames}
        for key, values in (cond or {}).items():
            spec = names.get(key)
            if spec is None or spec.kind == "frames":
                continue
            try:  # pass pitch / instrument / velocity where the vocoder takes them and they fit
                vcond[key] = [spec.validate(v) for v in values]
            except ParameterError:
                continue
        return voc.generate(mel.shape[0], cond=vcond, generator=generator)  # at the vocoder's own temperature

    # ---- the contract ----------------------------------------------------------------------------------
    def _generate(self, n, seconds, cond, temperature, generator, progress):
        vocoders = set(cond["vocoder"])
        if len(vocoders) != 1:
            raise ParameterError(f"one vocoder per batch please; got {', '.join(sorted(vocoders))}")
        mel = self(cond, self.n_frames_for(max(1, int(round(seconds * self.sample_rate)))), seconds)
        note = {k: cond[k] for k in ("pitch", "instrument", "velocity")}
        gen = make_generator(generator)
        audio = self.vocode(mel, vocoders.pop(), cond=note, generator=gen)
        n_samples = max(1, int(round(seconds * self.sample_rate)))
        samples = audio.resample(self.sample_rate).samples if audio.sample_rate != self.sample_rate else audio.samples
        if samples.shape[-1] < n_samples:
            samples = F.pad(samples, (0, n_samples - samples.shape[-1]))
        return samples[..., :n_samples]

    def encode(self, audio: Audio, cond: dict | None = None) -> Encoding:
        """The log-mel frames of a clip: what this model predicts, and what a vocoder inverts."""
        x = self.check_audio_input(audio)[:, 0]
        return Encoding("mel", {"mel": self.mel_of(x)}, self.sample_rate, meta={"n_samples": x.shape[-1]})

    def decode(self, encoding: Encoding, vocoder: str | None = None, generator=0) -> Audio:
        """Render mel frames with a vocoder (the config's by default)."""
        audio = self.vocode(encoding.data["mel"].to(self.device), vocoder, generator=generator)
        n = encoding.meta.get("n_samples")
        return Audio(audio.samples[..., :n], audio.sample_rate) if n else audio

    # ---- training ----------------------------------------------------------------------------------------
    def training_step(self, batch, generator=None) -> dict:
        """L1 between predicted and true log-mel frames of whole notes."""
        samples, cond = batch
        x = samples.to(self.device)[:, 0]
        target = self.mel_of(x)  # (batch, n_mels, frames)
        seconds = x.shape[-1] / self.sample_rate
        pred = self(cond, target.shape[-1], seconds)
        loss = (pred - target).abs().mean()
        return {"loss": loss}

    # ---- figure -------------------------------------------------------------------------------------------
    def visualise(self, audio: Audio | None = None, cond: dict | None = None):
        """Predicted log-mel frames, the vocoded result's spectrogram and (given ``audio``) the real frames."""
        from ..viz import new_figure, spectrogram

        seconds = self.config.note_seconds
        checked = self.check_cond(cond, 1)
        mel = self.predict_mel(1, seconds=seconds, cond=cond)
        rows = 3 if audio is not None else 2
        fig, axes = new_figure(rows, 1, width=8, row_height=2.3)
        extent = [0, seconds, 0, self.config.n_mels]
        im = axes[0, 0].imshow(mel[0].cpu().numpy(), origin="lower", aspect="auto", extent=extent, cmap="magma",
                               vmin=-11.5, vmax=max(2.0, float(mel.max())))
        axes[0, 0].set_ylabel("mel band")
        axes[0, 0].set_title(f"predicted log-mel: {checked['instrument'][0]}, MIDI {checked['pitch'][0]}, "
                             f"{mel.shape[-1]} frames for {seconds:g} s")
        fig.colorbar(im, ax=axes[0, 0], label="log magnitude")
        voiced = self.vocode(mel, checked["vocoder"][0], generator=0)
        spectrogram(voiced, ax=axes[1, 0], title=f"vocoded by {checked['vocoder'][0]}")
        if audio is not None:
            real = self.mel_of(self.check_audio_input(audio)[:1, 0])
            im = axes[2, 0].imshow(real[0].cpu().numpy(), origin="lower", aspect="auto", cmap="magma",
                                   extent=[0, audio.seconds, 0, self.config.n_mels], vmin=-11.5)
            axes[2, 0].set_title("log-mel of the clip")
            fig.colorbar(im, ax=axes[2, 0], label="log magnitude")
        return fig
