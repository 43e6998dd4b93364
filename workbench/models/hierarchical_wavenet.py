"""Hierarchical WaveNets: two stacked ADAs (Dieleman, van den Oord and Simonyan 2018, arXiv:1806.10474).

One ADA (:mod:`workbench.models.ada`) turns the waveform into codes at ``sample_rate / hop_length``
per second; a second ADA does the same to *that code sequence*: its encoder embeds the level-1
codes and strides over them, its bottleneck makes one level-2 code per ``hop_length_2`` level-1
codes, and its decoder is a WaveNet over level-1 codes conditioned on the level-2 codes. A
Transformer prior models the level-2 codes. Generation runs top-down::

    prior (level-2 codes, ~16 per second)
      -> level-2 WaveNet: level-1 codes (125 per second) given the level-2 codes
        -> level-1 WaveNet: 8-bit samples (8000 per second) given the level-1 codes (the fast sampler)

Each model sees a few hundred steps of its own sequence, but those steps span milliseconds at the
bottom, seconds in the middle and the better part of ten seconds at the top: the receptive field
that dilation alone would have to buy with a network (and training crops) as long as the music.
The price is fidelity: what the codes do not say, the decoders re-invent.

As in the paper, the levels train separately and in order (``train_stage``): ``level1`` (the audio
autoencoder), then ``level2`` (on the frozen level-1 encoder's codes), then ``prior`` (on the
frozen level-2 codes); ``all`` trains them together on detached codes, for quick experiments::

    workbench train hierarchical_wavenet --set train_stage=level1 --steps 100000 --max-minutes 50 --out runs/hw
    workbench train hierarchical_wavenet --resume --set train_stage=level2 --steps 100000 --max-minutes 30 --out runs/hw
    workbench train hierarchical_wavenet --resume --set train_stage=prior --steps 100000 --max-minutes 20 --out runs/hw

``log_prob`` is a bound: level-1 decoder bits of the samples, plus level-2 decoder bits of the
level-1 codes, plus prior bits of the level-2 codes, per sample.

Notebook: notebooks/11_long_range_structure.ipynb
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ._levels import dead_code_threshold
from .ada import ADA, ADAConfig


@dataclass(frozen=True)
class HierarchicalWaveNetConfig(ADAConfig):
    # level 1 (audio <-> codes 1) keeps ADAConfig's fields; its codebook size must be a power of two
    # level 2: an ADA over the level-1 code sequence
    hop_length_2: int = 8  # level-1 codes per level-2 code
    n_codes_2: int = 64
    code_dim_2: int = 32
    encoder_channels_2: int = 64
    n_layers_2: int = 8  # the level-2 WaveNet over codes: dilations 1 .. 2**(n_layers_2 - 1)
    residual_channels_2: int = 32
    gate_channels_2: int = 64
    skip_channels_2: int = 64
    cond_channels_2: int = 32
    crop_codes_2: int = 256  # level-1 codes per item and step
    # the prior over level-2 codes
    prior_context: int = 128
    segment_seconds: float = 8.0


PRESETS = {
    "tiny": dict(hop_length=16, n_codes=16, code_dim=8, encoder_channels=8, ema_decay=0.9, n_layers=6,
                 residual_channels=16, gate_channels=32, skip_channels=32, cond_channels=16, crop_samples=256,
                 hop_length_2=4, n_codes_2=8, code_dim_2=8, encoder_channels_2=8, n_layers_2=4,
                 residual_channels_2=16, gate_channels_2=32, skip_channels_2=16, cond_channels_2=8,
                 crop_codes_2=32, prior_dim=16, prior_layers=1, prior_context=16, max_pieces=12,
                 segment_seconds=0.5, batch_size=2),
    "small": dict(bottleneck="amae"),  # as ada's small preset: the argmax bottleneck at both levels
}


class HierarchicalWaveNet(ADA):
    """Two ADA levels (audio -> codes 1 -> codes 2), WaveNet decoders top-down, a Transformer prior on top."""

    name = "hierarchical_wavenet"
    Config = HierarchicalWaveNetConfig
    PRESETS = PRESETS

    def level_specs(self) -> list[dict]:
        c = self.config
        level1 = super().level_specs()[0]
        decoder2 = self.decoder_config(
            n_stacks=1, n_layers=c.n_layers_2, residual_channels=c.residual_channels_2,
            gate_channels=c.gate_channels_2, skip_channels=c.skip_channels_2, cond_channels=c.cond_channels_2,
            bits=int(math.log2(c.n_codes)), hop_length=c.hop_length_2, crop_samples=c.crop_codes_2,
            sample_rate=c.sample_rate // c.hop_length, code_dim=c.code_dim_2, start_symbol=True)
        frames = c.batch_size * -(-(c.crop_codes_2 + self._receptive_field(decoder2)) // c.hop_length_2)
        level2 = dict(hop=c.hop_length_2, n_codes=c.n_codes_2, code_dim=c.code_dim_2,
                      channels=c.encoder_channels_2, bottleneck=c.bottleneck, ema_decay=c.ema_decay,
                      decoder=decoder2, input_classes=c.n_codes, dead_threshold=dead_code_threshold(frames, c.n_codes_2))
        return [level1, level2]

    def level_crops(self) -> list[int]:
        return [self.config.crop_samples, self.config.crop_codes_2]


__all__ = ["PRESETS", "HierarchicalWaveNet", "HierarchicalWaveNetConfig"]
