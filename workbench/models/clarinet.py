"""ClariNet (Ping, Peng and Chen 2019, arXiv:1807.07281): a Gaussian IAF student distilled from a
single-Gaussian WaveNet teacher, with the KL in closed form.

If the noise is Gaussian and every flow is affine, the whole student is Gaussian at each step
given its past: ``x_t ~ N(mu_tot_t, s_tot_t^2)`` (:class:`~workbench.models.iaf.IAFStudent`).
The teacher's ``p(x_t | x_<t)`` is one Gaussian too, so the per-step reverse KL needs no sampling
of ``x_t``::

    KL(q || p) = log(sigma_p / sigma_q) + (sigma_q^2 + (mu_q - mu_p)^2) / (2 sigma_p^2) - 1/2

averaged over the samples of the crop, with the teacher's ``(mu_p, sigma_p)`` computed from the
student's own past (teacher forcing, all steps at once). Both log-sigmas enter the KL clamped at
the teacher's ``log_scale_min`` (the bound it was trained with). ClariNet adds:

- a regulariser ``reg_weight * (log sigma_q - log sigma_p)^2`` (lambda = 4 in the paper), which
  keeps the two scales together early on, where the KL alone is dominated by a tiny ``sigma_p``;
- a frame-level STFT loss (``stft_weight``): the squared error of STFT magnitudes between the
  student's samples and the real notes of the batch (same conditioning), which, like Parallel
  WaveNet's power loss, stops the student whispering.

Notebook: notebooks/12_distillation.ipynb
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..dsp.spectral import stft
from . import distributions as D
from .iaf import IAFConfig, IAFStudent
from .parallel_wavenet import PRESETS as PW_PRESETS


@dataclass(frozen=True)
class ClariNetConfig(IAFConfig):
    teacher: str = "wavenet_gaussian"
    reg_weight: float = 4.0  # lambda of the log-sigma regulariser
    stft_weight: float = 1.0
    n_fft: int = 256  # of the frame-level STFT loss (hop n_fft // 4)


PRESETS = {"tiny": dict(PW_PRESETS["tiny"]), "small": dict(PW_PRESETS["small"])}


def composed_gaussian(mus, log_sigmas) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mu_tot, log_sigma_tot)`` of K affine Gaussian IAF layers applied in order::

        x = z * sigma_1 + mu_1, then x * sigma_2 + mu_2, ...:
        sigma_tot = prod_i sigma_i,   mu_tot = sum_i mu_i prod_(j > i) sigma_j

    Examples
    --------
    >>> import torch
    >>> mu, log_sigma = composed_gaussian([torch.tensor(1.0), torch.tensor(2.0)], [torch.tensor(0.0), torch.tensor(0.0)])
    >>> float(mu), float(log_sigma)
    (3.0, 0.0)
    """
    mu_tot, log_sigma_tot = 0, 0
    for mu, log_sigma in zip(mus, log_sigmas):
        mu_tot = mu_tot * torch.exp(log_sigma) + mu
        log_sigma_tot = log_sigma_tot + log_sigma
    return mu_tot, log_sigma_tot


class ClariNet(IAFStudent):
    """Gaussian IAF student, distilled from ``wavenet_gaussian`` by the closed-form per-step KL."""

    name = "clarinet"
    Config = ClariNetConfig
    PRESETS = PRESETS
    base = "gaussian"
    teacher_output = "gaussian"

    def gaussian_terms(self, student: dict, teacher_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample KL(q || p) and the regulariser's ``(log sigma_q - log sigma_p)^2``, each ``(batch, crop)``."""
        teacher = self.teacher()
        p = teacher.distribution(teacher_out)
        mu_p, log_sigma_p = p["means"][:, 0], p["log_scales"][:, 0]  # already bounded below
        bound = teacher.config.log_scale_min
        mu_q, log_sigma_q = student["mu_tot"], student["log_s_tot"]
        kl = D.gaussian_kl(mu_q, log_sigma_q.clamp(min=bound), mu_p, log_sigma_p)
        return kl, (log_sigma_q - log_sigma_p).pow(2)

    def distillation_loss(self, student, score, cond):
        kl, reg = self.gaussian_terms(student, score(cond))
        kl, reg = kl.mean(), reg.mean()
        return {"loss": kl + self.config.reg_weight * reg, "kl": kl.detach(), "log_sigma_gap": reg.detach()}

    def spectral_loss(self, x, real):
        n_fft = self.config.n_fft
        frames = (stft(x, n_fft, n_fft // 4).abs() - stft(real, n_fft, n_fft // 4).abs()).pow(2).mean()
        return self.config.stft_weight * frames, {"stft_loss": frames.detach()}
