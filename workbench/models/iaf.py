"""The distilled students: an inverse autoregressive flow (IAF) conditioned on a note, trained on a
WaveNet teacher's density. What Parallel WaveNet and ClariNet share.

Why sampling a WaveNet is slow: sample ``t`` needs sample ``t - 1``, so a second of audio is
thousands of network evaluations one after another. An IAF (Kingma et al. 2016, arXiv:1606.04934)
turns the dependence around. It draws *all* the noise first, ``z_t`` i.i.d., and each flow shifts
and scales it with numbers computed from the noise *before* ``t``::

    z^0 = z ~ logistic (Parallel WaveNet) or N(0, 1) (ClariNet), one per sample, all at once
    z^i_t = z^(i-1)_t * s^i(z^(i-1)_<t) + mu^i(z^(i-1)_<t)          flow i = 1 .. n_flows
    x = z^n_flows

Every ``(mu^i, s^i)`` is a causal WaveNet-like network run over the whole sequence at once, so
sampling is ``n_flows`` parallel passes. Composed, the flows are one affine step per sample,
``x_t = z_t * s_tot_t + mu_tot_t`` with ``s_tot = prod_i s^i`` and
``mu_tot = sum_i mu^i prod_(j > i) s^j``, both functions of ``z_<t``: given the past, ``x_t`` has the
base distribution shifted by ``mu_tot_t`` and scaled by ``s_tot_t``. Hence the density of a sample
the student drew itself is free::

    log q(x) = sum_t [ log p_base(z_t) - log s_tot_t ]

The density of any *other* waveform needs the ``z`` behind it, and inverting runs backwards,
sequentially: ``z^(i-1)_t = (z^i_t - mu^i_t) / s^i_t`` needs ``z^(i-1)_<t`` first. That is the slow
path (:meth:`IAFStudent.inverse`, one network column per sample, as WaveNet's cached sampler),
used by ``log_prob`` and ``encode``. A WaveNet is the other way round: density in one parallel pass,
sampling sequential. Distillation gives the student the teacher's knowledge through the one thing
the student does fast: it samples, and the teacher scores those samples, all in parallel
(teacher forcing), against the student's own density of them (probability density distillation).

The note reaches every layer of every flow as a bias (pitch, instrument and velocity embeddings,
and note-position features at frame rate: the teacher's conditioning), never through ``z``, so the
flows stay causal in ``z``. ``log_prob`` reports bits per 8-bit mu-law sample, in the teachers'
bins (:mod:`workbench.models.distributions`): the clip is quantised as the teachers see it, and
each sample's bin gets the mass of ``x_t``'s conditional (logistic or Gaussian) given the clip so far.

The teacher is named in the config (``teacher``: a registered name, whose shipped checkpoint is
loaded, or a checkpoint folder) and loaded only when training needs it; it is never part of the
student's weights. Training watches for collapse (:meth:`IAFStudent.spectral_check`).

Notebook: notebooks/12_distillation.ipynb
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..audio import Audio
from ..dsp.quantise import mu_law_decode, mu_law_encode
from ..errors import CheckpointError, ParameterError, WorkbenchError
from ..layers import GatedResidualBlock, NoteEmbedding
from . import distributions as D
from ._note import TIMING_CONSTANTS, note_specs, note_tensors, timing_features
from .base import Encoding, GenerativeModel, NoteDataConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IAFConfig(NoteDataConfig):
    sample_rate: int = 8000
    teacher: str = "wavenet_mol"  # a registered name (its shipped checkpoint) or a checkpoint folder
    teacher_preset: str = ""  # "": a trained teacher; else a fresh one of this preset (the tiny presets' tests)
    n_flows: int = 4
    n_layers: int = 6  # per flow: dilations 1, 2, ..., 2**(n_layers - 1)
    kernel_size: int = 2
    residual_channels: int = 16
    gate_channels: int = 32
    skip_channels: int = 16
    cond_channels: int = 16
    hop_length: int = 64  # frame rate of the note-position features
    init_log_scale: float = -3.0  # the first flow starts as x = z * e^init: quiet noise
    crop_samples: int = 2000  # samples the teacher scores per note (the student makes all before them too)
    onset_share: float = 0.25  # share of crops that start at the onset
    learning_rate: float = 1e-3
    collapse_patience: int = 200  # steps of silence or noise in a row before training warns
    stop_on_collapse: bool = False  # raise instead of warning


class IAFFlow(nn.Module):
    """One flow: ``(mu_t, log_s_t)`` from ``z_<t`` and the note, by a causal WaveNet-like stack.

    The input is the flow's ``z`` shifted one sample right (a zero first), so the causal
    convolutions at ``t`` see ``z_(t-1)`` back to ``z_(t - receptive_field)``. The last 1x1
    convolution starts at zero: a fresh flow is the identity (plus ``init_log_scale`` for the first).
    """

    def __init__(self, c: IAFConfig, init_log_scale: float = 0.0):
        super().__init__()
        self.start = nn.Conv1d(1, c.residual_channels, 1, bias=False)  # zero in, zero out: padding is silence
        self.blocks = nn.ModuleList(
            GatedResidualBlock(c.residual_channels, c.gate_channels, c.skip_channels, c.kernel_size, 2**i)
            for i in range(c.n_layers))
        n_bias = c.n_layers * c.gate_channels
        self.global_proj = nn.Linear(c.cond_channels, n_bias)
        self.local_proj = nn.Conv1d(c.cond_channels, n_bias, 1)
        self.head = nn.Sequential(nn.ReLU(), nn.Conv1d(c.skip_channels, c.skip_channels, 1),
                                  nn.ReLU(), nn.Conv1d(c.skip_channels, 2, 1))
        nn.init.zeros_(self.head[3].weight)
        with torch.no_grad():
            self.head[3].bias.copy_(torch.tensor([0.0, init_log_scale]))
        self.kernel_size = c.kernel_size
        self.gate_channels = c.gate_channels

    @property
    def receptive_field(self) -> int:
        """Past samples of ``z`` each ``(mu_t, s_t)`` depends on (``z_(t-1)`` back to ``z_(t-rf)``)."""
        return (self.kernel_size - 1) * sum(b.dilation for b in self.blocks) + 1

    def bias(self, note: torch.Tensor, frames: torch.Tensor, hop_length: int, n_samples: int) -> torch.Tensor:
        """Every layer's bias ``(batch, layers, gate, n_samples)`` from the note vector ``(batch, cond)``
        and frame features ``(batch, cond, frames)``; sample ``t`` takes frame ``(t + hop / 2) // hop``
        (as WaveNet's local conditioning)::

            frame:    0 0 0 | 1 1 1 1 1 1 | 2 2 2 2 2 2 | ...
            sample:   0 ..31  32 ....  95  96 ...  159
        """
        b = self.global_proj(note)[..., None] + self.local_proj(frames)  # (batch, L * G, frames)
        half = hop_length // 2
        b = b.repeat_interleave(hop_length, dim=-1)[..., half: half + n_samples]  # (batch, L * G, time)
        return b.view(b.shape[0], len(self.blocks), self.gate_channels, -1)

    def forward(self, z: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``z`` ``(batch, time)`` -> ``(mu, log_s)``, each ``(batch, time)``, from ``z_<t`` at every t."""
        h = self.start(F.pad(z, (1, 0))[:, None, :-1])  # (batch, residual, time): input t is z_(t-1)
        skips = 0
        for i, block in enumerate(self.blocks):
            h, s = block(h, bias[:, i])
            skips = skips + s
        mu, log_s = self.head(skips).unbind(1)
        return mu, log_s

    def inverse(self, y: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The slow path: the ``z`` with ``z * s + mu = y``, one sample at a time.

        Each layer keeps a queue of its last ``(k - 1) * dilation`` inputs (as WaveNet's cached
        sampler does), so step ``t`` costs one column per layer. Returns ``(z, mu, log_s)``, each
        ``(batch, time)``.
        """
        k = self.kernel_size
        n, length = y.shape
        skip = self.blocks[0].skip.out_channels
        # the weights laid out for one column at a time: tap m of the conv looks m * dilation back,
        # the skip and residual 1x1 convs as one matrix, the conv's bias folded into the layer biases
        taps = [[b.conv.weight[:, :, k - 1 - m].T for m in range(k)] for b in self.blocks]  # (residual, gate)
        outs = [torch.cat([b.skip.weight[..., 0], b.residual.weight[..., 0]]).T for b in self.blocks]
        out_biases = [torch.cat([b.skip.bias, b.residual.bias]) for b in self.blocks]
        conv_bias = torch.stack([b.conv.bias for b in self.blocks])[None, :, :, None]
        step_bias = (bias + conv_bias).permute(3, 0, 1, 2).contiguous()  # (time, batch, layers, gate)
        queues = [y.new_zeros(n, b.conv.in_channels, (k - 1) * b.dilation) for b in self.blocks]
        w_in = self.start.weight[:, 0, 0]  # (residual,)
        z, mus, log_ss = torch.empty_like(y), torch.empty_like(y), torch.empty_like(y)
        prev = y.new_zeros(n)
        for t in range(length):
            # 1. the input at t is z_(t-1) (zero at t = 0)
            x = prev[:, None] * w_in[None]  # (batch, residual)
            skips = 0
            for i, block in enumerate(self.blocks):
                # 2. the dilated conv from the present input and the queue's taps, the gate, the 1x1s
                q, d = queues[i], block.dilation
                h = torch.addmm(step_bias[t, :, i], x, taps[i][0])
                for m in range(1, k):
                    h = torch.addmm(h, q[:, :, q.shape[-1] - m * d], taps[i][m])
                a, b = h.chunk(2, dim=1)
                o = torch.addmm(out_biases[i], torch.tanh(a) * torch.sigmoid(b), outs[i])  # (batch, skip + residual)
                skips = skips + o[:, :skip]
                queues[i] = torch.cat([q[:, :, 1:], x[..., None]], dim=-1)
                x = (x + o[:, skip:]) * 0.5**0.5
            mu, log_s = self.head(skips[..., None])[..., 0].unbind(1)
            # 3. undo this step's affine map
            prev = (y[:, t] - mu) * torch.exp(-log_s)
            z[:, t], mus[:, t], log_ss[:, t] = prev, mu, log_s
        return z, mus, log_ss


class IAFStudent(GenerativeModel):
    """An IAF of ``n_flows`` causal flows on a note, distilled from a WaveNet teacher.

    Subclasses set ``base`` (the noise: ``"logistic"`` or ``"gaussian"``), ``teacher_output`` (the
    teacher's output distribution) and implement :meth:`distillation_loss` and
    :meth:`spectral_loss`.
    """

    family = "flow"
    likelihood = "exact"
    notebook = "notebooks/12_distillation.ipynb"
    base: ClassVar[str] = "logistic"
    teacher_output: ClassVar[str] = "logistic_mixture"

    def __init__(self, config: IAFConfig):
        super().__init__(config)
        c = config
        if c.n_flows < 1 or c.n_layers < 1:
            raise ParameterError(f"n_flows={c.n_flows} and n_layers={c.n_layers} must be >= 1")
        if c.kernel_size < 2 or c.gate_channels % 2:
            raise ParameterError(f"kernel_size={c.kernel_size} must be >= 2 and gate_channels={c.gate_channels} even")
        self.note = NoteEmbedding(c.pitch_range[1] - c.pitch_range[0] + 1, len(c.instruments), c.cond_channels,
                                  c.pitch_range[0])
        self.frame_net = nn.Sequential(
            nn.Conv1d(len(TIMING_CONSTANTS), c.cond_channels, 3, padding=1), nn.Tanh(),
            nn.Conv1d(c.cond_channels, c.cond_channels, 3, padding=1), nn.Tanh())
        self.flows = nn.ModuleList(IAFFlow(c, c.init_log_scale if i == 0 else 0.0) for i in range(c.n_flows))
        #: the teacher, loaded when training needs it; a plain dict keeps it out of the weights
        self._teacher: dict = {}
        self._collapsed_steps = 0

    # ---- facts -------------------------------------------------------------------------------------------
    @property
    def conditioning(self):
        return tuple(note_specs(self.config))

    @property
    def receptive_field(self) -> int:
        """Samples of ``z`` each output sample depends on (itself included)."""
        return sum(f.receptive_field for f in self.flows) + 1

    @property
    def dtype(self) -> torch.dtype:
        return self.note.velocity.weight.dtype

    # ---- conditioning --------------------------------------------------------------------------------------
    def note_cond(self, cond: dict) -> dict:
        """Pitch, instrument and velocity of a checked or collated cond dict."""
        return {"pitch": cond["pitch"], "instrument": cond["instrument"], "velocity": cond["velocity"]}

    def biases(self, cond: dict, batch: int, n_samples: int) -> list[torch.Tensor]:
        """Every flow's layer biases ``(batch, layers, gate, n_samples)`` for a clip from the onset."""
        c = self.config
        pitch, inst, vel = note_tensors(self, cond)
        note = self.note(pitch, inst, vel).expand(batch, -1)  # (batch, cond)
        n_frames = n_samples // c.hop_length + 4  # beyond the last frame used, as WaveNet's
        timing = timing_features(n_frames, c.hop_length / c.sample_rate, self.device, self.dtype)
        frames = self.frame_net(timing[None]).expand(batch, -1, -1)  # (batch, cond, frames)
        return [flow.bias(note, frames, c.hop_length, n_samples) for flow in self.flows]

    # ---- the flow -----------------------------------------------------------------------------------------
    def noise(self, n: int, n_samples: int, generator=None) -> torch.Tensor:
        """Base noise ``(n, n_samples)``: standard logistic or standard normal."""
        if self.base == "logistic":
            z = D.logistic_noise((n, n_samples), generator, self.dtype)
        else:
            z = torch.randn(n, n_samples, generator=generator, dtype=self.dtype)
        return z.to(self.device)

    def transform(self, z: torch.Tensor, cond: dict, keep_flows: bool = False) -> dict:
        """The parallel pass: noise ``z`` ``(batch, time)`` -> samples ``x`` and their density.

        Returns ``x``, ``mu_tot`` and ``log_s_tot`` (each ``(batch, time)``: ``x = z * s_tot + mu_tot``)
        and ``log_q`` (``(batch,)``, nats: log q(x) by the change of variables); with ``keep_flows``
        also ``flows``, each flow's ``(mu, log_s)``.
        """
        x, mu_tot, log_s_tot, kept = z, torch.zeros_like(z), torch.zeros_like(z), []
        for flow, bias in zip(self.flows, self.biases(cond, z.shape[0], z.shape[-1])):
            mu, log_s = flow(x, bias)
            x = x * torch.exp(log_s) + mu
            mu_tot = mu_tot * torch.exp(log_s) + mu
            log_s_tot = log_s_tot + log_s
            if keep_flows:
                kept.append((mu, log_s))
        log_q = (self.base_log_density(z) - log_s_tot).sum(-1)
        out = {"x": x, "mu_tot": mu_tot, "log_s_tot": log_s_tot, "log_q": log_q}
        if keep_flows:
            out["flows"] = kept
        return out

    def inverse(self, x: torch.Tensor, cond: dict) -> dict:
        """The slow path: the noise behind samples ``x`` ``(batch, time)``, flow by flow, last first.

        Returns ``z``, ``mu_tot``, ``log_s_tot`` (each ``(batch, time)``) and ``log_q`` (``(batch,)``
        nats), the same quantities :meth:`transform` gives for that ``z``.
        """
        biases = self.biases(cond, x.shape[0], x.shape[-1])
        y, steps = x, []
        for flow, bias in zip(reversed(self.flows), reversed(biases)):
            y, mu, log_s = flow.inverse(y, bias)
            steps.append((mu, log_s))
        mu_tot, log_s_tot = torch.zeros_like(x), torch.zeros_like(x)
        for mu, log_s in reversed(steps):  # compose in the forward order
            mu_tot = mu_tot * torch.exp(log_s) + mu
            log_s_tot = log_s_tot + log_s
        log_q = (self.base_log_density(y) - log_s_tot).sum(-1)
        return {"z": y, "mu_tot": mu_tot, "log_s_tot": log_s_tot, "log_q": log_q}

    def base_log_density(self, z: torch.Tensor) -> torch.Tensor:
        """log p_base(z) elementwise (nats)."""
        if self.base == "logistic":
            return -z - 2 * F.softplus(-z)
        return -0.5 * z.pow(2) - 0.5 * math.log(2 * math.pi)

    def conditional(self, mu_tot: torch.Tensor, log_s_tot: torch.Tensor) -> dict:
        """The student's distribution of each ``x_t`` given the past, as :mod:`distributions` parameters."""
        p = {"means": mu_tot[:, None], "log_scales": log_s_tot[:, None], "logits": None}
        if self.base == "logistic":
            p["logits"] = torch.zeros_like(p["means"])
        return p

    @property
    def conditional_output(self) -> str:
        """The :mod:`distributions` kind of :meth:`conditional` (a logistic is a one-component mixture)."""
        return "logistic_mixture" if self.base == "logistic" else "gaussian"

    # ---- the contract -------------------------------------------------------------------------------------
    def _generate(self, n, seconds, cond, temperature, generator, progress):
        n_samples = max(1, int(round(seconds * self.sample_rate)))
        z = self.noise(n, n_samples, generator) * temperature  # every sample's noise at once
        return self.transform(z, self.note_cond(cond))["x"][:, None]  # (n, 1, time)

    def _bits(self, audio, cond) -> tuple[torch.Tensor, dict]:
        """Per-sample bits ``(batch, time)`` of the clip's mu-law codes, and the inversion."""
        x = self.check_audio_input(audio)[:, 0]
        codes = mu_law_encode(x, 8)
        xq = mu_law_decode(codes, 8).to(self.dtype)  # the clip as the teachers hear it: bin centres
        checked = self.check_cond(cond, x.shape[0])
        inv = self.inverse(xq, self.note_cond(checked))
        low, high = D.bin_edges(8, device=x.device)
        p = self.conditional(inv["mu_tot"], inv["log_s_tot"])
        nats = D.log_mass(self.conditional_output, p, low[codes][:, None], high[codes][:, None])
        return -nats / math.log(2), {**inv, "codes": codes, "cond": checked}

    def log_prob(self, audio, cond=None) -> torch.Tensor:
        """Bits per 8-bit mu-law sample (the teachers' bins), by the sequential inverse (slow)."""
        with torch.no_grad():
            bits, _ = self._bits(audio, cond)
        return bits.mean(-1).float()

    def encode(self, audio, cond=None) -> Encoding:
        """The noise ``z`` behind a clip (sequential inverse) and each sample's bits."""
        with torch.no_grad():
            bits, inv = self._bits(audio, cond)
        return Encoding("z", {"z": inv["z"], "bits": bits, "s_tot": inv["log_s_tot"].exp()}, self.sample_rate,
                        meta={"cond": inv["cond"]})

    def decode(self, encoding: Encoding) -> Audio:
        """The parallel pass on an encoding's ``z``: the (quantised) clip back."""
        z = encoding.data["z"].to(self.device, self.dtype)
        with torch.no_grad():
            x = self.transform(z, self.note_cond(encoding.meta["cond"]))["x"]
        return Audio(x[:, None].clamp(-1, 1).float().cpu(), self.sample_rate)

    # ---- the teacher --------------------------------------------------------------------------------------
    def teacher(self):
        """The teacher WaveNet (frozen, in eval mode, on this model's device), loaded once."""
        if "model" not in self._teacher:
            self._teacher["model"] = self._load_teacher()
        return self._teacher["model"].to(self.device, self.dtype)

    def _load_teacher(self):
        from . import REGISTRY, create_model, has_checkpoint, load_model
        from .wavenet import WaveNet

        c = self.config
        if Path(c.teacher).is_dir():
            teacher = load_model(c.teacher)
        elif c.teacher in REGISTRY and c.teacher_preset:  # the tiny presets: a stand-in, whatever is shipped
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                teacher = create_model(c.teacher, c.teacher_preset)
            log.info("%s distils a fresh (untrained) %r %s", self.name, c.teacher_preset, c.teacher)
        elif c.teacher in REGISTRY and has_checkpoint(c.teacher):
            teacher = load_model(c.teacher)
        elif c.teacher in REGISTRY:
            raise CheckpointError(f"the teacher {c.teacher!r} ships no checkpoint yet: train it first "
                                  f"('workbench train {c.teacher} --preset small --out assets/checkpoints/{c.teacher}'), "
                                  "or set teacher to a checkpoint folder")
        else:
            raise ParameterError(f"teacher={c.teacher!r} is neither a registered model nor a checkpoint folder")
        if not isinstance(teacher, WaveNet) or teacher.config.output != self.teacher_output:
            raise ParameterError(f"{self.name} distils a WaveNet with a {self.teacher_output} output; "
                                 f"{c.teacher!r} is a {teacher.name}")
        for key in ("sample_rate", "pitch_range", "instruments", "velocities"):
            if tuple(map(str, _as_tuple(getattr(teacher.config, key)))) != tuple(map(str, _as_tuple(getattr(c, key)))):
                raise ParameterError(f"the teacher's {key}={getattr(teacher.config, key)!r} differs from the "
                                     f"student's {getattr(c, key)!r}; give both the same notes")
        return teacher.eval().requires_grad_(False)

    # ---- training -----------------------------------------------------------------------------------------
    def distillation_loss(self, student: dict, score, cond: dict) -> dict:
        """The divergence from the teacher on the scored crop, in nats per sample: ``{"loss": ..., ...}``.

        ``student`` holds the crop's ``x``, ``mu_tot`` and ``log_s_tot`` ``(batch, crop)``;
        ``score(cond)`` is the teacher's output on the crop under a note's conditioning.
        """
        raise NotImplementedError

    def spectral_loss(self, x: torch.Tensor, real: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """The weighted auxiliary loss against the batch's real notes ``(batch, crop)``, and its
        parts for the log."""
        raise NotImplementedError

    def training_step(self, batch, generator=None) -> dict:
        """Sample from the student, score the samples with the teacher (teacher-forced, in parallel).

        1. Pick a crop of ``crop_samples`` as WaveNet does (at the onset, or late enough that the
           teacher sees its whole receptive field of the student's own samples before it).
        2. Draw noise from the onset to the crop's end and run the flows: samples ``x`` and, at
           every ``t``, the student's own ``(mu_tot, s_tot)``.
        3. The teacher scores ``x`` on the crop given ``x`` before each sample: its distribution
           of every ``x_t``, differentiable with respect to ``x``.
        4. Loss = divergence(student || teacher) (:meth:`distillation_loss`) plus the spectral loss
           against the batch's real notes (:meth:`spectral_loss`); the spectral check flags collapse.
        """
        samples, cond = batch
        real = samples.to(self.device, self.dtype)[:, 0]  # (batch, time)
        teacher = self.teacher()
        n = real.shape[-1]
        length = min(self.config.crop_samples, n)
        rf = teacher.receptive_field
        draw = torch.rand(2, generator=generator)
        onset = draw[0] < self.config.onset_share or n - length < rf
        u = 0 if onset else rf + int(draw[1] * (n - length - rf + 1))
        cond_t = self.note_cond(cond)
        z = self.noise(real.shape[0], u + length, generator)
        student = self.transform(z, cond_t)
        x = student["x"]
        if onset:  # the teacher hears silence before the note, as in its own training
            inputs, start, keep = F.pad(x[:, : length - 1], (1, 0)), -1, 0
        else:
            inputs, start, keep = x[:, u - rf: u + length - 1], u - rf, rf - 1

        def score(note):  # the teacher's outputs for x_u .. x_(u+length-1), given x before each
            return teacher.forward_waveform(inputs, note, start=start)[..., keep:]

        crop = {k: v[:, u:] for k, v in student.items() if k != "log_q"}
        logs = self.distillation_loss(crop, score, cond_t)
        spectral, parts = self.spectral_loss(crop["x"], real[:, u: u + length])
        logs["loss"] = logs["loss"] + spectral
        logs.update(parts)
        logs.update(self.spectral_check(crop["x"].detach(), real[:, u: u + length], cond_t["pitch"]))
        return logs

    def spectral_check(self, x: torch.Tensor, real: torch.Tensor, pitch) -> dict:
        """Is the student collapsing to silence or to noise? Measured on the crop's first note.

        ``rms_ratio_db``: the student's RMS over the real note's, in dB (below -20: silent).
        ``harmonic_share`` / ``harmonic_share_real``: energy at the pitch's harmonics
        (:func:`workbench.metrics.harmonic_share`); under half the real note's: noise. ``collapsed``
        is 1 for either. After ``collapse_patience`` collapsed training steps in a row, a warning
        is logged (or, with ``stop_on_collapse``, :class:`WorkbenchError` raised).
        """
        from ..metrics import harmonic_share

        rms = x.pow(2).mean(-1).sqrt()
        rms_real = real.pow(2).mean(-1).sqrt()
        ratio_db = float(20 * torch.log10(rms.mean().clamp_min(1e-9) / rms_real.mean().clamp_min(1e-9)))
        midi = float(torch.as_tensor(pitch).flatten()[0])
        share = share_real = math.nan
        if x.shape[-1] >= 430:
            share = harmonic_share(x[0].float().cpu(), midi, self.sample_rate)
            share_real = harmonic_share(real[0].float().cpu(), midi, self.sample_rate)
        silent = ratio_db < -20
        noise = math.isfinite(share) and math.isfinite(share_real) and share < 0.5 * share_real
        collapsed = silent or noise
        if self.training:
            self._collapsed_steps = self._collapsed_steps + 1 if collapsed else 0
            if self._collapsed_steps and self._collapsed_steps % self.config.collapse_patience == 0:
                what = "silence" if silent else "noise"
                message = (f"{self.name}: the student has made {what} for {self._collapsed_steps} steps in a row "
                           f"(RMS {ratio_db:+.1f} dB against the real notes, harmonic share {share:.2f} against "
                           f"{share_real:.2f}); the distillation may have collapsed: check the teacher and the "
                           "loss weights")
                if self.config.stop_on_collapse:
                    raise WorkbenchError(message)
                log.warning(message)
        return {"rms_ratio_db": ratio_db, "harmonic_share": share, "harmonic_share_real": share_real,
                "collapsed": float(collapsed)}

    # ---- figure ---------------------------------------------------------------------------------------------
    def visualise(self, audio=None):
        """A generated note with the student's shift and scale over time, each flow's scale, and on one
        step the student's distribution of the next sample against the teacher's (where a teacher
        can be had)."""
        from ..viz import new_figure

        c = self.config
        n_samples = int(min(self.default_seconds, 0.1) * self.sample_rate)
        cond = self.note_cond(self.check_cond(None, 1))
        with torch.no_grad():
            out = self.transform(self.noise(1, n_samples, torch.Generator().manual_seed(0)), cond, keep_flows=True)
        x, mu, s = (out[k][0].float().cpu() for k in ("x", "mu_tot", "log_s_tot"))
        s = s.exp()
        t = torch.arange(n_samples) / self.sample_rate * 1000
        fig, axes = new_figure(3, 1, width=8, row_height=2.3)
        ax = axes[0, 0]
        ax.plot(t, x, lw=0.7, label="sample x")
        ax.plot(t, mu, lw=0.9, label="shift mu_tot (from z before t)")
        ax.fill_between(t.numpy(), (mu - s).numpy(), (mu + s).numpy(), alpha=0.3, color="C1", label="+- scale s_tot")
        ax.set_xlabel("ms")
        ax.legend(fontsize=7, loc="upper right")
        ax.set_title(f"{self.name}: {c.n_flows} flows sample all {n_samples} samples at once")
        ax = axes[1, 0]
        for i, (_, log_s) in enumerate(out["flows"]):
            ax.plot(t, log_s[0].float().cpu(), lw=0.8, label=f"flow {i + 1}")
        ax.set_ylabel("log scale")
        ax.set_xlabel("ms")
        ax.legend(fontsize=7, ncol=c.n_flows, loc="upper right")
        ax = axes[2, 0]
        step = n_samples - 1
        grid = torch.linspace(-1, 1, 801, dtype=torch.float64)

        def density(output, params):  # the density of x_t on the grid, params (1, K, 1)
            p = {k: (None if v is None else v.double().cpu().expand(grid.shape[0], -1, -1)) for k, v in params.items()}
            return D.log_density(output, p, grid[:, None])[:, 0].exp()

        q = {k: (None if v is None else v[..., step:]) for k, v in self.conditional(out["mu_tot"], out["log_s_tot"]).items()}
        ax.plot(grid, density(self.conditional_output, q), label="student q(x_t | past)")
        try:
            teacher = self.teacher()
        except WorkbenchError as err:
            ax.set_title(f"no teacher to compare with: {err}"[:90], fontsize=8)
        else:
            with torch.no_grad():
                t_out = teacher.forward_waveform(F.pad(out["x"][:, :step], (1, 0)), cond, start=-1)[..., -1:]
            ax.plot(grid, density(teacher.config.output, teacher.distribution(t_out)),
                    label=f"teacher p(x_t | past) ({teacher.name})")
            ax.set_title(f"the distribution of sample {step} given the student's own past", fontsize=9)
        ax.set_xlabel("x")
        ax.set_yscale("log")
        ax.legend(fontsize=7)
        return fig


def _as_tuple(value):
    return tuple(value) if isinstance(value, list | tuple) else (value,)
