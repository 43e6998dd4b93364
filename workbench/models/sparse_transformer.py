"""Sparse Transformer (Child et al. 2019): attention instead of dilation, on mu-law sample codes.

Like WaveNet, the model writes a note one 8-bit mu-law code at a time, each from a 256-way
softmax given the codes before it, so ``log_prob`` is exact. Unlike WaveNet, every layer can look
at any earlier sample inside its context, chosen by content (attention), not at fixed offsets.

Dense causal attention over ``n`` samples scores ``n * n`` query-key pairs in every layer. The
Sparse Transformer factorises it into two heads that each score about ``n * sqrt(n)`` pairs and
still connect every pair ``j <= i`` within two layers:

- **strided**: the ``local`` head attends to the previous ``l`` positions, the ``column`` head
  to every ``l``-th earlier position (``i - j`` a multiple of ``l``);
- **fixed**: the ``block`` head attends within blocks of ``l`` positions, the ``summary`` head
  to the last ``c`` positions of every block ("summary" cells that the block head fills);
- **dense**: plain causal attention, the baseline.

Here the two heads of a factorised pattern are **interleaved across layers** (layer 0 local or
block, layer 1 column or summary, and so on), one of the options of the paper; every head of a
layer uses that layer's pattern. They run **block-sparsely**: the sequence is reshaped so that
each head only computes the query-key pairs its pattern can allow (``sparse_attention``), and
``dense_attention`` with the full ``(n, n)`` mask of ``attention_mask`` is the reference they
are tested against.

Positions are factorised as in the paper: a row embedding (``position // stride``) plus a
column embedding (``position % stride``), counted from the note onset like WaveNet's ``start``.
The note (pitch, instrument, velocity) is one embedding added at every position. Blocks are
pre-LayerNorm with GELU MLPs and the paper's scaled initialisation; ``checkpoint=True``
recomputes each block's activations in the backward pass so long contexts fit in memory.

Contexts longer than the configured ``context`` are handled with **sliding windows** that move by
half a context: sample ``t`` is predicted from the window of inputs that starts at
:meth:`SparseTransformer.window_start`, so ``log_prob``, ``encode`` and both samplers (``cached``:
incremental decoding with a key/value cache; ``naive``: recompute the window each step) give
every sample the same distribution.

Reference: R. Child, S. Gray, A. Radford, I. Sutskever, "Generating Long Sequences with Sparse
Transformers", 2019, https://arxiv.org/abs/1904.10509

Notebook: notebooks/10_attention.ipynb
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..dsp.quantise import mu_law_decode, mu_law_encode
from ..errors import ParameterError
from ..layers import NoteEmbedding
from . import transformer_kernel
from ._note import note_specs, note_tensors
from .base import CondSpec, Encoding, GenerativeModel, NoteDataConfig, sample_categorical
from .capabilities import Streaming

PATTERNS = ("strided", "fixed", "dense")
#: The head types of each pattern, in the order the layers cycle through them.
HEAD_KINDS = {"strided": ("local", "column"), "fixed": ("block", "summary"), "dense": ("dense",)}
KINDS = ("local", "column", "block", "summary", "dense")
METHODS = ("auto", "fast", "cached", "naive")


@dataclass(frozen=True)
class SparseTransformerConfig(NoteDataConfig):
    sample_rate: int = 8000
    pattern: str = "strided"  # "strided", "fixed" or "dense"
    context: int = 2048  # samples one window holds (training crops, scoring and sampling windows)
    stride: int = 64  # l: the local span / column stride (strided), the block size (fixed)
    summary: int = 8  # c: summary positions at the end of each block (fixed)
    n_layers: int = 4
    d_model: int = 64
    n_heads: int = 2
    mlp_ratio: int = 4
    checkpoint: bool = False  # recompute block activations in backward (memory for time)
    bits: int = 8  # 2**bits classes
    onset_share: float = 0.25  # share of training crops that start at the note onset
    learning_rate: float = 1e-3


PRESETS = {
    "tiny": dict(sample_rate=8000, context=256, stride=16, summary=4, n_layers=2, d_model=32, n_heads=2,
                 instruments=("piano", "flute"), pitch_range=(60, 64), velocities=(100,), note_seconds=0.25),
    "small": dict(context=2048, stride=64, summary=8, n_layers=4, d_model=64, n_heads=2),
}


# ---- the patterns, as full boolean masks ----------------------------------------------------------------
def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ParameterError(f"attention kind={kind!r} is not one of {', '.join(KINDS)}")


def head_kinds(pattern: str) -> tuple[str, ...]:
    """The head types a pattern interleaves across layers: ``("local", "column")`` for ``strided``.

    Raises
    ------
    ParameterError
        Unknown pattern.
    """
    if pattern not in HEAD_KINDS:
        raise ParameterError(f"pattern={pattern!r} is not one of {', '.join(PATTERNS)}")
    return HEAD_KINDS[pattern]


def attention_mask(kind: str, n: int, stride: int, summary: int = 1) -> torch.Tensor:
    """Which keys each query may attend to: boolean ``(n, n)``, ``mask[i, j]`` for query ``i``, key ``j``.

    =========  ================================================  ========================
    kind       allowed (always ``j <= i``)                       keys per query
    =========  ================================================  ========================
    dense      every earlier position                            ``i + 1``
    local      ``i - j < l`` (the previous ``l``, itself too)    ``<= l``
    column     ``(i - j) % l == 0``                              ``<= n / l``
    block      ``j // l == i // l`` (the same block)             ``<= l``
    summary    ``j % l >= l - c`` (the last c of each block)     ``<= c * n / l``
    =========  ================================================  ========================

    with ``l = stride`` and ``c = summary``.

    Examples
    --------
    >>> attention_mask("column", 6, 2).int()
    tensor([[1, 0, 0, 0, 0, 0],
            [0, 1, 0, 0, 0, 0],
            [1, 0, 1, 0, 0, 0],
            [0, 1, 0, 1, 0, 0],
            [1, 0, 1, 0, 1, 0],
            [0, 1, 0, 1, 0, 1]], dtype=torch.int32)
    """
    _check_kind(kind)
    _check_sizes(stride, summary)
    i = torch.arange(n)[:, None]
    j = torch.arange(n)[None, :]
    causal = j <= i
    if kind == "dense":
        return causal
    if kind == "local":
        return causal & (i - j < stride)
    if kind == "column":
        return causal & ((i - j) % stride == 0)
    if kind == "block":
        return causal & (i // stride == j // stride)
    return causal & (j % stride >= stride - summary)


def attention_masks(pattern: str, n: int, stride: int, summary: int = 1) -> dict[str, torch.Tensor]:
    """``{kind: (n, n) mask}`` for each head type of ``pattern``, in layer order."""
    return {kind: attention_mask(kind, n, stride, summary) for kind in head_kinds(pattern)}


def reachable(masks) -> torch.Tensor:
    """Which inputs reach which outputs through layers with these masks, in order: ``(n, n)`` bool.

    Each layer also passes its input straight on (the residual connection, a self loop), so the
    result is the boolean product ``(M_last | I) ... (M_first | I)``.
    """
    masks = list(masks.values()) if isinstance(masks, dict) else list(masks)
    n = masks[0].shape[0]
    eye = torch.eye(n, dtype=torch.bool)
    reach = eye.clone()
    for mask in masks:
        reach = ((mask | eye).double() @ reach.double()) > 0  # i <- m <- j
    return reach


def scores_computed(kind: str, n: int, stride: int, summary: int = 1) -> int:
    """Query-key pairs one head scores over ``n`` positions as :func:`sparse_attention` lays them out.

    An unfused implementation materialises (and keeps for backward) one score per pair, so this
    times heads times bytes per score is a layer's attention buffer: ``n * n`` for dense, about
    ``n * (2l)`` local, ``n * n/l`` column, ``n * l`` block, ``n * c * n/l`` summary.
    """
    _check_kind(kind)
    n_blocks = math.ceil(n / stride)
    padded = n_blocks * stride
    return {"dense": n * n, "local": padded * 2 * stride, "column": padded * n_blocks,
            "block": padded * stride, "summary": padded * n_blocks * summary}[kind]


def _check_sizes(stride: int, summary: int) -> None:
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise ParameterError(f"stride={stride!r} must be a positive whole number of samples")
    if isinstance(summary, bool) or not isinstance(summary, int) or not 1 <= summary <= stride:
        raise ParameterError(f"summary={summary!r} must be a whole number in 1..stride={stride}")


# ---- attention: the dense reference and the block-sparse paths -------------------------------------------
def dense_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """Softmax attention restricted to ``allowed`` keys: the reference the sparse paths must equal.

    Parameters
    ----------
    q : Tensor ``(..., queries, dim)``
    k, v : Tensor ``(..., keys, dim)``
    allowed : bool Tensor broadcastable to ``(..., queries, keys)``

    Returns
    -------
    Tensor ``(..., queries, dim)``; a query with no allowed key gets zeros.
    """
    has_key = allowed.any(-1, keepdim=True)  # (..., queries, 1)
    # a query with nothing to attend to is given every key (a finite softmax), then zeroed
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed | ~has_key)
    return out * has_key.to(out.dtype)


def sparse_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kind: str, stride: int,
                     summary: int = 1) -> torch.Tensor:
    """Attention with the ``kind`` pattern of :func:`attention_mask`, computing only what it allows.

    Parameters
    ----------
    q, k, v : Tensor ``(batch, heads, n, dim)``
        ``n`` a multiple of ``stride`` (except for ``dense``).
    kind : {"dense", "local", "column", "block", "summary"}
    stride, summary : int
        ``l`` and ``c``.

    Returns
    -------
    Tensor ``(batch, heads, n, dim)``, equal to ``dense_attention(q, k, v, attention_mask(kind, n, ...))``.

    Raises
    ------
    ParameterError
        Unknown ``kind``, or ``n`` not a multiple of ``stride``.

    Examples
    --------
    >>> q, k, v = torch.randn(3, 1, 2, 8, 4, dtype=torch.float64)
    >>> reference = dense_attention(q, k, v, attention_mask("column", 8, 4))
    >>> bool(torch.allclose(sparse_attention(q, k, v, "column", 4), reference))
    True
    """
    _check_kind(kind)
    _check_sizes(stride, summary)
    if kind == "dense":
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    b, h, n, d = q.shape
    if n % stride:
        raise ParameterError(f"{n} positions are not a whole number of blocks of stride={stride}; "
                             "pad the sequence to a multiple of the stride")
    n_blocks, l = n // stride, stride  # noqa: E741 (the paper's l)
    qb, kb, vb = (x.reshape(b, h, n_blocks, l, d) for x in (q, k, v))  # (batch, heads, blocks, l, dim)
    if kind == "column":
        # each column (position % l) is a sequence over rows; attend causally along it:
        #   positions   0  1  2  3        column 1 = positions 1, 5, 9, ...
        #               4  5  6  7        (batch, heads, l, blocks, dim)
        #               8  9 10 11
        qc, kc, vc = (x.transpose(2, 3) for x in (qb, kb, vb))
        out = F.scaled_dot_product_attention(qc, kc, vc, is_causal=True)  # (batch, heads, l, blocks, dim)
        return out.transpose(2, 3).reshape(b, h, n, d)
    if kind == "block":
        out = F.scaled_dot_product_attention(qb, kb, vb, is_causal=True)  # causal within each block
        return out.reshape(b, h, n, d)
    if kind == "local":
        # each block's queries see the previous block and their own: 2l keys, a band of l of them
        #   keys:     [ previous block | own block ]      query a (0..l-1) allows keys a+1 .. a+l
        k_prev = F.pad(kb, (0, 0, 0, 0, 1, 0))[:, :, :-1]  # zeros before the first block
        v_prev = F.pad(vb, (0, 0, 0, 0, 1, 0))[:, :, :-1]
        k2 = torch.cat([k_prev, kb], dim=3)  # (batch, heads, blocks, 2l, dim)
        v2 = torch.cat([v_prev, vb], dim=3)
        a = torch.arange(l, device=q.device)[:, None]
        key = torch.arange(2 * l, device=q.device)[None, :]
        band = (key > a) & (key <= a + l)  # (l, 2l)
        allowed = band.expand(n_blocks, l, 2 * l).clone()
        allowed[0, :, :l] = False  # the first block has no previous block
        out = dense_attention(qb, k2, v2, allowed)  # (batch, heads, blocks, l, dim)
        return out.reshape(b, h, n, d)
    # summary: gather the last c positions of every block, then every query attends to those <= itself
    c = summary
    ks = kb[:, :, :, l - c:].reshape(b, h, n_blocks * c, d)  # (batch, heads, blocks * c, dim)
    vs = vb[:, :, :, l - c:].reshape(b, h, n_blocks * c, d)
    key_pos = (torch.arange(n_blocks, device=q.device)[:, None] * l + l - c
               + torch.arange(c, device=q.device)[None, :]).reshape(-1)  # (blocks * c,)
    allowed = key_pos[None, :] <= torch.arange(n, device=q.device)[:, None]  # (n, blocks * c)
    return dense_attention(q, ks, vs, allowed)


def key_index(kind: str, slot: int, stride: int, summary: int = 1, device=None):
    """The keys query ``slot`` may attend to (a ``slice`` or an index tensor): one row of the mask,
    for incremental decoding, where only these keys are read from the cache."""
    l = stride  # noqa: E741 (the paper's l)
    if kind == "dense":
        return slice(0, slot + 1)
    if kind == "local":
        return slice(max(0, slot - l + 1), slot + 1)
    if kind == "column":
        return slice(slot % l, slot + 1, l)
    if kind == "block":
        return slice(slot - slot % l, slot + 1)
    j = torch.arange(slot + 1, device=device)
    return j[j % l >= l - summary]


def pattern_figure(pattern: str, n: int, stride: int, summary: int = 1, title: str | None = None):
    """Each head type's mask, and what two layers of them reach, as images (query down, key across).

    Returns
    -------
    matplotlib Figure
    """
    from ..viz import new_figure

    masks = attention_masks(pattern, n, stride, summary)
    panels = dict(masks)
    if len(masks) > 1:
        panels["reach of two layers"] = reachable(masks)
    fig, axes = new_figure(1, len(panels), width=3.2 * len(panels), row_height=3.4)
    for ax, (name, mask) in zip(axes[0], panels.items()):
        ax.imshow(mask.numpy(), cmap="Blues", interpolation="nearest", vmin=0, vmax=1)
        per_query = mask.sum(-1).float()
        ax.set_title(f"{name}: {per_query.mean():.1f} keys/query\n(max {per_query.max():.0f})", fontsize=9)
        ax.set_xlabel("key j")
        ax.set_ylabel("query i")
    fig.suptitle(title or f"{pattern} attention over n={n}, stride l={stride}"
                 + (f", summary c={summary}" if pattern == "fixed" else ""))
    return fig


# ---- the network ---------------------------------------------------------------------------------------------
class Block(nn.Module):
    """Pre-LayerNorm residual block: ``x + attn(ln(x))``, then ``x + mlp(ln(x))``, one head type."""

    def __init__(self, d_model: int, n_heads: int, mlp_ratio: int, kind: str):
        super().__init__()
        self.kind = kind
        self.n_heads = n_heads
        self.ln1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, mlp_ratio * d_model), nn.GELU(),
                                 nn.Linear(mlp_ratio * d_model, d_model))

    def heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Normalised input ``(batch, time, d)`` -> q, k, v, each ``(batch, heads, time, d / heads)``."""
        b, t, d = x.shape
        qkv = self.qkv(self.ln1(x)).view(b, t, 3, self.n_heads, d // self.n_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (batch, heads, time, head_dim)
        return q, k, v

    def finish(self, x: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
        """Residual updates from the attention output ``(batch, heads, time, head_dim)``."""
        b, h, t, e = attended.shape
        x = x + self.proj(attended.transpose(1, 2).reshape(b, t, h * e))
        return x + self.mlp(self.ln2(x))

    def forward(self, x: torch.Tensor, stride: int, summary: int, kv: list | None = None) -> torch.Tensor:
        q, k, v = self.heads(x)
        if kv is not None:  # keep this layer's keys and values (to fill a decoding cache)
            kv.append((k, v))
        return self.finish(x, sparse_attention(q, k, v, self.kind, stride, summary))


class SparseTransformer(Streaming, GenerativeModel):
    """A small Sparse Transformer over 8-bit mu-law codes, conditioned on the note; it streams
    (:class:`~workbench.models.capabilities.Streaming`)."""

    name = "sparse_transformer"
    family = "autoregressive"
    likelihood = "exact"
    Config = SparseTransformerConfig
    PRESETS = PRESETS
    notebook = "notebooks/10_attention.ipynb"
    generate_options = {"method": METHODS}

    def __init__(self, config: SparseTransformerConfig):
        super().__init__(config)
        c = config
        kinds = head_kinds(c.pattern)
        _check_sizes(c.stride, c.summary)
        if c.context < 1 or c.context % c.stride:
            raise ParameterError(f"stride={c.stride} does not divide context={c.context}; pick a context that "
                                 "is a whole number of blocks (e.g. a power of two)")
        if c.context < 2 * c.stride:
            raise ParameterError(f"context={c.context} holds fewer than two blocks of stride={c.stride}; "
                                 "make the context longer or the stride shorter")
        if c.d_model % c.n_heads:
            raise ParameterError(f"d_model={c.d_model} is not divisible by n_heads={c.n_heads}")
        if c.n_layers < len(kinds):
            raise ParameterError(f"n_layers={c.n_layers}: the {c.pattern} pattern needs at least {len(kinds)} "
                                 f"layers, one per head type ({', '.join(kinds)})")
        self.n_classes = 2**c.bits
        self.silence = int(mu_law_encode(torch.zeros(()), c.bits))
        self.kinds = tuple(kinds[i % len(kinds)] for i in range(c.n_layers))
        note_samples = round(c.note_seconds * c.sample_rate)
        self.n_rows = max(1, math.ceil(note_samples / c.stride))
        self.token = nn.Embedding(self.n_classes, c.d_model)
        self.row = nn.Embedding(self.n_rows, c.d_model)  # position // stride, from the onset
        self.column = nn.Embedding(c.stride, c.d_model)  # position % stride
        self.note = NoteEmbedding(c.pitch_range[1] - c.pitch_range[0] + 1, len(c.instruments), c.d_model,
                                  c.pitch_range[0])
        self.blocks = nn.ModuleList(Block(c.d_model, c.n_heads, c.mlp_ratio, kind) for kind in self.kinds)
        self.ln_f = nn.LayerNorm(c.d_model)
        self.head = nn.Linear(c.d_model, self.n_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        """GPT-2 style N(0, 0.02) weights; each block's two output projections, which add into the
        residual stream, scaled by 1 / sqrt(2N) for N layers (the paper's scaled initialisation),
        so the stream's variance does not grow with depth."""
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        scale = 1.0 / math.sqrt(2 * len(self.blocks))
        for block in self.blocks:
            for out in (block.proj, block.mlp[-1]):
                out.weight.data.mul_(scale)

    # ---- facts ------------------------------------------------------------------------------------------
    @property
    def conditioning(self) -> tuple[CondSpec, ...]:
        return tuple(note_specs(self.config))

    @property
    def window_hop(self) -> int:
        """How far the sliding window moves when it is full: half a context."""
        return self.config.context // 2

    def window_start(self, t: int) -> int:
        """The position (from the onset; -1 is the silence before it) of the first input of the window
        that predicts sample ``t``.

        Samples ``0 .. context - 1`` come from the first window (inputs ``-1 .. t - 1``). After that
        the window moves by :attr:`window_hop` whenever it is full, so each sample sees at least
        ``context - hop`` samples of history::

            window 0: inputs -1 ....... context-2      predicts 0 .. context-1
            window 1:   inputs hop-1 ...... hop+context-2   predicts the next hop samples
        """
        context, hop = self.config.context, self.window_hop
        return -1 + hop * max(0, -(-(t + 1 - context) // hop))

    def attention_buffer_bytes(self, n: int, batch_size: int = 1, bytes_per_score: int = 4) -> int:
        """Bytes of attention scores an unfused implementation keeps for backward over ``n`` inputs:
        every layer's heads times :func:`scores_computed` (fused kernels recompute them instead)."""
        c = self.config
        return batch_size * c.n_heads * bytes_per_score * sum(
            scores_computed(kind, n, c.stride, c.summary) for kind in self.kinds)

    # ---- the network --------------------------------------------------------------------------------------
    def note_vector(self, cond: dict | None, batch: int) -> torch.Tensor | None:
        """The note's embedding ``(batch, d_model)``, added at every position (None: no conditioning)."""
        if cond is None:
            return None
        vector = self.note(*note_tensors(self, cond))
        return vector.expand(batch, -1) if vector.shape[0] == 1 else vector

    def embed(self, codes: torch.Tensor, note: torch.Tensor | None, start: int) -> torch.Tensor:
        """Codes ``(batch, time)`` at positions ``start, start + 1, ...`` -> inputs ``(batch, time, d_model)``.

        Position ``p`` (from the onset; -1 is the silence before it) has row ``(p + 1) // stride``
        (the last row for positions past the training notes' length) and column ``(p + 1) % stride``.
        """
        if start < -1:
            raise ParameterError(f"start={start} is before the silence at position -1 that every note begins with")
        stride = self.config.stride
        slot = torch.arange(start + 1, start + 1 + codes.shape[-1], device=codes.device)
        x = self.token(codes) + self.row(torch.clamp(slot // stride, max=self.n_rows - 1)) + self.column(slot % stride)
        return x if note is None else x + note[:, None]

    def forward_features(self, x: torch.Tensor, kv: list | None = None) -> torch.Tensor:
        """The blocks on continuous inputs ``(batch, time, d_model)`` -> logits ``(batch, classes, time)``.

        ``time`` may be anything up to ``context``: the sequence is padded at the end to whole
        blocks, which (attention being causal) changes nothing before the padding.
        """
        c = self.config
        n = x.shape[1]
        if n > c.context:
            raise ParameterError(f"{n} inputs are more than this model's context={c.context}; score longer "
                                 "notes with note_logits / log_prob, which slide a window over them")
        padded = -(-n // c.stride) * c.stride
        x = F.pad(x, (0, 0, 0, padded - n))  # (batch, padded, d_model)
        for block in self.blocks:
            if c.checkpoint and self.training and torch.is_grad_enabled() and kv is None:
                x = checkpoint(block, x, c.stride, c.summary, use_reentrant=False)
            else:
                x = block(x, c.stride, c.summary, kv)
        return self.head(self.ln_f(x[:, :n])).transpose(1, 2)

    def forward(self, codes: torch.Tensor, cond: dict | None = None, start: int = 0) -> torch.Tensor:
        """Teacher-forced pass over one window: codes ``(batch, time <= context)`` -> logits ``(batch, classes, time)``.

        ``logits[..., t]`` is the distribution of the code after ``codes[:, t]``; ``start`` is the
        position of ``codes[:, 0]`` from the note onset (-1: the silence before it).

        Raises
        ------
        ParameterError
            More codes than the context, or ``start < -1``.
        """
        return self.forward_features(self.embed(codes, self.note_vector(cond, codes.shape[0]), start))

    def note_logits(self, codes: torch.Tensor, cond: dict | None = None) -> torch.Tensor:
        """Logits of every code of a note that starts at sample 0: ``(batch, time)`` -> ``(batch, classes, time)``.

        ``logits[..., t]`` predicts ``codes[:, t]`` from the window of :meth:`window_start` (one
        forward pass per window, each scoring the samples that window is responsible for), exactly
        the distributions the samplers draw from.
        """
        note = self.note_vector(cond, codes.shape[0])
        history = F.pad(codes, (1, 0), value=self.silence)  # history[:, p + 1] is the code at position p
        n, pieces, t = codes.shape[-1], [], 0
        while t < n:
            start = self.window_start(t)
            end = min(n, start + self.config.context + 1)  # this window predicts samples t .. end - 1
            inputs = history[:, start + 1: end]  # positions start .. end - 2
            logits = self.forward_features(self.embed(inputs, note, start))
            pieces.append(logits[..., logits.shape[-1] - (end - t):])
            t = end
        return torch.cat(pieces, dim=-1)

    # ---- likelihood -------------------------------------------------------------------------------------
    def _step_log_likelihood(self, audio, cond) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.check_audio_input(audio)[:, 0]  # (batch, time)
        codes = mu_law_encode(x, self.config.bits)
        checked = self.check_cond(cond, codes.shape[0])
        logits = self.note_logits(codes, checked)
        ll = -F.cross_entropy(logits, codes, reduction="none")  # (batch, time) nats
        return codes, ll / math.log(2)

    def log_prob(self, audio, cond=None) -> torch.Tensor:
        """Bits per sample of each item (exact, over mu-law codes), the note starting at sample 0.

        A note longer than ``context`` is scored with a window sliding by half a context
        (:meth:`window_start`): every sample is predicted from at least half a context of history.
        """
        with torch.no_grad():
            _, ll = self._step_log_likelihood(audio, cond)
        return -ll.mean(dim=-1)

    def encode(self, audio, cond=None) -> Encoding:
        """Mu-law codes and the log-likelihood (bits) of each sample: where the model is surprised."""
        with torch.no_grad():
            codes, ll = self._step_log_likelihood(audio, cond)
        return Encoding("codes", {"codes": codes, "log_likelihood_bits": ll}, self.sample_rate,
                        meta={"cond": cond})

    # ---- training -----------------------------------------------------------------------------------------
    def training_step(self, batch, generator=None) -> dict:
        """Cross-entropy on a random crop of ``context`` samples, every position a target.

        A share of crops start at the onset, with the silence before the note as first input:
        the situation unprimed generation starts in. The others start anywhere in the note.
        """
        samples, cond = batch
        codes = mu_law_encode(samples.to(self.device)[:, 0], self.config.bits)  # (batch, time)
        n = codes.shape[-1]
        length = min(self.config.context, n)
        draw = torch.rand(2, generator=generator)
        if draw[0] < self.config.onset_share or n == length:
            # inputs at positions -1 .. length - 2 predict samples 0 .. length - 1
            u, start = 0, -1
            inputs = F.pad(codes[:, : length - 1], (1, 0), value=self.silence)
        else:
            u = 1 + int(draw[1] * (n - length))  # first target, in 1 .. n - length
            start = u - 1
            inputs = codes[:, start: start + length]
        targets = codes[:, u: u + length]
        note = {"pitch": cond["pitch"], "instrument": cond["instrument"], "velocity": cond["velocity"]}
        loss = F.cross_entropy(self.forward(inputs, note, start=start), targets)
        return {"loss": loss, "bits_per_sample": loss.detach() / math.log(2)}

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        return [torch.optim.AdamW(self.parameters(), lr=self.config.learning_rate, betas=(0.9, 0.95),
                                  weight_decay=0.01)]

    # ---- generation -----------------------------------------------------------------------------------------
    def _generate(self, n, seconds, cond, temperature, generator, progress, method: str = "auto"):
        n_samples = max(1, int(round(seconds * self.config.sample_rate)))
        codes = self.sample_codes(n, n_samples, cond, temperature, generator, progress, method)
        return mu_law_decode(codes, self.config.bits)[:, None]  # (n, 1, time)

    def _generate_stream(self, n, seconds, cond, temperature, generator, progress, chunk, method: str = "auto"):
        """:meth:`_generate` ``chunk`` samples at a time, yielding ``(n, 1, chunk)``."""
        n_samples = max(1, int(round(seconds * self.config.sample_rate)))
        chunks = self.code_chunks(n, n_samples, cond, temperature, generator, progress, method, chunk=chunk)
        return (mu_law_decode(codes, self.config.bits)[:, None] for codes, _ in chunks)

    def resolve_method(self, method: str) -> str:
        """``auto`` -> ``fast`` (the compiled decode step) on the CPU in float32 with numba, else ``cached``."""
        if method not in METHODS:
            raise ParameterError(f"method={method!r} must be one of {', '.join(METHODS)}")
        if method != "auto":
            return method
        fast_ok = (transformer_kernel.available() and self.device.type == "cpu"
                   and self.token.weight.dtype == torch.float32)
        return "fast" if fast_ok else "cached"

    def sample_codes(self, n, n_samples, cond, temperature=1.0, generator=None, progress=None,
                     method="auto", return_logits=False):
        """Draw ``n_samples`` codes per item; optionally also return every step's logits ``(n, classes, time)``.

        ``method="cached"`` decodes incrementally, one position per step, with each layer's keys
        and values kept in a cache; ``"fast"`` runs the same steps compiled
        (:mod:`~workbench.models.transformer_kernel`); ``"naive"`` recomputes the whole window every
        step. All use the windows of :meth:`window_start` and draw the same samples under the same seed.
        """
        pieces = list(self.code_chunks(n, n_samples, cond, temperature, generator, progress, method,
                                       return_logits=return_logits))
        codes = torch.cat([c for c, _ in pieces], dim=-1)
        return (codes, torch.cat([lg for _, lg in pieces], dim=-1)) if return_logits else codes

    def code_chunks(self, n, n_samples, cond, temperature=1.0, generator=None, progress=None, method="auto",
                    chunk: int | None = None, return_logits=False):
        """:meth:`sample_codes` as an iterator of ``(codes (n, chunk), logits (n, classes, chunk) or None)``,
        each chunk yielded as soon as it is sampled (the last may be shorter)."""
        method = self.resolve_method(method)
        note = self.note_vector(cond, n)
        chunk = n_samples if chunk is None else chunk
        if method == "fast":
            return self._fast_chunks(n, n_samples, note, temperature, generator, progress, chunk, return_logits)
        return self._torch_chunks(n, n_samples, note, temperature, generator, progress, method, chunk, return_logits)

    @torch.no_grad()
    def _torch_chunks(self, n, n_samples, note, temperature, generator, progress, method, chunk, return_logits):
        history = torch.full((n, n_samples + 1), self.silence, dtype=torch.long, device=self.device)
        caches, cache_start, all_logits, done = None, None, [], 0
        for t in range(n_samples):
            # 1. the window that predicts sample t: inputs at positions start .. t - 1
            start = self.window_start(t)
            if method == "naive":
                window = history[:, start + 1: t + 1]
                logits = self.forward_features(self.embed(window, note, start))[..., -1]
            else:
                if start != cache_start:
                    # 2. a new window (the first, or the old one was full): fill the cache from the kept inputs
                    caches, cache_start = self._prefill(history[:, start + 1: t], note, start), start
                # 3. one position through every layer, reading only the keys its pattern allows
                logits = self._decode_step(history[:, t], t - 1 - start, start, caches, note)
            # 4. sample and append
            history[:, t + 1] = sample_categorical(logits, temperature, generator)
            if return_logits:
                all_logits.append(logits)
            if progress is not None and (t % 256 == 0 or t == n_samples - 1):
                progress(t + 1, n_samples)
            if t + 1 - done == chunk or t == n_samples - 1:
                yield history[:, done + 1: t + 2], (torch.stack(all_logits, -1) if return_logits else None)
                all_logits, done = [], t + 1

    @torch.no_grad()
    def _fast_chunks(self, n, n_samples, note, temperature, generator, progress, chunk, return_logits):
        """The cached sampler's steps in the compiled kernel, a window at a time; the cache of each new
        window is filled by one PyTorch forward pass, as in the cached path."""
        c = self.config
        decoder = transformer_kernel.FastDecoder(self)
        # the same uniforms, in the same order, as sample_categorical draws them step by step
        uniforms = torch.rand(n_samples, n, generator=generator, dtype=torch.float64).numpy()
        codes = np.full((n, n_samples), self.silence, dtype=np.int64)
        prev = np.full(n, self.silence, dtype=np.int64)
        note_np = (np.zeros((n, c.d_model), np.float32) if note is None
                   else np.ascontiguousarray(note.detach().to(torch.float32).cpu().numpy()))
        logits = np.zeros((n, n_samples, self.n_classes), np.float32) if return_logits else None
        t, done, window = 0, 0, None
        while t < n_samples:
            start = self.window_start(t)
            if start != window:  # a new window: fill its cache from the kept inputs, in PyTorch
                history = F.pad(torch.from_numpy(codes[:, :t]), (1, 0), value=self.silence)
                caches = self._prefill(history[:, start + 1: t], note, start)
                k = np.ascontiguousarray(torch.stack([ck for ck, _ in caches]).to(torch.float32).numpy())
                v = np.ascontiguousarray(torch.stack([cv for _, cv in caches]).to(torch.float32).numpy())
                window, end = start, t + 1
                while end < n_samples and self.window_start(end) == start:
                    end += 1
            stop = min(end, t + 256, done + chunk)
            out = None if logits is None else np.zeros((n, stop - t, self.n_classes), np.float32)
            decoder.run(t, stop, start, codes, prev, (k, v), note_np, c.stride, c.summary, uniforms, temperature, out)
            if out is not None:
                logits[:, t:stop] = out
            t = stop
            if progress is not None:
                progress(t, n_samples)
            if t - done == chunk or t == n_samples:
                piece = torch.from_numpy(codes[:, done:t].copy()).to(self.device)
                yield piece, (None if logits is None else torch.from_numpy(logits[:, done:t]).permute(0, 2, 1))
                done = t

    def _prefill(self, inputs: torch.Tensor, note, start: int) -> list:
        """A cache per layer, keys and values ``(batch, heads, context, head_dim)``, holding ``inputs``."""
        c = self.config
        shape = (inputs.shape[0], c.n_heads, c.context, c.d_model // c.n_heads)
        dtype = self.token.weight.dtype
        caches = [(torch.zeros(shape, dtype=dtype, device=self.device),
                   torch.zeros(shape, dtype=dtype, device=self.device)) for _ in self.blocks]
        if inputs.shape[-1]:
            kv: list = []
            self.forward_features(self.embed(inputs, note, start), kv=kv)
            m = inputs.shape[-1]
            for (cache_k, cache_v), (k, v) in zip(caches, kv):
                cache_k[:, :, :m] = k[:, :, :m]
                cache_v[:, :, :m] = v[:, :, :m]
        return caches

    def _decode_step(self, code: torch.Tensor, slot: int, start: int, caches: list, note) -> torch.Tensor:
        """Logits ``(batch, classes)`` after the input ``code`` ``(batch,)`` at window slot ``slot``."""
        c = self.config
        x = self.embed(code[:, None], note, start + slot)  # (batch, 1, d_model)
        for block, (cache_k, cache_v) in zip(self.blocks, caches):
            q, k, v = block.heads(x)  # (batch, heads, 1, head_dim)
            cache_k[:, :, slot] = k[:, :, 0]
            cache_v[:, :, slot] = v[:, :, 0]
            keys = key_index(block.kind, slot, c.stride, c.summary, self.device)
            ks, vs = cache_k[:, :, keys], cache_v[:, :, keys]  # (batch, heads, allowed keys, head_dim)
            if ks.shape[2]:
                attended = F.scaled_dot_product_attention(q, ks, vs)
            else:  # a summary head before the first summary position: nothing to attend to
                attended = torch.zeros_like(q)
            x = block.finish(x, attended)
        return self.head(self.ln_f(x))[:, 0]

    # ---- figure ----------------------------------------------------------------------------------------------
    def visualise(self, audio=None):
        """The attention pattern's masks (over a few blocks) and what two layers of it reach."""
        c = self.config
        n = min(c.context, 4 * c.stride)
        return pattern_figure(c.pattern, n, c.stride, c.summary,
                              title=f"Sparse Transformer, {c.pattern} pattern: {c.n_layers} layers "
                                    f"({', '.join(self.kinds)}), context {c.context} samples, "
                                    f"first {n} shown")


__all__ = ["HEAD_KINDS", "KINDS", "PATTERNS", "PRESETS", "SparseTransformer", "SparseTransformerConfig",
           "attention_mask", "attention_masks", "dense_attention", "head_kinds", "key_index", "pattern_figure",
           "reachable", "scores_computed", "sparse_attention"]
