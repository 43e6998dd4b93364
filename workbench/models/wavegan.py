"""WaveGAN (Donahue et al. 2019): a DCGAN made one-dimensional, generating the waveform directly.

The generator is DCGAN's stack of transposed convolutions stretched for audio: long kernels
(25) and stride 4, so each layer makes the signal four times longer::

    z ~ N(0, I) ++ one-hot(pitch) ++ one-hot(instrument)
      --linear--> (16 d, 16) --[relu, transposed conv k25 s4]--> (8 d, 64) -> ... -> (1, 16 * 4**n_layers), tanh

A fixed length: ``16 * 4**n_layers`` samples, whatever ``seconds`` asks (shorter requests
are trimmed). The critic mirrors it with strided convolutions (k25 s4, leaky ReLU) and
*phase shuffle*: between layers each item's activations shift by a random -2..2 steps, so the
critic cannot spot generated audio by the exact phase of the transposed convolutions'
periodic (checkerboard) artefacts. Conditioning reaches the critic by projection (the inner
product of a label embedding with its features). Trained as WGAN-GP: gradient penalty
weight 10, Adam lr 1e-4, beta1 0.5, ``n_critic`` critic steps per generator step.

With ``source_harmonics`` (the small preset; ours, not the paper's), the generator also gets the
*source* WaveNet and SampleRNN take here: sin/cos of the requested pitch's first harmonics at the
sample rate. Its last transposed convolution then draws, besides a free waveform, one amplitude
envelope per source channel, and the output is ``tanh(free + sum_k envelope_k * source_k)``; the
critic hears the source next to the waveform, so it can check the period against the request.

``encode`` is GAN inversion: the latent whose output is closest to a sound (multi-scale
spectral distance), found by optimisation, with the error left over.

Notebook: notebooks/07_adversarial.ipynb
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..audio import Audio
from ..errors import ParameterError
from ..layers import phase_shuffle
from ..losses import gradient_penalty, multi_scale_spectral_loss
from ._note import OSCILLATOR_SOURCE, harmonic_source, note_specs, phase_step
from .base import AdversarialModel, CondSpec, Encoding, NoteDataConfig


@dataclass(frozen=True)
class WaveGANConfig(NoteDataConfig):
    latent_size: int = 100
    model_size: int = 64  # d: channels are 16d, 8d, 4d, 2d, d
    n_layers: int = 5  # 16 * 4**5 = 16384 samples
    kernel_size: int = 25
    stride: int = 4
    shuffle_radius: int = 2
    gp_weight: float = 10.0
    n_critic: int = 5
    learning_rate: float = 1e-4
    betas: tuple = (0.5, 0.9)
    inversion_steps: int = 100
    inversion_fft_sizes: tuple = (1024, 256, 64)
    source_harmonics: int = 0  # > 0: harmonic source channels for the generator's output and the critic
    ema_decay: float = 0.0  # > 0: sample from a running average of the generator's weights
    # conditioning and data
    note_seconds: float = 1.024
    batch_size: int = 64


PRESETS = {
    "tiny": dict(latent_size=8, model_size=2, n_layers=3, n_critic=1, inversion_steps=3,
                 inversion_fft_sizes=(256, 64), instruments=("piano", "flute"), pitch_range=(60, 62),
                 velocities=(100,), note_seconds=0.25, batch_size=2,
                 ema_decay=0.9),
    # 4096 samples (0.256 s); d = 8
    "small": dict(latent_size=64, model_size=8, n_layers=4, n_critic=2, note_seconds=0.256, batch_size=16),  # ema_decay off: the shipped card's command still reproduces it
}

#: ``wavegan+source``: the same presets with the aid switched on.
AIDED_PRESETS = {"tiny": {**PRESETS["tiny"], "source_harmonics": 2},
                 "small": {**PRESETS["small"], "source_harmonics": 4}}


class WaveGAN(AdversarialModel):
    """1-D DCGAN on raw samples: transposed convs k25 s4, phase shuffle, WGAN-GP."""

    name = "wavegan"
    family = "adversarial"
    likelihood = "none"
    Config = WaveGANConfig
    PRESETS = PRESETS
    aid_fields = ("source_harmonics",)
    notebook = "notebooks/07_adversarial.ipynb"

    def __init__(self, config: WaveGANConfig):
        super().__init__(config)
        c = config
        if c.n_layers < 1 or c.model_size < 1:
            raise ParameterError(f"n_layers={c.n_layers} and model_size={c.model_size} must be >= 1")
        self.n_pitches = c.pitch_range[1] - c.pitch_range[0] + 1
        self.n_instruments = len(c.instruments)
        d, k, s = c.model_size, c.kernel_size, c.stride
        pad = (k - s + 1) // 2  # k25 s4: padding 11, output_padding 1 -> exactly 4x longer
        out_pad = s - (k - 2 * pad)  # length out = (L - 1) s - 2 pad + k + out_pad = L s
        channels = [d * 2 ** i for i in range(c.n_layers, 0, -1)] + [1]  # n_layers 4: 16d, 8d, 4d, 2d, 1
        n_src = 2 * c.source_harmonics
        self.g_input = nn.Linear(c.latent_size + self.n_pitches + self.n_instruments, 16 * channels[0])
        g_channels = channels[:-1] + [1 + n_src]  # with a source: the waveform and one envelope per channel
        self.g_layers = nn.ModuleList(
            nn.ConvTranspose1d(a, b, k, stride=s, padding=pad, output_padding=out_pad)
            for a, b in zip(g_channels[:-1], g_channels[1:]))
        rev = [1 + n_src] + channels[::-1][1:]  # the critic hears the source next to the waveform
        self.d_layers = nn.ModuleList(nn.Conv1d(a, b, k, stride=s, padding=pad) for a, b in zip(rev[:-1], rev[1:]))
        self.d_score = nn.Linear(16 * rev[-1], 1)
        self.d_pitch_embed = nn.Embedding(self.n_pitches, 16 * rev[-1])
        self.d_instrument_embed = nn.Embedding(self.n_instruments, 16 * rev[-1])
        self._channels = channels
        self.init_generator_average()

    @property
    def n_samples(self) -> int:
        return 16 * self.config.stride ** self.config.n_layers

    @property
    def max_seconds(self) -> float:
        return self.n_samples / self.sample_rate

    @property
    def conditioning(self) -> tuple[CondSpec, ...]:
        c = self.config
        return tuple(note_specs(c, pitch="one-hot appended to the latent",
                                instrument="one-hot appended to the latent",
                                velocity=None))

    # ---- networks ---------------------------------------------------------------------------------------
    def one_hots(self, pitch: torch.Tensor, inst: torch.Tensor) -> torch.Tensor:
        return torch.cat([F.one_hot(pitch, self.n_pitches), F.one_hot(inst, self.n_instruments)], dim=-1).float()

    def labels(self, cond: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Pitch index and instrument index tensors ``(batch,)`` from a checked or batch cond."""
        pitch = torch.as_tensor(cond["pitch"], device=self.device).long() - self.config.pitch_range[0]
        inst = cond["instrument"]
        inst = inst.to(self.device) if isinstance(inst, torch.Tensor) else self.cond_index("instrument", list(inst))
        return pitch, inst

    def source(self, pitch: torch.Tensor) -> torch.Tensor | None:
        """``(batch, 2 * harmonics, n_samples)`` harmonic source of each pitch index, or None."""
        c = self.config
        if not c.source_harmonics:
            return None
        omega = phase_step(pitch + c.pitch_range[0], c.sample_rate, self.device)
        positions = torch.arange(self.n_samples, device=self.device)
        return harmonic_source(omega, positions, c.source_harmonics).to(self.g_input.weight.dtype)

    def generator_forward(self, z: torch.Tensor, pitch: torch.Tensor, inst: torch.Tensor) -> torch.Tensor:
        """Latent ``(batch, latent)`` + labels -> samples ``(batch, 1, n_samples)``."""
        h = self.g_input(torch.cat([z, self.one_hots(pitch, inst)], dim=-1))
        h = h.view(z.shape[0], self._channels[0], 16)  # (batch, 16d, 16)
        for layer in self.g_layers:
            h = layer(F.relu(h))  # (batch, channels, 4x longer)
        src = self.source(pitch)
        if src is None:
            return torch.tanh(h)
        return torch.tanh(h[:, :1] + (h[:, 1:] * src).sum(1, keepdim=True))  # free part + enveloped source

    def critic(self, x: torch.Tensor, pitch: torch.Tensor, inst: torch.Tensor, generator=None) -> torch.Tensor:
        """Score ``(batch,)``: strided convs with phase shuffle, then a projection of the labels."""
        src = self.source(pitch)
        h = x if src is None else torch.cat([x, src], dim=1)
        for i, layer in enumerate(self.d_layers):
            h = F.leaky_relu(layer(h), 0.2)  # (batch, channels, 4x shorter)
            if i < len(self.d_layers) - 1:
                h = phase_shuffle(h, self.config.shuffle_radius if self.training else 0, generator)
        h = h.flatten(1)  # (batch, 16 * 16d)
        projection = (h * (self.d_pitch_embed(pitch) + self.d_instrument_embed(inst))).sum(-1)
        return self.d_score(h)[:, 0] + projection

    def _generate(self, n, seconds, cond, temperature, generator, progress):
        z = temperature * torch.randn(n, self.config.latent_size, generator=generator).to(self.device)
        x = self.generator_forward(z, *self.labels(cond))
        return x[..., : max(1, min(self.n_samples, int(round(seconds * self.sample_rate))))]

    # ---- GAN inversion -------------------------------------------------------------------------------------
    def invert(self, x: torch.Tensor, cond: dict | None = None, steps: int | None = None):
        """The latent whose output is closest (multi-scale spectral distance) to ``x`` ``(batch, time)``.

        Starts from z = 0 (the prior's mode) for every item and runs Adam; returns ``(z, error)``.
        """
        c = self.config
        pitch, inst = self.labels(self.check_cond(cond, x.shape[0]))
        target = F.pad(x, (0, max(0, self.n_samples - x.shape[-1])))[..., : self.n_samples].to(self.device)
        sizes = tuple(s for s in c.inversion_fft_sizes if s // 2 < self.n_samples)

        def errors(z):
            y = self.generator_forward(z, pitch, inst)[:, 0]
            return torch.stack([multi_scale_spectral_loss(t, e, sizes) for t, e in zip(target, y)])

        z = torch.zeros(x.shape[0], c.latent_size, device=self.device, requires_grad=True)
        opt = torch.optim.Adam([z], lr=0.05)
        for p in self.parameters():
            p.requires_grad_(False)
        try:
            with torch.enable_grad():
                for _ in range(c.inversion_steps if steps is None else steps):
                    opt.zero_grad()
                    errors(z).sum().backward()
                    opt.step()
        finally:
            for p in self.parameters():
                p.requires_grad_(True)
        with torch.no_grad():
            return z.detach(), errors(z)

    def encode(self, audio: Audio, cond: dict | None = None) -> Encoding:
        """GAN inversion: a latent (and the spectral error it leaves) for each clip."""
        x = self.check_audio_input(audio)[:, 0]
        with self.averaged_generator():  # the generator that generate() samples
            z, error = self.invert(x, cond)
        return Encoding("latent", {"z": z, "inversion_error": error}, self.sample_rate,
                        meta={"cond": cond, "n_samples": min(x.shape[-1], self.n_samples)})

    def decode(self, encoding: Encoding) -> Audio:
        """The generator's output for the inversion latent."""
        z = encoding.data["z"].to(self.device)
        pitch, inst = self.labels(self.check_cond(encoding.meta.get("cond"), z.shape[0]))
        with torch.no_grad(), self.averaged_generator():
            y = self.generator_forward(z, pitch, inst)[..., : encoding.meta.get("n_samples", self.n_samples)]
        return Audio(y.cpu(), self.sample_rate)

    # ---- training: WGAN-GP --------------------------------------------------------------------------------------
    def _batch(self, batch):
        samples, cond = batch
        real = samples.to(self.device)[..., : self.n_samples]
        real = F.pad(real, (0, self.n_samples - real.shape[-1]))  # (batch, 1, n_samples)
        return real, *self.labels(cond)

    def critic_loss(self, real, fake, pitch, inst, generator=None) -> dict:
        s_real = self.critic(real, pitch, inst, generator)
        s_fake = self.critic(fake.detach(), pitch, inst, generator)
        gp = gradient_penalty(lambda x: self.critic(x, pitch, inst, generator), real, fake, generator)
        wasserstein = s_real.mean() - s_fake.mean()
        return {"d_loss": -wasserstein + self.config.gp_weight * gp, "wasserstein": wasserstein, "gp": gp}

    def _noise(self, n, generator):
        return torch.randn(n, self.config.latent_size, generator=generator).to(self.device)

    def training_step(self, batch, generator=None) -> dict:
        """Critic and generator losses on one batch, nothing updated (what evaluation reports)."""
        real, pitch, inst = self._batch(batch)
        fake = self.generator_forward(self._noise(real.shape[0], generator), pitch, inst)
        with torch.enable_grad():
            logs = {k: v.detach() for k, v in self.critic_loss(real, fake, pitch, inst, generator).items()}
        return {"loss": -self.critic(fake, pitch, inst, generator).mean(), **logs}

    def train_step(self, batch, optimizers, *, generator=None, clip: float | None = 1.0, sync=None) -> dict:
        """1. ``n_critic`` critic steps on the batch, 2. one generator step."""
        opt_g, opt_d = optimizers
        real, pitch, inst = self._batch(batch)
        for _ in range(self.config.n_critic):
            opt_d.zero_grad(set_to_none=True)
            with torch.no_grad():
                fake = self.generator_forward(self._noise(real.shape[0], generator), pitch, inst)
            d_logs = self.critic_loss(real, fake, pitch, inst, generator)
            d_logs["d_loss"].backward()
            if sync is not None:
                sync(self._d_params())
            opt_d.step()
        opt_g.zero_grad(set_to_none=True)
        for p in self._d_params():
            p.requires_grad_(False)
        fake = self.generator_forward(self._noise(real.shape[0], generator), pitch, inst)
        g_loss = -self.critic(fake, pitch, inst, generator).mean()
        g_loss.backward()
        for p in self._d_params():
            p.requires_grad_(True)
        if sync is not None:
            sync(self._g_params())
        opt_g.step()
        self.update_generator_average()
        logs = {"loss": g_loss, **d_logs}
        return {k: float(v.detach()) for k, v in logs.items()}

    # ---- figure -----------------------------------------------------------------------------------------------
    def visualise(self, audio: Audio | None = None):
        """The generator's lengths layer by layer, one sample, and phase shuffle at work."""
        from ..viz import new_figure, waveform

        c = self.config
        if audio is None:
            audio = self.generate(1, seconds=self.n_samples / c.sample_rate, generator=0)
        fig, axes = new_figure(2, 1, width=8, row_height=2.4)
        waveform(audio, ax=axes[0, 0],
                 title=f"{self.n_samples} samples from 16 steps: {c.n_layers} transposed convs "
                       f"(kernel {c.kernel_size}, stride {c.stride})")
        x = self.check_audio_input(audio)[:1]
        ax = axes[1, 0]
        span = x[0, 0, :200].cpu()
        ax.plot(span.numpy(), color="k", label="input to the critic")
        gen = torch.Generator().manual_seed(0)
        for k in range(3):
            shuffled = phase_shuffle(x[..., :200], c.shuffle_radius, gen)[0, 0].cpu()
            ax.plot(shuffled.numpy(), alpha=0.6, label=f"phase shuffled (radius {c.shuffle_radius}) #{k + 1}")
        ax.set_xlabel("sample")
        ax.set_title("phase shuffle: the critic sees each layer's activations shifted by a random few steps")
        ax.legend(fontsize=7)
        return fig


class WaveGANWithSource(WaveGAN):
    """WaveGAN plus an oscillator source (not in the paper) that its generator envelopes and its critic hears."""

    name = "wavegan+source"
    aid = OSCILLATOR_SOURCE
    PRESETS = AIDED_PRESETS
