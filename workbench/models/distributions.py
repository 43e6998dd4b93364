"""Output distributions of a sample: a softmax over mu-law codes, a discretised mixture of logistics
and a discretised Gaussian, all scored on the same bins so their bits per sample compare.

WaveNet (van den Oord et al. 2016) ends in a 256-way softmax over 8-bit mu-law codes. Parallel
WaveNet's teacher (van den Oord et al. 2018, arXiv:1711.10433) ends in a *mixture of logistics*
(PixelCNN++, Salimans et al. 2017, arXiv:1701.05517) and ClariNet's teacher (Ping, Peng and Chen
2019, arXiv:1807.07281) in a *single Gaussian*: continuous densities over the sample value ``x``,
which a distilled student can be compared with in closed form or by sampling.

The bins. A continuous density is turned into probabilities of the same 2**bits mu-law codes the
softmax predicts: code ``k`` covers the samples whose companded value ``F(x)`` rounds to ``k``,
i.e. ``x`` between ``F^-1((2k - 1) / mu - 1)`` and ``F^-1((2k + 1) / mu - 1)``, and its
probability is the density's mass there, a difference of two CDF values. The two outermost bins
reach to -inf and +inf (as PixelCNN++ does at -1 and 1), so the probabilities of all bins sum to
one exactly, and bits per sample of all three outputs are bits per 8-bit mu-law code, the unit of
every other likelihood in the workbench (WaveNet, SampleRNN, the flows)::

      code:    0      1    ...   127   128  ...   254     255
      x:  -inf ... | ... | ... | ... 0 ... | ... | ... | ... +inf
                   bins are narrow near 0 (1.7e-4 wide) and wide near +-1 (0.044)

Bin probabilities are computed in float64 from the stable forms
``log(sigmoid(a) - sigmoid(b)) = logsigmoid(a) + logsigmoid(-b) + log(1 - exp(b - a))`` and, for the
Gaussian, ``log(Phi(a) - Phi(b))`` on the side of the mean where both CDF values are small.

Parameters of one prediction are laid out along the channel axis of a network's output
``(batch, channels, time)``: mixture ``[logits (K), means (K), log_scales (K)]``; Gaussian
``[mean, log_scale]``. Log-scales are clamped from below at ``log_scale_min``.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from ..errors import ParameterError

OUTPUTS = ("softmax", "logistic_mixture", "gaussian")
#: the finite stand-in for the outermost bins' infinite edges (x-units; the data lies in [-1, 1])
FAR = 1e6


def n_parameters(output: str, n_classes: int, n_mixtures: int) -> int:
    """Channels a network needs for one prediction: ``n_classes`` logits, ``3 K`` or 2."""
    if output == "softmax":
        return n_classes
    if output == "logistic_mixture":
        return 3 * n_mixtures
    if output == "gaussian":
        return 2
    raise ParameterError(f"output={output!r} must be one of {', '.join(OUTPUTS)}")


def compand(x: torch.Tensor, mu: float = 255.0) -> torch.Tensor:
    """Mu-law companding ``F(x) = sign(x) ln(1 + mu |x|) / ln(1 + mu)``, differentiable, any ``x``."""
    return torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)


def bin_edges(bits: int = 8, dtype=torch.float64, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Lower and upper sample values ``(2**bits,)`` of every mu-law code's bin (outermost: +-FAR).

    Examples
    --------
    >>> low, high = bin_edges(8)
    >>> bool((low[1:] == high[:-1]).all()), float(low[0]), float(high[-1])
    (True, -1000000.0, 1000000.0)
    """
    low, high = _edges(bits)
    return low.to(dtype=dtype, device=device, copy=True), high.to(dtype=dtype, device=device, copy=True)


@functools.lru_cache(maxsize=4)
def _edges(bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The edges of :func:`bin_edges` in float64 on the CPU, computed once per bit depth (never mutated)."""
    mu = 2.0**bits - 1
    k = torch.arange(2**bits, dtype=torch.float64)
    y_low, y_high = (2 * k - 1) / mu - 1, (2 * k + 1) / mu - 1  # companded edges
    expand = lambda y: torch.sign(y) * torch.expm1(y.abs() * math.log1p(mu)) / mu  # noqa: E731
    low, high = expand(y_low), expand(y_high)
    low[0], high[-1] = -FAR, FAR
    return low, high


def split(params: torch.Tensor, output: str, log_scale_min: float, temperature: float = 1.0) -> dict:
    """A network's output ``(batch, channels, ...)`` -> named parameters, each ``(batch, K, ...)``.

    ``temperature`` scales every scale by it and divides the mixture logits by it (1: as trained).
    Returns ``{"logits", "means", "log_scales"}`` (a Gaussian has one component and no logits).
    """
    if output == "logistic_mixture":
        logits, means, log_scales = params.chunk(3, dim=1)
        logits = logits / temperature
    elif output == "gaussian":
        means, log_scales = params[:, :1], params[:, 1:2]
        logits = None
    else:
        raise ParameterError(f"output={output!r} has no continuous parameters (one of logistic_mixture, gaussian)")
    log_scales = log_scales.clamp(min=log_scale_min) + math.log(temperature)
    return {"logits": logits, "means": means, "log_scales": log_scales}


def _log_mass_logistic(a: torch.Tensor, b: torch.Tensor, width_over_scale: torch.Tensor) -> torch.Tensor:
    """log(sigmoid(a) - sigmoid(b)) for a > b, with ``a - b`` passed as ``width_over_scale``."""
    return F.logsigmoid(a) + F.logsigmoid(-b) + torch.log(-torch.expm1(-width_over_scale))


def _log1mexp(d: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(d)) for d < 0, accurate near 0 and far from it."""
    return torch.where(d > -math.log(2), torch.log(-torch.expm1(d)), torch.log1p(-torch.exp(d)))


def _log_mass_gaussian(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """log(Phi(a) - Phi(b)) for a > b, on the side of the mean where both CDF values are below 1/2."""
    mirror = b > 0  # both edges above the mean: Phi(a) - Phi(b) = Phi(-b) - Phi(-a)
    hi, lo = torch.where(mirror, -b, a), torch.where(mirror, -a, b)
    log_hi, log_lo = torch.special.log_ndtr(hi), torch.special.log_ndtr(lo)
    return log_hi + _log1mexp((log_lo - log_hi).clamp(max=-1e-300))


def log_mass(output: str, p: dict, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """log of the probability between sample values ``low`` and ``high`` (float64).

    ``p`` from :func:`split`, each ``(batch, K, ...)``; ``low`` / ``high`` broadcast against
    ``(batch, 1, ...)``. Returns ``(batch, ...)`` (the mixture summed out).
    """
    means, log_scales = p["means"].double(), p["log_scales"].double()
    inv = torch.exp(-log_scales)
    a, b = (high - means) * inv, (low - means) * inv
    if output == "logistic_mixture":
        per = _log_mass_logistic(a, b, (high - low) * inv)
        return torch.logsumexp(per + torch.log_softmax(p["logits"].double(), dim=1), dim=1)
    return _log_mass_gaussian(a, b)[:, 0]


def code_log_prob(output: str, p: dict, codes: torch.Tensor, bits: int = 8) -> torch.Tensor:
    """log P(code) in nats of each code ``(batch, time)`` under parameters ``(batch, K, time)``."""
    low, high = (e.to(codes.device) for e in _edges(bits))
    return log_mass(output, p, low[codes][:, None], high[codes][:, None])


def bin_log_probs(output: str, p: dict, bits: int = 8) -> torch.Tensor:
    """log P of every code: parameters ``(batch, K)`` -> ``(batch, 2**bits)`` (float64), summing to 1."""
    low, high = (e.to(p["means"].device) for e in _edges(bits))
    q = {k: (None if v is None else v[..., None]) for k, v in p.items()}  # (batch, K, 1)
    return log_mass(output, q, low, high)


def log_density(output: str, p: dict, x: torch.Tensor) -> torch.Tensor:
    """Continuous log density (nats) of samples ``x`` ``(batch, time)``: parameters ``(batch, K, time)``."""
    u = (x[:, None] - p["means"]) * torch.exp(-p["log_scales"])  # (batch, K, time)
    if output == "logistic_mixture":
        per = -u - p["log_scales"] - 2 * F.softplus(-u)
        return torch.logsumexp(per + torch.log_softmax(p["logits"], dim=1), dim=1)
    return (-0.5 * u.pow(2) - p["log_scales"] - 0.5 * math.log(2 * math.pi))[:, 0]


def logistic_noise(shape, generator=None, dtype=torch.float32, eps: float = 1e-6) -> torch.Tensor:
    """Standard logistic noise ``log u - log(1 - u)``, u uniform in ``[eps, 1 - eps]``."""
    u = torch.rand(shape, generator=generator, dtype=torch.float64).clamp(eps, 1 - eps)
    return (torch.log(u) - torch.log1p(-u)).to(dtype)


#: Entropy (nats) of the standard base distributions: logistic(0, 1) and N(0, 1).
BASE_ENTROPY = {"logistic": 2.0, "gaussian": 0.5 * math.log(2 * math.pi * math.e)}


def gaussian_kl(mu_q: torch.Tensor, log_sigma_q: torch.Tensor, mu_p: torch.Tensor,
                log_sigma_p: torch.Tensor) -> torch.Tensor:
    """KL(N(mu_q, sigma_q^2) || N(mu_p, sigma_p^2)) elementwise, in nats::

        log(sigma_p / sigma_q) + (sigma_q^2 + (mu_q - mu_p)^2) / (2 sigma_p^2) - 1/2

    Examples
    --------
    >>> import torch
    >>> float(gaussian_kl(torch.tensor(0.), torch.tensor(0.), torch.tensor(0.), torch.tensor(0.)))
    0.0
    """
    return (log_sigma_p - log_sigma_q
            + 0.5 * (torch.exp(2 * (log_sigma_q - log_sigma_p)) + (mu_q - mu_p).pow(2) * torch.exp(-2 * log_sigma_p))
            - 0.5)


__all__ = ["BASE_ENTROPY", "OUTPUTS", "bin_edges", "bin_log_probs", "code_log_prob", "compand", "gaussian_kl",
           "log_density", "log_mass", "logistic_noise", "n_parameters", "split"]
