"""A waveform VAE (Kingma & Welling 2014) with a factorised decoder, trained on the ELBO.

The encoder maps the (mu-law companded) waveform to a Gaussian posterior ``q(z | x)`` with one
``latent_dim`` vector every ``hop = 2**n_down`` samples; the decoder, conditioned on pitch,
instrument and velocity, turns ``z`` into an independent 256-way distribution over the 8-bit
mu-law value of every sample. Independent given ``z`` is the catch: samples that should move
together are drawn apart, so the decoder's *mean* is a blurred waveform and its *samples* are
noisy. That is why waveform models need autoregressive (WaveNet) or adversarial decoders.

``log_prob`` reports the negative ELBO in bits per sample, an upper bound on the true bits
(over 8-bit mu-law samples, comparable with WaveNet's):
``-log p(x) <= E_q[-log p(x | z)] + KL(q(z | x) || N(0, I))``.

Notebook: notebooks/06_flows_and_latents.ipynb
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..audio import Audio
from ..dsp.quantise import mu_law_compress, mu_law_decode, mu_law_encode
from ..dsp.spectral import make_generator
from ..layers import DownsampleEncoder, NoteEmbedding, UpsampleDecoder
from ._note import note_specs, note_tensors
from .base import Encoding, GenerativeModel, NoteDataConfig, sample_categorical
from .capabilities import LatentModel


@dataclass(frozen=True)
class VAEConfig(NoteDataConfig):
    sample_rate: int = 8000
    n_down: int = 5  # hop = 2**n_down samples per latent vector
    hidden: int = 48
    latent_dim: int = 8
    bits: int = 8
    kl_warmup_steps: int = 300  # training only: the KL weight rises linearly to 1 (log_prob is the true ELBO)
    cond_channels: int = 32
    crop_samples: int = 2048
    learning_rate: float = 2e-3


PRESETS = {
    "tiny": dict(n_down=4, hidden=16, latent_dim=4, cond_channels=8, kl_warmup_steps=10,
                 instruments=("piano", "flute"), pitch_range=(60, 64), velocities=(100,), note_seconds=0.25,
                 crop_samples=512),
    "small": dict(),
}


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, 1)) per element, in nats: ``(exp(lv) + m^2 - 1 - lv) / 2``."""
    return 0.5 * (logvar.exp() + mean**2 - 1.0 - logvar)


class VAE(LatentModel, GenerativeModel):
    """Strided Gaussian encoder, factorised 256-way decoder conditioned on the note, N(0, I) prior."""

    name = "vae"
    family = "latent"
    likelihood = "bound"
    Config = VAEConfig
    PRESETS = PRESETS
    notebook = "notebooks/06_flows_and_latents.ipynb"
    generate_options = {"decoder": ("sample", "mean")}

    def __init__(self, config: VAEConfig):
        super().__init__(config)
        c = config
        self.hop = 2**c.n_down
        self.n_classes = 2**c.bits
        self.encoder = DownsampleEncoder(2 * c.latent_dim, c.hidden, c.n_down)
        self.note = NoteEmbedding(c.pitch_range[1] - c.pitch_range[0] + 1, len(c.instruments), c.cond_channels,
                                  c.pitch_range[0])
        self.decoder = UpsampleDecoder(c.latent_dim, self.n_classes, c.cond_channels, c.hidden, c.n_down)
        self.register_buffer("steps_trained", torch.zeros(()))

    @property
    def conditioning(self):
        return tuple(note_specs(self.config))

    # ---- the two halves ----------------------------------------------------------------------------------
    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Samples ``(batch, 1, time)`` -> mean, log-variance ``(batch, latent_dim, ceil(time / hop))``."""
        x = F.pad(x, (0, (-x.shape[-1]) % self.hop))
        mean, logvar = self.encoder(mu_law_compress(x)).chunk(2, dim=1)
        return mean, logvar.clamp(-12, 6)

    def decoder_logits(self, z: torch.Tensor, cond: dict) -> torch.Tensor:
        """Latents ``(batch, latent_dim, frames)`` -> logits ``(batch, classes, frames * hop)``."""
        return self.decoder(z, self.note(*note_tensors(self, cond)))

    def levels(self, device=None) -> torch.Tensor:
        return mu_law_decode(torch.arange(self.n_classes, device=device), self.config.bits)

    def decoder_mean(self, logits: torch.Tensor) -> torch.Tensor:
        """The factorised decoder's mean waveform ``(batch, 1, time)`` (blurred)."""
        probs = torch.softmax(logits, dim=1)
        return torch.einsum("bct,c->bt", probs, self.levels(logits.device).to(logits.dtype))[:, None]

    def decoder_sample(self, logits: torch.Tensor, temperature: float = 1.0, generator=None) -> torch.Tensor:
        """One independent draw per sample from the factorised decoder ``(batch, 1, time)`` (noisy)."""
        b, k, t = logits.shape
        codes = sample_categorical(logits.transpose(1, 2).reshape(-1, k), temperature, generator).view(b, t)
        return self.levels(logits.device)[codes][:, None]

    def elbo_terms(self, x: torch.Tensor, cond: dict, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reconstruction and KL, nats summed per item, with the reparameterisation ``z = m + s * eps``."""
        mean, logvar = self.posterior(x)
        z = mean + (0.5 * logvar).exp() * eps
        logits = self.decoder_logits(z, cond)[..., : x.shape[-1]]
        recon = F.cross_entropy(logits, mu_law_encode(x[:, 0], self.config.bits), reduction="none").sum(-1)
        return recon, gaussian_kl(mean, logvar).flatten(1).sum(-1)

    # ---- the contract -----------------------------------------------------------------------------------------
    def log_prob(self, audio, cond=None) -> torch.Tensor:
        """Negative ELBO in bits per sample (one posterior draw from a fixed seed: repeatable)."""
        x = self.check_audio_input(audio)
        checked = self.check_cond(cond, x.shape[0])
        n_frames = -(-x.shape[-1] // self.hop)
        eps = torch.randn(self.config.latent_dim, n_frames, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            recon, kl = self.elbo_terms(x, checked, eps.to(x.device).expand(x.shape[0], -1, -1))
        return (recon + kl) / x.shape[-1] / math.log(2)

    def encode(self, audio, cond=None) -> Encoding:
        """The posterior: mean and variance of ``z`` for every ``hop`` samples."""
        x = self.check_audio_input(audio)
        with torch.no_grad():
            mean, logvar = self.posterior(x)
        return Encoding("posterior", {"mean": mean, "variance": logvar.exp()}, self.sample_rate,
                        meta={"cond": self.check_cond(cond, x.shape[0]), "n_samples": x.shape[-1]})

    def decode(self, encoding: Encoding, sample: bool = False, generator=None) -> Audio:
        """The decoder's mean at the posterior mean, or (``sample``) an independent draw per sample."""
        z = encoding.data["mean"].to(self.device)
        cond = encoding.meta.get("cond") or self.check_cond(None, z.shape[0])
        with torch.no_grad():
            logits = self.decoder_logits(z, cond)
            y = self.decoder_sample(logits, 1.0, make_generator(generator)) if sample else self.decoder_mean(logits)
        n = encoding.meta.get("n_samples", y.shape[-1])
        return Audio(y[..., :n].clamp(-1, 1).cpu(), self.sample_rate)

    def _sample_latent(self, n, seconds, cond, temperature, generator) -> Encoding:
        """``z ~ N(0, temperature^2 I)`` for every ``hop`` samples, as a posterior with zero variance."""
        n_samples = max(1, int(round(seconds * self.sample_rate)))
        n_frames = -(-n_samples // self.hop)
        z = torch.randn(n, self.config.latent_dim, n_frames, generator=generator).to(self.device) * temperature
        return Encoding("posterior", {"mean": z, "variance": torch.zeros_like(z)}, self.sample_rate,
                        meta={"cond": cond, "n_samples": n_samples})

    def _generate(self, n, seconds, cond, temperature, generator, progress, decoder: str = "sample"):
        """``z`` from the prior (its spread scaled by ``temperature``), then ``decoder="sample"``: a draw
        of p(x | z), one independent sample per time step (what the model says a note is), or
        ``"mean"``: the decoder's mean waveform (smooth, and blurred where the samples disagree)."""
        latent = self._sample_latent(n, seconds, cond, temperature, generator)
        return self.decode(latent, sample=decoder == "sample", generator=generator).samples

    def training_step(self, batch, generator=None) -> dict:
        """Negative ELBO on a hop-aligned crop, the KL weight warmed up over the first steps."""
        samples, cond = batch
        x = samples.to(self.device)
        n = min(self.config.crop_samples, x.shape[-1])
        n -= n % self.hop
        start = self.hop * int(torch.randint((x.shape[-1] - n) // self.hop + 1, (), generator=generator))
        x = x[..., start: start + n]
        eps = torch.randn(x.shape[0], self.config.latent_dim, n // self.hop, generator=generator).to(x.device)
        recon, kl = self.elbo_terms(x, cond, eps)
        if self.training:
            self.steps_trained += 1
        beta = min(1.0, float(self.steps_trained) / max(1, self.config.kl_warmup_steps))
        per_sample = n * math.log(2)
        loss = (recon + beta * kl).mean() / per_sample
        return {"loss": loss, "bits_per_sample": ((recon + kl).mean() / per_sample).detach(),
                "kl_bits_per_sample": (kl.mean() / per_sample).detach(), "beta": beta}

    # ---- figure ------------------------------------------------------------------------------------------
    def visualise(self, audio=None):
        """A clip against the factorised decoder's mean (blurred) and one sample (noisy); KL per latent."""
        from ..viz import new_figure

        if audio is None:
            audio = self.generate(1, seconds=0.1, generator=0)
        x = self.check_audio_input(audio)[:1]
        enc = self.encode(Audio(x, self.sample_rate))
        mean = self.decode(enc).samples[0, 0]
        draw = self.decode(enc, sample=True, generator=0).samples[0, 0]
        fig, axes = new_figure(2, 1, width=8, row_height=2.5)
        ax = axes[0, 0]
        n = min(x.shape[-1], 400)
        t = torch.arange(n) / self.sample_rate * 1000
        ax.plot(t, x[0, 0, :n].cpu(), label="input", lw=1.2)
        ax.plot(t, mean[:n], label="decoder mean (blurred)", lw=1.2)
        ax.plot(t, draw[:n], label="decoder sample (independent per sample)", lw=0.6, alpha=0.7)
        ax.set_xlabel("ms")
        ax.legend(fontsize=7)
        ax.set_title("a factorised decoder: the mean is smooth, a sample is noise around it")
        ax = axes[1, 0]
        kl = gaussian_kl(enc.data["mean"], enc.data["variance"].log())[0].sum(-1) / math.log(2)
        ax.bar(range(len(kl)), kl.cpu())
        ax.set_xlabel("latent dimension")
        ax.set_ylabel("KL (bits) over the clip")
        ax.set_title("what each latent carries")
        return fig
