"""A small Jukebox (Dhariwal et al. 2020, arXiv:2005.00341): a three-level VQ-VAE and Transformer priors.

Jukebox compresses audio three times over, at hops 8, 32 and 128, with **separate** encoders and
decoders per level: each level's encoder maps the waveform to one vector per hop, a vector
quantiser (EMA codebook, dead codes restarted on random encoder outputs) turns it into a code, and
that level's decoder reconstructs the waveform from its own codes alone. Nothing passes between the
levels in the autoencoder, so the coarse levels cannot lean on the fine ones: each keeps what it can
in its budget of bits, and the top one (64 codes per second here) keeps the melody and the
envelope, not the timbre. The loss of every level is the L2 distance on the waveform plus the
multi-scale spectral loss (:func:`workbench.losses.multi_scale_spectral_loss`, on linear
magnitudes as Jukebox's, plus a little of DDSP's log-magnitude term), which rewards getting the
spectrum right where the phase cannot be guessed, plus the commitment loss.

The priors are autoregressive Transformers over codes (:class:`workbench.models._levels.CodePrior`):
the **top prior** over the coarsest codes, and two **upsamplers**, each over one level's codes
conditioned on the level above (its codes embedded, mixed and held for the hop ratio). Generation
is top-down: top codes, then hop-32 codes given them, then hop-8 codes, then the hop-8 decoder
turns those into audio. All three sample with a key/value cache; a clip longer than a prior's
context is sampled in windows that slide by half a context.

The decoders are not probabilistic (a waveform from codes, by regression), so the model has no
likelihood of audio (``likelihood = "none"``); the priors give exact bits per code
(:meth:`stage_bits`).

Training (``train_stage``): ``"autoencoder"`` (the three VQ-VAEs), then ``"priors"`` (on the frozen
encoders' codes), as Jukebox does; ``"all"`` trains both at once on detached codes::

    workbench train jukebox_mini --set train_stage=autoencoder --steps 100000 --max-minutes 60 --out runs/jb
    workbench train jukebox_mini --resume --set train_stage=priors --steps 100000 --max-minutes 40 --out runs/jb

Notebook: notebooks/11_long_range_structure.ipynb
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..audio import Audio
from ..dsp.quantise import mu_law_encode
from ..errors import ParameterError
from ..layers import DownsampleEncoder, ResidualStack, VectorQuantiser
from ..losses import multi_scale_spectral_loss
from ._levels import (
    CodeHierarchy,
    CodePrior,
    FrameNorm,
    Stage,
    check_power_of_two,
    dead_code_threshold,
    hierarchy_figure,
    quantiser_codes,
)
from .base import Encoding, GenerativeModel, ScoreDataConfig

TRAIN_STAGES = ("all", "autoencoder", "priors")
#: Codes of the coarsest level encoded either side of a prior's training span and then dropped.
MARGIN_CODES = 4


@dataclass(frozen=True)
class JukeboxMiniConfig(ScoreDataConfig):
    sample_rate: int = 8000
    hops: tuple = (8, 32, 128)  # samples per code of each level, finest first (powers of two)
    n_codes: int = 256
    code_dim: int = 32
    encoder_channels: int = 32
    decoder_channels: int = 32
    commitment: float = 0.02
    ema_decay: float = 0.99
    spectral_weight: float = 1.0  # the multi-scale spectral loss on linear magnitudes (Jukebox's)
    spectral_log_weight: float = 0.1  # and on log magnitudes (DDSP's), which gives quiet parts a voice
    fft_sizes: tuple = (1024, 512, 256, 128, 64)
    # the priors: causal Transformers over codes
    prior_dim: int = 64
    prior_layers: int = 3
    prior_heads: int = 2
    prior_context: int = 256  # top codes per window (4 s at hop 128)
    upsampler_context: int = 256  # lower codes per window of an upsampler
    # data and training
    collection: str = "folk"
    segment_seconds: float = 8.0
    crop_samples: int = 4096  # the autoencoders train on windows this long (a multiple of the top hop)
    batch_size: int = 8
    learning_rate: float = 1e-3
    train_stage: str = "all"  # "all", "autoencoder" or "priors"


PRESETS = {
    "tiny": dict(n_codes=16, code_dim=8, encoder_channels=8, decoder_channels=8, ema_decay=0.9, prior_dim=16,
                 prior_layers=1, prior_context=16, upsampler_context=32, fft_sizes=(256, 64), max_pieces=12,
                 segment_seconds=0.5, crop_samples=1024, batch_size=2),
    "small": dict(),
}


class WaveformDecoder(nn.Module):
    """Latents ``(batch, dim, frames)`` -> waveform ``(batch, 1, frames * 2**n_up)``: a dilated residual
    stack at the code rate (it hears neighbouring codes), then stride-2 transposed convolutions."""

    def __init__(self, code_dim: int, channels: int, n_up: int):
        super().__init__()
        self.inp = nn.Conv1d(code_dim, channels, 3, padding=1)
        self.context = ResidualStack(channels)
        self.ups = nn.ModuleList(nn.ConvTranspose1d(channels, channels, 4, stride=2, padding=1) for _ in range(n_up))
        self.out = nn.Sequential(nn.GELU(), nn.Conv1d(channels, channels, 7, padding=3), nn.GELU(),
                                 nn.Conv1d(channels, 1, 1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.context(self.inp(z))
        for up in self.ups:
            h = up(F.gelu(h))
        return self.out(h)


class JukeboxMini(CodeHierarchy, GenerativeModel):
    """Three separate VQ-VAE levels (hops 8, 32, 128), a top prior and two upsamplers, all small."""

    name = "jukebox_mini"
    family = "latent"
    likelihood = "none"
    Config = JukeboxMiniConfig
    PRESETS = PRESETS
    notebook = "notebooks/11_long_range_structure.ipynb"

    def __init__(self, config: JukeboxMiniConfig):
        super().__init__(config)
        c = config
        hops = tuple(check_power_of_two("hops", h) for h in c.hops)
        if len(hops) < 2 or any(b % a for a, b in zip(hops, hops[1:])) or list(hops) != sorted(set(hops)):
            raise ParameterError(f"hops={c.hops!r} must rise, each a multiple of the one before, e.g. (8, 32, 128)")
        if c.crop_samples % hops[-1]:
            raise ParameterError(f"crop_samples={c.crop_samples} must be a multiple of the top hop {hops[-1]}")
        if c.train_stage not in TRAIN_STAGES:
            raise ParameterError(f"train_stage={c.train_stage!r} must be one of {', '.join(TRAIN_STAGES)}")
        self.encoders = nn.ModuleList(
            nn.Sequential(DownsampleEncoder(c.code_dim, c.encoder_channels, int(math.log2(h))), FrameNorm(c.code_dim))
            for h in hops)
        self.quantisers = nn.ModuleList(
            VectorQuantiser(c.n_codes, c.code_dim, c.ema_decay, dead_code_threshold(c.batch_size * c.crop_samples // h,
                                                                                   c.n_codes))
            for h in hops)
        self.decoders = nn.ModuleList(WaveformDecoder(c.code_dim, c.decoder_channels, int(math.log2(h)))
                                      for h in hops)
        self.top_prior = CodePrior(c.n_codes, c.prior_dim, c.prior_layers, c.prior_heads, c.prior_context)
        self.upsamplers = nn.ModuleList(
            CodePrior(c.n_codes, c.prior_dim, c.prior_layers, c.prior_heads, c.upsampler_context,
                      upper_codes=c.n_codes, ratio=upper // lower)
            for lower, upper in zip(hops, hops[1:]))

    # ---- the structure --------------------------------------------------------------------------------
    @property
    def stages(self) -> tuple[Stage, ...]:
        n = len(self.config.hops)
        ups = tuple(Stage(f"upsampler {i} (codes {i} | codes {i + 1})", i, i + 1) for i in range(1, n))
        return (*ups, Stage(f"top prior (codes {n})", n, None))

    def level_hops(self) -> tuple[int, ...]:
        return (1, *self.config.hops)

    def context_seconds(self) -> dict[str, float]:
        c = self.config
        contexts = [up.context * h / c.sample_rate for up, h in zip(self.upsamplers, c.hops)]
        contexts.append(self.top_prior.context * c.hops[-1] / c.sample_rate)
        return {stage.name: seconds for stage, seconds in zip(self.stages, contexts)}

    def level_classes(self) -> tuple[int, ...]:
        return (256, *(self.config.n_codes for _ in self.config.hops))

    @property
    def default_seconds(self) -> float:
        return 2.0

    def _padded(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, (0, (-x.shape[-1]) % self.config.hops[-1]))

    @torch.no_grad()
    def level_sequences(self, x: torch.Tensor) -> list[torch.Tensor]:
        padded = self._padded(x)
        return [mu_law_encode(x[:, 0], 8), *(quantiser_codes(q, e(padded))
                                              for e, q in zip(self.encoders, self.quantisers))]

    def stage_bits(self, index: int, sequences: list[torch.Tensor]) -> torch.Tensor:
        n = len(self.config.hops)
        if index == n - 1:
            return self.top_prior.bits(sequences[n])
        level = index + 1
        return self.upsamplers[index].bits(sequences[level], upper=sequences[level + 1])

    # ---- the contract ------------------------------------------------------------------------------------
    def encode(self, audio, cond=None) -> Encoding:
        """Every level's codes, ``codes_1`` (hop 8) to ``codes_3`` (hop 128)."""
        x = self.samples_of(audio)
        self.check_cond(cond, x.shape[0])
        seqs = self.level_sequences(x)
        return Encoding("codes", {f"codes_{i}": seqs[i] for i in range(1, len(seqs))}, self.sample_rate,
                        meta={"n_samples": x.shape[-1], "hops": self.level_hops()})

    def _descend(self, codes: torch.Tensor, level: int, n_samples: int, temperature: float, generator,
                 progress=None, done: int = 0, total: int | None = None) -> torch.Tensor:
        """From level ``level``'s codes: 1. each upsampler below samples its level's codes given the
        level above, 2. the finest level's decoder turns its codes into samples ``(batch, 1, n_samples)``."""
        hops = self.level_hops()
        total = total or done + sum(codes.shape[1] * hops[level] // hops[i] for i in range(1, level))
        for i in range(level - 1, 0, -1):
            n_steps = codes.shape[1] * hops[i + 1] // hops[i]
            report = None if progress is None else (lambda d, _t, off=done: progress(off + d, total))
            codes = self.upsamplers[i - 1].sample(codes.shape[0], n_steps, upper=codes, temperature=temperature,
                                                  generator=generator, progress=report)
            done += n_steps
        y = self.decoders[0](self.quantisers[0].lookup(codes))
        return y[..., :n_samples]

    def decode_level(self, codes: torch.Tensor, level: int) -> torch.Tensor:
        """Level ``level``'s decoder on its codes ``(batch, frames)``: samples ``(batch, 1, frames * hop)``."""
        return self.decoders[level - 1](self.quantisers[level - 1].lookup(codes))

    def _n_top(self, n_samples: int) -> int:
        return -(-n_samples // self.config.hops[-1])

    def _sample_latent(self, n, seconds, cond, temperature, generator) -> Encoding:
        """Top-level codes for ``seconds`` of audio from the top prior."""
        n_samples = max(1, int(round(seconds * self.sample_rate)))
        codes = self.top_prior.sample(n, self._n_top(n_samples), temperature=temperature, generator=generator)
        top = len(self.config.hops)
        return Encoding("codes", {f"codes_{top}": codes}, self.sample_rate,
                        meta={"n_samples": n_samples, "hops": self.level_hops()})

    def _generate(self, n, seconds, cond, temperature, generator, progress):
        n_samples = max(1, int(round(seconds * self.sample_rate)))
        hops = self.level_hops()
        n_top = self._n_top(n_samples)
        total = sum(n_top * hops[-1] // h for h in hops[1:])
        report = None if progress is None else (lambda d, _t: progress(d, total))
        # 1. top codes, 2. each upsampler down to hop 8, 3. the hop-8 decoder
        codes = self.top_prior.sample(n, n_top, temperature=temperature, generator=generator, progress=report)
        return self._descend(codes, len(self.config.hops), n_samples, temperature, generator, progress,
                             done=n_top, total=total)

    def decode(self, encoding: Encoding, *, temperature: float | None = None, generator=None,
               progress=None) -> Audio:
        """Audio from the finest codes in ``encoding``: that level's decoder on ``codes_1``; from coarser
        codes, the upsamplers first sample the levels below."""
        from ..dsp.spectral import make_generator

        n = len(self.config.hops)
        present = [i for i in range(1, n + 1) if f"codes_{i}" in encoding.data]
        if not present:
            raise ParameterError(f"the encoding holds no codes_1..codes_{n}; pass what encode() or "
                                 "sample_latent() returns")
        level = present[0]
        codes = encoding.data[f"codes_{level}"].to(self.device)
        n_samples = int(encoding.meta.get("n_samples") or codes.shape[1] * self.level_hops()[level])
        temperature = self.default_temperature if temperature is None else float(temperature)
        with torch.no_grad():
            y = self._descend(codes, level, n_samples, temperature, make_generator(generator), progress)
        return Audio(y.clamp(-1, 1).float().cpu(), self.sample_rate)

    def reconstruct(self, audio, level, *, temperature=None, generator=None) -> Audio:
        """Level ``level``'s own decoder on that level's codes of ``audio`` (no sampling: each level
        reconstructs the waveform on its own)."""
        n = len(self.config.hops)
        if not 1 <= level <= n:
            raise ParameterError(f"level={level} must be in 1..{n}")
        x = self.samples_of(audio)
        with torch.no_grad():
            y = self.decode_level(self.level_sequences(x)[level], level)[..., : x.shape[-1]]
        return Audio(y.clamp(-1, 1).float().cpu(), self.sample_rate)

    # ---- training ------------------------------------------------------------------------------------------
    def training_step(self, batch, generator=None) -> dict:
        """Autoencoders: on a random window of ``crop_samples``, each level encodes, quantises and
        decodes on its own (L2 + spectral + commitment). Priors: the top prior and the upsamplers on
        windows of the whole segment's codes, encoded without a gradient or a codebook update."""
        samples, _ = batch
        c = self.config
        x = samples.to(self.device)
        top = c.hops[-1]
        x = x[..., : max(top, x.shape[-1] - x.shape[-1] % top)]
        loss, logs = 0.0, {}
        if c.train_stage in ("all", "autoencoder"):
            window = min(c.crop_samples, x.shape[-1])
            first = top * int(torch.randint((x.shape[-1] - window) // top + 1, (), generator=generator))
            piece = x[..., first: first + window]  # (batch, 1, window)
            for i, (enc, vq, dec) in enumerate(zip(self.encoders, self.quantisers, self.decoders), start=1):
                z_q, codes, commitment = vq(enc(piece), generator)
                y = dec(z_q)  # (batch, 1, window)
                l2 = F.mse_loss(y, piece)
                magnitude = multi_scale_spectral_loss(piece[:, 0], y[:, 0], fft_sizes=tuple(c.fft_sizes),
                                                      log_weight=0.0)
                log_magnitude = multi_scale_spectral_loss(piece[:, 0], y[:, 0], fft_sizes=tuple(c.fft_sizes),
                                                          magnitude_weight=0.0)
                spectral = c.spectral_weight * magnitude + c.spectral_log_weight * log_magnitude
                loss = loss + l2 + spectral + c.commitment * commitment
                logs.update({f"level{i}_l2": l2.detach(), f"level{i}_spectral": spectral.detach(),
                             f"level{i}_commitment": commitment.detach(),
                             f"level{i}_codes_used": float(torch.unique(codes).numel())})
        if c.train_stage in ("all", "priors"):
            n = len(c.hops)
            codes = self._span_codes(x, [n], c.prior_context * c.hops[-1], generator)
            top_loss = self.top_prior.loss(codes[n], generator=generator)
            loss = loss + top_loss
            logs["top_prior_bits_per_code"] = top_loss.detach() / math.log(2)
            for i, up in enumerate(self.upsamplers, start=1):
                codes = self._span_codes(x, [i, i + 1], c.upsampler_context * c.hops[i - 1], generator)
                up_loss = up.loss(codes[i], upper=codes[i + 1], generator=generator)
                loss = loss + up_loss
                logs[f"upsampler{i}_bits_per_code"] = up_loss.detach() / math.log(2)
        return {"loss": loss, **logs}

    @torch.no_grad()
    def _span_codes(self, x: torch.Tensor, levels: list[int], n_samples: int, generator) -> dict:
        """The codes of ``levels`` over a random span of about ``n_samples`` of ``x`` (whole codes of the
        coarsest), encoded with a margin of a few codes either side that is then dropped, so that they
        are the codes the whole segment gives: ``{level: (batch, steps)}``."""
        step = self.config.hops[max(levels) - 1]
        span = min(x.shape[-1], -(-n_samples // step) * step)
        first = step * int(torch.randint((x.shape[-1] - span) // step + 1, (), generator=generator))
        left, right = min(first, MARGIN_CODES * step), min(x.shape[-1] - first - span, MARGIN_CODES * step)
        piece = x[..., first - left: first + span + right]
        out = {}
        for level in levels:
            hop = self.config.hops[level - 1]
            codes = quantiser_codes(self.quantisers[level - 1], self.encoders[level - 1](piece))
            out[level] = codes[:, left // hop: codes.shape[1] - right // hop]
        return out

    # ---- figure ---------------------------------------------------------------------------------------------
    def visualise(self, audio=None):
        """Codebook usage of the three levels and, for a clip, its codes at each level over time."""
        c = self.config
        seconds = ", ".join(f"{c.sample_rate / h:g}" for h in c.hops)
        return hierarchy_figure(self, list(self.quantisers), audio,
                                title=f"{self.name}: three VQ-VAE levels at {seconds} codes per second")


__all__ = ["PRESETS", "JukeboxMini", "JukeboxMiniConfig", "WaveformDecoder"]
