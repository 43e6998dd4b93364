"""SampleRNN (Mehri et al. 2017): recurrent tiers at different clock rates, then a per-sample MLP.

Three tiers, coarse to fine::

    samples  ... |x x x x x x x x|x x x x x x x x| ...
    top tier     |  GRU, one step per frame of 8  |         (input: the previous 8 samples)
                    | learned upsampling x4 (one linear map per sub-frame)
    mid tier     |GRU|GRU|GRU|GRU|                         (input: the previous 2 samples + top)
                   | learned upsampling x2
    sample MLP   |m m|m m|m m|m m|                         (input: embeddings of the previous 2
                                                            samples + mid; output: 256-way softmax)

Each tier only sees samples before the frame it predicts for, so the model is causal. Training
runs the whole note with truncated backpropagation through time: the recurrent state is carried
from chunk to chunk but gradients stop at chunk boundaries. Generation is stateful: the top GRU
steps once every 8 samples, the mid GRU every 2, the MLP every sample. The note (pitch,
instrument, velocity) is added to the top tier's input.

With ``source_harmonics`` (the small preset), the mid tier and the sample MLP also take the
*source* of neural source-filter models (Wang et al. 2019), as WaveNet does here: sin/cos of the
requested pitch's first harmonics, at each sample, from the onset. The MLP then knows where in
the period each sample falls and only has to learn the waveform's shape, not to count samples.

Notebook: notebooks/05_autoregressive.ipynb
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..dsp.quantise import mu_law_decode, mu_law_encode
from ..errors import ParameterError
from ..layers import NoteEmbedding
from . import samplernn_kernel
from ._note import OSCILLATOR_SOURCE, harmonic_source, note_specs, note_tensors, phase_step
from .base import Encoding, GenerativeModel, NoteDataConfig, sample_categorical
from .capabilities import Streaming

#: samplers: ``pytorch`` (the readable step loop), ``fast`` (the same steps compiled,
#: :mod:`~workbench.models.samplernn_kernel`), ``auto`` (fast on the CPU in float32 with numba)
METHODS = ("auto", "fast", "pytorch")


@dataclass(frozen=True)
class SampleRNNConfig(NoteDataConfig):
    sample_rate: int = 8000
    frame_size: int = 8  # top tier: samples per step
    sub_frame_size: int = 2  # mid tier: samples per step; also the sample MLP's context
    hidden: int = 64  # GRU width of both tiers
    embed_dim: int = 32  # embedding of each previous quantised sample
    mlp_hidden: int = 96
    bits: int = 8
    tbptt_samples: int = 512  # gradients stop at chunks of this many samples
    crop_samples: int = 2048  # training window: from the onset, or later from a fresh state
    onset_share: float = 0.5  # share of training windows that start at the note onset
    learning_rate: float = 1e-3
    source_harmonics: int = 0  # > 0: sin/cos of the pitch's first harmonics into mid tier and MLP


PRESETS = {
    "tiny": dict(hidden=16, embed_dim=8, mlp_hidden=16, tbptt_samples=256, crop_samples=1024, instruments=("piano", "flute"),
                 pitch_range=(60, 64), velocities=(100,), note_seconds=0.25),
    "small": dict(),
}

#: ``samplernn+source``: the same presets with the aid switched on.
AIDED_PRESETS = {"tiny": {**PRESETS["tiny"], "source_harmonics": 2},
                 "small": {**PRESETS["small"], "source_harmonics": 4}}


class SampleRNN(Streaming, GenerativeModel):
    """Two GRU tiers (frames of 8 and 2 samples) and a per-sample MLP over 8-bit mu-law codes; it
    streams (:class:`Streaming`)."""

    name = "samplernn"
    family = "autoregressive"
    likelihood = "exact"
    Config = SampleRNNConfig
    PRESETS = PRESETS
    aid_fields = ("source_harmonics",)
    notebook = "notebooks/05_autoregressive.ipynb"
    generate_options = {"method": METHODS}

    def __init__(self, config: SampleRNNConfig):
        super().__init__(config)
        c = config
        if c.frame_size % c.sub_frame_size:
            raise ParameterError(f"frame_size={c.frame_size} must be a multiple of sub_frame_size={c.sub_frame_size}")
        self.n_classes = 2**c.bits
        self.silence = int(mu_law_encode(torch.zeros(()), c.bits))
        self.ratio = c.frame_size // c.sub_frame_size
        h = c.hidden
        self.note = NoteEmbedding(c.pitch_range[1] - c.pitch_range[0] + 1, len(c.instruments), h, c.pitch_range[0])
        self.top_in = nn.Linear(c.frame_size, h)
        self.top_rnn = nn.GRU(h, h, batch_first=True)
        self.top_up = nn.Linear(h, self.ratio * h)  # one linear map per mid step inside a frame
        self.mid_in = nn.Linear(c.sub_frame_size, h)
        self.mid_rnn = nn.GRU(h, h, batch_first=True)
        self.mid_up = nn.Linear(h, c.sub_frame_size * c.mlp_hidden)
        self.embed = nn.Embedding(self.n_classes, c.embed_dim)
        self.mlp_in = nn.Linear(c.sub_frame_size * c.embed_dim, c.mlp_hidden)
        self.mlp = nn.Sequential(nn.ReLU(), nn.Linear(c.mlp_hidden, c.mlp_hidden), nn.ReLU(),
                                 nn.Linear(c.mlp_hidden, self.n_classes))
        if c.source_harmonics:
            self.source_mid = nn.Linear(2 * c.source_harmonics, h, bias=False)
            self.source_mlp = nn.Linear(2 * c.source_harmonics, c.mlp_hidden, bias=False)

    @property
    def conditioning(self):
        return tuple(note_specs(self.config))

    def source(self, pitch, positions: torch.Tensor) -> torch.Tensor | None:
        """``(batch, time, 2 * harmonics)`` source at sample ``positions`` (from the onset), or None."""
        c = self.config
        if not c.source_harmonics:
            return None
        omega = phase_step(pitch, c.sample_rate, self.device)
        return harmonic_source(omega, positions, c.source_harmonics).transpose(1, 2).to(self.top_in.weight.dtype)

    def scaled(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes as real values in [-2, 2], the RNN tiers' input (as in the paper)."""
        return 4.0 * codes.to(self.top_in.weight.dtype) / (self.n_classes - 1) - 2.0

    # ---- teacher forcing ------------------------------------------------------------------------------------
    def _run_rnn(self, rnn: nn.GRU, inputs: torch.Tensor, chunk: int | None) -> torch.Tensor:
        """Run a GRU over ``(batch, steps, hidden)`` from a zero state; with ``chunk``, the state is
        carried across chunks of that many steps but gradients are cut there (truncated BPTT)."""
        if chunk is None:
            return rnn(inputs)[0]
        outs, state = [], None
        for i in range(0, inputs.shape[1], chunk):
            out, state = rnn(inputs[:, i: i + chunk], state)
            state = state.detach()
            outs.append(out)
        return torch.cat(outs, dim=1)

    def forward(self, codes: torch.Tensor, cond: dict, tbptt: bool = False, offset: int = 0) -> torch.Tensor:
        """Codes ``(batch, time)`` -> logits ``(batch, classes, time)``; ``logits[..., t]`` is the
        distribution of code ``t`` given codes before ``t``. ``codes[:, 0]`` is sample ``offset``
        of the note (0: the onset), which places the source."""
        c = self.config
        fs, sfs = c.frame_size, c.sub_frame_size
        b, n = codes.shape
        t = n + (-n) % fs
        padded = F.pad(codes, (fs, t - n), value=self.silence)  # padded[t + fs] = codes[t]
        # 1. top tier: frame j sees codes 8j-8 .. 8j-1 (padded[8j : 8j+8])
        top = self.top_in(self.scaled(padded[:, :t].reshape(b, t // fs, fs)))  # (batch, frames, hidden)
        top = top + self.note(*note_tensors(self, cond))[:, None]
        top = self._run_rnn(self.top_rnn, top, c.tbptt_samples // fs if tbptt else None)
        up = self.top_up(top).reshape(b, t // sfs, c.hidden)  # (batch, sub-frames, hidden)
        # 2. mid tier: sub-frame i sees codes 2i-2 .. 2i-1 and the top tier's output for it
        mid_inputs = padded[:, fs - sfs: fs - sfs + t].reshape(b, t // sfs, sfs)
        mid = self.mid_in(self.scaled(mid_inputs)) + up
        src = self.source(cond["pitch"], torch.arange(offset, offset + t, device=self.device))
        if src is not None:  # each sub-frame sees the source at its first sample
            mid = mid + self.source_mid(src[:, ::sfs])
        mid = self._run_rnn(self.mid_rnn, mid, c.tbptt_samples // sfs if tbptt else None)
        cond_s = self.mid_up(mid).reshape(b, t, c.mlp_hidden)  # (batch, time, mlp_hidden)
        # 3. sample MLP: sample t sees the embeddings of codes t-2, t-1 and the mid tier
        prev = torch.stack([padded[:, fs - sfs + k: fs - sfs + k + t] for k in range(sfs)], dim=-1)
        e = self.embed(prev).flatten(2)  # (batch, time, sub_frame * embed)
        h = self.mlp_in(e) + cond_s
        if src is not None:
            h = h + self.source_mlp(src)
        logits = self.mlp(h)  # (batch, time, classes)
        return logits[:, :n].transpose(1, 2)

    # ---- likelihood ------------------------------------------------------------------------------------------
    def _step_log_likelihood(self, audio, cond):
        x = self.check_audio_input(audio)[:, 0]
        codes = mu_law_encode(x, self.config.bits)
        checked = self.check_cond(cond, codes.shape[0])
        with torch.no_grad():
            ll = -F.cross_entropy(self.forward(codes, checked), codes, reduction="none")
        return codes, ll / math.log(2)

    def log_prob(self, audio, cond=None) -> torch.Tensor:
        """Bits per sample (exact, over 8-bit mu-law codes), the note starting at sample 0."""
        return -self._step_log_likelihood(audio, cond)[1].mean(-1)

    def encode(self, audio, cond=None) -> Encoding:
        """Mu-law codes and the log-likelihood (bits) of each sample."""
        codes, ll = self._step_log_likelihood(audio, cond)
        return Encoding("codes", {"codes": codes, "log_likelihood_bits": ll}, self.sample_rate,
                        meta={"cond": cond})

    def training_step(self, batch, generator=None) -> dict:
        """Cross-entropy over a window of ``crop_samples``, truncated BPTT in chunks of ``tbptt_samples``.

        A window starts at the onset (silence before it, as in generation) or, to keep the cost
        down, at a later frame boundary from a zero state with the true previous samples as input.
        """
        samples, cond = batch
        codes = mu_law_encode(samples.to(self.device)[:, 0], self.config.bits)
        c = self.config
        n = min(c.crop_samples, codes.shape[-1])
        draw = torch.rand(2, generator=generator)
        start = 0
        if draw[0] >= c.onset_share and codes.shape[-1] - n >= c.frame_size:
            start = c.frame_size * (1 + int(draw[1] * ((codes.shape[-1] - n) // c.frame_size)))
        window = codes[:, start - c.frame_size if start else 0: start + n]  # (batch, frame + n): history first
        logits = self.forward(window, cond, tbptt=self.training, offset=start - c.frame_size if start else 0)
        if start:
            logits, window = logits[..., c.frame_size:], window[:, c.frame_size:]
        loss = F.cross_entropy(logits, window)
        return {"loss": loss, "bits_per_sample": loss.detach() / math.log(2)}

    # ---- stateful generation ---------------------------------------------------------------------------------
    def sample_codes(self, n, n_samples, cond, temperature=1.0, generator=None, progress=None,
                     return_logits=False, method: str = "auto"):
        """Draw codes one at a time, each tier stepping at its own clock rate."""
        parts = list(self.code_chunks(n, n_samples, cond, temperature, generator, progress, return_logits,
                                      method=method))
        codes = torch.cat([codes for codes, _ in parts], dim=1)
        return (codes, torch.cat([logits for _, logits in parts], dim=-1)) if return_logits else codes

    def resolve_method(self, method: str) -> str:
        """``auto`` -> ``fast`` (the compiled sampler) on the CPU in float32 with numba, else ``pytorch``."""
        if method not in METHODS:
            raise ParameterError(f"method={method!r} must be one of {', '.join(METHODS)}")
        if method != "auto":
            return method
        fast_ok = (samplernn_kernel.available() and self.device.type == "cpu"
                   and self.top_in.weight.dtype == torch.float32)
        return "fast" if fast_ok else "pytorch"

    def code_chunks(self, n, n_samples, cond, temperature=1.0, generator=None, progress=None,
                    return_logits=False, chunk: int = 2048, method: str = "auto"):
        """:meth:`sample_codes` as an iterator over chunks of ``chunk`` samples: pairs of codes
        ``(n, chunk)`` and logits ``(n, classes, chunk)`` (None unless ``return_logits``), each
        yielded as soon as it is drawn; the codes do not depend on ``chunk``."""
        if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
            raise ParameterError(f"chunk={chunk!r} must be a positive number of samples")
        method = self.resolve_method(method)
        note = self.note(*note_tensors(self, cond))
        src = self.source(cond["pitch"], torch.arange(n_samples, device=self.device))
        if method == "fast":
            return self._fast_chunks(n, n_samples, note, src, temperature, generator, progress, return_logits, chunk)
        return self._chunks(n, n_samples, note, src, temperature, generator, progress, return_logits, chunk)

    @torch.no_grad()
    def _fast_chunks(self, n, n_samples, note, src, temperature, generator, progress, return_logits, chunk):
        src_mid = src_mlp = None
        if src is not None:
            src_mid, src_mlp = self.source_mid(src), self.source_mlp(src)  # (n, time, width)
        sampler = samplernn_kernel.FastSampler(self, n, note, src_mid, src_mlp, n_samples, generator)
        done = 0
        while done < n_samples:
            end = min(n_samples, done + chunk)
            pieces, logits, t = [], [], done
            while t < end:  # in steps of at most 512 samples, for progress and Stop
                stop = min(end, t + 512)
                out = np.zeros((n, stop - t, self.n_classes), np.float32) if return_logits else None
                pieces.append(sampler.run(t, stop, temperature, out).copy())
                if return_logits:
                    logits.append(torch.from_numpy(out).permute(0, 2, 1))
                t = stop
                if progress is not None:
                    progress(t, n_samples)
            codes = torch.from_numpy(np.concatenate(pieces, axis=1)).to(self.device)
            yield codes, (torch.cat(logits, dim=-1) if return_logits else None)
            done = end

    def _chunks(self, n, n_samples, note, src, temperature, generator, progress, return_logits, chunk):
        c = self.config
        fs, sfs = c.frame_size, c.sub_frame_size
        history = torch.full((n, n_samples + fs), self.silence, dtype=torch.long, device=self.device)
        if src is not None:
            src_mid, src_mlp = self.source_mid(src), self.source_mlp(src)  # (n, time, width)
        top_state = mid_state = None
        all_logits = []
        for t in range(n_samples):
            p = t + fs  # index of sample t in history
            if t % fs == 0:
                # 1. a new frame: the top GRU steps on the previous 8 samples
                x = self.top_in(self.scaled(history[:, p - fs: p])) + note
                out, top_state = self.top_rnn(x[:, None], top_state)
                up = self.top_up(out[:, 0]).view(n, self.ratio, c.hidden)
            if t % sfs == 0:
                # 2. a new sub-frame: the mid GRU steps on the previous 2 samples + the top tier
                x = self.mid_in(self.scaled(history[:, p - sfs: p])) + up[:, (t % fs) // sfs]
                if src is not None:
                    x = x + src_mid[:, t]
                out, mid_state = self.mid_rnn(x[:, None], mid_state)
                cond_s = self.mid_up(out[:, 0]).view(n, sfs, c.mlp_hidden)
            # 3. the MLP: this sample's distribution, then draw it
            e = self.embed(history[:, p - sfs: p]).flatten(1)
            h = self.mlp_in(e) + cond_s[:, t % sfs]
            if src is not None:
                h = h + src_mlp[:, t]
            logits = self.mlp(h)
            history[:, p] = sample_categorical(logits, temperature, generator)
            if return_logits:
                all_logits.append(logits)
            if progress is not None and (t % 512 == 0 or t == n_samples - 1):
                progress(t + 1, n_samples)
            # 4. a chunk is complete: hand it over
            if (t + 1) % chunk == 0 or t == n_samples - 1:
                t0 = t - t % chunk
                yield history[:, fs + t0: p + 1].clone(), torch.stack(all_logits, -1) if return_logits else None
                all_logits = []

    def _generate(self, n, seconds, cond, temperature, generator, progress, method: str = "auto"):
        n_samples = max(1, int(round(seconds * self.sample_rate)))
        codes = self.sample_codes(n, n_samples, cond, temperature, generator, progress, method=method)
        return mu_law_decode(codes, self.config.bits)[:, None]

    def _generate_stream(self, n, seconds, cond, temperature, generator, progress, chunk, method: str = "auto"):
        """:meth:`_generate` ``chunk`` samples at a time, yielding ``(n, 1, chunk)``."""
        n_samples = max(1, int(round(seconds * self.sample_rate)))
        chunks = self.code_chunks(n, n_samples, cond, temperature, generator, progress, chunk=chunk, method=method)
        return (mu_law_decode(codes, self.config.bits)[:, None] for codes, _ in chunks)

    # ---- figure ------------------------------------------------------------------------------------------
    def visualise(self, audio=None):
        """The three clocks: which samples each tier's step sees, over two top-tier frames."""
        from ..viz import new_figure

        c = self.config
        fig, axes = new_figure(1, 1, width=8, row_height=2.8)
        ax = axes[0, 0]
        n = 2 * c.frame_size
        for t in range(n):
            ax.plot([t, t], [0, 0.4], color="C7", lw=2)
        for j in range(n // c.frame_size):
            ax.add_patch(_box(j * c.frame_size, 2.0, c.frame_size, "C0"))
        for i in range(n // c.sub_frame_size):
            ax.add_patch(_box(i * c.sub_frame_size, 1.2, c.sub_frame_size, "C1"))
        ax.scatter(range(n), [0.7] * n, color="C2", s=18, zorder=3)
        ax.set_yticks([0.2, 0.7, 1.5, 2.3], ["samples", "MLP (every sample)", f"mid GRU (every {c.sub_frame_size})",
                                             f"top GRU (every {c.frame_size})"])
        ax.set_xlim(-0.5, n)
        ax.set_ylim(0, 2.8)
        ax.set_xlabel("sample")
        ax.set_title(f"SampleRNN: tiers at {c.sample_rate // c.frame_size}, {c.sample_rate // c.sub_frame_size} "
                     f"and {c.sample_rate} steps per second")
        return fig


def _box(x0, y0, width, colour):
    from matplotlib.patches import Rectangle

    return Rectangle((x0 - 0.4, y0), width - 0.2, 0.6, facecolor=colour, alpha=0.5, edgecolor=colour)


class SampleRNNWithSource(SampleRNN):
    """SampleRNN plus an oscillator source (not in the paper): the pitch's harmonics into the mid tier and the MLP."""

    name = "samplernn+source"
    aid = OSCILLATOR_SOURCE
    PRESETS = AIDED_PRESETS
