"""MelGAN (Kumar et al. 2019): a feed-forward vocoder from log-mel frames to samples, trained adversarially.

No likelihood and no autoregression: one pass of convolutions turns ``frames`` mel frames
into ``frames * hop_length`` samples::

    log-mel (n_mels, frames) [+ a few noise channels]
      --conv k7--> (channels, frames)
      --[lrelu, transposed conv (stride r), residual stack dilations 1, 3, 9] x len(ratios)-->
         (channels / 2**k, frames * prod(ratios))      prod(ratios) == hop_length
      --lrelu, conv k7, tanh--> samples (1, frames * hop_length)

Every convolution is weight-normalised. Three discriminators judge the waveform at
successively average-pooled scales (raw, /2, /4); the generator is trained with the hinge
loss plus feature matching (L1 between the discriminators' activations on real and fake,
weight 10). GAN-TTS's idea is an option: random-window discriminators that judge random
windows of several sizes, unconditionally and conditioned on the window's mel frames.

``melgan`` trains as the paper does. Departures, all switches in the config, make
``melgan+source`` (:class:`MelGANWithSource`), which learns in minutes on a CPU rather than days
on a GPU: ``mel_loss_weight`` adds HiFi-GAN's L1 between
log-mel frames of real and generated audio and ``stft_loss_weight`` Parallel WaveGAN's
multi-resolution STFT loss; ``adversarial_start`` lets the generator learn from those
reconstruction losses alone for that many steps before the discriminators join (Parallel
WaveGAN's delay); and ``n_noise`` noise channels ride along with the mel frames (MelGAN found
noise unneeded; here it makes the seed audible, so ``generate`` samples rather than only maps).

The hop periodicity problem and the source. The generator is a stack of convolutions that turns
every frame into ``hop_length`` samples the same way, so for a steady note, whose mel frames are
all alike, it plays the same ``hop_length``-sample cycle again and again: the note comes out at a
multiple of the frame rate (``sample_rate / hop_length`` = 62.5 Hz here) with a buzz, unless the
net reads the phase from the tiny differences between frames, which takes far more training
than a CPU gives (:func:`workbench.metrics.hop_periodicity` measures it). Speech, MelGAN's home,
rarely holds a pitch still; music does. With ``source_harmonics`` (``melgan+source``) the
generator also hears, at sample rate, sines and cosines of the first harmonics of an f0 curve,
their phase running freely (the source of neural source-filter models, as NSF-HiFiGAN does for
singing): the phase comes from the source and the mel shapes it. The f0 is the ``f0_hz`` frames
if given, the note's pitch for a dataset note, or else pYIN's estimate on the Griffin-Lim
inversion of the mel frames (slow but needs nothing else).

``generate(cond={"mel": frames})`` vocodes frames; without ``mel`` it vocodes the mel frames
of the dataset note named by pitch / instrument / velocity. ``encode`` = log-mel,
``decode`` = vocoding.

Notebook: notebooks/07_adversarial.ipynb
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..audio import Audio
from ..dsp.spectral import make_generator
from ..dsp.synth import midi_to_hz
from ..errors import ParameterError
from ..layers import (
    MultiScaleDiscriminator,
    RandomWindowDiscriminator,
    ResidualStack,
    random_window_starts,
    wn_conv1d,
    wn_conv_transpose1d,
)
from ..losses import feature_matching_loss, hinge_d_loss, hinge_g_loss, multi_scale_spectral_loss
from ._note import OSCILLATOR_SOURCE, note_specs
from .base import CondSpec, Encoding, GenerativeModel, NoteDataConfig
from .capabilities import Vocoder
from .vocoder import f0_frames, f0_source


@dataclass(frozen=True)
class MelGANConfig(NoteDataConfig):
    n_fft: int = 1024
    hop_length: int = 256
    n_mels: int = 80
    ratios: tuple = (8, 8, 2, 2)  # upsampling per stage; product == hop_length
    channels: int = 128  # after the first conv; halved at each stage
    dilations: tuple = (1, 3, 9)
    n_noise: int = 4  # noise channels next to the mel frames (0: none)
    source_harmonics: int = 0  # > 0: the last stage hears sin/cos of an f0 curve's first harmonics
    # discriminators
    n_scales: int = 3
    disc_channels: int = 16
    disc_layers: int = 4
    disc_max_channels: int = 256
    window_sizes: tuple = ()  # GAN-TTS random windows, in hops (e.g. (4, 8, 16)); () = off
    window_channels: int = 64
    # losses and training
    feature_weight: float = 10.0
    mel_loss_weight: float = 0.0
    stft_loss_weight: float = 0.0
    stft_fft_sizes: tuple = (1024, 512, 256, 128)
    adversarial_start: int = 0  # generator steps on the reconstruction losses alone before the GAN game
    segment_frames: int = 32  # training crops: this many frames and frames * hop samples
    learning_rate: float = 1e-4
    betas: tuple = (0.5, 0.9)


PRESETS = {
    "tiny": dict(n_fft=256, hop_length=64, n_mels=40, ratios=(4, 4, 4), channels=16, n_noise=0,
                 disc_channels=4, disc_layers=2, disc_max_channels=16, segment_frames=8,
                 instruments=("piano", "flute"), pitch_range=(60, 62), velocities=(100,), note_seconds=0.25,
                 batch_size=2),
    # the paper's training: discriminators from the first step, hinge loss plus feature matching,
    # no reconstruction loss, no noise input, Adam(1e-4, 0.5, 0.9); smaller than the paper's
    "small": dict(channels=96, n_noise=0, disc_channels=16, disc_layers=3, disc_max_channels=128,
                  segment_frames=16),
}

#: ``melgan+source``: the oscillator source, plus this workbench's departures for learning in
#: minutes on a CPU (noise channels, GAN-TTS windows, HiFi-GAN's mel loss, Parallel WaveGAN's
#: STFT loss and delayed discriminators).
AIDED_PRESETS = {
    "tiny": {**PRESETS["tiny"], "n_noise": 2, "window_sizes": (2, 4), "window_channels": 8, "mel_loss_weight": 1.0,
             "source_harmonics": 2},
    "small": {**PRESETS["small"], "n_noise": 4, "window_sizes": (4, 8, 16), "window_channels": 32,
              "mel_loss_weight": 10.0, "stft_loss_weight": 1.0, "adversarial_start": 2000, "learning_rate": 3e-4,
              "betas": (0.8, 0.99), "source_harmonics": 8},
}


class MelGANGenerator(nn.Module):
    """Mel frames (plus noise channels) to samples: ``(batch, n_mels + n_noise, frames)`` -> ``(batch, 1, frames * hop)``."""

    def __init__(self, c: MelGANConfig):
        super().__init__()
        ch = c.channels
        layers = [wn_conv1d(c.n_mels + c.n_noise, ch, 7, padding=3)]
        for r in c.ratios:
            # kernel 2r, stride r: each frame becomes r steps; padding keeps the length exactly x r
            layers += [nn.LeakyReLU(0.2),
                       wn_conv_transpose1d(ch, ch // 2, 2 * r, stride=r, padding=r // 2 + r % 2, output_padding=r % 2),
                       ResidualStack(ch // 2, c.dilations)]
            ch //= 2
        layers += [nn.LeakyReLU(0.2), wn_conv1d(ch, 1, 7, padding=3), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.source_channels = 2 * c.source_harmonics
        self.inject_at = 3 * len(c.ratios)  # the last residual stack: the first layer at sample rate
        if self.source_channels:
            # each channel adds a mix of the source, scaled by a gate the upsampled mel sets
            self.source_mix = wn_conv1d(self.source_channels, ch, 1)
            self.source_gate = wn_conv1d(ch, ch, 1)

    def forward(self, frames: torch.Tensor, source: torch.Tensor | None = None) -> torch.Tensor:
        """``frames`` ``(batch, n_mels + n_noise, frames)``; ``source`` ``(batch, 2 * harmonics, frames * hop)``."""
        if not self.source_channels:
            return self.net(frames)
        h = frames
        for i, layer in enumerate(self.net):
            if i == self.inject_at:
                if source is None or source.shape[1] != self.source_channels or source.shape[-1] != h.shape[-1]:
                    got = None if source is None else tuple(source.shape)
                    raise ParameterError(f"the generator takes a source (batch, {self.source_channels}, "
                                         f"{h.shape[-1]}); got {got}")
                h = h + self.source_mix(source.to(h.dtype)) * torch.sigmoid(self.source_gate(h))
            h = layer(h)
        return h


class MelGAN(Vocoder, GenerativeModel):
    """Mel -> waveform vocoder: transposed-conv upsampling, residual stacks, multi-scale discriminators."""

    name = "melgan"
    family = "adversarial"
    likelihood = "none"
    Config = MelGANConfig
    PRESETS = PRESETS
    aid_fields = ("source_harmonics",)
    notebook = "notebooks/07_adversarial.ipynb"

    def __init__(self, config: MelGANConfig):
        super().__init__(config)
        c = config
        if math.prod(c.ratios) != c.hop_length:
            raise ParameterError(f"ratios={c.ratios} multiply to {math.prod(c.ratios)}, not hop_length={c.hop_length}")
        if c.channels // 2 ** len(c.ratios) < 1:
            raise ParameterError(f"channels={c.channels} is too few for {len(c.ratios)} halvings")
        self.generator = MelGANGenerator(c)
        self.discriminator = MultiScaleDiscriminator(c.n_scales, c.disc_channels, c.disc_layers, c.disc_max_channels)
        self.window_discriminators = nn.ModuleList()
        for _ in c.window_sizes:
            self.window_discriminators.append(nn.ModuleList([
                RandomWindowDiscriminator(c.hop_length, None, c.window_channels),  # unconditional
                RandomWindowDiscriminator(c.hop_length, c.n_mels, c.window_channels)]))  # conditional
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.long))  # generator steps taken
        self._helper = None  # a Griffin-Lim model in our convention: renders dataset notes

    @property
    def conditioning(self) -> tuple[CondSpec, ...]:
        c = self.config
        return (
            CondSpec("mel", "frames", None, unit="log-mel",
                     help=f"({c.n_mels}, frames) log-mel at n_fft {c.n_fft}, hop {c.hop_length}: the frames to vocode"),
            *([CondSpec("f0_hz", "frames", None, unit="Hz",
                        help="(frames,) f0 of the source on the mel frames; without it: the dataset note's "
                             "pitch, or pYIN on the Griffin-Lim inversion of the mel")]
              if c.source_harmonics else []),
            *note_specs(c, pitch="without mel frames: vocode this dataset note's frames",
                        instrument="without mel frames: the dataset note's instrument",
                        velocity="without mel frames: how hard the dataset note is struck"),
        )

    @property
    def stochastic(self) -> bool:
        """Only the noise channels (``n_noise``, not in the paper) make a seed matter."""
        return self.config.n_noise > 0

    @property
    def uses_temperature(self) -> bool:  # the temperature scales those noise channels
        return self.config.n_noise > 0

    # ---- features ----------------------------------------------------------------------------------
    def griffin_lim(self):
        """Griffin-Lim in this vocoder's mel convention (the baseline; also renders dataset notes)."""
        if self._helper is None:
            from . import create_model

            c = self.config
            self._helper = create_model("griffinlim", "small", sample_rate=c.sample_rate, n_fft=c.n_fft,
                                        hop_length=c.hop_length, n_mels=c.n_mels, instruments=c.instruments,
                                        pitch_range=c.pitch_range, velocities=c.velocities,
                                        data_source=c.data_source, note_seconds=c.note_seconds)
        return self._helper

    def source(self, f0: torch.Tensor, n_frames: int) -> torch.Tensor | None:
        """The generator's source ``(batch, 2 * harmonics, n_frames * hop)`` for f0 frames ``(batch, n_frames)``."""
        c = self.config
        if not c.source_harmonics:
            return None
        f0 = torch.as_tensor(f0, dtype=torch.float32) if f0 is not None else None
        batch = f0.shape[0] if f0 is not None and f0.dim() == 2 else 1
        return f0_source(f0, batch, n_frames, n_frames * c.hop_length, c, self.device)

    # ---- the generator ---------------------------------------------------------------------------------
    def vocode(self, mel: torch.Tensor, generator=None, temperature: float = 1.0,
               f0: torch.Tensor | None = None) -> torch.Tensor:
        """Log-mel ``(batch, n_mels, frames)`` -> samples ``(batch, 1, frames * hop_length)``.

        With a source, ``f0`` ``(batch, frames)`` in Hz sets it (estimated from the mel if None).
        """
        c = self.config
        mel = mel.to(self.device).float()
        source = None
        if c.source_harmonics:
            f0 = f0_frames(self.f0_of_mel(mel) if f0 is None else f0, mel.shape[0], mel.shape[-1], self.device)
            source = self.source(f0, mel.shape[-1])
        if c.n_noise:
            noise = torch.randn(mel.shape[0], c.n_noise, mel.shape[-1], generator=generator).to(mel.device)
            mel = torch.cat([mel, temperature * noise], dim=1)  # (batch, n_mels + n_noise, frames)
        return self.generator(mel, source)

    def _generate(self, n, seconds, cond, temperature, generator, progress):
        c = self.config
        mel = cond.get("mel")
        if mel is None:
            # the dataset note's frames (what note2mel would predict, taken from the real note)
            helper = self.griffin_lim()
            length = max(1, int(round(seconds * c.sample_rate)))
            render = max(seconds, 1.5 * c.n_fft / c.sample_rate)
            notes = torch.stack([helper.render_note(p, i, v, render)[:max(length, c.n_fft)]
                                 for p, i, v in zip(cond["pitch"], cond["instrument"], cond["velocity"])])
            mel = self.mel_of(notes)
            f0 = cond.get("f0_hz")
            if f0 is None and c.source_harmonics:  # the dataset note's pitch
                f0 = midi_to_hz(torch.as_tensor(cond["pitch"], dtype=torch.float32))[:, None].expand(-1, mel.shape[-1])
        else:
            f0 = cond.get("f0_hz")
            mel = mel[None] if mel.dim() == 2 else mel
            if mel.dim() != 3 or mel.shape[0] not in (1, n) or mel.shape[1] != c.n_mels:
                raise ParameterError(f"mel has shape {tuple(mel.shape)}; expected ({c.n_mels}, frames) or "
                                     f"({n}, {c.n_mels}, frames); make it with MelGAN.mel_of")
            mel = mel.expand(n, -1, -1)
            length = (mel.shape[-1] - 1) * c.hop_length
        if f0 is not None:
            f0 = f0_frames(f0, n, mel.shape[-1], self.device)
        out = self.vocode(mel, make_generator(generator), temperature, f0)
        return out[..., :length]

    def encode(self, audio: Audio, cond: dict | None = None) -> Encoding:
        """The log-mel frames (what the vocoder needs; phase and fine detail are dropped)."""
        x = self.check_audio_input(audio)[:, 0]
        data = {"mel": self.mel_of(x)}
        if self.config.source_harmonics:  # the source's f0, measured on the clip itself
            data["f0_hz"] = self.estimate_f0(x)
        return Encoding("mel", data, self.sample_rate,
                        meta={"n_samples": x.shape[-1], "hop_length": self.config.hop_length})

    def decode(self, encoding: Encoding, generator=None) -> Audio:
        """Vocode the frames (the same seed gives the same samples)."""
        mel = encoding.data["mel"]
        with torch.no_grad():
            y = self.vocode(mel, make_generator(0 if generator is None else generator), f0=encoding.data.get("f0_hz"))
        n = encoding.meta.get("n_samples")
        return Audio(y[..., :n].clamp(-1, 1).cpu(), self.sample_rate)

    # ---- training ----------------------------------------------------------------------------------------
    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        c = self.config
        d_params = list(self.discriminator.parameters()) + list(self.window_discriminators.parameters())
        return [torch.optim.Adam(self.generator.parameters(), lr=c.learning_rate, betas=tuple(c.betas)),
                torch.optim.Adam(d_params, lr=c.learning_rate, betas=tuple(c.betas))]

    def _crop(self, samples: torch.Tensor, generator=None):
        """Random aligned crops: mel ``(batch, n_mels, segment_frames)`` and samples ``(batch, 1, segment_frames * hop)``."""
        c = self.config
        x = samples.to(self.device)[:, 0]
        mel = self.mel_of(x)  # (batch, n_mels, time // hop + 1)
        frames = min(c.segment_frames, x.shape[-1] // c.hop_length)
        start = int(random_window_starts(x.shape[-1] // c.hop_length, frames, 1, generator)[0])
        # frame j is centred on sample j * hop; it drives samples [j * hop, (j + 1) * hop)
        seg = x[:, start * c.hop_length:(start + frames) * c.hop_length]
        return mel[..., start:start + frames], seg[:, None]

    def _windows(self, real, fake, mel, generator=None):
        """Scores of the random-window discriminators on the same random windows of real and fake."""
        c = self.config
        real_scores, fake_scores = [], []
        frames = mel.shape[-1]
        for size, (uncond, cond) in zip(c.window_sizes, self.window_discriminators):
            size = min(size, frames)
            j = int(random_window_starts(frames, size, 1, generator)[0])
            sl = slice(j * c.hop_length, (j + size) * c.hop_length)
            m = mel[..., j:j + size]
            real_scores += [uncond(real[..., sl])[-1], cond(real[..., sl], m)[-1]]
            fake_scores += [uncond(fake[..., sl])[-1], cond(fake[..., sl], m)[-1]]
        return real_scores, fake_scores

    def _losses(self, batch, generator=None):
        """Aligned crops of mel frames and samples, and the generator's output for the frames
        (with a source: at the note's labelled pitch)."""
        mel, real = self._crop(batch[0], generator)
        f0 = None
        if self.config.source_harmonics:
            f0 = midi_to_hz(torch.as_tensor(batch[1]["pitch"], dtype=torch.float32))[:, None].expand(-1, mel.shape[-1])
        return mel, real, self.vocode(mel, generator, f0=f0)

    def discriminator_loss(self, mel, real, fake, generator=None) -> torch.Tensor:
        """Hinge loss of every discriminator (scales, then random windows) on real vs generated crops."""
        fake = fake.detach()
        d_real, d_fake = self.discriminator(real), self.discriminator(fake)
        loss = hinge_d_loss([f[-1] for f in d_real], [f[-1] for f in d_fake])
        if self.config.window_sizes:
            loss = loss + hinge_d_loss(*self._windows(real, fake, mel, generator))
        return loss

    @property
    def adversarial(self) -> bool:
        """Whether the discriminators have joined (after ``adversarial_start`` generator steps)."""
        return int(self.steps_done) >= self.config.adversarial_start

    def generator_loss(self, mel, real, fake, generator=None, adversarial: bool = True) -> dict:
        """Hinge loss against the discriminators + feature matching (+ reconstruction losses where configured)."""
        c = self.config
        logs = {"mel_error": (self.mel_of(fake[:, 0]) - self.mel_of(real[:, 0])).abs().mean()}
        loss = c.mel_loss_weight * logs["mel_error"]
        if c.stft_loss_weight:
            logs["stft_loss"] = multi_scale_spectral_loss(real[:, 0], fake[:, 0], tuple(c.stft_fft_sizes))
            loss = loss + c.stft_loss_weight * logs["stft_loss"]
        if not adversarial:  # the same log columns in every phase (NaN: not computed yet)
            logs.update(g_adv=torch.tensor(float("nan")), feature_matching=torch.tensor(float("nan")))
        else:
            d_real, d_fake = self.discriminator(real), self.discriminator(fake)
            adv = hinge_g_loss([f[-1] for f in d_fake])
            if c.window_sizes:
                adv = adv + hinge_g_loss(self._windows(real, fake, mel, generator)[1])
            logs["g_adv"] = adv
            logs["feature_matching"] = feature_matching_loss(d_real, d_fake)
            loss = loss + adv + c.feature_weight * logs["feature_matching"]
        return {"loss": loss, **logs}

    def training_step(self, batch, generator=None) -> dict:
        """Both losses on one batch without updating anything (what evaluation reports)."""
        mel, real, fake = self._losses(batch, generator)
        logs = self.generator_loss(mel, real, fake, generator)
        logs["d_loss"] = self.discriminator_loss(mel, real, fake, generator)
        return logs

    def train_step(self, batch, optimizers, *, generator=None, clip: float | None = 1.0, sync=None) -> dict:
        """1. a discriminator step on real vs generated crops, 2. a generator step against it.

        Before ``adversarial_start`` generator steps, only step 2 runs, on the reconstruction losses.
        """
        opt_g, opt_d = optimizers
        d_params = [p for group in opt_d.param_groups for p in group["params"]]
        mel, real, fake = self._losses(batch, generator)
        adversarial = self.adversarial
        d_loss = None
        if adversarial:
            # 1. the discriminators learn to tell real crops from generated ones (hinge)
            opt_d.zero_grad(set_to_none=True)
            d_loss = self.discriminator_loss(mel, real, fake, generator)
            d_loss.backward()
            if sync is not None:
                sync(d_params)
            if clip:
                torch.nn.utils.clip_grad_norm_(d_params, 10 * clip)
            opt_d.step()
        # 2. the generator learns to fool them and to match their features (and the mel frames)
        opt_g.zero_grad(set_to_none=True)
        for p in d_params:
            p.requires_grad_(False)
        logs = self.generator_loss(mel, real, fake, generator, adversarial)
        logs["loss"].backward()
        for p in d_params:
            p.requires_grad_(True)
        if sync is not None:
            sync(self.generator.parameters())
        if clip:
            logs["grad_norm"] = torch.nn.utils.clip_grad_norm_(self.generator.parameters(), 10 * clip)
        opt_g.step()
        self.steps_done += 1
        logs["d_loss"] = d_loss if d_loss is not None else torch.tensor(float("nan"))
        return {k: float(v.detach()) if isinstance(v, torch.Tensor) else float(v) for k, v in logs.items()}

    # ---- figure ---------------------------------------------------------------------------------------------
    def visualise(self, audio: Audio | None = None):
        """The mel frames in, the waveform out, and what each discriminator scale hears."""
        from ..viz import new_figure, spectrogram

        c = self.config
        f0 = None
        if audio is None:
            mel = self.example_frames(seconds=min(0.5, c.note_seconds))[None]
            if c.source_harmonics:
                f0 = torch.full((1, mel.shape[-1]), float(midi_to_hz(sum(c.pitch_range) // 2)))
        else:
            x = self.check_audio_input(audio)[:1, 0]
            mel = self.mel_of(x)
            f0 = self.estimate_f0(x) if c.source_harmonics else None
        with torch.no_grad():
            y = self.vocode(mel, make_generator(0), f0=f0).clamp(-1, 1)
            scores = [f[-1][0, 0].cpu() for f in self.discriminator(y)]
        fig, axes = new_figure(3, 1, width=8, row_height=2.3)
        seconds = y.shape[-1] / c.sample_rate
        axes[0, 0].imshow(mel[0].cpu().numpy(), origin="lower", aspect="auto", cmap="magma",
                          extent=[0, seconds, 0, c.n_mels])
        axes[0, 0].set_title(f"input: {mel.shape[-1]} log-mel frames x {c.n_mels} bands")
        axes[0, 0].set_ylabel("mel band")
        spectrogram(Audio(y[0].cpu(), c.sample_rate), ax=axes[1, 0],
                    title=f"output: {y.shape[-1]} samples = frames x hop {c.hop_length} "
                          f"(upsampling {' x '.join(map(str, c.ratios))})")
        ax = axes[2, 0]
        for i, s in enumerate(scores):
            ax.plot(torch.linspace(0, seconds, len(s)).numpy(), s.numpy(), marker=".",
                    label=f"scale {i}: audio pooled by {2 ** i} ({len(s)} scores)")
        ax.set_xlabel("time (s)")
        ax.set_ylabel("score")
        ax.set_title("the discriminators' view: one score per patch at each scale (hinge: > 1 means 'real')")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        return fig


class MelGANWithSource(MelGAN):
    """MelGAN plus an oscillator source (not in the paper) following the f0 of the frames, into its last stage."""

    name = "melgan+source"
    aid = OSCILLATOR_SOURCE
    PRESETS = AIDED_PRESETS
