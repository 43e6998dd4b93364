"""FloWaveNet (Kim et al. 2019): a multi-scale flow vocoder with ActNorm and channel swaps.

Same job as WaveGlow (mel -> waveform with an exact likelihood), different flow: after an
initial squeeze, ``n_blocks`` blocks each squeeze time by 2 into channels and apply
``n_flows`` steps of (ActNorm, affine coupling with a non-causal WaveNet, channel swap); after
every block but the last, half of the channels leave as ``z`` (multi-scale). The coupling
network, coupling layer, ActNorm and swap are shared with WaveGlow in :mod:`workbench.layers`;
the mel plumbing and the dequantised likelihood come from :class:`FlowVocoder`.

What the channels that leave early are drawn from. FloWaveNet (Kim et al. 2019, arXiv:1811.02155)
factors channels out in the multi-scale way of Glow (Kingma & Dhariwal 2018, arXiv:1807.03039),
where the half that is split off gets a *learned* Gaussian whose mean and log-std a zero-initialised
convolution predicts from the half that is kept. The authors' released code does the same
(github.com/ksw0306/FloWaveNet, ``model.py``, ``Block.prior``): a non-causal WaveNet of two layers
sees the kept half and the block's conditioning and ends in a zero-initialised 1x1 convolution
(``ZeroConv1d``), so the prior starts as N(0, I); its log-density enters the likelihood, and
``reverse`` draws the split half as ``mean + exp(log_sd) * eps`` with ``eps`` the
temperature-scaled noise. Only the last block's output has a fixed N(0, I). With ``learned_prior``
this model does the same, with a two-layer :class:`~workbench.layers.WaveNetCouplingNet` as the
prior network; without it (the default, which older checkpoints were trained with) every split-off
channel gets a fixed N(0, I), a simplification of the published model.

The learned prior is written as one more invertible step, so that the likelihood shared with
WaveGlow needs no change: the split half ``z`` leaves standardised, ``(z - mean) / sd``, with
log-determinant ``-sum log sd``, and then the usual N(0, 1) on the output gives exactly
``log N(z; mean, sd^2)`` (change of variables). Sampling runs it backwards: the split half is
``mean + sd * sigma * temperature * noise``, so at temperature 0 it is the prior's mean.

Notebook: notebooks/06_flows_and_latents.ipynb
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ParameterError
from ..layers import ActNorm, AffineCoupling, ChannelSwap, WaveNetCouplingNet, squeeze, unsqueeze
from ._note import OSCILLATOR_SOURCE
from .base import NoteDataConfig
from .waveglow import FlowVocoder


@dataclass(frozen=True)
class FloWaveNetConfig(NoteDataConfig):
    sample_rate: int = 8000
    n_mels: int = 40
    hop_length: int = 64
    n_group: int = 4  # initial squeeze
    n_blocks: int = 2  # each squeezes by 2 more; all but the last split half of the channels off
    n_flows: int = 3  # per block
    hidden: int = 32
    wn_layers: int = 4
    kernel_size: int = 3
    cond_channels: int = 16
    source_harmonics: int = 0  # > 0: the couplings also hear sin/cos of an f0 curve's first harmonics
    upsample: str = "repeat"  # mel features to sample rate: "repeat" | "linear" | "learned" (FrameUpsampler)
    learned_prior: bool = False  # the split-off half ~ N(mean, sd^2) predicted from the kept half (see above)
    sigma: float = 1.0
    crop_samples: int = 2048
    learning_rate: float = 1e-3


PRESETS = {
    "tiny": dict(n_mels=16, n_group=2, n_blocks=2, n_flows=2, hidden=8, wn_layers=2, cond_channels=4,
                 instruments=("piano", "flute"), pitch_range=(60, 64), velocities=(100,), note_seconds=0.25,
                 crop_samples=512),
    # the authors' model: a learned prior on the channels each split lets go
    "small": dict(learned_prior=True),
}
PRESETS["prior-tiny"] = {**PRESETS["tiny"], "learned_prior": True}

#: ``flowavenet+source``: the same networks with the aid switched on (its small preset keeps the
#: fixed N(0, I) prior it was trained with).
AIDED_PRESETS = {"tiny": {**PRESETS["tiny"], "source_harmonics": 2},
                 "small": {**PRESETS["small"], "learned_prior": False, "source_harmonics": 4}}
AIDED_PRESETS.update({f"prior-{size}": {**AIDED_PRESETS[size], "learned_prior": True} for size in ("tiny", "small")})
PRIOR_LAYERS = 2  # the prior network's depth, as in the authors' code


class SplitPrior(nn.Module):
    """Glow's learned prior on a split: ``N(mean, sd^2)`` for the half that leaves, from the half that stays.

    A non-causal WaveNet (:class:`~workbench.layers.WaveNetCouplingNet`, whose last convolution starts
    at zero, so a fresh prior is N(0, I)) maps the kept half ``(batch, kept, time)`` and the block's
    conditioning ``(batch, cond, time)`` to ``mean`` and ``log_sd``, each ``(batch, split, time)``.
    As a flow step the split half is standardised by them (:meth:`standardise`) or drawn back
    (:meth:`draw`).
    """

    def __init__(self, kept: int, split: int, cond_channels: int, hidden: int, kernel_size: int):
        super().__init__()
        self.net = WaveNetCouplingNet(kept, split, cond_channels, hidden, PRIOR_LAYERS, kernel_size)

    def forward(self, kept: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean, log_sd)`` of the split half given the kept half."""
        log_sd, mean = self.net(kept, cond)
        return mean, log_sd

    @staticmethod
    def standardise(z: torch.Tensor, mean: torch.Tensor, log_sd: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(z - mean) / sd`` and its log-determinant ``-sum log sd`` ``(batch,)``."""
        return (z - mean) * torch.exp(-log_sd), -log_sd.flatten(1).sum(-1)

    @staticmethod
    def draw(eps: torch.Tensor, mean: torch.Tensor, log_sd: torch.Tensor) -> torch.Tensor:
        """``mean + sd * eps``, ``eps`` the split half's (temperature-scaled) noise: the inverse of :meth:`standardise`."""
        return mean + torch.exp(log_sd) * eps


class FloWaveNet(FlowVocoder):
    """Squeeze; per block: squeeze x2, (ActNorm, coupling, swap) x n_flows, split half off (under a learned
    prior with ``learned_prior``)."""

    name = "flowavenet"
    Config = FloWaveNetConfig
    PRESETS = PRESETS
    aid_fields = ("source_harmonics",)

    def __init__(self, config: FloWaveNetConfig):
        super().__init__(config)
        c = config
        if c.n_group < 1 or c.n_blocks < 1:
            raise ParameterError(f"n_group={c.n_group} and n_blocks={c.n_blocks} must be >= 1")
        self.multiple = c.n_group * 2**c.n_blocks
        self._build_cond_net()
        self.blocks = nn.ModuleList()
        # one prior per split, only when asked for: the default model has no such weights
        self.priors = nn.ModuleList() if c.learned_prior else None
        channels, squeezed = c.n_group, c.n_group
        for b in range(c.n_blocks):
            channels, squeezed = channels * 2, squeezed * 2
            steps = nn.ModuleList()
            for _ in range(c.n_flows):
                steps.extend([ActNorm(channels),
                              AffineCoupling(channels, self.cond_width * squeezed, c.hidden, c.wn_layers,
                                             c.kernel_size),
                              ChannelSwap()])
            self.blocks.append(steps)
            if b < c.n_blocks - 1:
                channels //= 2
                if self.priors is not None:
                    self.priors.append(SplitPrior(channels, channels, self.cond_width * squeezed, c.hidden,
                                                  c.kernel_size))

    def _conds(self, c: torch.Tensor) -> list[torch.Tensor]:
        """The conditioning squeezed like x at each block."""
        cs, h = [], squeeze(c, self.config.n_group)
        for _ in self.blocks:
            h = squeeze(h, 2)
            cs.append(h)
        return cs

    def flow(self, x, c):
        z, logdet, _ = self._flow(x, c)
        return z, logdet

    def split_priors(self, x: torch.Tensor, c: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """What each split lets go, and the prior it is scored under, for a clip ``x`` ``(batch, 1, time)``.

        Returns one dict per split, first split first: ``z`` (the split-off half as it leaves, before
        any standardising), ``kept`` (the half that goes on), ``mean`` and ``log_sd`` (zeros without
        ``learned_prior``: N(0, I)), each ``(batch, channels, time at that block)``.
        """
        return self._flow(x, c, record=True)[2]

    def _flow(self, x, c, record: bool = False):
        h = squeeze(x, self.config.n_group)  # (batch, n_group, time / n_group)
        zs, logdet, splits = [], 0, []
        for b, (steps, cb) in enumerate(zip(self.blocks, self._conds(c))):
            h = squeeze(h, 2)  # (batch, 2 channels, time / 2)
            for step in steps:
                h, ld = step(h, cb)
                logdet = logdet + ld
            if b < len(self.blocks) - 1:
                z, h = h.chunk(2, dim=1)  # multi-scale: half leaves here
                mean = log_sd = torch.zeros_like(z) if record else None  # N(0, I) without a learned prior
                if self.priors is not None:
                    mean, log_sd = self.priors[b](h, cb)
                if record:
                    splits.append({"z": z, "kept": h, "mean": mean, "log_sd": log_sd})
                if self.priors is not None:
                    z, ld = SplitPrior.standardise(z, mean, log_sd)  # N(0, 1) where the prior fits
                    logdet = logdet + ld
                zs.append(z.flatten(1))
        zs.append(h.flatten(1))
        return torch.cat(zs, dim=1), logdet, splits  # (batch, time), (batch,), one dict per split

    def inverse(self, z, c):
        b, n = z.shape
        conds = self._conds(c)
        # 1. cut z into the pieces each block let go, from the first split to the final output
        pieces, offset = [], 0
        channels, length = self.config.n_group, n // self.config.n_group
        for k in range(len(self.blocks)):
            channels, length = channels * 2, length // 2
            size = channels // 2 if k < len(self.blocks) - 1 else channels
            pieces.append(z[:, offset: offset + size * length].view(b, size, length))
            offset += size * length
            if k < len(self.blocks) - 1:
                channels //= 2
        # 2. run the blocks backwards, re-attaching each split half (drawn from its prior given the kept half)
        h = pieces[-1]
        for k in reversed(range(len(self.blocks))):
            if k < len(self.blocks) - 1:
                kept = unsqueeze(h, 2)  # (batch, channels / 2, length): what block k kept
                split = pieces[k] if self.priors is None else SplitPrior.draw(pieces[k], *self.priors[k](kept, conds[k]))
                h = torch.cat([split, kept], dim=1)
            for step in reversed(self.blocks[k]):
                h = step.reverse(h, conds[k])
        return unsqueeze(unsqueeze(h, 2), self.config.n_group)  # (batch, 1, time)

    def flow_diagram(self):
        c = self.config
        steps, channels = [("squeeze", c.n_group)], c.n_group
        for b in range(c.n_blocks):
            channels *= 2
            steps.append((f"squeeze b{b}", channels))
            for k in range(c.n_flows):
                steps += [(f"actnorm b{b}.{k}", channels), (f"coupling b{b}.{k}", channels // 2),
                          (f"swap b{b}.{k}", channels)]
            if b < c.n_blocks - 1:
                channels //= 2
                steps.append((f"split b{b}", channels))
                if c.learned_prior:
                    steps.append((f"prior b{b}", channels))
        return steps


class FloWaveNetWithSource(FloWaveNet):
    """FloWaveNet plus an oscillator source (not in the paper) in every coupling network's conditioning."""

    name = "flowavenet+source"
    aid = OSCILLATOR_SOURCE
    PRESETS = AIDED_PRESETS
