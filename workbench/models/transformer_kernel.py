"""A compiled decode step for the Sparse Transformer (numba): the same arithmetic as the cached path.

The cached PyTorch sampler (``SparseTransformer._decode_step``) is the readable reference: one
position through every layer, reading only the cached keys its pattern allows. At the small
preset's size each step is about 250k multiply-adds, but some 60 tiny tensor operations, and
their dispatch costs far more than the arithmetic. This kernel runs the steps of one window in one
compiled loop, with the keys and values in the same cache layout, and samples with the same
inverse-CDF rule from the same stream of uniform numbers, so it draws the same codes as the
reference under the same seed (up to float rounding at a CDF boundary, tested over thousands of
steps). Filling the cache when the window moves on stays in PyTorch (one batched forward pass per
half a context).

Benchmark: benchmarks/generation.py
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ._kernels import HAVE_NUMBA, draw, matvec

if HAVE_NUMBA:
    import numba

#: the head types, as the kernel numbers them
KIND_CODES = {"local": 0, "column": 1, "block": 2, "summary": 3, "dense": 4}


def _layer_norm(x, w, b, out):
    n = x.shape[0]
    mean = 0.0
    for i in range(n):
        mean += x[i]
    mean /= n
    var = 0.0
    for i in range(n):
        d = x[i] - mean
        var += d * d
    var /= n
    inv = 1.0 / math.sqrt(var + 1e-5)
    for i in range(n):
        out[i] = np.float32((x[i] - mean) * inv) * w[i] + b[i]


def _kernel(t0, t1, start, codes, prev, logits_out, keep_logits, k_cache, v_cache, kinds, stride, summary,
            token, row, column, n_rows, note, ln1_w, ln1_b, qkv_w, qkv_b, proj_w, proj_b, ln2_w, ln2_b,
            mlp1_w, mlp1_b, mlp2_w, mlp2_b, lnf_w, lnf_b, head_w, head_b, uniforms, inv_temperature):
    """Advance every voice from sample ``t0`` to ``t1`` (exclusive), all in the window that starts at
    position ``start``.

    Shapes (B voices, L layers, H heads, E head width, D = H * E, M mlp width, C classes, N context):
    k_cache, v_cache (L, B, H, N, E); qkv_w (L, D, 3D); proj_w (L, D, D); mlp1_w (L, D, M);
    mlp2_w (L, M, D); head_w (D, C); note (B, D); uniforms (steps, B), row t for sample t.
    """
    n_voices = codes.shape[0]
    n_layers, n_heads, _, head_dim = k_cache.shape[0], k_cache.shape[2], k_cache.shape[3], k_cache.shape[4]
    d = n_heads * head_dim
    n_mlp = mlp1_w.shape[2]
    n_classes = head_w.shape[1]
    x = np.empty(d, np.float32)
    h = np.empty(d, np.float32)
    qkv = np.empty(3 * d, np.float32)
    attended = np.empty(d, np.float32)
    delta = np.empty(d, np.float32)
    hidden = np.empty(n_mlp, np.float32)
    out = np.empty(n_classes, np.float32)
    weights = np.empty(n_classes, np.float64)
    scores = np.empty(k_cache.shape[3], np.float32)
    scale = np.float32(1.0 / math.sqrt(head_dim))
    inv_sqrt2 = 1.0 / math.sqrt(2.0)
    for b in range(n_voices):
        for t in range(t0, t1):
            slot = t - 1 - start  # the cache slot of the input at position t - 1
            # 1. the input: the previous code's embedding plus its row, column and the note
            r = min(t // stride, n_rows - 1)
            c = t % stride
            for i in range(d):
                x[i] = token[prev[b], i] + row[r, i] + column[c, i] + note[b, i]
            for layer in range(n_layers):
                # 2. pre-norm, then query, key and value of this position; keep key and value
                _layer_norm(x, ln1_w[layer], ln1_b[layer], h)
                matvec(h, qkv_w[layer], qkv_b[layer], qkv)
                for hh in range(n_heads):
                    for e in range(head_dim):
                        k_cache[layer, b, hh, slot, e] = qkv[d + hh * head_dim + e]
                        v_cache[layer, b, hh, slot, e] = qkv[2 * d + hh * head_dim + e]
                # 3. the keys this head type allows (one row of its mask)
                kind = kinds[layer]
                step = 1
                first = 0
                if kind == 0:  # local: the previous stride positions
                    first = max(0, slot - stride + 1)
                elif kind == 1:  # column: every stride-th position
                    first = slot % stride
                    step = stride
                elif kind == 2:  # block: from the start of this block
                    first = slot - slot % stride
                # 4. softmax attention of each head over those keys
                for hh in range(n_heads):
                    q0 = hh * head_dim
                    n_keys = 0
                    top = np.float32(-3.0e38)
                    for j in range(first, slot + 1, step):
                        if kind == 3 and j % stride < stride - summary:
                            continue
                        s = np.float32(0.0)
                        for e in range(head_dim):
                            s += qkv[q0 + e] * k_cache[layer, b, hh, j, e]
                        s *= scale
                        scores[n_keys] = s
                        if s > top:
                            top = s
                        n_keys += 1
                    for e in range(head_dim):
                        attended[q0 + e] = 0.0
                    if n_keys == 0:  # a summary head before the first summary position
                        continue
                    total = np.float32(0.0)
                    for m in range(n_keys):
                        scores[m] = math.exp(scores[m] - top)
                        total += scores[m]
                    m = 0
                    for j in range(first, slot + 1, step):
                        if kind == 3 and j % stride < stride - summary:
                            continue
                        w = scores[m] / total
                        for e in range(head_dim):
                            attended[q0 + e] += w * v_cache[layer, b, hh, j, e]
                        m += 1
                # 5. the residual updates: projection, then the MLP on the normalised stream
                matvec(attended, proj_w[layer], proj_b[layer], delta)
                for i in range(d):
                    x[i] += delta[i]
                _layer_norm(x, ln2_w[layer], ln2_b[layer], h)
                matvec(h, mlp1_w[layer], mlp1_b[layer], hidden)
                for i in range(n_mlp):  # exact GELU, as nn.GELU()
                    v = hidden[i]
                    hidden[i] = np.float32(0.5 * v * (1.0 + math.erf(v * inv_sqrt2)))
                matvec(hidden, mlp2_w[layer], mlp2_b[layer], delta)
                for i in range(d):
                    x[i] += delta[i]
            # 6. final norm and the logits
            _layer_norm(x, lnf_w, lnf_b, h)
            matvec(h, head_w, head_b, out)
            if keep_logits:
                for cc in range(n_classes):
                    logits_out[b, t - t0, cc] = out[cc]
            # 7. sample by inverse CDF of softmax(logits / temperature), as sample_categorical
            choice = draw(out, weights, inv_temperature, uniforms[t, b])
            codes[b, t] = choice
            prev[b] = choice


if HAVE_NUMBA:
    _layer_norm = numba.njit(cache=True, fastmath=False, nogil=True)(_layer_norm)
    _compiled = numba.njit(cache=True, fastmath=False, nogil=True)(_kernel)


def available() -> bool:
    return HAVE_NUMBA


class FastDecoder:
    """A Sparse Transformer's weights as contiguous float32 arrays (input-major), for the kernel."""

    def __init__(self, model):
        def arr(t):
            return np.ascontiguousarray(t.detach().to(torch.float32).cpu().numpy())

        blocks = model.blocks
        self.kinds = np.array([KIND_CODES[b.kind] for b in blocks], dtype=np.int64)
        self.token, self.row, self.column = arr(model.token.weight), arr(model.row.weight), arr(model.column.weight)
        self.ln1_w = arr(torch.stack([b.ln1.weight for b in blocks]))
        self.ln1_b = arr(torch.stack([b.ln1.bias for b in blocks]))
        self.qkv_w = arr(torch.stack([b.qkv.weight.T for b in blocks]))
        self.qkv_b = arr(torch.stack([b.qkv.bias for b in blocks]))
        self.proj_w = arr(torch.stack([b.proj.weight.T for b in blocks]))
        self.proj_b = arr(torch.stack([b.proj.bias for b in blocks]))
        self.ln2_w = arr(torch.stack([b.ln2.weight for b in blocks]))
        self.ln2_b = arr(torch.stack([b.ln2.bias for b in blocks]))
        self.mlp1_w = arr(torch.stack([b.mlp[0].weight.T for b in blocks]))
        self.mlp1_b = arr(torch.stack([b.mlp[0].bias for b in blocks]))
        self.mlp2_w = arr(torch.stack([b.mlp[2].weight.T for b in blocks]))
        self.mlp2_b = arr(torch.stack([b.mlp[2].bias for b in blocks]))
        self.lnf_w, self.lnf_b = arr(model.ln_f.weight), arr(model.ln_f.bias)
        self.head_w, self.head_b = arr(model.head.weight.T), arr(model.head.bias)

    def run(self, t0, t1, start, codes, prev, caches, note, stride, summary, uniforms, temperature,
            logits_out=None):
        """Steps ``t0 .. t1 - 1`` of the window at ``start``; ``caches`` (L, B, H, N, E) numpy arrays
        (keys, values) are updated in place, ``codes`` and ``prev`` too."""
        keep = logits_out is not None
        if logits_out is None:
            logits_out = np.empty((1, 1, 1), np.float32)
        k_cache, v_cache = caches
        _compiled(t0, t1, start, codes, prev, logits_out, keep, k_cache, v_cache, self.kinds, stride, summary,
                  self.token, self.row, self.column, self.row.shape[0], note, self.ln1_w, self.ln1_b,
                  self.qkv_w, self.qkv_b, self.proj_w, self.proj_b, self.ln2_w, self.ln2_b, self.mlp1_w,
                  self.mlp1_b, self.mlp2_w, self.mlp2_b, self.lnf_w, self.lnf_b, self.head_w, self.head_b,
                  uniforms, 1.0 / temperature)
