"""WaveNet (van den Oord et al. 2016): an autoregressive model of mu-law sample codes.

Causal dilated convolutions (dilation 1, 2, 4, ... 2**(L-1), repeated in stacks), gated
tanh x sigmoid units, residual and skip connections, a 256-way softmax over 8-bit mu-law
codes. Conditioning: global (pitch, instrument, velocity embeddings) and local, at frame
rate and upsampled (log-mel frames for vocoding, and "note position" features: decaying
exponentials of the time since the onset, so an unprimed note knows where in its envelope it is).
Unprimed generation has to pick a phase from nothing and hold a period it never heard.

``wavenet`` is the published model. ``wavenet+source`` (:class:`WaveNetWithSource`) adds what
the paper does not have: at sample rate, sines and cosines of the requested pitch's first
harmonics from the onset, as in neural source-filter models (Wang et al. 2019). The source hands
it the phase and the period, and the network learns the filter (timbre, envelope, noise) around
it; comparing the two shows how much of the pitch the network learns itself.

Output distributions (``output``). The paper's ``"softmax"`` over the 2**bits mu-law codes is the
default. ``"logistic_mixture"`` (Parallel WaveNet's teacher: ``n_mixtures`` logistics over the sample
value, as in PixelCNN++) and ``"gaussian"`` (ClariNet's teacher: one Gaussian with its log-scale
bounded below by ``log_scale_min``) are continuous densities, scored on the same mu-law bins
(:mod:`workbench.models.distributions`), so bits per sample of all three compare on the same notes.
The continuous outputs take the waveform itself as input (its companded value through a 1x1
convolution, ``input_proj``) instead of a code embedding, so a student's continuous samples can be
scored, and differentiated, through the teacher (:meth:`WaveNet.forward_waveform`). They are
registered under their own names: ``wavenet_mol`` and ``wavenet_gaussian``.

``forward(codes)`` is the teacher-forced pass: ``logits[..., t]`` is the distribution of
sample ``t + 1`` given samples up to ``t``. Generation has two readable paths that give the
same samples under the same seed: ``naive`` (recompute the receptive field each step) and
``cached`` (one queue per layer, Paine et al. 2016 "Fast Wavenet generation"), plus ``fast``,
the cached path compiled (:mod:`workbench.models.wavenet_kernel`).

Notebook: notebooks/03_receptive_fields.ipynb
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..dsp.quantise import mu_law_decode, mu_law_encode
from ..errors import ParameterError
from ..layers import GatedResidualBlock
from . import distributions as D
from . import wavenet_kernel
from ._note import (
    OSCILLATOR_SOURCE,
    TIMING_CONSTANTS,
    harmonic_source,
    note_specs,
    phase_step,
    timing_features,
)
from .base import CondSpec, Encoding, GenerativeModel, NoteDataConfig, sample_categorical
from .capabilities import Streaming, Vocoder

METHODS = ("auto", "fast", "cached", "naive")

@dataclass(frozen=True)
class WaveNetShape:
    """The network every WaveNet here shares, whatever conditions it (notes, mel frames, a score)."""

    n_stacks: int = 2
    n_layers: int = 10  # per stack: dilations 1, 2, ..., 2**(n_layers - 1)
    kernel_size: int = 2
    residual_channels: int = 32
    gate_channels: int = 64  # split in half: tanh and sigmoid
    skip_channels: int = 64
    bits: int = 8  # 2**bits classes
    cond_channels: int = 32
    hop_length: int = 64  # frame rate of local conditioning
    crop_samples: int = 3000
    onset_share: float = 0.25  # share of training crops that start at the onset, silence before
    learning_rate: float = 1e-3
    output: str = "softmax"  # "softmax" | "logistic_mixture" | "gaussian" (distributions.OUTPUTS)
    n_mixtures: int = 10  # logistics of a "logistic_mixture" output
    log_scale_min: float = -9.0  # lower bound of a continuous output's log-scale (e^-9: finer than any bin)


@dataclass(frozen=True)
class WaveNetConfig(WaveNetShape, NoteDataConfig):
    sample_rate: int = 8000
    timing: bool = True  # note-position features
    n_mels: int = 0  # > 0: local conditioning on log-mel frames (a vocoder)
    source_harmonics: int = 0  # > 0: sample-rate sin/cos of the pitch's first harmonics


PRESETS = {
    "tiny": dict(sample_rate=8000, n_stacks=1, n_layers=6, residual_channels=16, gate_channels=32,
                 skip_channels=32, cond_channels=16, instruments=("piano", "flute"),
                 pitch_range=(60, 64), velocities=(100,), note_seconds=0.25, crop_samples=512),
    "small": dict(n_layers=9),
}

#: ``wavenet+source``: the same presets with the oscillator source switched on.
SOURCE_PRESETS = {"tiny": {**PRESETS["tiny"], "source_harmonics": 2}, "small": {**PRESETS["small"], "source_harmonics": 4}}

#: The WaveNet vocoder's presets: mel frames instead of note-position features.
VOCODER_PRESETS = {
    "tiny": dict(sample_rate=8000, n_stacks=1, n_layers=6, residual_channels=16,
                 gate_channels=32, skip_channels=32, cond_channels=16, timing=False,
                 n_mels=20, instruments=("piano", "flute"), pitch_range=(60, 64),
                 velocities=(100,), note_seconds=0.25, crop_samples=512),
}


class WaveNet(Streaming, GenerativeModel):
    """Small, faithful WaveNet with global and local conditioning; it streams (:class:`Streaming`)."""

    name = "wavenet"
    family = "autoregressive"
    likelihood = "exact"
    Config = WaveNetConfig
    PRESETS = PRESETS
    notebook = "notebooks/03_receptive_fields.ipynb"
    generate_options = {"method": METHODS}
    aid_fields = ("source_harmonics",)
    #: The output distributions this registered name has (the first is its own).
    outputs: ClassVar[tuple[str, ...]] = ("softmax",)

    def __init__(self, config: WaveNetConfig):
        super().__init__(config)
        c = config
        if c.kernel_size < 2:
            raise ParameterError(f"kernel_size={c.kernel_size} must be >= 2")
        if c.gate_channels % 2:
            raise ParameterError(f"gate_channels={c.gate_channels} must be even (tanh and sigmoid halves)")
        if c.output not in D.OUTPUTS:
            raise ParameterError(f"output={c.output!r} must be one of {', '.join(D.OUTPUTS)}")
        if c.output not in self.outputs:
            owner = {"softmax": "wavenet", "logistic_mixture": "wavenet_mol", "gaussian": "wavenet_gaussian"}
            raise ParameterError(f"output={c.output!r}: '{self.name}' has a {self.outputs[0]} output; create "
                                 f"'{owner[c.output]}' for a {c.output} output")
        if c.output == "logistic_mixture" and c.n_mixtures < 1:
            raise ParameterError(f"n_mixtures={c.n_mixtures} must be >= 1")
        self.n_classes = 2**c.bits
        self.silence = int(mu_law_encode(torch.zeros(()), c.bits))
        self.dilations = [2**i for i in range(c.n_layers)] * c.n_stacks
        if c.output == "softmax":
            self.embed = nn.Embedding(self.n_classes, c.residual_channels)
        else:  # the companded sample value itself; silence (0) maps to 0 like the zero padding
            self.input_proj = nn.Conv1d(1, c.residual_channels, 1, bias=False)
        self.blocks = nn.ModuleList(
            GatedResidualBlock(c.residual_channels, c.gate_channels, c.skip_channels, c.kernel_size, d)
            for d in self.dilations
        )
        self.head = nn.Sequential(
            nn.ReLU(), nn.Conv1d(c.skip_channels, c.skip_channels, 1),
            nn.ReLU(), nn.Conv1d(c.skip_channels, D.n_parameters(c.output, self.n_classes, c.n_mixtures), 1),
        )
        self._build_conditioning(len(self.blocks) * c.gate_channels)
        if c.output != "softmax":
            self._init_continuous_output()

    def _init_continuous_output(self) -> None:
        """Start a continuous output near "any loudness is as likely": the mixture's components all
        centred on silence with log-scales spread evenly from -7 to -1 (a Gaussian: one at -3), and
        the last layer's weights shrunk, so the first predictions are about as good as a uniform
        choice of mu-law code (8 bits) rather than a random distribution (about 11)."""
        last = self.head[-1]
        c = self.config
        with torch.no_grad():
            last.weight.mul_(0.1)
            last.bias.zero_()
            if c.output == "logistic_mixture":
                last.bias[2 * c.n_mixtures:] = torch.linspace(-7.0, -1.0, c.n_mixtures)
            else:
                last.bias[1] = -3.0

    def _build_conditioning(self, n_bias: int) -> None:
        """The layers that turn ``cond`` into a bias for each of the ``n_bias`` gate units (all layers)."""
        c = self.config
        if c.n_mels and not isinstance(self, Vocoder):
            raise ParameterError(f"n_mels={c.n_mels} makes a mel vocoder; create 'wavenet_vocoder' for that "
                                 "('wavenet' is conditioned on notes)")
        # global conditioning: embeddings summed, then one projection per layer (stacked)
        self.pitch_embed = nn.Embedding(c.pitch_range[1] - c.pitch_range[0] + 1, c.cond_channels)
        self.instrument_embed = nn.Embedding(len(c.instruments), c.cond_channels)
        self.velocity_proj = nn.Linear(1, c.cond_channels)
        self.global_proj = nn.Linear(c.cond_channels, n_bias)
        # local conditioning at frame rate: a small non-causal conv net, then per-layer projections
        n_local = (len(TIMING_CONSTANTS) if c.timing else 0) + c.n_mels
        self.n_local = n_local
        if n_local:
            self.frame_net = nn.Sequential(
                nn.Conv1d(n_local, c.cond_channels, 3, padding=1), nn.Tanh(),
                nn.Conv1d(c.cond_channels, c.cond_channels, 3, padding=1), nn.Tanh(),
            )
            self.local_proj = nn.Conv1d(c.cond_channels, n_bias, 1)
        if c.source_harmonics:
            self.source_proj = nn.Linear(2 * c.source_harmonics, n_bias, bias=False)

    # ---- facts -----------------------------------------------------------------------------
    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the weights (and of every float the network computes)."""
        return self.head[-1].weight.dtype

    @property
    def receptive_field(self) -> int:
        """Samples of context each prediction sees: (kernel_size - 1) * sum(dilations) + 1."""
        return (self.config.kernel_size - 1) * sum(self.dilations) + 1

    @property
    def conditioning(self) -> tuple[CondSpec, ...]:
        c = self.config
        specs = note_specs(c)
        if c.n_mels:
            specs.append(CondSpec("mel", "frames", None, unit="log-mel",
                                  help=f"({c.n_mels}, frames) log-mel at hop {c.hop_length}: vocoder input"))
        return tuple(specs)

    # ---- conditioning --------------------------------------------------------------------------
    def global_bias(self, cond: dict) -> torch.Tensor:
        """Per-layer bias from pitch, instrument and velocity: ``(batch, layers * gate)``."""
        c = self.config
        pitch = torch.as_tensor(cond["pitch"], device=self.device) - c.pitch_range[0]
        inst = cond["instrument"]
        inst = self.cond_index("instrument", inst) if not isinstance(inst, torch.Tensor) else inst.to(self.device)
        vel = torch.as_tensor(cond["velocity"], dtype=self.dtype, device=self.device)[:, None] / 127.0
        h = self.pitch_embed(pitch) + self.instrument_embed(inst) + self.velocity_proj(vel)
        return self.global_proj(h)

    def frame_features(self, n_frames: int, batch: int, mel: torch.Tensor | None) -> torch.Tensor | None:
        """Local features at frame rate ``(batch, n_local, n_frames)``: timing then mel."""
        c = self.config
        feats = []
        if c.timing:
            timing = timing_features(n_frames, c.hop_length / c.sample_rate, self.device, self.dtype)
            feats.append(timing.expand(batch, -1, -1))  # (batch, 5, frames)
        if c.n_mels:
            if mel is None:
                raise ParameterError(f"{self.name} is a vocoder here: pass cond={{'mel': frames}} "
                                     f"of shape ({c.n_mels}, frames)")
            mel = mel.to(self.device, self.dtype)
            mel = mel[None] if mel.dim() == 2 else mel
            if mel.shape[-2] != c.n_mels:
                raise ParameterError(f"mel has {mel.shape[-2]} bands; this model takes n_mels={c.n_mels}")
            mel = mel.expand(batch, -1, -1)
            if mel.shape[-1] < n_frames:
                mel = F.pad(mel, (0, n_frames - mel.shape[-1]), mode="replicate")
            feats.append(mel[..., :n_frames])
        return torch.cat(feats, dim=1) if feats else None

    def local_bias_frames(self, n_frames: int, batch: int, mel=None) -> torch.Tensor | None:
        """``(batch, layers * gate, n_frames)`` or None without local conditioning."""
        feats = self.frame_features(n_frames, batch, mel)
        if feats is None:
            return None
        return self.local_proj(self.frame_net(feats))

    def phase_step(self, pitch) -> torch.Tensor | None:
        """Radians per sample of each item's fundamental ``(batch,)`` in float64, or None without a source."""
        if not self.config.source_harmonics:
            return None
        return phase_step(pitch, self.config.sample_rate, self.device)

    def source_features(self, omega: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """``(batch, 2 * harmonics, time)``: sin then cos of harmonic k's phase k * omega * position.

        Zero before the onset and for harmonics above Nyquist (:func:`harmonic_source`).
        """
        return harmonic_source(omega, positions, self.config.source_harmonics).to(self.dtype)

    def layer_bias(self, g: torch.Tensor, local: torch.Tensor | None, positions: torch.Tensor,
                   omega: torch.Tensor | None = None) -> torch.Tensor:
        """Bias of every layer at absolute sample ``positions``: ``(batch, layers, gate, time)``.

        Positions before the onset (< 0) get global conditioning only.
        """
        bias = g[..., None]  # (batch, layers * gate, 1)
        if local is not None:
            hop = self.config.hop_length
            index = torch.div(positions + hop // 2, hop, rounding_mode="floor").clamp(0, local.shape[-1] - 1)
            mask = (positions >= 0).to(local.dtype)
            bias = bias + local[..., index] * mask  # (batch, layers * gate, time)
        if omega is not None:
            source = self.source_features(omega, positions)  # (batch, 2H, time)
            bias = bias + torch.einsum("oc,bct->bot", self.source_proj.weight, source)
        return bias.view(g.shape[0], len(self.blocks), self.config.gate_channels, -1)

    def n_frames_for(self, n_samples: int) -> int:
        """Frames computed for a clip: two beyond the last one used, so that the frame net's
        edge padding never reaches a used frame and a longer generation starts the same way."""
        return n_samples // self.config.hop_length + 4

    def prepare_cond(self, cond: dict, batch: int, n_samples: int):
        """Global bias, frame-rate local bias and the source's phase step for a clip of
        ``n_samples`` from the onset: what :meth:`layer_bias` needs at any position."""
        g = self.global_bias(cond)
        local = self.local_bias_frames(self.n_frames_for(n_samples), batch, cond.get("mel"))
        omega = self.phase_step(cond["pitch"])
        if omega is not None and omega.dim() == 0:
            omega = omega.expand(batch)
        return g, local, omega

    # ---- the network ------------------------------------------------------------------------------
    def embed_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``(batch, time)`` -> input features ``(batch, residual, time)``; silence maps to 0.

        Subtracting the silence embedding makes the convolutions' zero padding mean "silence
        before the note", exactly as generation starts. A continuous output's network hears
        each code's companded value instead (:meth:`embed_values`).
        """
        if self.config.output != "softmax":
            return self.embed_values(2 * codes.to(self.dtype) / (self.n_classes - 1) - 1)
        e = self.embed(codes) - self.embed.weight[self.silence]  # (batch, time, residual)
        return e.transpose(1, 2)

    def embed_values(self, y: torch.Tensor) -> torch.Tensor:
        """Companded sample values ``(batch, time)`` -> input features ``(batch, residual, time)``
        (continuous outputs only; differentiable)."""
        return self.input_proj(y[:, None].to(self.dtype))

    def forward_features(self, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        """The dilated stack on continuous input ``(batch, residual, time)`` -> logits ``(batch, classes, time)``."""
        skips = 0
        for i, block in enumerate(self.blocks):
            x, s = block(x, None if bias is None else bias[:, i])
            skips = skips + s
        return self.head(skips)

    def _teacher_forced_bias(self, cond: dict | None, batch: int, n: int, start: int, device) -> torch.Tensor | None:
        """Every layer's bias for ``n`` inputs from absolute position ``start`` (None without ``cond``)."""
        if cond is None:
            return None
        g, local, omega = self.prepare_cond(cond, batch, max(start + n, 1))
        positions = torch.arange(start, start + n, device=device)
        return self.layer_bias(g, local, positions, omega)

    def forward(self, codes: torch.Tensor, cond: dict | None = None, start: int = 0) -> torch.Tensor:
        """Teacher-forced pass: codes ``(batch, time)`` -> logits ``(batch, classes, time)``.

        ``logits[..., t]`` is the distribution of the code at ``t + 1`` given codes up to ``t``
        (for a continuous output: its parameters, :meth:`distribution`).
        ``start`` is the absolute sample index of ``codes[:, 0]`` relative to the note onset.
        """
        bias = self._teacher_forced_bias(cond, codes.shape[0], codes.shape[-1], start, codes.device)
        return self.forward_features(self.embed_codes(codes), bias)

    def forward_waveform(self, x: torch.Tensor, cond: dict | None = None, start: int = 0) -> torch.Tensor:
        """Teacher-forced pass on continuous samples ``x`` ``(batch, time)`` (not quantised) ->
        distribution parameters ``(batch, channels, time)``, differentiable with respect to ``x``.

        How a student's samples are scored: ``out[..., t]`` is the distribution of the sample at
        ``t + 1`` given ``x`` up to ``t``. Continuous outputs only.

        Raises
        ------
        ParameterError
            This WaveNet has a softmax output (its input is a code embedding, not differentiable).
        """
        if self.config.output == "softmax":
            raise ParameterError(f"{self.name} has a softmax output over codes; only a continuous output "
                                 "('wavenet_mol', 'wavenet_gaussian') scores continuous samples")
        bias = self._teacher_forced_bias(cond, x.shape[0], x.shape[-1], start, x.device)
        return self.forward_features(self.embed_values(D.compand(x, self.n_classes - 1)), bias)

    # ---- the output distribution ------------------------------------------------------------------
    def distribution(self, out: torch.Tensor, temperature: float = 1.0) -> dict:
        """A continuous output's parameters ``{"logits", "means", "log_scales"}``, each
        ``(batch, K, ...)``, from the network's output ``(batch, channels, ...)`` at ``temperature``."""
        return D.split(out, self.config.output, self.config.log_scale_min, temperature)

    def code_log_likelihood(self, out: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """log P(code) in nats ``(batch, time)`` of each code under the outputs ``(batch, channels, time)``."""
        if self.config.output == "softmax":
            return -F.cross_entropy(out, codes, reduction="none")
        return D.code_log_prob(self.config.output, self.distribution(out), codes, self.config.bits).to(out.dtype)

    def draw(self, out: torch.Tensor, temperature: float, generator) -> torch.Tensor:
        """One code per row of the outputs ``(batch, channels)`` by inverse CDF (one uniform per row).

        Softmax: logits / temperature. Continuous outputs: every scale times ``temperature`` and
        mixture logits / ``temperature``, then the probabilities of the mu-law bins.
        """
        if self.config.output == "softmax":
            return sample_categorical(out, temperature, generator)
        log_p = D.bin_log_probs(self.config.output, self.distribution(out, temperature), self.config.bits)
        return sample_categorical(log_p, 1.0, generator)

    # ---- likelihood -----------------------------------------------------------------------------------
    def _cond_tensors(self, cond: dict | None, n: int) -> dict:
        checked = self.check_cond(cond, n)
        return {"pitch": checked["pitch"], "instrument": checked["instrument"],
                "velocity": checked["velocity"], "mel": checked.get("mel")}

    def _clip_cond(self, cond: dict | None, x: torch.Tensor) -> dict:
        """The conditioning to score clip ``x`` ``(batch, time)`` under: ``cond`` checked, and a
        vocoder given no frames hears those of the clip itself."""
        cond_t = self._cond_tensors(cond, x.shape[0])
        if self.config.n_mels and cond_t["mel"] is None:
            cond_t["mel"] = self.mel_of(x)
        return cond_t

    def _batch_cond(self, samples: torch.Tensor, cond: dict) -> dict:
        """The conditioning of a training batch (samples ``(batch, 1, time)``, collated cond)."""
        cond_t = {"pitch": cond["pitch"], "instrument": cond["instrument"], "velocity": cond["velocity"]}
        if self.config.n_mels:
            cond_t["mel"] = self.mel_of(samples[:, 0])
        return cond_t

    def _step_log_likelihood(self, audio, cond) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.check_audio_input(audio)[:, 0]  # (batch, time)
        codes = mu_law_encode(x, self.config.bits)
        cond_t = self._clip_cond(cond, x)
        inputs = F.pad(codes[:, :-1], (1, 0), value=self.silence)  # silence, then codes 0..T-2
        logits = self.forward(inputs, cond_t, start=-1)
        ll = self.code_log_likelihood(logits, codes)  # (batch, time) nats
        return codes, ll / math.log(2)

    def log_prob(self, audio, cond=None) -> torch.Tensor:
        """Bits per sample of each item (exact, over 8-bit mu-law codes, whatever the output), the
        note starting at sample 0."""
        with torch.no_grad():
            _, ll = self._step_log_likelihood(audio, cond)
        return -ll.mean(dim=-1)

    def encode(self, audio, cond=None) -> Encoding:
        """Mu-law codes and the log-likelihood (bits) of each sample: where the model is surprised."""
        with torch.no_grad():
            codes, ll = self._step_log_likelihood(audio, cond)
        return Encoding("codes", {"codes": codes, "log_likelihood_bits": ll}, self.sample_rate,
                        meta={"cond": cond})

    # ---- training ------------------------------------------------------------------------------------------
    def training_step(self, batch, generator=None) -> dict:
        """Cross-entropy on a random crop, every prediction with its full receptive field of context.

        The note is preceded by silence, so crops that start at the onset teach the model how a
        note begins from nothing: the situation unprimed generation starts in.
        """
        samples, cond = batch
        samples = samples.to(self.device)
        codes = mu_law_encode(samples[:, 0], self.config.bits)  # (batch, time)
        n = codes.shape[-1]
        length = min(self.config.crop_samples, n)
        rf = self.receptive_field
        # 1. pick where the targets start (in note samples; 0 = the onset). A crop either starts at
        #    the onset (history = silence, as in unprimed generation) or late enough that every
        #    prediction sees a full receptive field of real samples.
        draw = torch.rand(2, generator=generator)
        onset = draw[0] < self.config.onset_share or n - length < rf
        if onset:
            # positions -1 .. length - 2 predict 0 .. length - 1; silence embeds to zero like padding
            inputs, start, keep = F.pad(codes[:, : length - 1], (1, 0), value=self.silence), -1, 0
            u = 0
        else:
            u = rf + int(draw[1] * (n - length - rf + 1))
            inputs, start, keep = codes[:, u - rf: u + length - 1], u - rf, rf - 1
        targets = codes[:, u: u + length]
        cond_t = self._batch_cond(samples, cond)
        logits = self.forward(inputs, cond_t, start=start)[..., keep:]  # (batch, classes, length)
        if self.config.output == "softmax":
            loss = F.cross_entropy(logits, targets)
        else:  # the negative log-likelihood of each code's bin
            loss = -self.code_log_likelihood(logits, targets).mean()
        return {"loss": loss, "bits_per_sample": loss.detach() / math.log(2)}

    # ---- generation ----------------------------------------------------------------------------------------
    def _generate(self, n, seconds, cond, temperature, generator, progress, method: str = "auto"):
        """Sample codes with ``method``: ``"fast"`` (compiled kernel), ``"cached"`` (per-layer queues
        in PyTorch, the readable reference), ``"naive"`` (recompute the receptive field every step)
        or ``"auto"`` (fast where numba is available on CPU in float32, else cached). All draw the
        same samples under the same seed."""
        n_samples, cond_t = self.code_request(n, seconds, cond)
        codes = self.sample_codes(n, n_samples, cond_t, temperature, generator, progress, method)
        return mu_law_decode(codes, self.config.bits)[:, None]  # (n, 1, time)

    def _generate_stream(self, n, seconds, cond, temperature, generator, progress, chunk, method: str = "auto"):
        """:meth:`_generate` ``chunk`` samples at a time: the same sampler, yielding ``(n, 1, chunk)``."""
        n_samples, cond_t = self.code_request(n, seconds, cond)
        chunks = self.code_chunks(n, n_samples, cond_t, temperature, generator, progress, method, chunk=chunk)
        return (mu_law_decode(codes, self.config.bits)[:, None] for codes, _ in chunks)

    def code_request(self, n: int, seconds: float, cond: dict) -> tuple[int, dict]:
        """The number of samples a generation of ``seconds`` makes, and the conditioning
        :meth:`prepare_cond` takes, from ``generate``'s checked ``cond``."""
        c = self.config
        n_samples = max(1, int(round(seconds * c.sample_rate)))
        if c.n_mels and cond.get("mel") is not None:
            n_samples = (cond["mel"].shape[-1] - 1) * c.hop_length
        cond_t = {"pitch": cond["pitch"], "instrument": cond["instrument"], "velocity": cond["velocity"],
                  "mel": cond.get("mel")}
        return n_samples, cond_t

    def resolve_method(self, method: str) -> str:
        """Which sampler ``method="auto"`` means for this model on this machine."""
        if method != "auto":
            return method
        fast_ok = (wavenet_kernel.available() and self.device.type == "cpu" and self.dtype == torch.float32
                   and self.config.output == "softmax")  # the kernel knows only the softmax
        return "fast" if fast_ok else "cached"

    def sample_codes(self, n, n_samples, cond, temperature=1.0, generator=None, progress=None,
                     method="auto", return_logits=False):
        """Draw ``n_samples`` codes per item; optionally also return every step's logits (a continuous
        output's: its parameters, :meth:`distribution`)."""
        parts = list(self.code_chunks(n, n_samples, cond, temperature, generator, progress, method, return_logits))
        codes = torch.cat([codes for codes, _ in parts], dim=1)
        if return_logits:
            return codes, torch.cat([logits for _, logits in parts], dim=-1)
        return codes

    def code_chunks(self, n, n_samples, cond, temperature=1.0, generator=None, progress=None, method="auto",
                    return_logits=False, chunk: int = 2048):
        """:meth:`sample_codes` as an iterator over chunks of ``chunk`` steps: pairs of codes
        ``(n, chunk)`` and logits ``(n, classes, chunk)`` (None unless ``return_logits``), each
        yielded as soon as it is drawn. Arguments are checked and the conditioning prepared when
        this is called; the codes do not depend on ``chunk``."""
        if method not in METHODS:
            raise ParameterError(f"method={method!r} must be one of {', '.join(METHODS)}")
        method = self.resolve_method(method)
        if method == "fast" and self.config.output != "softmax":
            raise ParameterError(f"method='fast' samples a softmax only; {self.name} has a {self.config.output} "
                                 "output: use 'cached' or 'naive' (or 'auto')")
        if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
            raise ParameterError(f"chunk={chunk!r} must be a positive number of steps")
        g, local, omega = self.prepare_cond(cond, n, n_samples)
        if method == "fast":
            sampler = wavenet_kernel.FastSampler(self)
            return sampler.chunks(self, n, n_samples, g, local, omega, temperature, generator, progress,
                                  return_logits, chunk)
        steps = self._naive_chunks if method == "naive" else self._cached_chunks
        return steps(n, n_samples, g, local, omega, temperature, generator, progress, return_logits, chunk)

    def _naive_chunks(self, n, n_samples, g, local, omega, temperature, generator, progress, return_logits, chunk):
        """Reference sampler: recompute the whole receptive field for every new sample."""
        rf = self.receptive_field
        history = torch.full((n, n_samples + rf), self.silence, dtype=torch.long, device=self.device)
        all_logits = []
        for t in range(n_samples):
            # 1. the last rf inputs, positions t - rf .. t - 1; the first input is the silence
            #    at position -1 and the convolutions zero-pad before it, as in training
            low = max(-1, t - rf)
            window = history[:, low + rf: t + rf]
            positions = torch.arange(low, t, device=self.device)
            bias = self.layer_bias(g, local, positions, omega)
            # 2. the network's last output is the distribution of sample t
            logits = self.forward_features(self.embed_codes(window), bias)[..., -1]
            # 3. sample and append
            history[:, t + rf] = self.draw(logits, temperature, generator)
            if return_logits:
                all_logits.append(logits)
            if progress is not None and (t % 256 == 0 or t == n_samples - 1):
                progress(t + 1, n_samples)
            # 4. a chunk is complete: hand it over
            if (t + 1) % chunk == 0 or t == n_samples - 1:
                t0 = t - t % chunk
                yield history[:, rf + t0: rf + t + 1].clone(), torch.stack(all_logits, -1) if return_logits else None
                all_logits = []

    def _cached_chunks(self, n, n_samples, g, local, omega, temperature, generator, progress, return_logits, chunk):
        """Fast Wavenet generation: each layer keeps a queue of its past inputs.

        Layer i with dilation d needs its input from d, 2d, ... (k-1)d steps ago; the queue holds
        exactly the last (k-1)d inputs, so each step costs one column per layer instead of the
        whole receptive field.
        """
        k = self.config.kernel_size
        queues = [torch.zeros(n, self.config.residual_channels, (k - 1) * b.dilation, device=self.device,
                              dtype=self.dtype)
                  for b in self.blocks]
        prev = torch.full((n,), self.silence, dtype=torch.long, device=self.device)
        codes = torch.empty(n, n_samples, dtype=torch.long, device=self.device)
        all_logits = []
        for t in range(n_samples):
            # 1. input at position t - 1 (the previous sample) and the conditioning there
            x = self.embed_codes(prev[:, None])[..., 0]  # (n, residual)
            bias = self.layer_bias(g, local, torch.tensor([t - 1], device=self.device), omega)[..., 0]
            skips = 0
            for i, block in enumerate(self.blocks):
                # 2. the dilated conv from the queue's taps plus the current input
                q = queues[i]
                d = block.dilation
                w = block.conv.weight  # (gate, residual, k); tap k-1 is the present
                h = block.conv.bias + x @ w[:, :, k - 1].T
                for m in range(1, k):
                    h = h + q[:, :, q.shape[-1] - m * d] @ w[:, :, k - 1 - m].T
                z = block.gate((h + bias[:, i])[..., None])[..., 0]
                skips = skips + F.linear(z, block.skip.weight[..., 0], block.skip.bias)
                # 3. push this layer's input into its queue, compute the next layer's input
                queues[i] = torch.cat([q[:, :, 1:], x[..., None]], dim=-1)
                x = (x + F.linear(z, block.residual.weight[..., 0], block.residual.bias)) * 0.5**0.5
            logits = self.head(skips[..., None])[..., 0]
            prev = self.draw(logits, temperature, generator)
            codes[:, t] = prev
            if return_logits:
                all_logits.append(logits)
            if progress is not None and (t % 256 == 0 or t == n_samples - 1):
                progress(t + 1, n_samples)
            # 4. a chunk is complete: hand it over
            if (t + 1) % chunk == 0 or t == n_samples - 1:
                t0 = t - t % chunk
                yield codes[:, t0: t + 1].clone(), torch.stack(all_logits, -1) if return_logits else None
                all_logits = []

    # ---- figure ------------------------------------------------------------------------------------------
    def visualise(self, audio=None):
        """The dilation stack of one output and its receptive field."""
        from ..viz import dilation_diagram

        return dilation_diagram(self.dilations, self.config.kernel_size, sample_rate=self.sample_rate,
                                title=f"WaveNet: {len(self.dilations)} layers, receptive field "
                                      f"{self.receptive_field} samples")


class WaveNetVocoder(Vocoder, WaveNet):
    """WaveNet as a mel vocoder (Shen et al. 2018, Tacotron 2): locally conditioned on log-mel frames
    upsampled to the sample rate, as well as on the note."""

    name = "wavenet_vocoder"
    PRESETS = VOCODER_PRESETS
    notebook = "notebooks/08_spectrogram_and_dsp.ipynb"

    def __init__(self, config: WaveNetConfig):
        if not config.n_mels:
            raise ParameterError("wavenet_vocoder needs n_mels > 0 (the mel bands it is conditioned on)")
        super().__init__(config)

    @property
    def mel_n_fft(self) -> int:
        return 4 * self.config.hop_length


class WaveNetWithSource(WaveNet):
    """WaveNet plus an oscillator source (not in the paper): the pitch's harmonics at sample rate."""

    name = "wavenet+source"
    aid = OSCILLATOR_SOURCE
    PRESETS = SOURCE_PRESETS


# ---- the teachers of distillation: continuous outputs ---------------------------------------------------


@dataclass(frozen=True)
class WaveNetMoLConfig(WaveNetConfig):
    output: str = "logistic_mixture"


@dataclass(frozen=True)
class WaveNetGaussianConfig(WaveNetConfig):
    output: str = "gaussian"


class WaveNetMoL(WaveNet):
    """WaveNet ending in a discretised mixture of logistics: Parallel WaveNet's teacher
    (van den Oord et al. 2018, arXiv:1711.10433), on the data and network of ``wavenet``."""

    name = "wavenet_mol"
    Config = WaveNetMoLConfig
    outputs = ("logistic_mixture",)
    notebook = "notebooks/12_distillation.ipynb"
    #: the compiled kernel samples a softmax only: ``auto`` means ``cached`` here
    generate_options = {"method": ("auto", "cached", "naive")}


class WaveNetGaussian(WaveNet):
    """WaveNet ending in one Gaussian (log-scale bounded below): ClariNet's teacher
    (Ping, Peng and Chen 2019, arXiv:1807.07281), on the data and network of ``wavenet``."""

    name = "wavenet_gaussian"
    Config = WaveNetGaussianConfig
    outputs = ("gaussian",)
    notebook = "notebooks/12_distillation.ipynb"
    generate_options = {"method": ("auto", "cached", "naive")}
