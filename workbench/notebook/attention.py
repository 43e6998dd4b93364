"""Attention patterns, checked and measured: masks, two-hop reach, and training memory against context.

What notebook 10 and ``benchmarks/memory.py`` share: the pattern view behind the notebook's
controls, the memory of one training step of a Sparse Transformer (dense, strided, fixed) or a
WaveNet at a given context, scans over contexts that skip what would not fit, growth exponents
and the longest context within a budget.

Notebook: notebooks/10_attention.ipynb
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ParameterError
from .display import Table, Text

#: Where ``benchmarks/memory.py`` writes its table.
BENCHMARK_JSON = Path(__file__).resolve().parent.parent.parent / "benchmarks" / "memory.json"
#: The model families a memory scan compares.
FAMILIES = ("dense", "strided", "fixed", "wavenet")
#: A transformer family with this suffix trains with gradient checkpointing.
CHECKPOINTED = "+checkpoint"


def sqrt_stride(n: int) -> int:
    """The power of two nearest ``sqrt(n)`` that divides ``n``: the paper's ``l ~ sqrt(n)``.

    Examples
    --------
    >>> [sqrt_stride(n) for n in (256, 2048, 4096, 65536)]
    [16, 64, 64, 256]
    """
    if n < 1:
        raise ParameterError(f"n={n} must be a positive number of samples")
    stride = 2 ** int(math.log2(n) / 2 + 0.5)  # halves round up: 2048 -> 64
    while n % stride:
        stride //= 2
    return max(1, stride)


def pattern_stats(pattern: str, n: int, stride: int, summary: int = 1) -> dict:
    """Keys per query of each head type and whether two layers of them connect every ``j <= i``.

    Returns
    -------
    dict with ``keys_per_query`` (kind -> mean), ``max_keys`` (kind -> max), ``dense_keys``
    (mean keys per query of dense causal attention), ``two_hop`` (bool: every ``j <= i``
    reachable through the pattern's layers in order) and ``budget`` (``l + n / l``).
    """
    from ..models.sparse_transformer import attention_mask, attention_masks, reachable

    masks = attention_masks(pattern, n, stride, summary)
    causal = attention_mask("dense", n, stride, summary)
    reach = reachable(masks)
    return {"keys_per_query": {k: float(m.sum(-1).float().mean()) for k, m in masks.items()},
            "max_keys": {k: int(m.sum(-1).max()) for k, m in masks.items()},
            "dense_keys": float(causal.sum(-1).float().mean()),
            "two_hop": bool(torch.equal(reach, causal)),
            "budget": stride + n / stride}


def pattern_view(pattern: str = "strided", n: int = 64, stride: int = 8, summary: int = 2):
    """The masks of a pattern, what two layers reach, and the counts: for the notebook's controls.

    Returns
    -------
    (Figure, Text)
    """
    from ..models.sparse_transformer import pattern_figure

    n, stride, summary = int(n), int(stride), min(int(summary), int(stride))
    if n % stride:
        raise ParameterError(f"stride={stride} does not divide n={n}; pick a stride that does")
    stats = pattern_stats(pattern, n, stride, summary)
    keys = ", ".join(f"{k} {v:.1f} (max {stats['max_keys'][k]})" for k, v in stats["keys_per_query"].items())
    text = Text(f"{pattern}, n={n}, l={stride}: keys per query {keys}; dense causal attention "
                f"{stats['dense_keys']:.1f} on average, {n} at most; l + n/l = {stats['budget']:.0f}. "
                f"Every j <= i reached within {len(stats['keys_per_query'])} layer(s): {stats['two_hop']}")
    return pattern_figure(pattern, n, stride, summary), text


# ---- memory of one training step ---------------------------------------------------------------------------
def sparse_model(pattern: str, context: int, stride: int | None = None, summary: int = 8, preset: str = "small",
                 **overrides):
    """A fresh Sparse Transformer (``preset`` widths) with this context, ``stride ~ sqrt(context)`` by default."""
    from ..models import create_model

    stride = stride or sqrt_stride(context)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return create_model("sparse_transformer", preset, pattern=pattern, context=int(context), stride=stride,
                            summary=min(summary, stride), **overrides)


def _saved_bytes(fn, exclude: set) -> tuple[object, int]:
    """Run ``fn()`` and count the bytes of the tensors autograd saves meanwhile (each storage once)."""
    saved: dict[int, int] = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in exclude:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return out, sum(saved.values())


def training_memory(model, n_samples: int, batch_size: int = 1, generator=0, repeats: int = 1) -> dict:
    """Activation memory and time of one training step (forward + backward) on ``n_samples`` inputs.

    - ``saved_bytes``: the tensors autograd keeps for backward (``saved_tensors_hooks``, each storage
      once, parameters excluded), as :func:`workbench.notebook.training_step_cost` counts for WaveNet.
    - ``attention_bytes``: the attention scores an unfused implementation keeps for backward (one
      float per query-key pair each layer computes; zero for a WaveNet). PyTorch's fused kernels
      recompute them in backward instead, trading this memory for time.
    - ``recompute_bytes``: with gradient checkpointing (config ``checkpoint=True``) only the blocks'
      inputs are saved; backward recomputes one block at a time, which then holds that block's
      activations and attention scores (the largest block's are counted here, and
      ``attention_bytes`` is zero: no layer's scores outlive its forward).
    - ``total_bytes``: their sum, the memory that grows with context.

    - ``step_seconds``: wall time of forward + backward, the fastest of ``repeats`` runs.

    Works for a Sparse Transformer (input = ``n_samples``, all targets) and a WaveNet (input =
    ``n_samples``, the targets that see a full receptive field).
    """
    from ..dsp.spectral import make_generator
    from ..models.sparse_transformer import SparseTransformer, scores_computed
    from ..models.wavenet import WaveNet

    gen = make_generator(generator) or torch.Generator().manual_seed(0)
    codes = torch.randint(0, model.n_classes, (batch_size, n_samples + 1), generator=gen)
    if isinstance(model, SparseTransformer):
        keep, attention = 0, model.attention_buffer_bytes(n_samples, batch_size)
    elif isinstance(model, WaveNet):
        keep, attention = min(model.receptive_field - 1, n_samples - 1), 0
    else:
        raise ParameterError(f"{type(model).__name__} is neither a SparseTransformer nor a WaveNet")
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    model.train()

    def step():
        logits = model(codes[:, :-1])[..., keep:]  # (batch, classes, targets)
        return F.cross_entropy(logits, codes[:, keep + 1:])

    seconds = math.inf
    for _ in range(max(1, repeats)):
        model.zero_grad(set_to_none=True)
        began = time.perf_counter()
        loss, saved_bytes = _saved_bytes(step, params)
        loss.backward()
        seconds = min(seconds, time.perf_counter() - began)
    model.zero_grad(set_to_none=True)
    recompute = 0
    if isinstance(model, SparseTransformer) and model.config.checkpoint:
        c = model.config
        padded = -(-n_samples // c.stride) * c.stride
        x = torch.randn(batch_size, padded, c.d_model, generator=gen, requires_grad=True)
        for block in model.blocks:
            _, block_bytes = _saved_bytes(lambda block=block: block(x, c.stride, c.summary), params)
            scores = batch_size * c.n_heads * 4 * scores_computed(block.kind, n_samples, c.stride, c.summary)
            recompute = max(recompute, block_bytes + scores)
        attention = 0
    model.eval()
    return {"context": int(n_samples), "saved_bytes": saved_bytes, "attention_bytes": int(attention),
            "recompute_bytes": int(recompute), "total_bytes": saved_bytes + int(attention) + int(recompute),
            "step_seconds": seconds, "n_parameters": model.n_parameters}


def _family_model(family: str, context: int, widths: dict | None):
    from ..models import create_model

    if family == "wavenet":
        with torch.random.fork_rng():
            torch.manual_seed(0)
            return create_model("wavenet", "small")
    pattern, checkpointed = family.removesuffix(CHECKPOINTED), family.endswith(CHECKPOINTED)
    return sparse_model(pattern, context, **{**(widths or {}), **({"checkpoint": True} if checkpointed else {})})


def memory_scan(contexts, families=FAMILIES, max_bytes: float = 3e9, widths: dict | None = None,
                repeats: int = 1, progress=None) -> list[dict]:
    """:func:`training_memory` of each family at each context, skipping what would not fit.

    Before each run the memory is estimated (attention buffers exactly; the rest from the bytes
    per sample of the family's last measured context, which grow linearly); a context estimated
    over ``max_bytes`` is skipped, as are the longer ones of that family.

    Parameters
    ----------
    contexts : iterable of int
        Input lengths in samples, increasing.
    families : iterable of str
        From ``dense``, ``strided``, ``fixed`` (Sparse Transformer patterns, ``stride ~ sqrt(n)``;
        add ``+checkpoint`` for gradient checkpointing) and ``wavenet`` (the small preset: about
        the same number of parameters).
    widths : dict, optional
        Config overrides for the transformers (e.g. ``{"preset": "tiny"}``, ``{"checkpoint": True}``).
    repeats : int
        Training steps timed per context (the fastest is kept; memory is the same every time).
    progress : callable, optional
        Called with each row as it is measured.

    Returns
    -------
    list of dicts: ``family``, ``context``, ``stride``, the :func:`training_memory` numbers, and
    ``skipped`` (None, or why).
    """
    rows = []
    for family in families:
        if family not in FAMILIES and not (family.endswith(CHECKPOINTED)
                                           and family.removesuffix(CHECKPOINTED) in FAMILIES[:3]):
            raise ParameterError(f"family={family!r} is not one of {', '.join(FAMILIES)} (a pattern may end "
                                 f"in {CHECKPOINTED!r}: trained with gradient checkpointing)")
        per_sample, over = None, False
        for n in contexts:
            model = _family_model(family, n, widths)
            attention = model.attention_buffer_bytes(n) if family != "wavenet" else 0
            if family.endswith(CHECKPOINTED):
                attention //= len(model.blocks)  # about one layer's scores at a time
            estimate = attention + (per_sample or 0) * n
            row = {"family": family, "context": int(n), "stride": getattr(model.config, "stride", None),
                   "n_parameters": model.n_parameters, "estimate_bytes": int(estimate)}
            if over or estimate > max_bytes:
                over = True
                row.update(skipped=f"estimated {estimate / 1e9:.1f} GB > {max_bytes / 1e9:.1f} GB")
            else:
                first = per_sample is None  # the family's first run also pays one-off costs: time it once more
                row.update(training_memory(model, n, repeats=repeats + first), skipped=None)
                per_sample = (row["total_bytes"] - row["attention_bytes"]) / n
            rows.append(row)
            if progress is not None:
                progress(row)
    return rows


def growth_exponent(contexts, values) -> float:
    """Slope of log(value) against log(context): 1 linear, 1.5 ``n sqrt(n)``, 2 quadratic."""
    x, y = np.log(np.asarray(contexts, dtype=float)), np.log(np.asarray(values, dtype=float))
    if len(x) < 2:
        raise ParameterError("a growth exponent needs at least two measured contexts")
    return float(np.polyfit(x, y, 1)[0])


def summarise(rows, budget_bytes: float, key: str = "total_bytes") -> dict:
    """Per family: the growth exponent, the longest measured context within ``budget_bytes``, and
    the context at which the power-law fit reaches the budget. Families whose ``key`` is zero
    somewhere (no attention buffers) are left out.

    Returns
    -------
    dict family -> {``exponent``, ``longest_measured``, ``fit_at_budget``}
    """
    out = {}
    for family in dict.fromkeys(r["family"] for r in rows):
        done = [r for r in rows if r["family"] == family and not r.get("skipped")]
        if not done:
            continue
        contexts = [r["context"] for r in done]
        values = [r[key] for r in done]
        if min(values) <= 0:  # nothing of this kind to fit (a WaveNet's attention buffers)
            continue
        fits = [c for c, v in zip(contexts, values) if v <= budget_bytes]
        entry = {"exponent": None, "longest_measured": max(fits) if fits else None, "fit_at_budget": None}
        if len(done) >= 2:
            slope, intercept = np.polyfit(np.log(contexts), np.log(values), 1)
            entry["exponent"] = float(slope)
            entry["fit_at_budget"] = int(math.exp((math.log(budget_bytes) - intercept) / slope))
        out[family] = entry
    return out


def memory_table(rows) -> str:
    """The rows of :func:`memory_scan` as a fixed-width table (MB)."""
    width = max([7] + [len(r["family"]) for r in rows])
    lines = [f"{'family':{width}} {'context':>8} {'stride':>6} {'saved MB':>9} {'attention MB':>12} "
             f"{'recompute MB':>12} {'total MB':>9} {'step s':>7}"]
    for r in rows:
        head = f"{r['family']:{width}} {r['context']:8d} {r['stride'] or '-':>6}"
        if r.get("skipped"):
            lines.append(f"{head} skipped: {r['skipped']}")
            continue
        lines.append(f"{head} {r['saved_bytes'] / 1e6:9.1f} {r['attention_bytes'] / 1e6:12.1f} "
                     f"{r.get('recompute_bytes', 0) / 1e6:12.1f} {r['total_bytes'] / 1e6:9.1f} "
                     f"{r['step_seconds']:7.2f}")
    return "\n".join(lines)


def memory_figure(rows, key: str = "total_bytes", title: str | None = None):
    """Memory against context, one curve per family, on log-log axes (Figure)."""
    from ..viz import new_figure

    fig, axes = new_figure(1, 1, row_height=3.4)
    ax = axes[0, 0]
    for family in dict.fromkeys(r["family"] for r in rows):
        done = [r for r in rows if r["family"] == family and not r.get("skipped")]
        if done:
            ax.plot([r["context"] for r in done], [r[key] / 1e6 for r in done], marker="o", ms=3, label=family)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("context (samples)")
    ax.set_ylabel("MB per example")
    ax.set_title(title or "training memory per example against context")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return fig


def read_benchmark(path=None) -> dict | None:
    """The results ``benchmarks/memory.py`` wrote (None when it has not been run)."""
    path = Path(path) if path is not None else BENCHMARK_JSON
    return json.loads(path.read_text()) if path.exists() else None


def decoding_speed(model, n_samples: int, method: str, generator=0) -> float:
    """Samples per second of ``model.sample_codes`` with ``method`` at batch 1 (from the onset)."""
    from ..dsp.spectral import make_generator

    cond = {s.name: [s.default] for s in model.conditioning}
    began = time.perf_counter()
    with torch.no_grad():
        model.sample_codes(1, n_samples, cond, 1.0, make_generator(generator), method=method)
    return n_samples / (time.perf_counter() - began)


__all__ = ["BENCHMARK_JSON", "FAMILIES", "decoding_speed", "growth_exponent", "memory_figure", "memory_scan",
           "memory_table", "pattern_stats", "pattern_view", "read_benchmark", "sparse_model", "sqrt_stride",
           "summarise", "training_memory"]


# ---- the shipped models side by side -------------------------------------------------------------------
def card_comparison(names=("sparse_transformer", "wavenet", "samplernn")) -> tuple[Table, str]:
    """The shipped checkpoints' cards side by side (parameters, held-out bits per sample on the same
    test notes, pitch accuracy, harmonic share, samples per second), and one sentence saying which
    has the lowest bits and which puts the most notes at their pitch. Models without a checkpoint
    are listed as such.

    Returns
    -------
    (Table, sentence)
    """
    from ..models import has_checkpoint, load_card

    rows, shipped = [], {}
    for name in names:
        if not has_checkpoint(name):
            rows.append([name, "no checkpoint yet", None, None, None, None])
            continue
        m = load_card(name).get("metrics", {})
        shipped[name] = m
        rows.append([name, f"{m.get('parameters', 0):,}", m.get("bits_per_sample"),
                     None if m.get("pitch_accuracy") is None else f"{m['pitch_accuracy']:.0%}",
                     None if m.get("harmonic_share") is None else f"{m['harmonic_share']:.0%}",
                     None if m.get("samples_per_second") is None else f"{m['samples_per_second']:,.0f}"])
    table = Table(["model", "parameters", "held-out bits/sample", "pitch accuracy", "harmonic share",
                   "samples/s"], rows,
                  notes=["from each checkpoint's card (workbench evaluate): the same test notes for every model"])
    with_bits = {n: m["bits_per_sample"] for n, m in shipped.items() if m.get("bits_per_sample") is not None}
    with_pitch = {n: m["pitch_accuracy"] for n, m in shipped.items() if m.get("pitch_accuracy") is not None}
    if len(with_bits) < 2 or len(with_pitch) < 2:
        return table, "fewer than two of these models ship measured checkpoints: nothing to compare yet"
    best_bits, best_pitch = min(with_bits, key=with_bits.get), max(with_pitch, key=with_pitch.get)
    sentence = (f"lowest held-out bits: {best_bits} ({with_bits[best_bits]:.2f}); most notes at the asked pitch: "
                f"{best_pitch} ({with_pitch[best_pitch]:.0%})")
    if best_bits != best_pitch:
        sentence += (f"; {best_bits} predicts held-out notes better than {best_pitch} but its own samples "
                     f"land at the asked pitch less often ({with_pitch[best_bits]:.0%})")
    return table, sentence
