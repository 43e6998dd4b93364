"""What the models of long-range structure share: a stack of discrete code sequences, finest first.

An audio clip is explained by sequences at falling rates: level 0 is the waveform (8-bit mu-law
samples), level 1 one code every ``hop_1`` samples, level 2 one code every ``hop_1 * hop_2`` samples,
and so on. A *stage* is one conditional model of the stack: it predicts the sequence of one level
given the codes of the level above (a WaveNet decoder, a Transformer upsampler), or the top codes
alone (the prior). :class:`CodeHierarchy` declares that structure, so that the same measurements
(bits per level, level consistency, priors against a unigram model) run on ``ada``,
``hierarchical_wavenet`` and ``jukebox_mini``.

The pieces here:

- :class:`CodePrior`: a causal Transformer over codes (the blocks of the Sparse Transformer with
  dense attention), optionally conditioned on the codes of the level above; teacher-forced bits,
  and cached sampling with windows that slide by half a context past its length.
- :class:`LevelDecoder`: a WaveNet (wavenet.py's network and samplers, the fast one included)
  over the sequence of one level, locally conditioned on the latents of the level above,
  upsampled by holding each frame for ``hop_length`` steps (as midi2wave holds its roll frames).
- :class:`CodeEncoder`: strided convolutions over a code sequence (the encoder of an upper level).
- :class:`ADALevel`: one autoregressive discrete autoencoder level: encoder, bottleneck (vector
  quantiser or argmax), WaveNet decoder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..audio import Audio
from ..dsp.quantise import mu_law_compress, mu_law_encode
from ..errors import ParameterError
from ..layers import ArgmaxQuantiser, DownsampleEncoder, VectorQuantiser
from .base import sample_categorical
from .capabilities import LatentModel
from .sparse_transformer import Block
from .wavenet import WaveNet, WaveNetShape

BOTTLENECKS = ("vq", "amae")


def check_power_of_two(name: str, value: int) -> int:
    """``value`` if it is a power of two (>= 2), else a ParameterError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 2 or value & (value - 1):
        raise ParameterError(f"{name}={value!r} must be a power of two (2, 4, 8, ...)")
    return value


# ---- the declared structure ------------------------------------------------------------------------
@dataclass(frozen=True)
class Stage:
    """One conditional model of a code hierarchy.

    Attributes
    ----------
    name : str
        How figures and tables call it (``"level 1 decoder"``, ``"top prior"``).
    target : int
        The level it predicts: 0 is the waveform (mu-law samples), ``k >= 1`` the k-th code sequence.
    cond : int or None
        The level whose codes it is conditioned on (None: an unconditional prior).
    """

    name: str
    target: int
    cond: int | None


class CodeHierarchy(LatentModel):
    """A model whose audio is explained by a stack of code sequences (finest first) and a stage per level.

    Subclasses implement :attr:`stages`, :meth:`level_hops`, :meth:`level_classes`,
    :meth:`level_sequences`, :meth:`stage_bits` and :meth:`reconstruct`. Level 0 is the waveform as
    8-bit mu-law samples; whether a stage models it is for the subclass to say.
    """

    @property
    def stages(self) -> tuple[Stage, ...]:
        raise NotImplementedError

    def level_hops(self) -> tuple[int, ...]:
        """Samples per step of every level, level 0 (the waveform: 1) first."""
        raise NotImplementedError

    def level_classes(self) -> tuple[int, ...]:
        """Symbols per step of every level (256 for 8-bit audio, then each codebook's size)."""
        raise NotImplementedError

    def level_sequences(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Samples ``(batch, 1, time)`` -> every level's sequence ``(batch, steps)``, level 0 first."""
        raise NotImplementedError

    def stage_bits(self, index: int, sequences: list[torch.Tensor]) -> torch.Tensor:
        """Bits of each target of stage ``index`` given ``sequences`` (teacher forced): ``(batch, steps)``.

        The conditioning level's codes are read from ``sequences`` too, so a caller can swap them
        (shuffled, from another piece) and see what the stage makes of it.
        """
        raise NotImplementedError

    def reconstruct(self, audio: Audio, level: int, *, temperature: float | None = None,
                    generator=None) -> Audio:
        """Audio from level ``level``'s codes of ``audio`` alone: what that level hears."""
        raise NotImplementedError

    def context_seconds(self) -> dict[str, float]:
        """Seconds of its own sequence's past each stage sees (a decoder's receptive field, a prior's
        context), in the order of :attr:`stages`."""
        raise NotImplementedError

    def samples_of(self, audio: Audio) -> torch.Tensor:
        """``audio`` checked and as samples ``(batch, 1, time)`` on the model's device."""
        return self.check_audio_input(audio)

    def bits_by_stage(self, audio: Audio) -> dict[str, torch.Tensor]:
        """Each stage's share of the bits per sample of ``audio``: ``{stage name: (batch,)}``.

        A stage's bits summed over its targets, divided by the clip's samples: the shares add up to
        the bound ``log_prob`` gives (where every stage has a likelihood).
        """
        x = self.samples_of(audio)
        with torch.no_grad():
            sequences = self.level_sequences(x)
            return {stage.name: self.stage_bits(i, sequences).sum(-1) / x.shape[-1]
                    for i, stage in enumerate(self.stages)}


def hierarchy_figure(model: CodeHierarchy, codebooks: list, audio: Audio | None = None, title: str = ""):
    """Codebook usage of every level and, for a clip, its code sequences over time (one row per level)."""
    from ..viz import new_figure

    n_levels = len(codebooks)
    fig, axes = new_figure(n_levels, 2, width=10, row_height=2.0)
    sequences = None
    if audio is not None:
        with torch.no_grad():
            sequences = model.level_sequences(model.samples_of(audio))
    hops = model.level_hops()
    for i, quantiser in enumerate(codebooks):
        level = i + 1
        ax = axes[i, 0]
        if isinstance(quantiser, VectorQuantiser):
            counts = quantiser.ema_count.detach().cpu().numpy()
            share = counts / max(counts.sum(), 1e-9)
            alive = int((counts > quantiser.dead_threshold).sum())
            note = f"{alive} of {len(counts)} alive, {int(quantiser.restarts)} restarts"
        else:
            share = torch.softmax(torch.zeros(quantiser.n_codes), 0).numpy()
            note = "argmax codes (usage shown for a clip)"
            if sequences is not None:
                share = torch.bincount(sequences[level][0].cpu(), minlength=quantiser.n_codes).float().numpy()
                share = share / max(share.sum(), 1)
        ax.bar(range(len(share)), share, width=1.0)
        ax.set_title(f"level {level} (hop {hops[level]}): {note}", fontsize=9)
        ax.set_ylabel("share of use")
        ax = axes[i, 1]
        if sequences is not None:
            codes = sequences[level][0].cpu().numpy()
            t = [j * hops[level] / model.sample_rate for j in range(len(codes))]
            ax.step(t, codes, where="post", lw=0.8)
            ax.set_title(f"the clip as {len(codes)} level-{level} codes "
                         f"({model.sample_rate / hops[level]:g} per second)", fontsize=9)
            ax.set_xlabel("seconds")
        else:
            ax.text(0.5, 0.5, f"one code every {hops[level]} samples ({model.sample_rate / hops[level]:g} Hz);\n"
                    "pass a clip to see its codes", ha="center", va="center")
            ax.set_axis_off()
    axes[-1, 0].set_xlabel("code")
    if title:
        fig.suptitle(title)
    return fig


# ---- the Transformer over codes ---------------------------------------------------------------------
class CodePrior(nn.Module):
    """A causal Transformer over a code sequence, optionally conditioned on the codes of the level above.

    Every window the network sees starts with a start symbol, then up to ``context - 1`` codes, and
    positions are counted inside the window: training crops are such windows cut anywhere in the
    sequence, so a window that starts mid-piece is what the model knows. Past the context the
    window slides by half a context (:meth:`window_start`); scoring and sampling use the same
    windows, so they give every code the same distribution.

    The conditioning (an upsampler, Jukebox's term): the upper level's codes are embedded, mixed by
    a non-causal convolution (they are all known), each held for ``ratio`` lower positions and told
    where inside that span it is (a learned phase embedding), then added to the input embedding
    of the position whose code it helps predict.

    Parameters
    ----------
    n_codes : int
        Symbols of this level.
    d_model, n_layers, n_heads, mlp_ratio : int
        The Transformer (pre-LayerNorm blocks of :mod:`workbench.models.sparse_transformer`, dense
        causal attention through ``scaled_dot_product_attention``).
    context : int
        Positions one window holds (start symbol included).
    upper_codes : int
        Symbols of the level above (0: unconditional).
    ratio : int
        Lower positions per upper code.
    """

    def __init__(self, n_codes: int, d_model: int = 64, n_layers: int = 2, n_heads: int = 2, context: int = 256,
                 mlp_ratio: int = 4, upper_codes: int = 0, ratio: int = 1):
        super().__init__()
        if context < 4 or context % 2:
            raise ParameterError(f"context={context} must be an even number of positions >= 4")
        if d_model % n_heads:
            raise ParameterError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
        self.n_codes, self.context, self.ratio = n_codes, context, ratio
        self.start = n_codes
        self.token = nn.Embedding(n_codes + 1, d_model)
        self.position = nn.Embedding(context, d_model)
        self.blocks = nn.ModuleList(Block(d_model, n_heads, mlp_ratio, "dense") for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, n_codes)
        self.upper_codes = upper_codes
        if upper_codes:
            self.upper_embed = nn.Embedding(upper_codes, d_model)
            self.upper_mix = nn.Conv1d(d_model, d_model, 3, padding=1)
            self.phase = nn.Embedding(ratio, d_model)
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        for block in self.blocks:  # the residual branches' outputs scaled by 1 / sqrt(2N), as GPT-2
            for out in (block.proj, block.mlp[-1]):
                out.weight.data.mul_(1.0 / math.sqrt(2 * n_layers))

    @property
    def window_hop(self) -> int:
        return self.context // 2

    def window_start(self, t: int) -> int:
        """Index of the first code in the window that predicts code ``t`` (the window holds the start
        symbol, then codes ``window_start(t) .. t - 1``)::

            codes  0 1 2 ... context-1 | context ... context+hop-1 | ...
            window [S 0 1 ... context-2]        predicts 0 .. context-1
                       [S hop ... hop+context-2] predicts the next hop codes
        """
        if t < self.context:
            return 0
        hop = self.window_hop
        return hop * -(-(t + 1 - self.context) // hop)

    def condition(self, upper: torch.Tensor | None, n: int) -> torch.Tensor | None:
        """The upper level's codes ``(batch, m)`` -> an input bias ``(batch, n, d_model)`` per lower position."""
        if upper is None:
            if self.upper_codes:
                raise ParameterError("this upsampler is conditioned on the codes of the level above; pass them")
            return None
        e = self.upper_embed(upper).transpose(1, 2)  # (batch, d, m)
        e = F.gelu(self.upper_mix(e)).transpose(1, 2)  # (batch, m, d)
        e = e.repeat_interleave(self.ratio, dim=1)  # (batch, m * ratio, d): each upper code held for ratio steps
        slots = torch.arange(e.shape[1], device=e.device)
        e = e + self.phase(slots % self.ratio)
        if e.shape[1] < n:
            e = F.pad(e, (0, 0, 0, n - e.shape[1]))
        return e[:, :n]

    def _embed(self, tokens: torch.Tensor, first_slot: int, cond: torch.Tensor | None) -> torch.Tensor:
        slots = torch.arange(first_slot, first_slot + tokens.shape[1], device=tokens.device)
        x = self.token(tokens) + self.position(slots)
        return x if cond is None else x + cond

    def _window_logits(self, codes: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """One window: the start symbol then ``codes`` ``(batch, m < context)`` -> logits
        ``(batch, n_codes, m + 1)`` of the codes at slots 0 .. m (``cond`` ``(batch, m + 1, d)``)."""
        start = torch.full((codes.shape[0], 1), self.start, dtype=torch.long, device=codes.device)
        x = self._embed(torch.cat([start, codes], dim=1), 0, cond)
        for block in self.blocks:
            x = block(x, 1, 1)
        return self.head(self.ln_f(x)).transpose(1, 2)

    def logits(self, codes: torch.Tensor, upper: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher-forced logits ``(batch, n_codes, n)`` of every code of ``codes`` ``(batch, n)``,
        each from the window :meth:`window_start` gives it (one forward pass per window)."""
        n = codes.shape[1]
        cond = self.condition(upper, n)
        pieces, t = [], 0
        while t < n:
            s = self.window_start(t)
            end = min(n, s + self.context)  # this window predicts codes t .. end - 1
            logits = self._window_logits(codes[:, s: end - 1], None if cond is None else cond[:, s:end])
            pieces.append(logits[..., t - s:])
            t = end
        return torch.cat(pieces, dim=-1)

    def bits(self, codes: torch.Tensor, upper: torch.Tensor | None = None) -> torch.Tensor:
        """Bits of every code ``(batch, n)`` under the model."""
        return F.cross_entropy(self.logits(codes, upper), codes, reduction="none") / math.log(2)

    def loss(self, codes: torch.Tensor, upper: torch.Tensor | None = None, generator=None) -> torch.Tensor:
        """Cross-entropy (nats per code) on one random window of ``codes`` ``(batch, n)``."""
        n = codes.shape[1]
        length = min(self.context, n)
        a = int(torch.randint(n - length + 1, (), generator=generator))
        cond = self.condition(upper, n)
        logits = self._window_logits(codes[:, a: a + length - 1], None if cond is None else cond[:, a: a + length])
        return F.cross_entropy(logits, codes[:, a: a + length])

    @torch.no_grad()
    def sample(self, n: int, length: int, upper: torch.Tensor | None = None, temperature: float = 1.0,
               generator=None, progress=None, return_logits: bool = False):
        """Draw ``length`` codes per item with a key/value cache; past the context the window slides.

        Returns codes ``(n, length)`` (and every step's logits ``(n, n_codes, length)``).
        """
        device = self.token.weight.device
        cond = self.condition(upper, length)
        codes = torch.zeros(n, length, dtype=torch.long, device=device)
        caches, cache_start, all_logits = None, None, []
        for t in range(length):
            # 1. the window that predicts code t: the start symbol, then codes s .. t - 1
            s = self.window_start(t)
            slot = t - s
            if s != cache_start:
                # 2. a new window: fill the cache with its inputs before this slot
                caches, cache_start = self._prefill(codes[:, s: t - 1] if slot else codes[:, :0], n, s, cond), s
            # 3. this slot's input (the start symbol or the previous code) through every layer
            token = torch.full((n,), self.start, device=device) if slot == 0 else codes[:, t - 1]
            logits = self._decode_step(token, slot, None if cond is None else cond[:, t], caches)
            # 4. sample and append
            codes[:, t] = sample_categorical(logits, temperature, generator)
            if return_logits:
                all_logits.append(logits)
            if progress is not None and (t % 64 == 0 or t == length - 1):
                progress(t + 1, length)
        return (codes, torch.stack(all_logits, -1)) if return_logits else codes

    def _prefill(self, codes: torch.Tensor, n: int, s: int, cond) -> list:
        """Caches ``(batch, heads, context, head_dim)`` per layer holding slots 0 .. len(codes) (the start
        symbol and ``codes``)."""
        block0 = self.blocks[0]
        d = self.token.weight.shape[1]
        shape = (n, block0.n_heads, self.context, d // block0.n_heads)
        dtype, device = self.token.weight.dtype, self.token.weight.device
        caches = [(torch.zeros(shape, dtype=dtype, device=device), torch.zeros(shape, dtype=dtype, device=device))
                  for _ in self.blocks]
        if codes.shape[1] == 0:
            return caches
        m = codes.shape[1] + 1
        start = torch.full((n, 1), self.start, dtype=torch.long, device=device)
        x = self._embed(torch.cat([start, codes], dim=1), 0, None if cond is None else cond[:, s: s + m])
        for block, (cache_k, cache_v) in zip(self.blocks, caches):
            kv: list = []
            x = block(x, 1, 1, kv)
            cache_k[:, :, :m] = kv[0][0]
            cache_v[:, :, :m] = kv[0][1]
        return caches

    def _decode_step(self, token: torch.Tensor, slot: int, cond_t, caches: list) -> torch.Tensor:
        x = self._embed(token[:, None], slot, None if cond_t is None else cond_t[:, None])  # (batch, 1, d)
        for block, (cache_k, cache_v) in zip(self.blocks, caches):
            q, k, v = block.heads(x)  # (batch, heads, 1, head_dim)
            cache_k[:, :, slot] = k[:, :, 0]
            cache_v[:, :, slot] = v[:, :, 0]
            attended = F.scaled_dot_product_attention(q, cache_k[:, :, : slot + 1], cache_v[:, :, : slot + 1])
            x = block.finish(x, attended)
        return self.head(self.ln_f(x))[:, 0]


# ---- the WaveNet decoder of one level --------------------------------------------------------------
@dataclass(frozen=True)
class LevelDecoderConfig(WaveNetShape):
    """A :class:`LevelDecoder`: the WaveNet's shape, the latents' width, and what it writes."""

    sample_rate: int = 8000  # steps per second of the sequence it writes
    code_dim: int = 32  # channels of the latents it is conditioned on
    start_symbol: bool = False  # True: it writes codes (2**bits symbols) after a start symbol, not audio


class LevelDecoder(WaveNet):
    """A WaveNet over one level's sequence, locally conditioned on the latents of the level above.

    The latents ``(batch, code_dim, frames)`` go through a small non-causal conv net at frame rate
    (it may look one frame either side), then a projection to every gate unit; frame ``j`` is held
    around step ``j * hop_length`` (:meth:`WaveNet.layer_bias`). Built from wavenet.py's hooks, so
    the naive, cached and fast samplers all work. For audio the sequence starts from silence; for
    codes (``start_symbol``) from a start symbol, the extra row of the input embedding.
    """

    name = "level_decoder"
    Config = LevelDecoderConfig
    aid_fields = ()

    def __init__(self, config: LevelDecoderConfig):
        super().__init__(config)
        if config.start_symbol:
            self.silence = self.n_classes  # the start symbol: an input the output never produces
            self.embed = nn.Embedding(self.n_classes + 1, config.residual_channels)

    def _build_conditioning(self, n_bias: int) -> None:
        c = self.config
        self.frame_net = nn.Sequential(
            nn.Conv1d(c.code_dim, c.cond_channels, 3, padding=1), nn.Tanh(),
            nn.Conv1d(c.cond_channels, c.cond_channels, 3, padding=1), nn.Tanh(),
        )
        self.local_proj = nn.Conv1d(c.cond_channels, n_bias, 1)
        self.global_bias_vector = nn.Parameter(torch.zeros(n_bias))

    @property
    def conditioning(self):
        return ()

    def prepare_cond(self, cond: dict, batch: int, n_samples: int):
        """``cond = {"latent": (batch, code_dim, frames)}`` -> (global bias, local bias per frame, None).

        Frames past the latents' end (the frame net's margin) are zero latents.
        """
        z = cond["latent"].to(self.embed.weight.dtype)
        n_frames = self.n_frames_for(n_samples)
        z = F.pad(z[..., :n_frames], (0, max(0, n_frames - z.shape[-1])))
        local = self.local_proj(self.frame_net(z))  # (batch, layers * gate, frames)
        return self.global_bias_vector.expand(batch, -1), local, None

    def teacher_bits(self, targets: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        """Bits of every step of ``targets`` ``(batch, n)`` given ``latent``, from silence (or the start
        symbol) before step 0: ``(batch, n)``."""
        inputs = F.pad(targets[:, :-1], (1, 0), value=self.silence)
        logits = self.forward(inputs, {"latent": latent}, start=-1)
        return F.cross_entropy(logits, targets, reduction="none") / math.log(2)

    def crop_loss(self, targets: torch.Tensor, latent: torch.Tensor, length: int, generator=None) -> torch.Tensor:
        """Cross-entropy (nats per step) on a random crop of ``length`` targets of a window ``(batch, n)``
        whose latents are ``latent``: as :meth:`WaveNet.training_step`, a crop starts at step 0 (after
        silence) with probability ``onset_share``, else late enough that every prediction sees a full
        receptive field of the window."""
        n = targets.shape[-1]
        length = min(length, n)
        rf = self.receptive_field
        draw = torch.rand(2, generator=generator)
        if draw[0] < self.config.onset_share or n - length < rf:
            inputs, start, keep, u = F.pad(targets[:, : length - 1], (1, 0), value=self.silence), -1, 0, 0
        else:
            u = rf + int(draw[1] * (n - length - rf + 1))
            inputs, start, keep = targets[:, u - rf: u + length - 1], u - rf, rf - 1
        logits = self.forward(inputs, {"latent": latent}, start=start)[..., keep:]
        return F.cross_entropy(logits, targets[:, u: u + length])


# ---- encoders and one ADA level -----------------------------------------------------------------------
class CodeEncoder(nn.Module):
    """A code sequence ``(batch, n)`` -> latents ``(batch, out, n / 2**n_down)``: embedding, stride-2 convs."""

    def __init__(self, n_classes: int, out_channels: int, hidden: int = 32, n_down: int = 3):
        super().__init__()
        self.embed = nn.Embedding(n_classes, hidden)
        layers = [nn.Conv1d(hidden, hidden, 3, padding=1), nn.GELU()]
        for _ in range(n_down):
            layers += [nn.Conv1d(hidden, hidden, 4, stride=2, padding=1), nn.GELU()]
        layers += [nn.Conv1d(hidden, out_channels, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return self.net(self.embed(codes).transpose(1, 2))


class FrameNorm(nn.Module):
    """Centre, then normalise every frame across channels: ``(batch, channels, frames)`` -> the same.

    A fresh encoder's outputs share a large common offset, so every vector starts near every other
    and a vector quantiser puts them all on one code (and a decoder that can ignore its codes
    never teaches the encoder otherwise). The offset is tracked as a running mean of the frames
    (updated in training, under a gradient, from each batch; no gradient flows into it) and
    subtracted; each frame is then scaled to mean 0 and variance 1 across channels. The same
    function is applied in training and at inference, and a frame's code never depends on the
    other frames of its batch.
    """

    def __init__(self, channels: int, momentum: float = 0.1):
        super().__init__()
        self.momentum = momentum
        self.register_buffer("mean", torch.zeros(channels))
        self.register_buffer("initialised", torch.zeros(()))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.training and torch.is_grad_enabled():
            with torch.no_grad():
                batch_mean = z.mean(dim=(0, 2))
                if not bool(self.initialised):
                    self.mean.copy_(batch_mean)
                    self.initialised.fill_(1.0)
                else:
                    self.mean.lerp_(batch_mean, self.momentum)
        z = z - self.mean[:, None]
        return F.layer_norm(z.transpose(1, 2), (z.shape[1],)).transpose(1, 2)


#: A code whose running usage (EMA of its assignments per batch) falls below this is restarted on a
#: random encoder output of the batch: Jukebox's rule, usage under one per batch...
DEAD_CODE_USAGE = 1.0
#: ... or under this share of a fair share of the batch, for small batches (where one per batch
#: would restart most of a codebook at every step).
DEAD_CODE_SHARE = 0.1


def dead_code_threshold(frames_per_batch: int, n_codes: int) -> float:
    """The usage below which a code is restarted: :data:`DEAD_CODE_USAGE`, or :data:`DEAD_CODE_SHARE`
    of a fair share (``frames_per_batch / n_codes``) when that is smaller."""
    return min(DEAD_CODE_USAGE, DEAD_CODE_SHARE * frames_per_batch / n_codes)


def make_quantiser(bottleneck: str, n_codes: int, code_dim: int, ema_decay: float,
                   dead_threshold: float = DEAD_CODE_USAGE) -> nn.Module:
    """A :class:`VectorQuantiser` (``"vq"``; dead codes restarted below ``dead_threshold``) or an
    :class:`ArgmaxQuantiser` (``"amae"``)."""
    if bottleneck == "vq":
        return VectorQuantiser(n_codes, code_dim, ema_decay, dead_threshold=dead_threshold)
    if bottleneck == "amae":
        return ArgmaxQuantiser(n_codes, code_dim)
    raise ParameterError(f"bottleneck={bottleneck!r} must be one of {', '.join(BOTTLENECKS)}")


def quantiser_codes(quantiser: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """The codes of encoder outputs ``z`` ``(batch, channels, frames)`` with no codebook update: ``(batch, frames)``."""
    if isinstance(quantiser, ArgmaxQuantiser):
        return quantiser.normalise(z).argmax(dim=1)
    b, d, t = z.shape
    return quantiser.nearest(z.transpose(1, 2).reshape(-1, d)).view(b, t)


class ADALevel(nn.Module):
    """One autoregressive discrete autoencoder: strided encoder, discrete bottleneck, WaveNet decoder.

    It autoencodes the sequence below it: the waveform (``input_classes=0``; the encoder hears it
    mu-law companded, the decoder writes 8-bit mu-law samples) or the codes of the level below
    (``input_classes`` symbols; the encoder embeds them, the decoder writes them).
    """

    def __init__(self, *, hop: int, n_codes: int, code_dim: int, channels: int, bottleneck: str, ema_decay: float,
                 decoder: LevelDecoderConfig, input_classes: int = 0, dead_threshold: float = DEAD_CODE_USAGE):
        super().__init__()
        self.hop = check_power_of_two("hop", hop)
        self.input_classes = input_classes
        n_down = int(math.log2(hop))
        out = code_dim if bottleneck == "vq" else n_codes
        encoder = (DownsampleEncoder(out, channels, n_down) if not input_classes
                   else CodeEncoder(input_classes, out, channels, n_down))
        # both bottlenecks hear centred, normalised frames: codes then depend on the input from the start
        self.encoder = nn.Sequential(encoder, FrameNorm(out))
        self.quantiser = make_quantiser(bottleneck, n_codes, code_dim, ema_decay, dead_threshold)
        self.decoder = LevelDecoder(decoder)

    def encoder_input(self, seq: torch.Tensor) -> torch.Tensor:
        return seq if self.input_classes else mu_law_compress(seq)

    def targets(self, seq: torch.Tensor) -> torch.Tensor:
        """What the decoder writes: mu-law codes of samples ``(batch, 1, time)``, or the codes themselves."""
        return seq if self.input_classes else mu_law_encode(seq[:, 0], self.decoder.config.bits)

    def quantise(self, seq: torch.Tensor, generator=None):
        """``(z_q (batch, code_dim, frames), codes (batch, frames), auxiliary loss)``; in training the
        codebook of a vector quantiser follows the batch (EMA, restarts)."""
        return self.quantiser(self.encoder(self.encoder_input(seq)), generator)

    @torch.no_grad()
    def codes_of(self, seq: torch.Tensor) -> torch.Tensor:
        """Codes ``(batch, frames)`` of a sequence, with no gradient and no codebook update."""
        return quantiser_codes(self.quantiser, self.encoder(self.encoder_input(seq)))

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        return self.quantiser.lookup(codes)


__all__ = ["DEAD_CODE_SHARE", "DEAD_CODE_USAGE", "ADALevel", "CodeEncoder", "CodeHierarchy", "CodePrior", "FrameNorm", "LevelDecoder",
           "LevelDecoderConfig", "Stage",
           "check_power_of_two", "dead_code_threshold", "hierarchy_figure", "make_quantiser", "quantiser_codes"]
