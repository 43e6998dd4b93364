"""WaveGlow (Prenger et al. 2019): a normalising flow from Gaussian noise to waveform, given mel.

The waveform is squeezed into groups of ``n_group`` samples (channels); each flow step mixes
the channels with an invertible 1x1 convolution and transforms half of them with an affine
coupling layer whose scale and shift come from a non-causal WaveNet-like network that sees the
other half and the upsampled mel frames. Every ``n_early_every`` steps, ``n_early_size``
channels leave early as part of ``z``. Because every step is invertible with a cheap
log-determinant, the likelihood is exact (change of variables)::

    -log p(x) = sum z**2 / (2 sigma**2) + const - sum log s - time * sum log |det W|

Bits per sample are reported over 8-bit mu-law samples, like WaveNet's, so the two can be
compared on the same notes: the flow's density is carried to mu-law space by the change of
variables of the compander and integrated over each code's bin with uniform dequantisation
(training and ``log_prob`` alike), which bounds the discrete bits from above.

With ``source_harmonics`` (the ``small`` presets) the coupling networks also hear, at sample
rate, sines and cosines of the first harmonics of an f0 curve (the source of neural
source-filter models, as WaveNet, SampleRNN and MelGAN here use it). Without it a small flow
trained for minutes turns mel frames into noise with the right spectral envelope but no pitch:
nothing in the mel says where a period starts. In training the f0 is the note's pitch from the
onset; to vocode, the ``f0_hz`` frames if given, else pYIN on the clip (``log_prob``,
``encode``) or on the Griffin-Lim inversion of the mel (``generate`` with mel frames alone).
The source is a function of the conditioning, so the likelihood stays exact.

Pitch needs many notes per step: with few, the mean of a sample (temperature 0) holds the note
but stays a whisper under the noise. The ``small`` preset takes 32 notes a step and upsamples
the mel features linearly (``upsample``: ``"repeat"`` holds each frame for a hop, ``"learned"``
is the paper's transposed convolution, started as linear interpolation).

:class:`FlowVocoder` holds what WaveGlow and FloWaveNet share (mel conditioning, dequantised
likelihood, sampling); the flow steps themselves live in :mod:`workbench.layers`.

Notebook: notebooks/06_flows_and_latents.ipynb
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..audio import Audio
from ..dsp.quantise import mu_law_encode, mu_law_expand
from ..dsp.synth import midi_to_hz
from ..errors import ParameterError
from ..layers import AffineCoupling, FrameUpsampler, InvertibleConv1x1, squeeze, unsqueeze
from ._note import OSCILLATOR_SOURCE, note_specs
from .base import CondSpec, Encoding, GenerativeModel, NoteDataConfig
from .capabilities import Vocoder
from .vocoder import f0_frames, f0_source

MU = 255.0
BIN = 2.0 / MU  # width of one 8-bit mu-law code in companded units


@dataclass(frozen=True)
class WaveGlowConfig(NoteDataConfig):
    sample_rate: int = 8000
    n_mels: int = 40
    hop_length: int = 64
    n_group: int = 8  # samples squeezed into one column
    n_flows: int = 6
    n_early_every: int = 2
    n_early_size: int = 2
    hidden: int = 32  # coupling WaveNet width
    wn_layers: int = 4
    kernel_size: int = 3
    cond_channels: int = 32  # mel features after a small frame-rate conv
    source_harmonics: int = 0  # > 0: the couplings also hear sin/cos of an f0 curve's first harmonics
    upsample: str = "repeat"  # mel features to sample rate: "repeat" | "linear" | "learned" (FrameUpsampler)
    sigma: float = 1.0  # prior std of z in training
    # data (the notes whose mel is vocoded) and training
    crop_samples: int = 2048
    learning_rate: float = 1e-3


WAVEGLOW_PRESETS = {
    "tiny": dict(n_mels=16, n_group=4, n_flows=4, n_early_size=1, hidden=8, wn_layers=2, cond_channels=8,
                 instruments=("piano", "flute"), pitch_range=(60, 64), velocities=(100,), note_seconds=0.25,
                 crop_samples=512),
    # linear upsampling, and 32 notes a step: more notes per step is what lets a small flow hold a pitch
    "small": dict(upsample="linear", batch_size=32),
}

#: ``waveglow+source``: the same presets with the aid switched on.
AIDED_PRESETS = {"tiny": {**WAVEGLOW_PRESETS["tiny"], "source_harmonics": 2},
                 "small": {**WAVEGLOW_PRESETS["small"], "source_harmonics": 4}}


class FlowVocoder(Vocoder, GenerativeModel):
    """What the two flow vocoders share: mel in, exact (dequantised) likelihood, z out.

    Subclasses build ``self.cond_net`` (mel frames -> ``cond_channels`` features) and implement
    ``flow(x, c) -> (z (batch, time), logdet (batch,))`` and ``inverse(z, c) -> x (batch, 1, time)``
    with ``c`` the sample-rate conditioning ``(batch, cond_channels, time)``.
    """

    family = "flow"
    likelihood = "exact"
    notebook = "notebooks/06_flows_and_latents.ipynb"
    #: Trained with sigma = 1, sampled colder: the WaveGlow authors' own inference runs with ``-s 0.6``.
    default_temperature = 0.6

    #: samples must be a multiple of this (the total squeeze factor)
    multiple: int = 1

    def _build_cond_net(self):
        c = self.config
        self.cond_net = nn.Sequential(nn.Conv1d(c.n_mels, c.cond_channels, 3, padding=1), nn.Tanh(),
                                      nn.Conv1d(c.cond_channels, c.cond_channels, 3, padding=1))
        self.upsampler = FrameUpsampler(c.cond_channels, c.hop_length, c.upsample)

    @property
    def cond_width(self) -> int:
        """Channels of the sample-rate conditioning: mel features, then the source's sines and cosines."""
        return self.config.cond_channels + 2 * self.config.source_harmonics

    @property
    def conditioning(self):
        c = self.config
        specs = [*note_specs(c),
                 CondSpec("mel", "frames", None, unit="log-mel",
                          help=f"({c.n_mels}, frames) log-mel at hop {c.hop_length}: the vocoder's input "
                               "(without it, a plain harmonic tone at the chosen pitch is vocoded)")]
        if c.source_harmonics:
            specs.append(CondSpec("f0_hz", "frames", None, unit="Hz",
                                  help="(frames,) f0 of the source on the mel frames; without it: the pitch "
                                       "control, or pYIN on the clip or on the Griffin-Lim inversion of the mel"))
        return tuple(specs)

    # ---- the source's f0 -------------------------------------------------------------------------------
    def _pitch_f0(self, pitch, n_frames: int) -> torch.Tensor:
        """A steady f0 ``(batch, n_frames)`` at each item's pitch (MIDI)."""
        return midi_to_hz(torch.as_tensor(pitch, dtype=torch.float32, device=self.device))[:, None].expand(-1, n_frames)

    def f0_for(self, cond: dict | None, checked: dict, n_frames: int, batch: int, x: torch.Tensor | None = None,
               mel: torch.Tensor | None = None) -> torch.Tensor | None:
        """The source's f0 ``(batch, n_frames)``, or None without a source: ``f0_hz`` if given, else the
        pitch if given, else pYIN on the clip ``x`` ``(batch, time)``, else on the mel's Griffin-Lim inversion."""
        if not self.config.source_harmonics:
            return None
        if checked.get("f0_hz") is not None:
            return f0_frames(checked["f0_hz"], batch, n_frames, self.device)
        if cond and cond.get("pitch") is not None:
            return self._pitch_f0(checked["pitch"], n_frames)
        if x is not None:
            return self.estimate_f0(x)[..., :n_frames]
        return self.f0_of_mel(mel).expand(batch, -1)

    # ---- mel --------------------------------------------------------------------------------------------
    @property
    def mel_n_fft(self) -> int:
        return 4 * self.config.hop_length

    def cond_features(self, mel: torch.Tensor, n_samples: int, batch: int, f0: torch.Tensor | None = None) -> torch.Tensor:
        """Mel ``(n_mels, frames)`` or ``(batch, n_mels, frames)`` (and with a source its f0 ``(batch, frames)``
        in Hz) -> ``(batch, cond_width, n_samples)``."""
        mel = mel.to(self.device, self.cond_net[0].weight.dtype)
        mel = mel[None] if mel.dim() == 2 else mel
        if mel.shape[-2] != self.config.n_mels:
            raise ParameterError(f"mel has {mel.shape[-2]} bands; this vocoder takes n_mels={self.config.n_mels}; "
                                 "make it with the model's mel_of")
        if mel.shape[0] not in (1, batch):
            raise ParameterError(f"mel has batch {mel.shape[0]}; expected 1 or {batch}")
        feats = self.upsampler(self.cond_net(mel), n_samples).expand(batch, -1, -1)
        c = self.config
        if not c.source_harmonics:
            return feats
        src = f0_source(f0, batch, mel.shape[-1], n_samples, c, self.device)
        return torch.cat([feats, src.to(feats)], dim=1)

    def features_of(self, x: torch.Tensor, cond: dict | None = None) -> torch.Tensor:
        """The conditioning for a clip ``(batch, 1, time)``: its own mel (unless ``cond`` has one) and the source."""
        checked = self.check_cond(cond, x.shape[0])
        mel = checked.get("mel")
        mel = self.mel_of(x[:, 0]) if mel is None else mel
        f0 = self.f0_for(cond, checked, mel.shape[-1], x.shape[0], x=x[:, 0])
        return self.cond_features(mel, x.shape[-1], x.shape[0], f0)

    def _trim(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-1] - x.shape[-1] % self.multiple
        if n < self.multiple:
            raise ParameterError(f"the clip has {x.shape[-1]} samples; this flow needs at least {self.multiple}")
        return x[..., :n]

    # ---- likelihood -----------------------------------------------------------------------------------------
    def log_density(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """log p(x) in nats per item, ``x`` ``(batch, 1, time)`` (change of variables)."""
        z, logdet = self.flow(x, c)
        sigma = self.config.sigma
        log_pz = (-0.5 * (z / sigma) ** 2 - math.log(sigma) - 0.5 * math.log(2 * math.pi)).sum(-1)
        return log_pz + logdet

    def dequantised_bits(self, x: torch.Tensor, c: torch.Tensor, generator=None) -> torch.Tensor:
        """Bits per 8-bit mu-law sample, ``(batch,)``: the 8-bit code of each sample, a uniform point
        inside its bin in companded units ``y``, back to ``x``; ``-log2 (p_x(x) |dx/dy| * bin)``."""
        codes = mu_law_encode(x, 8)
        u = torch.rand(codes.shape, generator=generator).to(x.device)
        y = (2 * codes.to(x.dtype) / MU - 1 + (u - 0.5) * BIN).clamp(-1, 1)  # (batch, 1, time)
        x_deq = mu_law_expand(y, MU)
        log_dxdy = y.abs() * math.log1p(MU) + math.log(math.log1p(MU) / MU)
        nats = self.log_density(x_deq, c) + log_dxdy.flatten(1).sum(-1) + x.shape[-1] * math.log(BIN)
        return -nats / x.shape[-1] / math.log(2)

    def log_prob(self, audio, cond=None) -> torch.Tensor:
        """Bits per sample over 8-bit mu-law samples (dequantised with a fixed seed: repeatable)."""
        x = self._trim(self.check_audio_input(audio))
        with torch.no_grad():
            return self.dequantised_bits(x, self.features_of(x, cond), torch.Generator().manual_seed(0))

    def training_step(self, batch, generator=None) -> dict:
        """Dequantised negative log-likelihood on a random crop, the mel taken from the whole note."""
        samples, cond = batch
        x = samples.to(self.device)
        mel = self.mel_of(x[:, 0])
        n = min(self.config.crop_samples, x.shape[-1])
        n -= n % self.multiple
        start = int(torch.randint(x.shape[-1] - n + 1, (), generator=generator))
        # the source runs from the onset at the note's pitch; the crop takes its stretch of it
        f0 = self._pitch_f0(cond["pitch"], mel.shape[-1]) if self.config.source_harmonics else None
        c = self.cond_features(mel, x.shape[-1], x.shape[0], f0)[..., start: start + n]
        bits = self.dequantised_bits(x[..., start: start + n], c, generator).mean()
        return {"loss": bits, "bits_per_sample": bits.detach()}

    # ---- sampling and encoding ----------------------------------------------------------------------------
    def _generate(self, n, seconds, cond, temperature, generator, progress):
        mel = cond.get("mel")
        if mel is None:
            mel = torch.stack([self.example_frames(seconds, p) for p in cond["pitch"]])
            f0 = cond.get("f0_hz")
            f0 = self._pitch_f0(cond["pitch"], mel.shape[-1]) if f0 is None and self.config.source_harmonics else f0
        else:
            f0 = self.f0_for({"f0_hz": cond.get("f0_hz")}, cond, mel.shape[-1], n, mel=mel)
        if f0 is not None:
            f0 = f0_frames(f0, n, mel.shape[-1], self.device)
        n_frames = mel.shape[-1]
        n_samples = max(self.multiple, (n_frames - 1) * self.config.hop_length)
        n_samples -= n_samples % self.multiple
        c = self.cond_features(mel, n_samples, n, f0)
        z = torch.randn(n, n_samples, generator=generator).to(self.device) * self.config.sigma * temperature
        return self.inverse(z, c)

    def encode(self, audio, cond=None) -> Encoding:
        """``z`` of the clip (what the flow maps it to): Gaussian if the model fits."""
        x = self._trim(self.check_audio_input(audio))
        with torch.no_grad():
            feats = self.features_of(x, cond)
            z, logdet = self.flow(x, feats)
        return Encoding("z", {"z": z, "logdet": logdet}, self.sample_rate,
                        meta={"features": feats, "n_samples": x.shape[-1]})

    def decode(self, encoding: Encoding) -> Audio:
        z = encoding.data["z"].to(self.device)
        with torch.no_grad():
            x = self.inverse(z, encoding.meta["features"].to(self.device))
        return Audio(x.clamp(-1, 1).cpu(), self.sample_rate)

    def flow_diagram(self) -> list[tuple[str, int]]:
        """(step name, channels it transforms) in order, for the figure."""
        raise NotImplementedError

    def visualise(self, audio=None):
        """The flow's steps (channels through each) and, for a clip, its z against N(0, sigma^2)."""
        from ..viz import new_figure

        fig, axes = new_figure(2, 1, width=8, row_height=2.6)
        steps = self.flow_diagram()
        ax = axes[0, 0]
        ax.bar(range(len(steps)), [ch for _, ch in steps], color=[_colour(s) for s, _ in steps])
        ax.set_xticks(range(len(steps)), [s for s, _ in steps], rotation=60, fontsize=7)
        ax.set_ylabel("channels")
        ax.set_title(f"{self.name}: x -> z through {len(steps)} invertible steps")
        ax = axes[1, 0]
        if audio is not None:
            z = self.encode(audio).data["z"].flatten().cpu().numpy()
            ax.hist(z, bins=80, density=True, alpha=0.7, label="z of the clip")
            grid = torch.linspace(-4, 4, 200) * self.config.sigma
            ax.plot(grid, torch.exp(-0.5 * (grid / self.config.sigma) ** 2) / (self.config.sigma * math.sqrt(2 * math.pi)),
                    label="N(0, sigma^2)")
            ax.legend()
            ax.set_title("a real clip in z-space")
        else:
            ax.text(0.5, 0.5, "pass a clip to see it in z-space", ha="center", va="center")
            ax.set_axis_off()
        return fig


def _colour(step: str) -> str:
    return {"squeeze": "C7", "1x1": "C1", "coupling": "C0", "actnorm": "C2", "swap": "C4", "split": "C3"}.get(
        step.split()[0], "C5")


class WaveGlow(FlowVocoder):
    """Squeeze, then (invertible 1x1 conv, affine coupling) x n_flows with early outputs."""

    name = "waveglow"
    Config = WaveGlowConfig
    PRESETS = WAVEGLOW_PRESETS
    aid_fields = ("source_harmonics",)

    def __init__(self, config: WaveGlowConfig):
        super().__init__(config)
        c = config
        if c.n_group < 2 or c.n_group - (c.n_flows - 1) // c.n_early_every * c.n_early_size < 2:
            raise ParameterError(f"n_group={c.n_group} leaves fewer than 2 channels after the early outputs; "
                                 "raise n_group or lower n_early_size")
        self.multiple = c.n_group
        self._build_cond_net()
        gen = torch.Generator().manual_seed(0)
        self.convs, self.couplings = nn.ModuleList(), nn.ModuleList()
        channels = c.n_group
        for k in range(c.n_flows):
            if k and k % c.n_early_every == 0:
                channels -= c.n_early_size
            self.convs.append(InvertibleConv1x1(channels, gen))
            self.couplings.append(AffineCoupling(channels, self.cond_width * c.n_group, c.hidden, c.wn_layers,
                                                 c.kernel_size))

    def flow(self, x, c):
        g = self.config.n_group
        h = squeeze(x, g)  # (batch, n_group, time / n_group)
        cs = squeeze(c, g)  # (batch, cond * n_group, time / n_group)
        zs, logdet = [], 0
        for k, (conv, coupling) in enumerate(zip(self.convs, self.couplings)):
            if k and k % self.config.n_early_every == 0:
                zs.append(h[:, : self.config.n_early_size])  # early output
                h = h[:, self.config.n_early_size:]
            h, ld_w = conv(h)
            h, ld_s = coupling(h, cs)
            logdet = logdet + ld_w + ld_s
        zs.append(h)
        z = unsqueeze(torch.cat(zs, dim=1), g)[:, 0]  # (batch, time): early outputs first
        return z, logdet

    def inverse(self, z, c):
        g, e = self.config.n_group, self.config.n_early_size
        cs = squeeze(c, g)
        zs = squeeze(z[:, None], g)  # (batch, n_group, time / n_group)
        n_early = sum(1 for k in range(1, self.config.n_flows) if k % self.config.n_early_every == 0)
        h = zs[:, n_early * e:]
        for k in reversed(range(self.config.n_flows)):
            h = self.couplings[k].reverse(h, cs)
            h = self.convs[k].reverse(h)
            if k and k % self.config.n_early_every == 0:
                n_early -= 1
                h = torch.cat([zs[:, n_early * e: (n_early + 1) * e], h], dim=1)
        return unsqueeze(h, g)  # (batch, 1, time)

    def flow_diagram(self):
        c = self.config
        steps, channels = [("squeeze", c.n_group)], c.n_group
        for k in range(c.n_flows):
            if k and k % c.n_early_every == 0:
                steps.append((f"split {k}", c.n_early_size))
                channels -= c.n_early_size
            steps += [(f"1x1 {k}", channels), (f"coupling {k}", channels // 2)]
        return steps


class WaveGlowWithSource(WaveGlow):
    """WaveGlow plus an oscillator source (not in the paper) in every coupling network's conditioning."""

    name = "waveglow+source"
    aid = OSCILLATOR_SOURCE
    PRESETS = AIDED_PRESETS
