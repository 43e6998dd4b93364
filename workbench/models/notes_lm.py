"""A small Transformer language model over note events (Music Transformer style).

Music, written as a sequence of *events*, is a language: the model reads the events of a piece one
at a time and gives a probability to every possible next event, so a piece's probability is the
product of those (``log p(piece) = sum_t log p(x_t | x_<t)``) and sampling writes new music one
event at a time. The events are the Performance RNN vocabulary of :mod:`workbench.scores`
(388 tokens), plus three of our own:

==========  =====================================================================================
tokens      meaning
==========  =====================================================================================
0 .. 127    NOTE_ON pitch
128 .. 255  NOTE_OFF pitch
256 .. 355  TIME_SHIFT by 1 .. 100 steps of 10 ms (a longer rest takes several)
356 .. 387  SET_VELOCITY bin 0 .. 31 (for the NOTE_ONs that follow)
388         END: the piece is over (predicted, so the model learns where pieces end)
389         START: what every piece begins with (an input only, never predicted)
390         PAD: fills a window after END (an input only; its targets are ignored by the loss)
==========  =====================================================================================

The network is a decoder-only Transformer (pre-LayerNorm blocks, GELU MLP, learned absolute
positions inside a window of ``context`` tokens, causal attention through
``torch.nn.functional.scaled_dot_product_attention``). The Music Transformer's relative attention
is left out: plain causal attention over a short window already beats the n-gram baselines here.
Generation decodes incrementally with a key/value cache: each step runs one new token through
the layers, attending to the keys and values cached from the tokens before it.

A piece longer than ``context`` is read through **windows that slide by half a context**, both
when scoring (:meth:`NotesLM.token_log_probs`) and when sampling (:meth:`NotesLM.generate_events`),
so every event is predicted from at least half a context of history and the two agree::

    window 0: inputs 0 .......... context-1                 predicts tokens 1 .. context
    window 1:      inputs hop ......... hop+context-1       predicts the next hop tokens
    window 2:           inputs 2hop ......... 2hop+context-1

The likelihood is reported as **negative log-likelihood per event in nats** (every token after
START, END included), next to a unigram and a bigram model with add-k smoothing counted on the
training split (:func:`ngram_nll`, :func:`evaluate_lm`): the Transformer must beat both.

References
----------
- C.-Z. A. Huang, A. Vaswani, J. Uszkoreit, N. Shazeer, I. Simon, C. Hawthorne, A. M. Dai,
  M. D. Hoffman, M. Dinculescu, D. Eck, "Music Transformer", 2018, https://arxiv.org/abs/1809.04281
- S. Oore, I. Simon, S. Dieleman, D. Eck, K. Simonyan, "This Time with Feeling: Learning
  Expressive Musical Performance", 2018, https://arxiv.org/abs/1808.03715 (the event vocabulary)
- A. Vaswani et al., "Attention Is All You Need", 2017, https://arxiv.org/abs/1706.03762

Notebook: notebooks/09_music_from_notes.ipynb
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from ..dsp.spectral import make_generator
from ..errors import ParameterError
from ..scores import (
    COLLECTIONS,
    DEFAULT_BPM,
    DEFAULT_VELOCITY,
    EVENTS_FORMAT,
    NoteEvent,
    PerformanceVocabulary,
    Piece,
    Scores,
    clean_events,
)
from .base import Model, sample_categorical


@dataclass(frozen=True)
class NotesLMConfig:
    collection: str = "folk+chorales"  # "folk", "chorales", or both joined by "+"
    max_pieces: int | None = 2000  # per collection: its first pieces in corpus order, before splitting
    transpose_range: tuple = (-5, 6)  # training windows move by k semitones, low <= k <= high
    context: int = 256  # tokens one window holds (training windows, scoring and sampling)
    n_layers: int = 4
    d_model: int = 128
    n_heads: int = 4
    mlp_ratio: int = 4
    dropout: float = 0.1
    learning_rate: float = 1e-3
    weight_decay: float = 0.01
    batch_size: int = 16


PRESETS = {
    "tiny": dict(collection="folk", max_pieces=20, transpose_range=(-2, 2), context=64, n_layers=2, d_model=32,
                 n_heads=2, dropout=0.0, batch_size=8),
    "small": dict(collection="folk+chorales", max_pieces=2000, transpose_range=(-5, 6), context=256, n_layers=4,
                  d_model=128, n_heads=4, dropout=0.1, batch_size=16),
}

# ---- the tokens ------------------------------------------------------------------------------------------
#: The Performance RNN vocabulary (10 ms steps, shifts up to 1 s, 32 velocity bins): tokens 0 .. 387.
VOCABULARY = PerformanceVocabulary(step_seconds=0.01, max_shift_steps=100, velocity_bins=32)
N_EVENTS = VOCABULARY.size  # 388
END = N_EVENTS  # 388, the last class the model predicts
START = N_EVENTS + 1  # 389, input only
PAD = N_EVENTS + 2  # 390, input only, ignored as a target
N_OUTPUTS = N_EVENTS + 1  # classes of the softmax: the events and END
N_TOKENS = N_EVENTS + 3  # rows of the input embedding
TIME_SHIFT_FIRST = VOCABULARY.time_shift_offset  # 256: TIME_SHIFT of one step
TIME_SHIFT_LAST = VOCABULARY.velocity_offset - 1  # 355: TIME_SHIFT of max_shift_steps
#: The longest generation, and the token budget per second when only ``seconds`` is given (the
#: chorales use about 20 tokens per second).
MAX_SECONDS = 300.0
TOKENS_PER_SECOND = 100


def events_to_tokens(events: Sequence[NoteEvent], end: bool = True) -> list[int]:
    """``[START, events as Performance RNN tokens..., END]`` (END left off with ``end=False``: a prompt).

    Examples
    --------
    >>> events_to_tokens([NoteEvent(0.0, 0.1, 60, 100)])
    [389, 380, 60, 265, 188, 388]
    """
    return [START, *VOCABULARY.encode(events), *([END] if end else [])]


def tokens_to_events(tokens: Sequence[int]) -> list[NoteEvent]:
    """Events of a token stream: START, END and PAD are dropped, reading stops at the first END, and
    the result is playable (:func:`workbench.scores.clean_events`: one sounding note per pitch).

    Examples
    --------
    >>> tokens_to_events([389, 380, 60, 265, 188, 388, 62])
    [NoteEvent(onset_seconds=0.0, duration_seconds=0.1, pitch=60, velocity=98, part=0)]
    """
    tokens = [int(t) for t in tokens]
    if END in tokens:
        tokens = tokens[: tokens.index(END)]
    return clean_events(VOCABULARY.decode([t for t in tokens if t < N_EVENTS]))


def transpose_tokens(tokens: torch.Tensor, semitones: int) -> torch.Tensor:
    """NOTE_ON and NOTE_OFF tokens moved by ``semitones`` (the caller checks the pitches stay in 0..127)."""
    is_note = tokens < 2 * 128  # NOTE_ON 0..127 and NOTE_OFF 128..255
    return torch.where(is_note, tokens + semitones, tokens)


def pitch_span(tokens: torch.Tensor) -> tuple[int, int] | None:
    """Lowest and highest pitch a stream plays (None when it plays no note)."""
    notes = tokens[tokens < 128]
    return (int(notes.min()), int(notes.max())) if notes.numel() else None


# ---- the pieces and their token streams --------------------------------------------------------------------
class _PieceReader(Scores):
    """The listing, parsing and cache of :class:`~workbench.scores.Scores`, without its audio.

    ``Scores.__init__`` also prepares rendering (it needs FluidSynth unless the audio is cached);
    a model of notes renders nothing, so this sets only what ``_load_collection`` and
    ``_load_files`` read, and shares ``Scores``' cache of parsed pieces
    (``$WORKBENCH_SCORES_CACHE``) with every other user of it.
    """

    def __init__(self, collection: str, split: str, max_pieces: int | None, progress: bool = False):
        self.collection, self.split, self.max_pieces, self.progress = collection, split, max_pieces, progress
        cache_dir = os.environ.get("WORKBENCH_SCORES_CACHE")
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.parse_options = {"default_bpm": float(DEFAULT_BPM), "default_velocity": int(DEFAULT_VELOCITY),
                              "expand_repeats": True, "format": EVENTS_FORMAT}


SPLITS = ("train", "validation", "test", "all")


def collections_of(collection: str) -> tuple[str, ...]:
    """``"folk+chorales"`` -> ``("folk", "chorales")``, each checked.

    Raises
    ------
    ParameterError
        A name that is not a collection of music21's corpus.
    """
    names = tuple(c.strip() for c in str(collection).split("+"))
    for name in names:
        if name not in COLLECTIONS:
            raise ParameterError(f"collection={collection!r}: {name!r} is not one of {', '.join(COLLECTIONS)}; "
                                 "join several with '+', e.g. 'folk+chorales'")
    return names


def load_pieces(collection: str = "folk", split: str = "train", max_pieces: int | None = None,
                files=None, progress: bool = False) -> list[Piece]:
    """The pieces of one split: of each collection in turn (interleaved), or of your files.

    Parameters
    ----------
    collection : str
        ``"folk"``, ``"chorales"`` or ``"folk+chorales"``.
    split : {"train", "validation", "test", "all"}
        By piece (:func:`workbench.scores.split_of`), so held-out pieces are never trained on.
    max_pieces : int, optional
        The first pieces of each collection (or of the files), before splitting.
    files : path or list of paths, optional
        Your MIDI / MusicXML / ABC files or folders instead of the collections.

    Raises
    ------
    ParameterError
        Unknown collection or split, or no piece in the split.
    """
    if split not in SPLITS:
        raise ParameterError(f"split={split!r} must be one of {', '.join(SPLITS)}")
    if files is not None:
        pieces = _PieceReader("files", split, max_pieces, progress)._load_files(files)
        where = f"files {files!r}"
    else:
        per_collection = [_PieceReader(c, split, max_pieces, progress)._load_collection()
                          for c in collections_of(collection)]
        # one piece of each collection in turn, so the first windows (the training loop's quick
        # validation loss) already mix the styles
        pieces = []
        for k in range(max(map(len, per_collection))):
            pieces.extend(ps[k] for ps in per_collection if k < len(ps))
        where = f"collection={collection!r} with max_pieces={max_pieces}"
    if not pieces:
        raise ParameterError(f"no piece of {where} is in split={split!r}; raise max_pieces or use split='all'")
    return pieces


def token_streams(pieces: Sequence[Piece]) -> list[torch.Tensor]:
    """One ``[START, ..., END]`` stream per piece, each ``(length,)`` int64 (parts are merged)."""
    return [torch.tensor(events_to_tokens(p.events), dtype=torch.long) for p in pieces]


def window_starts(length: int, context: int) -> list[int]:
    """Where the windows over a stream of ``length`` tokens start, so that every target (tokens
    1 .. length - 1) has one window that predicts it (:func:`window_start`)."""
    hop = context // 2
    starts = [0]
    while starts[-1] + context < length - 1:
        starts.append(starts[-1] + hop)
    return starts


def window_start(t: int, context: int) -> int:
    """The first input of the window that predicts token ``t`` (``t >= 1``): 0 for the first
    ``context`` tokens, then moved by half a context whenever the window is full."""
    hop = context // 2
    return 0 if t <= context else hop * -(-(t - context) // hop)


class TokenWindows(Dataset):
    """Windows of ``context + 1`` tokens cut from token streams, in every allowed transposition.

    Item ``i`` is ``(tokens (context + 1,) int64, {})`` (``inputs = tokens[:-1]``,
    ``targets = tokens[1:]``); a window running past its stream's END is filled with PAD. Windows
    start every half context (:func:`window_starts`); each is there once per shift ``k`` of
    ``shifts`` that keeps the whole stream's pitches in 0..127 (other shifts are skipped).

    Parameters
    ----------
    streams : list of Tensor ``(length,)``
    context : int
    shifts : sequence of int
        Semitones (``(0,)``: no transposition).
    """

    def __init__(self, streams: Sequence[torch.Tensor], context: int, shifts: Sequence[int] = (0,)):
        self.streams, self.context, self.shifts = list(streams), int(context), tuple(int(k) for k in shifts)
        self.items: list[tuple[int, int, int]] = []  # (stream, start, shift)
        self.skipped = 0
        for i, stream in enumerate(self.streams):
            span = pitch_span(stream)
            for k in self.shifts:
                if span is not None and not (0 <= span[0] + k and span[1] + k <= 127):
                    self.skipped += 1
                    continue
                self.items.extend((i, start, k) for start in window_starts(len(stream), self.context))
        if not self.items:
            raise ParameterError("no window to train on: every stream was skipped; narrow transpose_range")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        i, start, k = self.items[index]
        window = self.streams[i][start: start + self.context + 1]
        window = F.pad(window, (0, self.context + 1 - window.shape[0]), value=PAD)  # (context + 1,)
        return transpose_tokens(window, k) if k else window, {}

    @property
    def n_tokens(self) -> int:
        """Targets in the streams, untransposed (every token after START)."""
        return sum(len(s) - 1 for s in self.streams)


# ---- n-gram baselines --------------------------------------------------------------------------------------
def ngram_counts(streams: Sequence[Sequence[int]], order: int, n_classes: int = N_OUTPUTS) -> torch.Tensor:
    """Counts of each target (``order=1``: ``(n_classes,)``) or of each (previous, target) pair
    (``order=2``: ``(n_tokens, n_classes)``, rows for every input token); targets are every token
    after the first (START) of each stream."""
    if order not in (1, 2):
        raise ParameterError(f"order={order} must be 1 (unigram) or 2 (bigram)")
    counts = torch.zeros((n_classes,) if order == 1 else (max(N_TOKENS, n_classes), n_classes), dtype=torch.float64)
    for s in streams:
        s = torch.as_tensor(s, dtype=torch.long)
        if order == 1:
            counts += torch.bincount(s[1:], minlength=n_classes)[:n_classes].double()
        else:
            counts.index_put_((s[:-1], s[1:]), torch.ones(len(s) - 1, dtype=torch.float64), accumulate=True)
    return counts


def ngram_nll(train: Sequence[Sequence[int]], test: Sequence[Sequence[int]], order: int, k: float = 1.0,
              n_classes: int = N_OUTPUTS) -> float:
    """Negative log-likelihood per event (nats) of ``test`` under an add-k n-gram counted on ``train``.

    Unigram: ``p(x) = (c(x) + k) / (N + k V)``; bigram: ``p(x | y) = (c(y, x) + k) / (c(y) + k V)``,
    with ``V = n_classes`` and ``c(y)`` the number of pairs that start with ``y``. Every token after
    the first of each stream is an event; the first event is predicted from START.

    Raises
    ------
    ParameterError
        ``k`` not positive, or an empty ``test``.

    Examples
    --------
    >>> round(ngram_nll([[9, 0, 1, 0]], [[9, 0]], order=1, k=1.0, n_classes=3), 4)  # -log(3/6)
    0.6931
    """
    if not (isinstance(k, int | float) and k > 0):
        raise ParameterError(f"k={k!r} must be a positive count added to every event (1 is add-one smoothing)")
    counts = ngram_counts(train, order, n_classes)
    total, n = 0.0, 0
    for s in test:
        s = torch.as_tensor(s, dtype=torch.long)
        if order == 1:
            p = (counts[s[1:]] + k) / (counts.sum() + k * n_classes)
        else:
            p = (counts[s[:-1], s[1:]] + k) / (counts[s[:-1]].sum(-1) + k * n_classes)
        total -= float(torch.log(p).sum())
        n += len(s) - 1
    if n == 0:
        raise ParameterError("test holds no event to score; pass streams of at least two tokens")
    return total / n


# ---- the network -------------------------------------------------------------------------------------------
@dataclass
class KVCache:
    """Keys and values of the tokens seen so far, per layer, for incremental decoding.

    Attributes
    ----------
    keys, values : list of Tensor ``(batch, heads, context, head_dim)``
        One per layer; slots ``0 .. length - 1`` are filled.
    length : int
        Tokens held (the position of the next one in the window).
    """

    keys: list = field(default_factory=list)
    values: list = field(default_factory=list)
    length: int = 0


class CausalBlock(nn.Module):
    """Pre-LayerNorm Transformer block: ``x + attn(ln(x))``, then ``x + mlp(ln(x))`` (GELU MLP).

    Causal attention over the whole window, or, with a cache, of new queries over every cached key.
    """

    def __init__(self, d_model: int, n_heads: int, mlp_ratio: int, dropout: float):
        super().__init__()
        self.n_heads, self.dropout = n_heads, dropout
        self.ln1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, mlp_ratio * d_model), nn.GELU(),
                                 nn.Linear(mlp_ratio * d_model, d_model))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, layer: int = 0, cache: KVCache | None = None) -> torch.Tensor:
        """``x`` ``(batch, time, d_model)`` -> same shape; ``cache`` gets this layer's new keys/values."""
        b, t, d = x.shape
        qkv = self.qkv(self.ln1(x)).view(b, t, 3, self.n_heads, d // self.n_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (batch, heads, time, head_dim)
        p = self.dropout if self.training else 0.0
        if cache is None:
            attended = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        else:
            # write the new keys after the cached ones, then let the new queries read them all:
            #   slots   0 .. n0-1 (cached)   n0 .. n0+t-1 (new)
            #   query n0+i may read slots 0 .. n0+i
            n0 = cache.length
            cache.keys[layer][:, :, n0: n0 + t] = k
            cache.values[layer][:, :, n0: n0 + t] = v
            keys, values = cache.keys[layer][:, :, : n0 + t], cache.values[layer][:, :, : n0 + t]
            allowed = None
            if t > 1:  # is_causal would align the mask top-left; spell it out for the offset queries
                slots = torch.arange(n0 + t, device=x.device)
                allowed = slots[None, :] <= slots[n0:, None]  # (t, n0 + t)
            attended = F.scaled_dot_product_attention(q, keys, values, attn_mask=allowed)
        x = x + self.drop(self.proj(attended.transpose(1, 2).reshape(b, t, d)))  # (batch, time, d_model)
        return x + self.drop(self.mlp(self.ln2(x)))


class NotesLM(Model):
    """A decoder-only Transformer over Performance RNN events: scores and writes note sequences.

    Symbolic: it makes notes (:class:`~workbench.scores.NoteEvent`), not audio, so it is not a
    :class:`~workbench.models.base.GenerativeModel`; render what it writes with
    :func:`workbench.scores.events_to_midi` or the SoundFont renderer.

    Examples
    --------
    >>> model = NotesLM.from_preset("tiny").eval()
    >>> pieces = model.generate_events(2, seconds=2.0, generator=0)
    >>> len(pieces), all(e.onset_seconds < 2.0 for e in pieces[0])
    (2, True)
    """

    name = "notes_lm"
    family = "symbolic"
    likelihood = "exact"
    default_temperature = 1.0
    Config = NotesLMConfig
    PRESETS = PRESETS
    notebook = "notebooks/09_music_from_notes.ipynb"

    def __init__(self, config: NotesLMConfig):
        super().__init__(config)
        c = config
        collections_of(c.collection)
        for name in ("context", "n_layers", "d_model", "n_heads", "mlp_ratio", "batch_size"):
            value = getattr(c, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (2 if name == "context" else 1):
                raise ParameterError(f"{name}={value!r} must be a positive whole number"
                                     + (" of at least 2 tokens" if name == "context" else ""))
        if c.d_model % c.n_heads:
            raise ParameterError(f"d_model={c.d_model} is not divisible by n_heads={c.n_heads}; "
                                 "pick a number of heads that divides it")
        if not 0.0 <= c.dropout < 1.0:
            raise ParameterError(f"dropout={c.dropout} must be in [0, 1)")
        if c.max_pieces is not None and (isinstance(c.max_pieces, bool) or int(c.max_pieces) < 1):
            raise ParameterError(f"max_pieces={c.max_pieces!r} must be a positive count (or None for every piece)")
        low, high = self.shifts[0], self.shifts[-1]
        if not -24 <= low <= 0 <= high <= 24:
            raise ParameterError(f"transpose_range={c.transpose_range!r} must be (low, high) semitones with "
                                 "-24 <= low <= 0 <= high <= 24, e.g. (-5, 6)")
        self.token = nn.Embedding(N_TOKENS, c.d_model)
        self.position = nn.Embedding(c.context, c.d_model)  # learned, absolute inside a window
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(CausalBlock(c.d_model, c.n_heads, c.mlp_ratio, c.dropout)
                                    for _ in range(c.n_layers))
        self.ln_f = nn.LayerNorm(c.d_model)
        self.head = nn.Linear(c.d_model, N_OUTPUTS)
        self._init_weights()

    @property
    def shifts(self) -> tuple[int, ...]:
        """The transpositions of the training windows, in semitones."""
        try:
            low, high = (int(v) for v in self.config.transpose_range)
        except (TypeError, ValueError):
            raise ParameterError(f"transpose_range={self.config.transpose_range!r} must be (low, high) "
                                 "semitones, e.g. (-5, 6)") from None
        return tuple(range(low, high + 1))

    def _init_weights(self) -> None:
        """GPT-2 style N(0, 0.02) weights; each block's two output projections (which add into the
        residual stream) scaled by 1 / sqrt(2 n_layers), so the stream's variance does not grow with depth."""
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        for block in self.blocks:
            for out in (block.proj, block.mlp[-1]):
                out.weight.data.mul_(1.0 / math.sqrt(2 * len(self.blocks)))

    # ---- the network -----------------------------------------------------------------------------------
    def new_cache(self, batch: int) -> KVCache:
        """An empty key/value cache for ``batch`` streams, room for one window."""
        c = self.config
        shape = (batch, c.n_heads, c.context, c.d_model // c.n_heads)
        dtype = self.token.weight.dtype
        return KVCache([torch.zeros(shape, dtype=dtype, device=self.device) for _ in self.blocks],
                       [torch.zeros(shape, dtype=dtype, device=self.device) for _ in self.blocks])

    def forward(self, tokens: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """Logits of the next token after each input: ``(batch, time)`` -> ``(batch, time, N_OUTPUTS)``.

        ``tokens[:, 0]`` sits at window position 0 (or, with ``cache``, right after the tokens the
        cache holds, which then holds these too).

        Raises
        ------
        ParameterError
            Tokens outside 0 .. N_TOKENS - 1, or more tokens than the window has room for.
        """
        b, t = tokens.shape
        first = 0 if cache is None else cache.length
        if first + t > self.config.context:
            raise ParameterError(f"{first + t} tokens do not fit in one window of context={self.config.context}; "
                                 "score long streams with token_log_probs, which slides windows over them")
        if t and not (0 <= int(tokens.min()) and int(tokens.max()) < N_TOKENS):
            raise ParameterError(f"tokens must be in 0..{N_TOKENS - 1} (events, END, START, PAD); got "
                                 f"{int(tokens.min())}..{int(tokens.max())}")
        positions = torch.arange(first, first + t, device=tokens.device)
        x = self.drop(self.token(tokens) + self.position(positions))  # (batch, time, d_model)
        for layer, block in enumerate(self.blocks):
            x = block(x, layer, cache)
        if cache is not None:
            cache.length += t
        return self.head(self.ln_f(x))  # (batch, time, N_OUTPUTS)

    # ---- training ---------------------------------------------------------------------------------------
    def dataset(self, split: str = "train", data: str = "notes"):
        """Windows of ``context + 1`` tokens (:class:`TokenWindows`) from the pieces of ``split``.

        ``data`` is ``"notes"`` or ``"scores"`` (the configured collection) or a folder of your MIDI /
        MusicXML / ABC files. The training split is transposed by every shift of ``transpose_range``
        that keeps a piece in MIDI 0..127; the other splits are not transposed.
        """
        files = None if data in ("notes", "scores") else data
        pieces = load_pieces(self.config.collection, split, self.config.max_pieces, files=files, progress=True)
        return TokenWindows(token_streams(pieces), self.config.context, self.shifts if split == "train" else (0,))

    def training_step(self, batch, generator=None) -> dict:
        """Cross-entropy (nats per event) of every target of a batch of windows ``(batch, context + 1)``."""
        tokens = batch[0].to(self.device)  # (batch, context + 1)
        logits = self(tokens[:, :-1])  # (batch, context, N_OUTPUTS)
        loss = F.cross_entropy(logits.reshape(-1, N_OUTPUTS), tokens[:, 1:].reshape(-1), ignore_index=PAD)
        return {"loss": loss}

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        return [torch.optim.AdamW(self.parameters(), lr=self.config.learning_rate, betas=(0.9, 0.98),
                                  weight_decay=self.config.weight_decay)]

    # ---- likelihood -------------------------------------------------------------------------------------
    @torch.no_grad()
    def token_log_probs(self, streams: Sequence[torch.Tensor], batch_size: int = 32) -> list[torch.Tensor]:
        """Log-probability (nats) of every token after the first of each stream: ``(length - 1,)`` each.

        Streams longer than ``context`` are read through windows sliding by half a context
        (:func:`window_start`), the same windows :meth:`generate_events` samples from.
        """
        was_training = self.training
        self.eval()
        try:
            return self._token_log_probs(streams, batch_size)
        finally:
            self.train(was_training)

    def _token_log_probs(self, streams, batch_size):
        c = self.config
        hop = c.context // 2
        out = [torch.zeros(max(len(s) - 1, 0)) for s in streams]
        jobs = [(i, w) for i, s in enumerate(streams) for w in window_starts(len(s), c.context)]
        for j in range(0, len(jobs), batch_size):
            chunk = jobs[j: j + batch_size]
            windows = [torch.as_tensor(streams[i][w: w + c.context], dtype=torch.long) for i, w in chunk]
            width = max(len(x) for x in windows)
            inputs = torch.stack([F.pad(x, (0, width - len(x)), value=PAD) for x in windows]).to(self.device)
            log_p = torch.log_softmax(self(inputs).double(), dim=-1).cpu()  # (windows, width, N_OUTPUTS)
            for row, (i, w) in enumerate(chunk):
                s = torch.as_tensor(streams[i], dtype=torch.long)
                # the targets this window is responsible for: t in first .. last
                first = 1 if w == 0 else w + c.context - hop + 1
                last = min(w + c.context, len(s) - 1)
                t = torch.arange(first, last + 1)
                out[i][t - 1] = log_p[row, t - w - 1, s[t]].float()
        return out

    @classmethod
    def card_summary(cls, metrics: dict) -> str | None:
        if "nll_per_event" not in metrics:
            return None
        return (f"{metrics['nll_per_event']:.2f} nats per event on the test pieces (bigram "
                f"{metrics['bigram_nll_per_event']:.2f}, unigram {metrics['unigram_nll_per_event']:.2f})")

    def measure(self) -> dict:
        """NLL per event on the test pieces beside unigram and bigram baselines (:func:`evaluate_lm`)."""
        return evaluate_lm(self, "test")

    def log_prob_events(self, events: Sequence[NoteEvent]) -> float:
        """Mean log-probability per event, in nats, of a piece: its tokens after START, END included.

        ``-log_prob_events(e)`` is the negative log-likelihood per event that :func:`evaluate_lm`
        reports (there averaged over every event of a split).

        Raises
        ------
        ParameterError
            ``events`` is not a non-empty sequence of NoteEvent.
        """
        events = _check_events(events, "events")
        if not events:
            raise ParameterError("events=[] holds no note to score; pass at least one NoteEvent")
        (log_p,) = self.token_log_probs([torch.tensor(events_to_tokens(events))])
        return float(log_p.mean())

    # ---- generation -------------------------------------------------------------------------------------
    @torch.no_grad()
    def generate_events(self, n: int = 1, *, seconds: float | None = 10.0, max_tokens: int | None = None,
                        temperature: float | None = None, generator=None, prompt: Sequence[NoteEvent] | None = None,
                        progress=None) -> list[list[NoteEvent]]:
        """Write ``n`` pieces, one event token at a time.

        Parameters
        ----------
        n : int
            Pieces (a batch).
        seconds : float or None
            Length of music to write after the prompt. END is not sampled before it (its
            probability goes to the other events), and notes are cut there. None: write until
            the model samples END (or ``max_tokens`` runs out).
        max_tokens : int, optional
            Most tokens to sample per piece (default: ``TOKENS_PER_SECOND * seconds``).
        temperature : float, optional
            Divides the logits: below 1 plays safer, above 1 wilder. Default: :attr:`default_temperature`.
        generator : None, int or torch.Generator
            The same seed writes the same pieces.
        prompt : sequence of NoteEvent, optional
            Music to continue (parts are merged); it is part of the returned pieces.
        progress : callable, optional
            ``progress(done, total)``, in 10 ms steps written (tokens with ``seconds=None``).

        Returns
        -------
        list of ``n`` lists of NoteEvent, each playable (:func:`workbench.scores.clean_events`), part 0.

        Raises
        ------
        ParameterError
            Bad ``n``, ``seconds``, ``max_tokens``, ``temperature`` or ``prompt``.
        """
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 64:
            raise ParameterError(f"n={n!r} must be a whole number of pieces in 1..64")
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, int | float)
                                    or not 0 < float(seconds) <= MAX_SECONDS):
            raise ParameterError(f"seconds={seconds!r} must be in (0, {MAX_SECONDS:g}]; or None to write until "
                                 "the model ends the piece (give max_tokens then)")
        if max_tokens is None:
            if seconds is None:
                raise ParameterError("seconds=None needs max_tokens (e.g. max_tokens=1000), so that writing stops")
            max_tokens = max(1, math.ceil(TOKENS_PER_SECOND * float(seconds)))
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or not 1 <= max_tokens <= 100_000:
            raise ParameterError(f"max_tokens={max_tokens!r} must be a whole number in 1..100000")
        temperature = self.default_temperature if temperature is None else temperature
        if (isinstance(temperature, bool) or not isinstance(temperature, int | float)
                or not 0 < float(temperature) <= 10):
            raise ParameterError(f"temperature={temperature!r} must be in (0, 10]; 1 samples the model as trained")
        prompt_tokens = events_to_tokens(_check_events(prompt or [], "prompt"), end=False)
        gen = make_generator(generator)
        was_training = self.training
        self.eval()
        try:
            tokens, lengths = self._sample(n, prompt_tokens, seconds, max_tokens, float(temperature), gen, progress)
        finally:
            self.train(was_training)
        prompt_seconds = _elapsed_steps(prompt_tokens) * VOCABULARY.step_seconds
        out = []
        for row, length in zip(tokens.tolist(), lengths, strict=True):
            events = tokens_to_events(row[:length])
            if seconds is not None:  # the last TIME_SHIFT may step past the end: cut there
                end = prompt_seconds + float(seconds)
                events = clean_events(NoteEvent(e.onset_seconds, min(e.offset_seconds, end) - e.onset_seconds,
                                                e.pitch, e.velocity, e.part)
                                      for e in events if e.onset_seconds < end - 1e-9)
            out.append(events)
        return out

    def _sample(self, n, prompt_tokens, seconds, max_tokens, temperature, generator, progress):
        """Tokens ``(n, len(prompt) + max_tokens)`` and each row's length (up to and excluding its END)."""
        c = self.config
        p = len(prompt_tokens)
        stream = torch.full((n, p + max_tokens), PAD, dtype=torch.long, device=self.device)
        stream[:, :p] = torch.tensor(prompt_tokens, dtype=torch.long)
        limit = None if seconds is None else max(1, round(float(seconds) / VOCABULARY.step_seconds))
        elapsed = torch.zeros(n, dtype=torch.long)  # 10 ms steps written after the prompt
        lengths = [p + max_tokens] * n
        done = torch.zeros(n, dtype=torch.bool)
        shift_steps = torch.zeros(N_OUTPUTS, dtype=torch.long)
        shift_steps[TIME_SHIFT_FIRST: TIME_SHIFT_LAST + 1] = torch.arange(1, VOCABULARY.max_shift_steps + 1)
        cache, cache_start = None, None
        for t in range(p, p + max_tokens):
            # 1. the window that predicts token t: inputs w .. t - 1 (a new window refills the cache)
            w = window_start(t, c.context)
            if w != cache_start:
                cache, cache_start = self.new_cache(n), w
                if t - 1 > w:
                    self(stream[:, w: t - 1], cache)
            # 2. one token through every layer, reading the cached keys and values
            logits = self(stream[:, t - 1: t], cache)[:, -1]  # (n, N_OUTPUTS)
            if limit is not None:
                logits[:, END] = -math.inf  # a piece of `seconds` does not end early
            # 3. sample (a finished row keeps drawing, so each row's draws do not depend on the others)
            token = sample_categorical(logits, temperature, generator)
            stream[:, t] = token
            elapsed += shift_steps[token.cpu()]
            # 4. stop a row at END, or once it has written `seconds`
            ended = (token.cpu() == END) | (elapsed >= limit if limit is not None else False)
            for i in torch.nonzero(ended & ~done).flatten().tolist():
                lengths[i] = t + (0 if int(token[i]) == END else 1)
            done |= ended
            if progress is not None and ((t - p) % 32 == 0 or bool(done.all()) or t == p + max_tokens - 1):
                if limit is None:
                    progress(t - p + 1, max_tokens)
                else:
                    progress(min(int(elapsed.min()), limit), limit)
            if bool(done.all()):
                break
        return stream.cpu(), lengths

    # ---- figure ----------------------------------------------------------------------------------------
    def visualise(self, events: Sequence[NoteEvent] | None = None, title: str | None = None):
        """A piano roll of ``events`` (by default 8 seconds written with seed 0): pitch against time,
        each note a bar shaded by its velocity.

        Returns
        -------
        matplotlib Figure
        """
        from ..viz import piano_roll

        if events is None:
            events = self.generate_events(1, seconds=8.0, generator=0)[0]
            title = title or f"{self.name}: 8 s written with seed 0, temperature {self.default_temperature:g}"
        events = _check_events(events, "events")
        return piano_roll({"notes": events}, title=title or f"{len(events)} notes")


def _check_events(events, name: str) -> list[NoteEvent]:
    if isinstance(events, NoteEvent | str) or not isinstance(events, Sequence):
        raise ParameterError(f"{name}={events!r} must be a list of NoteEvent")
    events = list(events)
    bad = [e for e in events if not isinstance(e, NoteEvent)]
    if bad:
        raise ParameterError(f"{name} holds {type(bad[0]).__name__} {bad[0]!r}; pass NoteEvent objects "
                             "(workbench.scores.NoteEvent(onset_seconds, duration_seconds, pitch, velocity))")
    return events


def _elapsed_steps(tokens: Sequence[int]) -> int:
    return sum(t - TIME_SHIFT_FIRST + 1 for t in tokens if TIME_SHIFT_FIRST <= t <= TIME_SHIFT_LAST)


# ---- evaluation --------------------------------------------------------------------------------------------
#: The add-k values tried for the baselines; the best on the validation split is used.
SMOOTHING = (1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001)


def evaluate_lm(model: NotesLM, split: str = "test", data: str = "notes") -> dict:
    """Negative log-likelihood per event (nats) of ``split`` under the model and two baselines.

    The baselines are a unigram and a bigram model with add-k smoothing (:func:`ngram_nll`),
    counted on the training split's pieces (untransposed), their ``k`` each chosen from
    :data:`SMOOTHING` on the validation split. All three score the same tokens: every token after
    START of every piece of ``split`` (END included).

    Returns
    -------
    dict, JSON-ready: ``nll_per_event``, ``unigram_nll_per_event``, ``bigram_nll_per_event`` (nats),
    ``unit``, ``split``, ``pieces``, ``events``, ``train_events``, ``smoothing_k``.

    Raises
    ------
    ParameterError
        Unknown split or data.
    """
    if split not in ("train", "validation", "test"):
        raise ParameterError(f"split={split!r} must be train, validation or test")
    c = model.config
    files = None if data in ("notes", "scores") else data

    def streams(s):
        return token_streams(load_pieces(c.collection, s, c.max_pieces, files=files))

    train, valid = streams("train"), streams("validation")
    scored = {"train": train, "validation": valid}.get(split) or streams(split)
    k = {order: min(SMOOTHING, key=lambda k: ngram_nll(train, valid, order, k)) for order in (1, 2)}
    log_p = torch.cat(model.token_log_probs(scored))
    return {
        "nll_per_event": float(-log_p.mean()),
        "unigram_nll_per_event": ngram_nll(train, scored, 1, k[1]),
        "bigram_nll_per_event": ngram_nll(train, scored, 2, k[2]),
        "unit": "nats per event (every token after START, END included)",
        "split": split,
        "collection": c.collection,
        "pieces": len(scored),
        "events": int(log_p.numel()),
        "train_events": sum(len(s) - 1 for s in train),
        "smoothing_k": {"unigram": k[1], "bigram": k[2]},
    }


__all__ = ["END", "N_EVENTS", "N_OUTPUTS", "N_TOKENS", "PAD", "PRESETS", "START", "VOCABULARY", "CausalBlock",
           "KVCache", "NotesLM", "NotesLMConfig", "TokenWindows", "collections_of", "evaluate_lm", "events_to_tokens",
           "load_pieces", "ngram_counts", "ngram_nll", "pitch_span", "token_streams", "tokens_to_events",
           "transpose_tokens", "window_start", "window_starts"]
