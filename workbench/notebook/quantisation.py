"""Quantisation: SNR against bits, code entropy, and what an 8-bit model has to predict.

Notebook: notebooks/02_mu_law.ipynb
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..audio import Audio
from ..dsp.quantise import mu_law_encode
from ..dsp.quantise import quantise as _quantise
from ..errors import ParameterError
from ..metrics import snr
from .display import players


def snr_by_bits(audio, bits=range(2, 17), kind: str = "mu_law") -> np.ndarray:
    """SNR (dB) of ``audio`` after ``bits``-bit quantisation, for each bit depth."""
    return np.array([snr(audio, _quantise(audio, int(b), kind)) for b in bits])


def code_entropy(codes: torch.Tensor, bits: int) -> float:
    """Entropy in bits of the histogram of integer codes (at most ``bits``: all levels equally used)."""
    counts = torch.bincount(codes.flatten(), minlength=2**bits).double()
    p = counts[counts > 0] / counts.sum()
    return float(-(p * torch.log2(p)).sum())


def next_code_distribution(audio, bits: int = 8, previous: int | None = None, width: int = 2) -> dict:
    """The distribution of the next mu-law code given that the previous one is near ``previous``.

    Collects every sample whose predecessor's code lies within ``width`` of ``previous`` (the
    code of silence by default), fits two models of the next code on the even-numbered cases
    and scores both on the odd-numbered ones:

    - a categorical over all ``2**bits`` codes (a histogram, add-one smoothed): WaveNet's softmax;
    - a Gaussian over the code value, fitted by maximum likelihood and discretised to the codes.

    Returns
    -------
    dict: ``counts`` (all cases, per code), ``categorical`` and ``gaussian`` (probabilities per
    code), ``bits_categorical`` and ``bits_gaussian`` (held-out bits per sample), ``n_cases``.

    Raises
    ------
    ParameterError
        Fewer than 20 cases match.
    """
    x = Audio(audio.samples[:1], audio.sample_rate).samples[0, 0] if isinstance(audio, Audio) else audio
    codes = mu_law_encode(x, bits).flatten()
    levels = 2**bits
    previous = int(mu_law_encode(torch.zeros(()), bits)) if previous is None else int(previous)
    cases = codes[1:][(codes[:-1] - previous).abs() <= width]
    if cases.numel() < 20:
        raise ParameterError(f"only {cases.numel()} samples follow a code within {width} of {previous}; "
                             "widen the window or use a longer clip")
    train, test = cases[0::2], cases[1::2]
    counts = torch.bincount(train, minlength=levels).double() + 1.0
    categorical = counts / counts.sum()
    mean, std = train.double().mean(), train.double().std().clamp_min(0.5)
    edges = torch.arange(levels + 1, dtype=torch.float64) - 0.5
    cdf = 0.5 * (1 + torch.erf((edges - mean) / (std * math.sqrt(2))))
    gaussian = (cdf[1:] - cdf[:-1]).clamp_min(1e-12)
    gaussian = gaussian / gaussian.sum()
    return {"counts": torch.bincount(cases, minlength=levels).numpy(), "categorical": categorical.numpy(),
            "gaussian": gaussian.numpy(), "n_cases": int(cases.numel()),
            "bits_categorical": float(-torch.log2(categorical[test]).mean()),
            "bits_gaussian": float(-torch.log2(gaussian[test]).mean())}


def quantisation_view(audio: Audio, bits: int = 8, zoom_seconds: float = 0.01, uniform_kind: str = "uniform"):
    """Uniform vs mu-law at ``bits`` bits: zoomed waveforms, error signals, players with SNR.

    ``uniform_kind``: ``"uniform"`` (mid-rise, no level at zero) or ``"mid_tread"`` (linear PCM,
    a level at zero), see :func:`workbench.dsp.quantise`.

    Returns
    -------
    (Figure, Players)

    Raises
    ------
    ParameterError
        Unknown ``uniform_kind``.
    """
    from ..viz import new_figure

    if uniform_kind not in ("uniform", "mid_tread"):
        raise ParameterError(f"uniform_kind={uniform_kind!r} must be 'uniform' or 'mid_tread'")
    name = "uniform" if uniform_kind == "uniform" else "mid-tread"
    uniform = _quantise(audio, bits, uniform_kind)
    mu_law = _quantise(audio, bits, "mu_law")
    x = audio.samples[0, 0].numpy()
    start = int(np.argmax(np.abs(x)))  # zoom where the clip is loudest, then further in the tail
    n = max(8, int(zoom_seconds * audio.sample_rate))
    quiet = min(len(x) - n, max(0, len(x) * 3 // 4))
    fig, axes = new_figure(2, 2, width=11, row_height=2.4)
    for col, (where, label) in enumerate(((min(start, len(x) - n), "loudest part"), (quiet, "quiet tail"))):
        t = (np.arange(where, where + n)) / audio.sample_rate * 1000
        ax = axes[0, col]
        ax.plot(t, x[where:where + n], color="0.3", lw=1.2, label="original")
        ax.step(t, uniform.samples[0, 0, where:where + n].numpy(), where="mid", color="C0", lw=0.9,
                label=name)
        ax.step(t, mu_law.samples[0, 0, where:where + n].numpy(), where="mid", color="C3", lw=0.9,
                label="mu-law")
        ax.set_title(f"{label}, {bits} bits")
        ax.set_xlabel("time (ms)")
        ax.legend(fontsize=7)
        err = axes[1, col]
        err.plot(t, (uniform.samples[0, 0] - audio.samples[0, 0])[where:where + n].numpy(), color="C0",
                 label=f"{name} error")
        err.plot(t, (mu_law.samples[0, 0] - audio.samples[0, 0])[where:where + n].numpy(), color="C3",
                 label="mu-law error")
        err.set_xlabel("time (ms)")
        err.set_ylabel("error")
        err.legend(fontsize=7)
    table = players({"original": audio, f"{name} {bits} bits": uniform, f"mu-law {bits} bits": mu_law},
                    {"SNR (dB)": {f"{name} {bits} bits": snr(audio, uniform),
                                  f"mu-law {bits} bits": snr(audio, mu_law)}})
    return fig, table


def level_dependence(loud: Audio, quiet: Audio, bits=range(2, 17), kind: str = "mu_law") -> dict:
    """How much SNR a quantiser loses when the same sound is quieter, at each bit depth.

    Returns
    -------
    dict: ``bits``, ``loud`` and ``quiet`` (SNR in dB), ``loss`` (loud minus quiet, dB), and
    ``level_db`` (how much quieter ``quiet`` is, from the peaks).
    """
    bits = np.asarray(list(bits))
    loud_snr, quiet_snr = snr_by_bits(loud, bits, kind), snr_by_bits(quiet, bits, kind)
    level = 20 * math.log10(float(quiet.samples.abs().max()) / float(loud.samples.abs().max()))
    return {"bits": bits, "loud": loud_snr, "quiet": quiet_snr, "loss": loud_snr - quiet_snr, "level_db": level}


def describe_level_dependence(study: dict, at=(4, 8, 12, 16), tolerance_db: float = 3.0) -> str:
    """One sentence on a :func:`level_dependence` study, worded by its numbers: the SNR the quieter
    clip loses at the depths ``at``, and from which depth up it stays under ``tolerance_db``."""
    bits, loss = study["bits"], study["loss"]
    shown = [b for b in at if b in bits]
    parts = ", ".join(f"{loss[bits == b][0]:.1f} dB at {b} bits" for b in shown)
    ok = loss < tolerance_db
    start = next((int(b) for i, b in enumerate(bits) if ok[i:].all()), None)  # every depth from here is ok
    head = f"{-study['level_db']:.0f} dB quieter, the clip loses {parts}"
    if start is None:
        return head + f"; never under {tolerance_db:g} dB in {bits.min()}..{bits.max()} bits."
    if start == bits.min():
        return head + f"; under {tolerance_db:g} dB at every depth measured."
    return head + f"; under {tolerance_db:g} dB only from {start} bits up."
