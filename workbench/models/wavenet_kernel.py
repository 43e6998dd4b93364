"""A compiled incremental sampler for WaveNet (numba): the same arithmetic as the cached path.

The cached PyTorch sampler (``WaveNet._cached_chunks``) is the readable reference. Each of its
steps launches dozens of tiny tensor operations whose overhead dwarfs the ~150k multiply-adds a
sample needs. This kernel does those multiply-adds in one compiled loop per step, with each
layer's queue kept as a ring buffer, and samples with the same inverse-CDF rule from the same
stream of uniform numbers, so it draws the same codes as the reference under the same seed.

Benchmark: benchmarks/generation.py
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ._kernels import HAVE_NUMBA, draw

if HAVE_NUMBA:
    import numba


def _kernel(t0, t1, codes, logits_out, keep_logits, prev, ring, ring_offset, ring_len,
            dilation, conv_w, conv_b, res_w, res_b, skip_w, skip_b, head1_w, head1_b, head2_w, head2_b,
            embed, bias, frame_of, source, use_source, uniforms, inv_temperature):
    """Advance every voice from step ``t0`` to ``t1`` (exclusive).

    Weights are stored input-major so every inner loop runs over contiguous outputs (which the
    compiler turns into SIMD without reordering any sum). Shapes (B voices, L layers, K taps,
    G gate, R residual, S skip, C classes): conv_w (L, K, R, G); conv_b (L, G);
    res_w (L, G/2, R); skip_w (L, G/2, S); head1_w (S, S); head2_w (S, C); embed (C, R);
    bias (B, L, G, n_columns) with column frame_of[t] for the step that predicts sample t;
    source (B, L, G, t1 - t0): the sample-rate source's bias at each step of this chunk, added
    to ``bias`` when ``use_source``;
    ring: per-layer ring buffers of past layer inputs, layer l at rows ring_offset[l] ..
    ring_offset[l] + ring_len[l], ring_len[l] = (K - 1) * dilation[l].
    """
    n_voices = codes.shape[0]
    n_layers, n_taps, n_res, n_gate = conv_w.shape
    half = n_gate // 2
    n_skip = skip_w.shape[2]
    n_classes = head2_w.shape[1]
    h = np.empty(n_gate, np.float32)
    z = np.empty(half, np.float32)
    skip = np.empty(n_skip, np.float32)
    hidden = np.empty(n_skip, np.float32)
    out = np.empty(n_classes, np.float32)
    weights = np.empty(n_classes, np.float64)
    x = np.empty(n_res, np.float32)
    x_next = np.empty(n_res, np.float32)
    scale = np.float32(math.sqrt(0.5))
    for b in range(n_voices):
        for t in range(t0, t1):
            # 1. the input at position t - 1: the previous code's embedding (silence -> 0)
            x[:] = embed[prev[b]]
            skip[:] = 0.0
            column = frame_of[t]
            for layer in range(n_layers):
                d = dilation[layer]
                q = ring_len[layer]
                base = ring_offset[layer]
                # 2. dilated conv: the present tap plus taps m * d steps back from the ring
                if use_source:
                    for g in range(n_gate):
                        h[g] = conv_b[layer, g] + (bias[b, layer, g, column] + source[b, layer, g, t - t0])
                else:
                    for g in range(n_gate):
                        h[g] = conv_b[layer, g] + bias[b, layer, g, column]
                for r in range(n_res):
                    xr = x[r]
                    for g in range(n_gate):
                        h[g] += conv_w[layer, n_taps - 1, r, g] * xr
                for m in range(1, n_taps):
                    row = base + ((t - m * d) % q)
                    for r in range(n_res):
                        xr = ring[b, row, r]
                        for g in range(n_gate):
                            h[g] += conv_w[layer, n_taps - 1 - m, r, g] * xr
                # 3. gate
                for j in range(half):
                    z[j] = math.tanh(h[j]) / (np.float32(1.0) + math.exp(-h[half + j]))
                # 4. skip and residual 1x1 convs; store this layer's input in its ring
                for s in range(n_skip):
                    skip[s] += skip_b[layer, s]
                for r in range(n_res):
                    x_next[r] = res_b[layer, r]
                for j in range(half):
                    zj = z[j]
                    for s in range(n_skip):
                        skip[s] += skip_w[layer, j, s] * zj
                    for r in range(n_res):
                        x_next[r] += res_w[layer, j, r] * zj
                row = base + (t % q)
                for r in range(n_res):
                    ring[b, row, r] = x[r]
                    x[r] = (x[r] + x_next[r]) * scale
            # 5. output head: relu -> 1x1 -> relu -> 1x1 -> logits
            hidden[:] = head1_b
            for j in range(n_skip):
                v = skip[j]
                if v > 0:
                    for s in range(n_skip):
                        hidden[s] += head1_w[j, s] * v
            out[:] = head2_b
            for j in range(n_skip):
                v = hidden[j]
                if v > 0:
                    for c in range(n_classes):
                        out[c] += head2_w[j, c] * v
            if keep_logits:
                for c in range(n_classes):
                    logits_out[b, t, c] = out[c]
            # sample by inverse CDF of softmax(logits / temperature), as sample_categorical
            choice = draw(out, weights, inv_temperature, uniforms[t, b])
            codes[b, t] = choice
            prev[b] = choice


def _kernel_voices(t0, t1, codes, logits_out, keep_logits, prev, ring, ring_offset, ring_len,
                   dilation, conv_w, conv_b, res_w, res_b, skip_w, skip_b, head1_w, head1_b, head2_w, head2_b,
                   embed, bias, frame_of, source, use_source, uniforms, inv_temperature):
    """:func:`_kernel` with the voices inside each product: every weight row is read once per step
    and used for all voices (a matrix-matrix product, where one voice is a matrix-vector one).
    Each voice's sums run in the same order as in :func:`_kernel`, so the logits are the same
    bit for bit. Same arguments."""
    n_voices = codes.shape[0]
    n_layers, n_taps, n_res, n_gate = conv_w.shape
    half = n_gate // 2
    n_skip = skip_w.shape[2]
    n_classes = head2_w.shape[1]
    h = np.empty((n_voices, n_gate), np.float32)
    z = np.empty((n_voices, half), np.float32)
    skip = np.empty((n_voices, n_skip), np.float32)
    hidden = np.empty((n_voices, n_skip), np.float32)
    out = np.empty((n_voices, n_classes), np.float32)
    weights = np.empty(n_classes, np.float64)
    x = np.empty((n_voices, n_res), np.float32)
    x_next = np.empty((n_voices, n_res), np.float32)
    scale = np.float32(math.sqrt(0.5))
    for t in range(t0, t1):
        column = frame_of[t]
        for b in range(n_voices):
            x[b, :] = embed[prev[b]]
            skip[b, :] = 0.0
        for layer in range(n_layers):
            d = dilation[layer]
            q = ring_len[layer]
            base = ring_offset[layer]
            for b in range(n_voices):
                if use_source:
                    for g in range(n_gate):
                        h[b, g] = conv_b[layer, g] + (bias[b, layer, g, column] + source[b, layer, g, t - t0])
                else:
                    for g in range(n_gate):
                        h[b, g] = conv_b[layer, g] + bias[b, layer, g, column]
            for r in range(n_res):
                for b in range(n_voices):
                    xr = x[b, r]
                    for g in range(n_gate):
                        h[b, g] += conv_w[layer, n_taps - 1, r, g] * xr
            for m in range(1, n_taps):
                row = base + ((t - m * d) % q)
                for r in range(n_res):
                    for b in range(n_voices):
                        xr = ring[b, row, r]
                        for g in range(n_gate):
                            h[b, g] += conv_w[layer, n_taps - 1 - m, r, g] * xr
            for b in range(n_voices):
                for j in range(half):
                    z[b, j] = math.tanh(h[b, j]) / (np.float32(1.0) + math.exp(-h[b, half + j]))
                for s in range(n_skip):
                    skip[b, s] += skip_b[layer, s]
                for r in range(n_res):
                    x_next[b, r] = res_b[layer, r]
            for j in range(half):
                for b in range(n_voices):
                    zj = z[b, j]
                    for s in range(n_skip):
                        skip[b, s] += skip_w[layer, j, s] * zj
                    for r in range(n_res):
                        x_next[b, r] += res_w[layer, j, r] * zj
            row = base + (t % q)
            for b in range(n_voices):
                for r in range(n_res):
                    ring[b, row, r] = x[b, r]
                    x[b, r] = (x[b, r] + x_next[b, r]) * scale
        # the output head, then each voice's draw
        for b in range(n_voices):
            hidden[b, :] = head1_b
        for j in range(n_skip):
            for b in range(n_voices):
                v = skip[b, j]
                if v > 0:
                    for s in range(n_skip):
                        hidden[b, s] += head1_w[j, s] * v
        for b in range(n_voices):
            out[b, :] = head2_b
        for j in range(n_skip):
            for b in range(n_voices):
                v = hidden[b, j]
                if v > 0:
                    for c in range(n_classes):
                        out[b, c] += head2_w[j, c] * v
        for b in range(n_voices):
            if keep_logits:
                for c in range(n_classes):
                    logits_out[b, t, c] = out[b, c]
            # sample by inverse CDF of softmax(logits / temperature), as sample_categorical
            choice = draw(out[b], weights, inv_temperature, uniforms[t, b])
            codes[b, t] = choice
            prev[b] = choice


if HAVE_NUMBA:
    _compiled = numba.njit(cache=True, fastmath=False, nogil=True)(_kernel)
    _compiled_voices = numba.njit(cache=True, fastmath=False, nogil=True)(_kernel_voices)


def available() -> bool:
    return HAVE_NUMBA


class FastSampler:
    """Holds the weights as contiguous arrays and runs the compiled kernel in chunks."""

    def __init__(self, model):
        if not HAVE_NUMBA:
            raise RuntimeError("numba is not installed")
        blocks = model.blocks
        k = model.config.kernel_size
        f32 = np.float32

        def arr(t):
            return np.ascontiguousarray(t.detach().cpu().numpy().astype(f32))

        # input-major layouts: conv (G, R, K) -> (K, R, G); 1x1 convs (out, in) -> (in, out)
        self.conv_w = np.ascontiguousarray(np.stack([arr(b.conv.weight).transpose(2, 1, 0) for b in blocks]))
        self.conv_b = np.stack([arr(b.conv.bias) for b in blocks])
        self.res_w = np.ascontiguousarray(np.stack([arr(b.residual.weight[..., 0]).T for b in blocks]))
        self.res_b = np.stack([arr(b.residual.bias) for b in blocks])
        self.skip_w = np.ascontiguousarray(np.stack([arr(b.skip.weight[..., 0]).T for b in blocks]))
        self.skip_b = np.stack([arr(b.skip.bias) for b in blocks])
        self.head1_w = np.ascontiguousarray(arr(model.head[1].weight[..., 0]).T)
        self.head1_b = arr(model.head[1].bias)
        self.head2_w = np.ascontiguousarray(arr(model.head[3].weight[..., 0]).T)
        self.head2_b = arr(model.head[3].bias)
        self.embed = arr(model.embed.weight - model.embed.weight[model.silence])
        self.dilation = np.array([b.dilation for b in blocks], dtype=np.int64)
        self.ring_len = (k - 1) * self.dilation
        self.ring_offset = np.concatenate([[0], np.cumsum(self.ring_len)[:-1]]).astype(np.int64)
        self.n_ring = int(self.ring_len.sum())

    def sample(self, model, n, n_samples, g, local, omega, temperature, generator, progress=None,
               return_logits=False, chunk: int = 2048):
        """All ``n_samples`` codes ``(n, n_samples)`` (and logits ``(n, classes, n_samples)``)."""
        parts = list(self.chunks(model, n, n_samples, g, local, omega, temperature, generator, progress,
                                 return_logits, chunk))
        codes = torch.cat([codes for codes, _ in parts], dim=1)
        if return_logits:
            return codes, torch.cat([logits for _, logits in parts], dim=-1)
        return codes

    def chunks(self, model, n, n_samples, g, local, omega, temperature, generator, progress=None,
               return_logits=False, chunk: int = 2048):
        """Run the kernel ``chunk`` steps at a time, yielding each chunk's codes ``(n, chunk)`` and
        logits ``(n, classes, chunk)`` (None unless ``return_logits``) as soon as they are drawn.

        The ring buffers and the previous codes carry over from one chunk to the next, and the
        uniforms are drawn for the whole clip up front, so the codes do not depend on ``chunk``.
        """
        hop = model.config.hop_length
        n_layers, gate = len(model.blocks), model.config.gate_channels
        # conditioning columns: 0 = before the onset (global only), j + 1 = frame j
        glob = g.detach().view(n, n_layers, gate, 1)
        if local is not None:
            loc = local.detach().view(n, n_layers, gate, -1)
            bias = torch.cat([glob, glob + loc], dim=-1)
        else:
            bias = glob
        bias = np.ascontiguousarray(bias.cpu().numpy().astype(np.float32))
        positions = np.arange(n_samples) - 1  # the step predicting sample t runs at position t - 1
        if local is not None:
            frame = np.minimum((positions + hop // 2) // hop, bias.shape[-1] - 2) + 1
            frame_of = np.where(positions >= 0, frame, 0).astype(np.int64)
        else:
            frame_of = np.zeros(n_samples, dtype=np.int64)
        # the same uniforms, in the same order, as sample_categorical draws them step by step
        uniforms = torch.rand(n_samples, n, generator=generator, dtype=torch.float64).numpy()
        codes = np.zeros((n, n_samples), dtype=np.int64)
        logits = np.zeros((n, n_samples, self.head2_w.shape[1]) if return_logits else (1, 1, 1), np.float32)
        prev = np.full(n, model.silence, dtype=np.int64)
        ring = np.zeros((n, max(self.n_ring, 1), self.embed.shape[1]), dtype=np.float32)
        no_source = np.zeros((1, 1, 1, 1), np.float32)
        for t0 in range(0, n_samples, chunk):
            t1 = min(n_samples, t0 + chunk)
            source = no_source
            if omega is not None:  # the source's share of the bias, computed in torch a chunk at a time
                steps = torch.arange(t0 - 1, t1 - 1, device=model.device)
                zero = torch.zeros_like(g)
                with torch.no_grad():
                    source = model.layer_bias(zero, None, steps, omega)
                source = np.ascontiguousarray(source.cpu().numpy().astype(np.float32))
            kernel = _compiled if n == 1 else _compiled_voices  # voices inside the products from two up
            kernel(t0, t1, codes, logits, return_logits, prev, ring, self.ring_offset, self.ring_len,
                      self.dilation, self.conv_w, self.conv_b, self.res_w, self.res_b, self.skip_w, self.skip_b,
                      self.head1_w, self.head1_b, self.head2_w, self.head2_b, self.embed, bias, frame_of,
                      source, omega is not None, uniforms, 1.0 / temperature)
            if progress is not None:
                progress(t1, n_samples)
            chunk_logits = torch.from_numpy(logits[:, t0:t1].copy()).permute(0, 2, 1) if return_logits else None
            yield torch.from_numpy(codes[:, t0:t1].copy()), chunk_logits
