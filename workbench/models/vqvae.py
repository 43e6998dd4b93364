"""VQ-VAE (van den Oord et al. 2017) with an autoregressive prior over its codes.

A strided encoder maps the waveform to one vector every ``hop = 2**n_down`` samples; a vector
quantiser snaps each to the nearest of ``n_codes`` codewords (EMA codebook, dead codes
restarted, straight-through gradients, commitment loss); a decoder conditioned on the note
turns the codes back into a per-sample 256-way distribution over mu-law codes. With
``source_harmonics`` (the ``small`` preset) the decoder also hears, at sample rate, the sines and
cosines of the note's first harmonics from the onset (the source of neural source-filter models,
as in WaveNet and SampleRNN here): the codes then carry how loud each partial is and when, the
source carries the phase, which a factorised decoder cannot guess. A small causal
WaveNet over the codes (the *prior*), conditioned on the note, makes it a generator: sample
codes, then decode.

The decoder is factorised: every sample's distribution depends on the codes alone, not on
the samples before it, and ``generate`` plays each distribution's mean. That makes it the
simplest discrete autoencoder, not the autoregressive discrete autoencoder of Dieleman et al.
(2018), whose decoder is a WaveNet that samples the waveform given the codes: that one is
``ada`` (:mod:`workbench.models.ada`), and ``hierarchical_wavenet`` stacks it.

``log_prob`` is a bound in bits per sample: ``-log p(x) <= -log p(x | z) - log p(z)`` for the
encoder's code sequence ``z`` (decoder bits plus prior bits, over 8-bit mu-law samples).

Notebook: notebooks/06_flows_and_latents.ipynb
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..audio import Audio
from ..dsp.quantise import mu_law_compress, mu_law_decode, mu_law_encode
from ..layers import (
    DownsampleEncoder,
    GatedResidualBlock,
    NoteEmbedding,
    UpsampleDecoder,
    VectorQuantiser,
)
from ._note import (
    OSCILLATOR_SOURCE,
    TIMING_CONSTANTS,
    harmonic_source,
    note_specs,
    note_tensors,
    phase_step,
    timing_features,
)
from .base import Encoding, GenerativeModel, NoteDataConfig, sample_categorical
from .capabilities import LatentModel


@dataclass(frozen=True)
class VQVAEConfig(NoteDataConfig):
    sample_rate: int = 8000
    n_down: int = 5  # hop = 2**n_down samples per code
    hidden: int = 48
    code_dim: int = 16
    n_codes: int = 64
    commitment: float = 0.25
    ema_decay: float = 0.95
    bits: int = 8  # decoder output: 2**bits mu-law classes per sample
    # the prior: a causal WaveNet over codes
    prior_channels: int = 48
    prior_layers: int = 6  # dilations 1, 2, 4, ...
    source_harmonics: int = 0  # > 0: the decoder hears sin/cos of the pitch's first harmonics
    # conditioning
    cond_channels: int = 32
    # data and training
    crop_samples: int = 2048
    learning_rate: float = 2e-3


PRESETS = {
    "tiny": dict(n_down=4, hidden=16, code_dim=8, n_codes=16, prior_channels=16, prior_layers=3,
                 cond_channels=8, instruments=("piano", "flute"), pitch_range=(60, 64), velocities=(100,),
                 note_seconds=0.25, crop_samples=512),
    "small": dict(),
}

#: ``vqvae+source``: the same presets with the aid switched on.
AIDED_PRESETS = {"tiny": {**PRESETS["tiny"], "source_harmonics": 2},
                 "small": {**PRESETS["small"], "source_harmonics": 4}}


class VQVAE(LatentModel, GenerativeModel):
    """Strided encoder, EMA vector quantiser, factorised conditional decoder, WaveNet prior over codes."""

    name = "vqvae"
    family = "latent"
    likelihood = "bound"
    Config = VQVAEConfig
    PRESETS = PRESETS
    aid_fields = ("source_harmonics",)
    notebook = "notebooks/06_flows_and_latents.ipynb"

    def __init__(self, config: VQVAEConfig):
        super().__init__(config)
        c = config
        self.hop = 2**c.n_down
        self.n_classes = 2**c.bits
        n_pitches = c.pitch_range[1] - c.pitch_range[0] + 1
        self.encoder = DownsampleEncoder(c.code_dim, c.hidden, c.n_down)
        # unit-variance encoder outputs: the codebook sees how they differ, not their shared offset
        self.encoder_norm = nn.BatchNorm1d(c.code_dim, affine=False)
        self.quantiser = VectorQuantiser(c.n_codes, c.code_dim, c.ema_decay)
        self.decoder_note = NoteEmbedding(n_pitches, len(c.instruments), c.cond_channels, c.pitch_range[0])
        self.decoder = UpsampleDecoder(c.code_dim, self.n_classes, c.cond_channels, c.hidden, c.n_down,
                                       source_channels=2 * c.source_harmonics)
        # prior: code embeddings (plus a start symbol), causal gated blocks, note and position biases
        self.prior_note = NoteEmbedding(n_pitches, len(c.instruments), c.cond_channels, c.pitch_range[0])
        self.prior_embed = nn.Embedding(c.n_codes + 1, c.prior_channels)  # index n_codes = start
        self.prior_timing = nn.Conv1d(len(TIMING_CONSTANTS), c.prior_channels, 1)
        self.prior_blocks = nn.ModuleList(
            GatedResidualBlock(c.prior_channels, 2 * c.prior_channels, c.prior_channels, 2, 2**i)
            for i in range(c.prior_layers))
        self.prior_cond = nn.Linear(c.cond_channels, c.prior_layers * 2 * c.prior_channels)
        self.prior_head = nn.Sequential(nn.ReLU(), nn.Conv1d(c.prior_channels, c.n_codes, 1))

    @property
    def conditioning(self):
        return tuple(note_specs(self.config))

    @property
    def code_rate(self) -> float:
        """Codes per second."""
        return self.sample_rate / self.hop

    # ---- autoencoder ---------------------------------------------------------------------------------
    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        """Right-pad ``(batch, 1, time)`` with silence to a multiple of ``hop``."""
        return F.pad(x, (0, (-x.shape[-1]) % self.hop))

    def quantise(self, x: torch.Tensor, generator=None):
        """Samples ``(batch, 1, time)`` -> ``(z_q, codes (batch, ceil(time / hop)), commitment)``.

        The encoder sees the mu-law companded waveform: quiet decays matter as much as loud attacks.
        """
        return self.quantiser(self.encoder_norm(self.encoder(mu_law_compress(self._pad(x)))), generator)

    def source(self, pitch, n_samples: int, offset: int = 0) -> torch.Tensor | None:
        """The decoder's source ``(batch, 2 * source_harmonics, n_samples)`` for samples ``offset ..``
        after the onset, or None without one."""
        h = self.config.source_harmonics
        if not h:
            return None
        omega = phase_step(pitch, self.sample_rate, self.device)
        positions = torch.arange(offset, offset + n_samples, device=self.device)
        return harmonic_source(omega, positions, h).to(self.prior_embed.weight.dtype)

    def decoder_logits(self, z_q: torch.Tensor, cond: dict, offset: int = 0) -> torch.Tensor:
        """Quantised vectors ``(batch, dim, frames)`` -> logits ``(batch, classes, frames * hop)``;
        ``offset``: how many samples after the onset the first frame starts (for the source)."""
        pitch, inst, vel = note_tensors(self, cond)
        source = self.source(pitch, z_q.shape[-1] * self.hop, offset)
        return self.decoder(z_q, self.decoder_note(pitch, inst, vel), source)

    def expected_waveform(self, logits: torch.Tensor) -> torch.Tensor:
        """Mean of each sample's categorical: ``(batch, classes, time)`` -> ``(batch, 1, time)``."""
        levels = mu_law_decode(torch.arange(self.n_classes, device=logits.device), self.config.bits)
        return torch.einsum("bct,c->bt", torch.softmax(logits, dim=1), levels.to(logits.dtype))[:, None]

    # ---- prior ------------------------------------------------------------------------------------------------
    def prior_logits(self, codes: torch.Tensor, cond: dict) -> torch.Tensor:
        """Teacher-forced prior: codes ``(batch, frames)`` -> logits ``(batch, n_codes, frames)``
        where ``logits[..., j]`` is the distribution of code ``j`` given codes before ``j``."""
        c = self.config
        b, n = codes.shape
        inputs = F.pad(codes, (1, 0), value=c.n_codes)[:, :-1]  # start symbol, codes 0..n-2
        h = self.prior_embed(inputs).transpose(1, 2)  # (batch, channels, frames)
        timing = timing_features(n, self.hop / self.sample_rate, codes.device, h.dtype)
        h = h + self.prior_timing(timing[None])
        bias = self.prior_cond(self.prior_note(*note_tensors(self, cond)))
        bias = bias.view(b, c.prior_layers, 2 * c.prior_channels, 1)
        skips = 0
        for i, block in enumerate(self.prior_blocks):
            h, s = block(h, bias[:, i])
            skips = skips + s
        return self.prior_head(skips)

    def sample_codes(self, n: int, n_frames: int, cond: dict, temperature: float = 1.0, generator=None):
        """Ancestral sampling from the prior, recomputing the (short) code history each step."""
        codes = torch.zeros(n, n_frames, dtype=torch.long, device=self.device)
        for j in range(n_frames):
            # 1. logits of code j given codes 0..j-1 (the causal net ignores the rest)
            logits = self.prior_logits(codes[:, : j + 1], cond)[..., j]
            # 2. draw and write it in
            codes[:, j] = sample_categorical(logits, temperature, generator)
        return codes

    # ---- the contract -------------------------------------------------------------------------------------------
    def _sample_latent(self, n, seconds, cond, temperature, generator) -> Encoding:
        """A code sequence for ``seconds`` of audio, drawn from the prior."""
        n_samples = max(1, int(round(seconds * self.sample_rate)))
        codes = self.sample_codes(n, -(-n_samples // self.hop), cond, temperature, generator)
        return Encoding("codes", {"codes": codes}, self.sample_rate,
                        meta={"cond": cond, "n_samples": n_samples, "hop": self.hop})

    def _generate(self, n, seconds, cond, temperature, generator, progress):
        codes = self._sample_latent(n, seconds, cond, temperature, generator)
        if progress is not None:
            progress(codes.meta["n_samples"], codes.meta["n_samples"])
        return self.decode(codes).samples

    def encode(self, audio, cond=None) -> Encoding:
        """The code sequence (one code every ``hop`` samples) and each code's prior bits."""
        x = self.check_audio_input(audio)
        checked = self.check_cond(cond, x.shape[0])
        with torch.no_grad():
            _, codes, _ = self.quantise(x)
            prior_bits = -torch.log_softmax(self.prior_logits(codes, checked), 1).gather(1, codes[:, None])[:, 0]
        return Encoding("codes", {"codes": codes, "prior_bits": prior_bits / math.log(2)}, self.sample_rate,
                        meta={"cond": checked, "n_samples": x.shape[-1], "hop": self.hop})

    def decode(self, encoding: Encoding) -> Audio:
        codes = encoding.data["codes"].to(self.device)
        cond = encoding.meta.get("cond") or self.check_cond(None, codes.shape[0])
        with torch.no_grad():
            y = self.expected_waveform(self.decoder_logits(self.quantiser.lookup(codes), cond))
        n = encoding.meta.get("n_samples", y.shape[-1])
        return Audio(y[..., :n].clamp(-1, 1).cpu(), self.sample_rate)

    def log_prob(self, audio, cond=None) -> torch.Tensor:
        """Upper bound on bits per sample: decoder bits of the mu-law samples plus prior bits of the codes."""
        x = self.check_audio_input(audio)
        checked = self.check_cond(cond, x.shape[0])
        with torch.no_grad():
            z_q, codes, _ = self.quantise(x)
            logits = self.decoder_logits(z_q, checked)[..., : x.shape[-1]]
            target = mu_law_encode(x[:, 0], self.config.bits)
            recon = F.cross_entropy(logits, target, reduction="none").sum(-1)
            prior = F.cross_entropy(self.prior_logits(codes, checked), codes, reduction="none").sum(-1)
        return (recon + prior) / x.shape[-1] / math.log(2)

    # ---- training -----------------------------------------------------------------------------------------
    def training_step(self, batch, generator=None) -> dict:
        """Decoder cross-entropy on a crop + commitment; the prior learns the (detached) codes of whole notes."""
        samples, cond = batch
        x = samples.to(self.device)
        z_q, codes, commitment = self.quantise(x, generator)
        # 1. reconstruction on a random, hop-aligned crop of the code sequence
        frames = max(1, self.config.crop_samples // self.hop)
        start = int(torch.randint(max(1, codes.shape[1] - frames + 1), (), generator=generator))
        logits = self.decoder_logits(z_q[..., start: start + frames], cond, offset=start * self.hop)
        target = mu_law_encode(self._pad(x)[:, 0, start * self.hop: (start + frames) * self.hop], self.config.bits)
        recon = F.cross_entropy(logits, target)
        # 2. the prior on the codes, which it cannot change
        prior = F.cross_entropy(self.prior_logits(codes.detach(), cond), codes.detach())
        loss = recon + self.config.commitment * commitment + prior
        used = torch.unique(codes).numel()
        return {"loss": loss, "recon_bits": recon.detach() / math.log(2), "commitment": commitment.detach(),
                "prior_bits_per_code": prior.detach() / math.log(2), "codes_used": float(used)}

    # ---- figure -------------------------------------------------------------------------------------------
    def visualise(self, audio=None):
        """Codebook usage (EMA counts) and, for a clip, its code sequence over time."""
        from ..viz import new_figure

        fig, axes = new_figure(2, 1, width=8, row_height=2.4)
        counts = self.quantiser.ema_count.detach().cpu().numpy()
        ax = axes[0, 0]
        ax.bar(range(len(counts)), counts / max(counts.sum(), 1e-9))
        ax.set_xlabel("code")
        ax.set_ylabel("share of use")
        ax.set_title(f"codebook usage: {int((counts > self.quantiser.dead_threshold).sum())} of "
                     f"{len(counts)} codes alive, {int(self.quantiser.restarts)} restarts")
        ax = axes[1, 0]
        if audio is not None:
            codes = self.encode(audio).data["codes"][0].cpu().numpy()
            t = [i * self.hop / self.sample_rate for i in range(len(codes))]
            ax.step(t, codes, where="post")
            ax.set_xlabel("seconds")
            ax.set_ylabel("code")
            ax.set_title(f"the clip as {len(codes)} codes ({self.code_rate:g} per second)")
        else:
            ax.text(0.5, 0.5, f"one code every {self.hop} samples ({self.code_rate:g} Hz); "
                    "pass a clip to see its codes", ha="center", va="center")
            ax.set_axis_off()
        return fig





class VQVAEWithSource(VQVAE):
    """The VQ-VAE plus an oscillator source (not in the paper) at the decoder's sample-rate stage."""

    name = "vqvae+source"
    aid = OSCILLATOR_SOURCE
    PRESETS = AIDED_PRESETS
