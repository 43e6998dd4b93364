"""Mode covering and mode seeking: mixtures fitted by forward and reverse KL, and what each
objective answers for a condition that has many right sounds.

Notebook: notebooks/04_mode_covering_vs_seeking.ipynb
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..audio import Audio
from ..dsp import spectral as S
from ..errors import ParameterError


class Mixture(nn.Module):
    """A mixture of Gaussians with diagonal covariance in ``dim`` dimensions, differentiable.

    Parameters
    ----------
    weights : Tensor ``(k,)`` (normalised here)
    means : Tensor ``(k, dim)``
    stds : Tensor ``(k, dim)`` or ``(k,)``
    trainable : bool
        Make the parameters learnable (a model to fit) or buffers (a fixed target).

    Examples
    --------
    >>> import torch
    >>> m = Mixture(torch.ones(2), torch.tensor([[-2.0], [2.0]]), torch.ones(2))
    >>> round(float(m.log_prob(torch.zeros(1, 1)).exp()), 4)   # N(0; +-2, 1) at 0
    0.054
    """

    def __init__(self, weights, means, stds, trainable: bool = False):
        super().__init__()
        weights = torch.as_tensor(weights, dtype=torch.float64)
        means = torch.as_tensor(means, dtype=torch.float64)
        if means.dim() == 1:
            means = means[:, None]  # (k, 1)
        stds = torch.as_tensor(stds, dtype=torch.float64)
        if stds.dim() == 1 and stds.shape[0] == means.shape[0]:
            stds = stds[:, None].expand_as(means)  # one std per component, shared by every dimension
        if weights.dim() != 1 or weights.shape[0] != means.shape[0] or stds.shape != means.shape:
            raise ParameterError(f"weights {tuple(weights.shape)}, means {tuple(means.shape)} and stds "
                                 f"{tuple(stds.shape)} disagree; pass k weights, (k, dim) means and stds")
        if bool((weights < 0).any()) or bool((stds <= 0).any()):
            raise ParameterError("weights must be >= 0 and stds > 0")
        values = {"logits": torch.log(weights / weights.sum()).clamp_min(-30.0),
                  "means": means.clone(), "log_stds": torch.log(stds).clone()}
        for key, value in values.items():
            if trainable:
                setattr(self, key, nn.Parameter(value))
            else:
                self.register_buffer(key, value)

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @property
    def weights(self) -> torch.Tensor:
        return torch.softmax(self.logits, 0)

    @property
    def stds(self) -> torch.Tensor:
        return self.log_stds.exp()

    def component_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log N(x; mean_k, std_k) for every component: ``(n, dim)`` -> ``(n, k)``."""
        z = (x[:, None, :] - self.means[None]) / self.stds[None]  # (n, k, dim)
        return (-0.5 * z.pow(2) - self.log_stds[None] - 0.5 * math.log(2 * math.pi)).sum(-1)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log density ``(n,)`` of points ``(n, dim)``."""
        x = torch.as_tensor(x, dtype=torch.float64)
        return torch.logsumexp(self.component_log_prob(x) + torch.log_softmax(self.logits, 0)[None], dim=1)

    def sample(self, n: int, generator=None) -> torch.Tensor:
        """``n`` points ``(n, dim)`` (not differentiable)."""
        from ..dsp.spectral import make_generator

        gen = make_generator(generator)
        with torch.no_grad():
            k = torch.multinomial(self.weights, n, replacement=True, generator=gen)
            eps = torch.randn(n, self.dim, generator=gen, dtype=torch.float64)
            return self.means[k] + self.stds[k] * eps


def kl_divergences(target: Mixture, model: Mixture, n: int = 20000, generator=0) -> dict:
    """Monte Carlo KL(target || model) ("forward") and KL(model || target) ("reverse"), in nats."""
    from ..dsp.spectral import make_generator

    gen = make_generator(generator)
    with torch.no_grad():
        xp = target.sample(n, gen)
        xq = model.sample(n, gen)
        forward = float((target.log_prob(xp) - model.log_prob(xp)).mean())
        reverse = float((model.log_prob(xq) - target.log_prob(xq)).mean())
    return {"forward": forward, "reverse": reverse}


def fit_mixture(target: Mixture, n_components: int = 1, objective: str = "forward", steps: int = 300,
                lr: float = 0.1, n_samples: int = 512, init_means=None, init_std: float | None = None,
                generator=0) -> Mixture:
    """Fit a ``n_components`` Gaussian mixture to ``target`` by forward or reverse KL.

    - ``"forward"``: maximum likelihood on samples of the target, i.e. minimise KL(p || q).
      Every region where p has mass must get mass under q, or the loss explodes: mode covering.
    - ``"reverse"``: minimise KL(q || p) = E_q[log q - log p] with the reparameterisation trick
      (needs p's density, as probability density distillation does with a teacher WaveNet).
      q is punished only where it puts mass that p lacks: mode seeking.

    Both start from the same point: components on ``init_means`` ``(k, dim)`` (random target samples
    by default) with standard deviation ``init_std`` (the target's spread by default).

    Raises
    ------
    ParameterError
        Unknown ``objective`` or a bad ``n_components``.
    """
    from ..dsp.spectral import make_generator

    if objective not in ("forward", "reverse"):
        raise ParameterError(f"objective={objective!r} must be 'forward' (maximum likelihood) or 'reverse'")
    if isinstance(n_components, bool) or not isinstance(n_components, int) or n_components < 1:
        raise ParameterError(f"n_components={n_components!r} must be a positive integer")
    gen = make_generator(generator) or torch.Generator().manual_seed(0)
    data = target.sample(n_samples, gen)  # (n, dim)
    if init_means is None:
        start = data[torch.randperm(n_samples, generator=gen)[:n_components]]
    else:
        start = torch.as_tensor(init_means, dtype=torch.float64).reshape(n_components, target.dim)
    spread = data.std(0, keepdim=True).expand(n_components, -1)
    if init_std is not None:
        spread = torch.full_like(spread, float(init_std))
    model = Mixture(torch.ones(n_components), start, spread, trainable=True)
    eps = torch.randn(n_samples // n_components + 1, target.dim, generator=gen, dtype=torch.float64)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        optimiser.zero_grad()
        if objective == "forward":
            loss = -model.log_prob(data).mean()  # = KL(p || q) + H(p)
        else:
            # one reparameterised batch per component, weighted by the component's weight
            x = model.means[:, None] + model.stds[:, None] * eps[None]  # (k, m, dim)
            flat = x.reshape(-1, target.dim)
            gap = (model.log_prob(flat) - target.log_prob(flat)).view(n_components, -1)  # log q - log p
            loss = (model.weights * gap.mean(1)).sum()  # = KL(q || p)
        loss.backward()
        optimiser.step()
    return model.requires_grad_(False)


def ring_mixture(n_modes: int = 8, radius: float = 2.0, std: float = 0.05) -> Mixture:
    """``n_modes`` equal Gaussians on a circle: the classic 2-D test of mode collapse."""
    angles = torch.arange(n_modes, dtype=torch.float64) * 2 * math.pi / n_modes
    means = radius * torch.stack([angles.cos(), angles.sin()], 1)
    return Mixture(torch.ones(n_modes), means, torch.full((n_modes,), std))


def mode_coverage(points: torch.Tensor, target: Mixture, n_std: float = 3.0, min_share: float = 0.001) -> dict:
    """Which of the target's modes ``points`` land on.

    Returns
    -------
    dict: ``modes_hit`` (modes with at least ``min_share`` of the points within ``n_std`` of
    their mean), ``n_modes``, ``on_mode`` (share of points within ``n_std`` of some mode: quality),
    ``shares`` (per mode).
    """
    points = torch.as_tensor(points, dtype=torch.float64)
    z = ((points[:, None, :] - target.means[None]) / target.stds[None]).pow(2).sum(-1).sqrt()  # (n, k)
    near = z <= n_std
    shares = near.double().mean(0)
    return {"modes_hit": int((shares >= min_share).sum()), "n_modes": target.means.shape[0],
            "on_mode": float(near.any(1).double().mean()), "shares": shares.numpy()}


@dataclass
class ConditionStudy:
    """Many sounds that fit one condition, and what covering and seeking models would answer."""

    n_candidates: int
    spread_db: float  # mean distance between two candidates
    covering_gap_db: float  # distance from the covering answer (the mean) to the nearest candidate
    seeking_loss_db: float  # mean distance from the seeking answer (one candidate) to all candidates
    seeking_index: int
    covering_db: np.ndarray  # (freq, frames) the mean log-magnitude
    covering_audio: Audio  # Griffin-Lim of the mean magnitude
    mean_waveform: Audio  # the mean of the waveforms (a Gaussian's ML mean in sample space)


def log_magnitude_db(audio: Audio, n_fft: int = 1024, hop_length: int = 256, floor_db: float = -80.0) -> torch.Tensor:
    """``(batch, freq, frames)`` magnitude in dB re. full scale, floored at ``floor_db``."""
    mag = S.magnitude(audio.samples[:, 0], n_fft, hop_length)
    return (20 * torch.log10(mag.clamp_min(1e-12) / (n_fft / 4))).clamp_min(floor_db)


def covering_vs_seeking(candidates: Audio, n_fft: int = 1024, hop_length: int = 256, n_iter: int = 32,
                        generator=0) -> ConditionStudy:
    """Treat ``candidates`` as the conditional distribution of sounds given one condition.

    Distances are mean absolute differences of dB magnitude spectrograms. The covering answer is
    what a unimodal Gaussian fitted by maximum likelihood predicts: the mean of the candidates'
    features. The seeking answer is one real candidate, the medoid (the densest spot of the set).

    Raises
    ------
    ParameterError
        Fewer than two candidates.
    """
    if candidates.batch_size < 2:
        raise ParameterError(f"got {candidates.batch_size} candidate; a distribution needs at least 2")
    feats = log_magnitude_db(candidates, n_fft, hop_length)  # (n, freq, frames)
    flat = feats.flatten(1)
    dist = torch.cdist(flat, flat, p=1) / flat.shape[1]  # (n, n) mean |dB difference|
    n = flat.shape[0]
    spread = float(dist.sum() / (n * (n - 1)))
    seek = int(dist.sum(1).argmin())
    mean = feats.mean(0)  # (freq, frames)
    gap = float((flat - mean.flatten()[None]).abs().mean(1).min())
    loss = float(dist[seek].sum() / (n - 1))
    mag = 10 ** (mean / 20) * (n_fft / 4)
    y = S.griffin_lim(mag, n_iter, n_fft=n_fft, hop_length=hop_length, length=candidates.n_samples,
                      generator=generator)
    return ConditionStudy(n, spread, gap, loss, seek, mean.numpy(), Audio(y, candidates.sample_rate),
                          Audio(candidates.samples.mean(0), candidates.sample_rate))
