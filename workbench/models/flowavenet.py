"""FloWaveNet (Kim et al. 2019): a multi-scale flow vocoder with ActNorm and channel swaps.

Same job as WaveGlow (mel -> waveform with an exact likelihood), different flow: after an
initial squeeze, ``n_blocks`` blocks each squeeze time by 2 into channels and apply
``n_flows`` steps of (ActNorm, affine coupling with a non-causal WaveNet, channel swap); after
every block but the last, half of the channels leave as ``z`` (multi-scale). The coupling
network, coupling layer, ActNorm and swap are shared with WaveGlow in :mod:`workbench.layers`;
the mel plumbing and the dequantised likelihood come from :class:`FlowVocoder`.

Notebook: notebooks/06_flows_and_latents.ipynb
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ParameterError
from ..layers import ActNorm, AffineCoupling, ChannelSwap, squeeze, unsqueeze
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
    sigma: float = 1.0
    crop_samples: int = 2048
    learning_rate: float = 1e-3


PRESETS = {
    "tiny": dict(n_mels=16, n_group=2, n_blocks=2, n_flows=2, hidden=8, wn_layers=2, cond_channels=4,
                 instruments=("piano", "flute"), pitch_range=(60, 64), velocities=(100,), note_seconds=0.25,
                 crop_samples=512),
    "small": dict(),
}

#: ``flowavenet+source``: the same presets with the aid switched on.
AIDED_PRESETS = {"tiny": {**PRESETS["tiny"], "source_harmonics": 2},
                 "small": {**PRESETS["small"], "source_harmonics": 4}}


class FloWaveNet(FlowVocoder):
    """Squeeze; per block: squeeze x2, (ActNorm, coupling, swap) x n_flows, split half off."""

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

    def _conds(self, c: torch.Tensor) -> list[torch.Tensor]:
        """The conditioning squeezed like x at each block."""
        cs, h = [], squeeze(c, self.config.n_group)
        for _ in self.blocks:
            h = squeeze(h, 2)
            cs.append(h)
        return cs

    def flow(self, x, c):
        h = squeeze(x, self.config.n_group)  # (batch, n_group, time / n_group)
        zs, logdet = [], 0
        for b, (steps, cb) in enumerate(zip(self.blocks, self._conds(c))):
            h = squeeze(h, 2)  # (batch, 2 channels, time / 2)
            for step in steps:
                h, ld = step(h, cb)
                logdet = logdet + ld
            if b < len(self.blocks) - 1:
                z, h = h.chunk(2, dim=1)  # multi-scale: half leaves here
                zs.append(z.flatten(1))
        zs.append(h.flatten(1))
        return torch.cat(zs, dim=1), logdet  # (batch, time)

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
        # 2. run the blocks backwards, re-attaching each split half
        h = pieces[-1]
        for k in reversed(range(len(self.blocks))):
            if k < len(self.blocks) - 1:
                h = torch.cat([pieces[k], unsqueeze(h, 2)], dim=1)
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
        return steps


class FloWaveNetWithSource(FloWaveNet):
    """FloWaveNet plus an oscillator source (not in the paper) in every coupling network's conditioning."""

    name = "flowavenet+source"
    aid = OSCILLATOR_SOURCE
    PRESETS = AIDED_PRESETS
