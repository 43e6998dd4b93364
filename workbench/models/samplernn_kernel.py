"""A compiled sampler for SampleRNN (numba): the same arithmetic as the PyTorch step loop.

``SampleRNN._chunks`` is the readable reference: the top GRU steps every ``frame_size`` samples,
the mid GRU every ``sub_frame_size``, the MLP every sample. Each of those steps is a handful of
tiny tensor operations whose dispatch costs more than their ~50k multiply-adds per sample. This
kernel runs them in one compiled loop (the GRU cells written out as ``torch.nn.GRU`` defines
them) and samples with the same inverse-CDF rule from the same stream of uniform numbers, so it
draws the same codes as the reference under the same seed (up to float rounding at a CDF
boundary, tested over thousands of samples).

Benchmark: benchmarks/generation.py
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ._kernels import HAVE_NUMBA, draw, matvec

if HAVE_NUMBA:
    import numba


def _gru(x, h, w_ih, b_ih, w_hh, b_hh, gi, gh, out):
    """One ``torch.nn.GRU`` cell step: gates in the order reset, update, new; ``out`` = h'."""
    n = h.shape[0]
    matvec(x, w_ih, b_ih, gi)
    matvec(h, w_hh, b_hh, gh)
    for i in range(n):
        r = 1.0 / (1.0 + math.exp(-(gi[i] + gh[i])))
        z = 1.0 / (1.0 + math.exp(-(gi[n + i] + gh[n + i])))
        c = math.tanh(gi[2 * n + i] + r * gh[2 * n + i])
        out[i] = np.float32((1.0 - z) * c + z * h[i])


def _kernel(t0, t1, history, fs, sfs, top_h, mid_h, up, cond_s, note, top_in_w, top_in_b, top_ih_w, top_ih_b,
            top_hh_w, top_hh_b, top_up_w, top_up_b, mid_in_w, mid_in_b, mid_ih_w, mid_ih_b, mid_hh_w, mid_hh_b,
            mid_up_w, mid_up_b, embed, mlp_in_w, mlp_in_b, mlp1_w, mlp1_b, mlp2_w, mlp2_b, src_mid, src_mlp,
            use_source, logits_out, keep_logits, uniforms, inv_temperature, scale):
    """Advance every voice from sample ``t0`` to ``t1`` (exclusive); ``history[b, t + fs]`` is sample t.

    State carried between calls: ``top_h``, ``mid_h`` (B, hidden), the top tier's upsampled output
    ``up`` (B, ratio * hidden) and the mid tier's ``cond_s`` (B, sfs * mlp_hidden).
    """
    n_voices = history.shape[0]
    hidden = top_h.shape[1]
    n_mlp = mlp1_w.shape[0]
    n_classes = mlp2_w.shape[1]
    x = np.empty(hidden, np.float32)
    frame = np.empty(fs, np.float32)
    gi = np.empty(3 * hidden, np.float32)
    gh = np.empty(3 * hidden, np.float32)
    new_h = np.empty(hidden, np.float32)
    e = np.empty(embed.shape[1] * sfs, np.float32)
    h = np.empty(n_mlp, np.float32)
    h2 = np.empty(n_mlp, np.float32)
    out = np.empty(n_classes, np.float32)
    weights = np.empty(n_classes, np.float64)
    dim = embed.shape[1]
    for b in range(n_voices):
        for t in range(t0, t1):
            p = t + fs
            if t % fs == 0:
                # 1. a new frame: the top GRU steps on the previous frame_size samples
                for k in range(fs):
                    frame[k] = scale * history[b, p - fs + k] - 2.0
                matvec(frame[:fs], top_in_w, top_in_b, x)
                for i in range(hidden):
                    x[i] += note[b, i]
                _gru(x, top_h[b], top_ih_w, top_ih_b, top_hh_w, top_hh_b, gi, gh, new_h)
                top_h[b, :] = new_h
                matvec(new_h, top_up_w, top_up_b, up[b])
            if t % sfs == 0:
                # 2. a new sub-frame: the mid GRU steps on the previous sub_frame_size samples + the top tier
                for k in range(sfs):
                    frame[k] = scale * history[b, p - sfs + k] - 2.0
                matvec(frame[:sfs], mid_in_w, mid_in_b, x)
                j = (t % fs) // sfs
                for i in range(hidden):
                    x[i] += up[b, j * hidden + i]
                    if use_source:
                        x[i] += src_mid[b, t, i]
                _gru(x, mid_h[b], mid_ih_w, mid_ih_b, mid_hh_w, mid_hh_b, gi, gh, new_h)
                mid_h[b, :] = new_h
                matvec(new_h, mid_up_w, mid_up_b, cond_s[b])
            # 3. the MLP on the previous samples' embeddings and the mid tier's output for this sample
            for k in range(sfs):
                code = history[b, p - sfs + k]
                for i in range(dim):
                    e[k * dim + i] = embed[code, i]
            matvec(e, mlp_in_w, mlp_in_b, h)
            s = t % sfs
            for i in range(n_mlp):
                v = h[i] + cond_s[b, s * n_mlp + i]
                if use_source:
                    v += src_mlp[b, t, i]
                h[i] = v if v > 0 else 0.0
            matvec(h, mlp1_w, mlp1_b, h2)
            for i in range(n_mlp):
                if h2[i] < 0:
                    h2[i] = 0.0
            matvec(h2, mlp2_w, mlp2_b, out)
            if keep_logits:
                for c in range(n_classes):
                    logits_out[b, t - t0, c] = out[c]
            # 4. sample by inverse CDF of softmax(logits / temperature), as sample_categorical
            choice = draw(out, weights, inv_temperature, uniforms[t, b])
            history[b, p] = choice


if HAVE_NUMBA:
    _gru = numba.njit(cache=True, fastmath=False, nogil=True)(_gru)
    _compiled = numba.njit(cache=True, fastmath=False, nogil=True)(_kernel)


def available() -> bool:
    return HAVE_NUMBA


class FastSampler:
    """A SampleRNN's weights as contiguous float32 arrays (input-major), and the state of one draw."""

    def __init__(self, model, n: int, note: torch.Tensor, src_mid, src_mlp, n_samples: int, generator):
        def arr(t):
            return np.ascontiguousarray(t.detach().to(torch.float32).cpu().numpy())

        c = model.config
        self.fs, self.sfs = c.frame_size, c.sub_frame_size
        self.scale = 4.0 / (model.n_classes - 1)
        self.weights = (
            arr(model.top_in.weight.T), arr(model.top_in.bias),
            arr(model.top_rnn.weight_ih_l0.T), arr(model.top_rnn.bias_ih_l0),
            arr(model.top_rnn.weight_hh_l0.T), arr(model.top_rnn.bias_hh_l0),
            arr(model.top_up.weight.T), arr(model.top_up.bias),
            arr(model.mid_in.weight.T), arr(model.mid_in.bias),
            arr(model.mid_rnn.weight_ih_l0.T), arr(model.mid_rnn.bias_ih_l0),
            arr(model.mid_rnn.weight_hh_l0.T), arr(model.mid_rnn.bias_hh_l0),
            arr(model.mid_up.weight.T), arr(model.mid_up.bias),
            arr(model.embed.weight),
            arr(model.mlp_in.weight.T), arr(model.mlp_in.bias),
            arr(model.mlp[1].weight.T), arr(model.mlp[1].bias),
            arr(model.mlp[3].weight.T), arr(model.mlp[3].bias),
        )
        self.note = arr(note.expand(n, -1))
        self.use_source = src_mid is not None
        empty = np.zeros((1, 1, 1), np.float32)
        self.src_mid = arr(src_mid) if self.use_source else empty
        self.src_mlp = arr(src_mlp) if self.use_source else empty
        self.history = np.full((n, n_samples + self.fs), model.silence, dtype=np.int64)
        self.top_h = np.zeros((n, c.hidden), np.float32)
        self.mid_h = np.zeros((n, c.hidden), np.float32)
        self.up = np.zeros((n, model.ratio * c.hidden), np.float32)
        self.cond_s = np.zeros((n, c.sub_frame_size * c.mlp_hidden), np.float32)
        # the same uniforms, in the same order, as sample_categorical draws them step by step
        self.uniforms = torch.rand(n_samples, n, generator=generator, dtype=torch.float64).numpy()

    def run(self, t0: int, t1: int, temperature: float, logits_out=None) -> np.ndarray:
        """Samples ``t0 .. t1 - 1``; returns their codes ``(n, t1 - t0)``."""
        keep = logits_out is not None
        if logits_out is None:
            logits_out = np.empty((1, 1, 1), np.float32)
        _compiled(t0, t1, self.history, self.fs, self.sfs, self.top_h, self.mid_h, self.up, self.cond_s, self.note,
                  *self.weights, self.src_mid, self.src_mlp, self.use_source, logits_out, keep, self.uniforms,
                  1.0 / temperature, self.scale)
        return self.history[:, t0 + self.fs: t1 + self.fs]
