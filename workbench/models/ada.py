"""The autoregressive discrete autoencoder (ADA; Dieleman, van den Oord and Simonyan 2018, arXiv:1806.10474).

Dilation alone cannot reach the seconds over which music repeats itself: a WaveNet's receptive
field grows by one layer per doubling, and its training memory with the crop it must see. The ADA
moves the long-range part of the job to a shorter sequence. A strided encoder maps the waveform to
one vector every ``hop_length`` samples; a discrete bottleneck turns each into a code; and the
decoder is a **WaveNet** that writes the waveform sample by sample, locally conditioned on the
codes (held for ``hop_length`` samples each). The decoder models local texture; the codes carry
what happens where. A prior over the code sequence (a small causal Transformer here), whose context
is ``hop_length`` times longer in seconds than it is in steps, makes the whole a generator::

    audio --encoder--> z --bottleneck--> codes (one per hop)      prior p(codes)
                                           |                           |
                                           +--held for hop samples--> WaveNet p(x_t | x_<t, codes)

Two bottlenecks (``bottleneck``): ``"vq"``, the VQ-VAE's vector quantiser (nearest codeword,
straight-through gradient, commitment loss, EMA codebook with restarts of dead codes), and
``"amae"``, the paper's argmax autoencoder (ReLU, divisive normalisation, argmax one-hot with a
straight-through gradient and a diversity loss; :class:`workbench.layers.ArgmaxQuantiser`). Either
hears the encoder's frames centred and normalised (:class:`~workbench.models._levels.FrameNorm`):
a WaveNet decoder can model much of the waveform from its own past, so early in training it
barely asks the codes for anything, and codes that do not depend on the input from the start tend
to collapse onto a few.

``decode`` samples the WaveNet given the codes (a draw from p(x | codes), not a mean), so a
reconstruction keeps what the codes say and re-invents the rest. ``log_prob`` is a bound in bits per
sample: ``-log2 p(x) <= -log2 p(x | z) - log2 p(z)`` for the encoder's codes ``z``. Stacking ADAs
(each level autoencoding the codes of the one below) gives :mod:`hierarchical_wavenet
<workbench.models.hierarchical_wavenet>`, which shares this file's machinery.

Training (``train_stage``): ``"all"`` trains the autoencoder and the prior together (the prior on
the codes as they are, without a gradient into the encoder); ``"level1"`` trains the autoencoder
alone and ``"prior"`` the prior alone on the frozen encoder's codes, as the paper trains its levels
one after the other (a prior trained with the autoencoder chases codes that keep changing)::

    workbench train ada --set train_stage=level1 --steps 100000 --max-minutes 70 --out runs/ada
    workbench train ada --resume --set train_stage=prior --steps 100000 --max-minutes 20 --out runs/ada

Notebook: notebooks/11_long_range_structure.ipynb
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..audio import Audio
from ..dsp.quantise import mu_law_decode
from ..errors import ParameterError
from ._levels import (
    BOTTLENECKS,
    ADALevel,
    CodeHierarchy,
    CodePrior,
    LevelDecoderConfig,
    Stage,
    check_power_of_two,
    dead_code_threshold,
    hierarchy_figure,
)
from .base import Encoding, GenerativeModel, ScoreDataConfig
from .wavenet import METHODS, WaveNetShape


@dataclass(frozen=True)
class ADAConfig(WaveNetShape, ScoreDataConfig):
    sample_rate: int = 8000
    hop_length: int = 64  # samples per code (a power of two); also the decoder's conditioning frame
    bottleneck: str = "vq"  # "vq" (vector quantiser) or "amae" (argmax autoencoder)
    n_codes: int = 64
    code_dim: int = 32
    encoder_channels: int = 32
    commitment: float = 0.25  # weight of the VQ commitment loss
    diversity: float = 0.1  # weight of the AMAE diversity loss
    ema_decay: float = 0.99
    # the WaveNet decoder: a short receptive field, so that the codes carry what lies beyond it
    n_stacks: int = 1
    n_layers: int = 8
    crop_samples: int = 1024  # decoder targets per item and step
    onset_share: float = 0.1  # crops that start from silence, as scoring a clip does
    # the prior over codes: a causal Transformer
    prior_dim: int = 64
    prior_layers: int = 2
    prior_heads: int = 2
    prior_context: int = 256  # codes per window
    # data and training
    collection: str = "folk"
    segment_seconds: float = 2.0  # the prior's context (256 codes at hop 64)
    train_stage: str = "all"  # "all", "level1" (the autoencoder) or "prior"


#: Top-level codes encoded either side of a training span and then dropped (the encoders' edges).
MARGIN_CODES = 4

PRESETS = {
    "tiny": dict(hop_length=16, n_codes=16, code_dim=8, encoder_channels=8, ema_decay=0.9, n_layers=6,
                 residual_channels=16, gate_channels=32, skip_channels=32, cond_channels=16, crop_samples=256,
                 prior_dim=16, prior_layers=1, prior_context=32, max_pieces=12, segment_seconds=0.5, batch_size=2),
    # the argmax bottleneck: with a WaveNet decoder, a vector quantiser's codebook collapses onto a
    # few codes in our CPU-length runs (the paper finds AMAE the more robust of the two)
    "small": dict(bottleneck="amae"),
}


class ADA(CodeHierarchy, GenerativeModel):
    """Strided encoder, discrete bottleneck, WaveNet decoder conditioned on the codes, Transformer prior."""

    name = "ada"
    family = "latent"
    likelihood = "bound"
    Config = ADAConfig
    PRESETS = PRESETS
    notebook = "notebooks/11_long_range_structure.ipynb"
    generate_options = {"method": METHODS}

    def __init__(self, config: ADAConfig):
        super().__init__(config)
        if config.bottleneck not in BOTTLENECKS:
            raise ParameterError(f"bottleneck={config.bottleneck!r} must be one of {', '.join(BOTTLENECKS)}")
        if config.train_stage not in self.train_stages:
            raise ParameterError(f"train_stage={config.train_stage!r} must be one of {', '.join(self.train_stages)}")
        specs = self.level_specs()
        for i, spec in enumerate(specs[:-1]):  # the level above writes these codes: 2**bits symbols
            check_power_of_two(f"n_codes of level {i + 1}", spec["n_codes"])
        self.levels = torch.nn.ModuleList(ADALevel(**spec) for spec in specs)
        c = config
        self.prior = CodePrior(specs[-1]["n_codes"], c.prior_dim, c.prior_layers, c.prior_heads, c.prior_context)

    # ---- the structure ----------------------------------------------------------------------------------
    def decoder_config(self, **changes) -> LevelDecoderConfig:
        """The level-1 WaveNet decoder's config (the shape fields of this config, then ``changes``)."""
        c = self.config
        shared = LevelDecoderConfig.__dataclass_fields__.keys() & type(c).__dataclass_fields__.keys()
        fields = {k: getattr(c, k) for k in shared}
        fields.update(sample_rate=c.sample_rate, code_dim=c.code_dim, hop_length=c.hop_length, start_symbol=False)
        fields.update(changes)
        return LevelDecoderConfig(**fields)

    def level_specs(self) -> list[dict]:
        """The keyword arguments of each :class:`ADALevel`, finest first."""
        c = self.config
        decoder = self.decoder_config()
        frames = c.batch_size * -(-(c.crop_samples + self._receptive_field(decoder)) // c.hop_length)
        return [dict(hop=c.hop_length, n_codes=c.n_codes, code_dim=c.code_dim, channels=c.encoder_channels,
                     bottleneck=c.bottleneck, ema_decay=c.ema_decay, decoder=decoder,
                     dead_threshold=dead_code_threshold(frames, c.n_codes))]

    @staticmethod
    def _receptive_field(decoder: LevelDecoderConfig) -> int:
        """A decoder config's receptive field in steps (as :attr:`WaveNet.receptive_field`)."""
        return (decoder.kernel_size - 1) * decoder.n_stacks * (2**decoder.n_layers - 1) + 1

    def level_crops(self) -> list[int]:
        """Decoder targets per item and training step, for each level."""
        return [self.config.crop_samples]

    @property
    def train_stages(self) -> tuple[str, ...]:
        """What ``train_stage`` may name: everything, one level's autoencoder, or the top prior."""
        return ("all", *(f"level{i + 1}" for i in range(len(self.level_specs()))), "prior")

    @property
    def stages(self) -> tuple[Stage, ...]:
        n = len(self.levels)
        below = ("audio", *(f"codes {i}" for i in range(1, n + 1)))
        decoders = tuple(Stage(f"level {i + 1} decoder ({below[i]} | codes {i + 1})", i, i + 1) for i in range(n))
        return (*decoders, Stage(f"prior (codes {n})", n, None))

    def level_hops(self) -> tuple[int, ...]:
        hops = [1]
        for level in self.levels:
            hops.append(hops[-1] * level.hop)
        return tuple(hops)

    def level_classes(self) -> tuple[int, ...]:
        return (self.levels[0].decoder.n_classes, *(level.quantiser.n_codes for level in self.levels))

    @property
    def total_hop(self) -> int:
        return self.level_hops()[-1]

    def context_seconds(self) -> dict[str, float]:
        """Seconds of the past each stage sees in its own sequence (the decoders' receptive fields,
        the prior's context), converted at that level's rate."""
        hops = self.level_hops()
        out = {s.name: level.decoder.receptive_field * hops[i] / self.sample_rate
               for i, (s, level) in enumerate(zip(self.stages, self.levels))}
        out[self.stages[-1].name] = self.prior.context * hops[-1] / self.sample_rate
        return out

    @property
    def default_seconds(self) -> float:
        return 2.0

    # ---- sequences and bits ---------------------------------------------------------------------------
    def _padded(self, x: torch.Tensor) -> torch.Tensor:
        """Right-pad ``(batch, 1, time)`` with silence to a whole number of top-level codes."""
        return torch.nn.functional.pad(x, (0, (-x.shape[-1]) % self.total_hop))

    def level_sequences(self, x: torch.Tensor) -> list[torch.Tensor]:
        seqs = [self.levels[0].targets(x)]
        inputs = self._padded(x)
        for level in self.levels:
            inputs = level.codes_of(inputs)
            seqs.append(inputs)
        return seqs

    def stage_bits(self, index: int, sequences: list[torch.Tensor]) -> torch.Tensor:
        if index == len(self.levels):
            return self.prior.bits(sequences[-1])
        level = self.levels[index]
        return level.decoder.teacher_bits(sequences[index], level.lookup(sequences[index + 1]))

    def log_prob(self, audio, cond=None) -> torch.Tensor:
        """Upper bound on bits per sample: every decoder's bits plus the prior's, per sample of the clip."""
        self.check_cond(cond, 1)
        return sum(self.bits_by_stage(audio).values())

    def encode(self, audio, cond=None) -> Encoding:
        """Every level's codes (``codes_1`` finest) and each top-level code's prior bits."""
        x = self.samples_of(audio)
        self.check_cond(cond, x.shape[0])
        with torch.no_grad():
            seqs = self.level_sequences(x)
            data = {f"codes_{i}": seqs[i] for i in range(1, len(seqs))}
            data["prior_bits"] = self.prior.bits(seqs[-1])
        return Encoding("codes", data, self.sample_rate,
                        meta={"n_samples": x.shape[-1], "hops": self.level_hops()})

    # ---- sampling -------------------------------------------------------------------------------------
    def _descend(self, codes: torch.Tensor, level: int, n_samples: int, temperature: float, generator,
                 progress=None, method: str = "auto", done: int = 0, total: int | None = None) -> torch.Tensor:
        """Sample every sequence below ``level`` from its codes, down to samples ``(batch, 1, n_samples)``.

        1. ``level``'s codes are looked up in its codebook (held for ``hop`` steps by the decoder);
        2. that level's WaveNet samples the sequence below; 3. repeat down to the waveform.
        """
        hops = self.level_hops()
        total = total or done + sum(codes.shape[1] * hops[level] // hops[i] for i in range(level))
        for i in range(level, 0, -1):
            lev = self.levels[i - 1]
            n_steps = n_samples if i == 1 else codes.shape[1] * lev.hop
            report = None if progress is None else (lambda d, _t, off=done: progress(off + d, total))
            codes = lev.decoder.sample_codes(codes.shape[0], n_steps, {"latent": lev.lookup(codes)}, temperature,
                                             generator, report, method)
            done += n_steps
        return mu_law_decode(codes, self.levels[0].decoder.config.bits)[:, None]

    def _n_top(self, n_samples: int) -> int:
        return -(-n_samples // self.total_hop)

    def _sample_latent(self, n, seconds, cond, temperature, generator) -> Encoding:
        """Top-level codes for ``seconds`` of audio, drawn from the prior."""
        n_samples = max(1, int(round(seconds * self.sample_rate)))
        codes = self.prior.sample(n, self._n_top(n_samples), temperature=temperature, generator=generator)
        top = len(self.levels)
        return Encoding("codes", {f"codes_{top}": codes}, self.sample_rate,
                        meta={"n_samples": n_samples, "hops": self.level_hops()})

    def _generate(self, n, seconds, cond, temperature, generator, progress, method: str = "auto"):
        n_samples = max(1, int(round(seconds * self.sample_rate)))
        n_top = self._n_top(n_samples)
        hops = self.level_hops()
        total = n_top + sum(n_top * hops[-1] // hops[i] for i in range(1, len(hops) - 1)) + n_samples
        report = None if progress is None else (lambda d, _t: progress(d, total))
        # 1. the top codes from the prior, 2. every level below from its WaveNet
        codes = self.prior.sample(n, n_top, temperature=temperature, generator=generator, progress=report)
        return self._descend(codes, len(self.levels), n_samples, temperature, generator, progress, method,
                             done=n_top, total=total)

    def decode(self, encoding: Encoding, *, temperature: float | None = None, generator=None, progress=None,
               method: str = "auto") -> Audio:
        """A sample of the waveform given the finest codes in ``encoding`` (levels below them are sampled)."""
        from ..dsp.spectral import make_generator

        present = [i for i in range(1, len(self.levels) + 1) if f"codes_{i}" in encoding.data]
        if not present:
            raise ParameterError(f"the encoding holds no codes_1..codes_{len(self.levels)}; "
                                 "pass what encode() or sample_latent() returns")
        level = present[0]
        codes = encoding.data[f"codes_{level}"].to(self.device)
        n_samples = int(encoding.meta.get("n_samples") or codes.shape[1] * self.level_hops()[level])
        temperature = self.default_temperature if temperature is None else float(temperature)
        with torch.no_grad():
            y = self._descend(codes, level, n_samples, temperature, make_generator(generator), progress, method)
        return Audio(y.clamp(-1, 1).float().cpu(), self.sample_rate)

    def reconstruct(self, audio, level, *, temperature=None, generator=None) -> Audio:
        """Encode ``audio`` to level ``level`` and sample everything below from those codes alone."""
        if not 1 <= level <= len(self.levels):
            raise ParameterError(f"level={level} must be in 1..{len(self.levels)}")
        enc = self.encode(audio)
        return self.decode(Encoding("codes", {f"codes_{level}": enc.data[f"codes_{level}"]}, self.sample_rate,
                                    meta=enc.meta), temperature=temperature, generator=generator)

    # ---- training ---------------------------------------------------------------------------------------
    def _window(self, level: ADALevel, crop: int, span: int) -> int:
        """Steps of a level's input one training window holds: a crop with a full receptive field before
        it, in whole codes (at most ``span``)."""
        return min(span, -(-(crop + level.decoder.receptive_field) // level.hop) * level.hop)

    def _train_level(self, i: int, level: ADALevel, crop: int, inputs: torch.Tensor, generator, logs) -> torch.Tensor:
        """Level ``i``'s loss on a random, hop-aligned window of ``inputs`` (samples or codes):
        decoder cross-entropy on a crop of it, plus the bottleneck's commitment or diversity loss."""
        c = self.config
        span = inputs.shape[-1]
        window = self._window(level, crop, span)
        first = level.hop * int(torch.randint((span - window) // level.hop + 1, (), generator=generator))
        piece = inputs[..., first: first + window]
        z_q, codes, aux = level.quantise(piece, generator)
        rec = level.decoder.crop_loss(level.targets(piece), z_q, crop, generator)
        logs[f"level{i}_bits"] = rec.detach() / math.log(2)
        logs[f"level{i}_{'commitment' if c.bottleneck == 'vq' else 'diversity'}"] = aux.detach()
        logs[f"level{i}_codes_used"] = float(torch.unique(codes).numel())
        return rec + (c.commitment if c.bottleneck == "vq" else c.diversity) * aux

    def training_step(self, batch, generator=None) -> dict:
        """Each trained level: decoder cross-entropy on a random crop of a window it encodes (plus the
        bottleneck's loss); the prior: cross-entropy on a window of the top codes.

        1. Level 1 trains on a window of the segment's samples.
        2. For the levels above and the prior, a span of the segment long enough for their windows is
           encoded level by level without a gradient or a codebook update (the levels below are frozen
           for them, as when the paper trains its levels in sequence); each trained level takes a
           window of the codes below it, the prior a window of the top codes.
        """
        samples, _ = batch
        c = self.config
        hops = self.level_hops()
        x = samples.to(self.device)
        x = x[..., : x.shape[-1] - x.shape[-1] % self.total_hop]
        crops = self.level_crops()
        trained = set(self.train_stages[1:]) if c.train_stage == "all" else {c.train_stage}
        loss, logs = 0.0, {}
        if "level1" in trained:
            loss = loss + self._train_level(1, self.levels[0], crops[0], x, generator, logs)
        # how many levels' codes the stages above level 1 need: all for the prior, those below a level
        encoded = len(self.levels) if "prior" in trained else max(int(s[5:]) for s in trained) - 1
        if encoded:
            needs = [self.prior.context * hops[-1]] if "prior" in trained else []
            needs += [self._window(self.levels[i - 1], crops[i - 1], 1 << 30) * hops[i - 1]
                      for i in range(2, len(self.levels) + 1) if f"level{i}" in trained]
            step = hops[encoded]
            span = min(x.shape[-1], -(-max(needs) // step) * step)
            first = step * int(torch.randint((x.shape[-1] - span) // step + 1, (), generator=generator))
            # a margin of a few top codes either side (where the segment has it), so that the codes
            # kept are those a whole clip would give, not those of an edge padded with silence
            left, right = min(first, MARGIN_CODES * step), min(x.shape[-1] - first - span, MARGIN_CODES * step)
            inputs = x[..., first - left: first + span + right]
            for i in range(1, encoded + 1):
                inputs = self.levels[i - 1].codes_of(inputs)  # level i's codes: level i + 1's input
                core = inputs[..., left // hops[i]: inputs.shape[-1] - right // hops[i]]
                if f"level{i + 1}" in trained:
                    loss = loss + self._train_level(i + 1, self.levels[i], crops[i], core, generator, logs)
            if "prior" in trained:
                prior = self.prior.loss(core, generator=generator)
                loss = loss + prior
                logs["prior_bits_per_code"] = prior.detach() / math.log(2)
        return {"loss": loss, **logs}

    # ---- figure -------------------------------------------------------------------------------------------
    def visualise(self, audio=None):
        """Codebook usage of every level and, for a clip, its codes over time."""
        fields = ", ".join(f"{k}: {v * 1000:.0f} ms" if v < 1 else f"{k}: {v:.1f} s"
                           for k, v in self.context_seconds().items())
        return hierarchy_figure(self, [level.quantiser for level in self.levels], audio,
                                title=f"{self.name} ({self.config.bottleneck}); context {fields}")


__all__ = ["ADA", "ADAConfig", "PRESETS"]
