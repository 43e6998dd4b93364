"""Parallel WaveNet (van den Oord et al. 2018, arXiv:1711.10433): an IAF student distilled from a
WaveNet teacher with a mixture-of-logistics output, by probability density distillation.

The student (:class:`~workbench.models.iaf.IAFStudent`) turns logistic noise into a note in one
parallel pass. It is trained to minimise the *reverse* KL divergence to the teacher::

    KL(q || p) = E_q[log q(x) - log p(x)] = H(q, p) - H(q)        (nats per sample)

on its own samples, which the teacher scores teacher-forced, all samples at once:

- the student's entropy is exact from its log-scales: ``H(q) = E[mean_t log s_tot_t] + 2`` (2 nats
  is the entropy of the standard logistic);
- the cross-entropy ``H(q, p) = sum_t E[-log p(x_t | x_<t)]``: the teacher's mixture at ``t`` is
  computed once from the student's own past ``x_<t``, and ``x_t`` is drawn ``n_ce_samples`` times
  from the student's conditional ``logistic(mu_tot_t, s_tot_t)`` (reparameterised) to estimate the
  expectation with less variance, as the paper does.

Reverse KL seeks modes (notebook 04): the student is punished for samples the teacher finds
unlikely and never for the teacher's sounds it does not make, so it is sharp and less varied.
Two of the paper's auxiliary losses are here, each switchable by its weight:

- the **power loss** (``power_weight``): the squared distance between the average power spectra
  (``|STFT|^2`` averaged over frames) of the student's samples and the real notes of the batch (same
  conditioning), which stops the student whispering. Here it is divided by the real note's own
  ``sum_f power^2``, so a quiet note counts as much as a loud one and a silent student costs 1;
- the **contrastive loss** (``contrastive_weight``, the paper's gamma = 0.3): minus gamma times the
  KL to the teacher told another note (its pitch moved half the range), so the student's samples
  must fit their own note better than any other.

The paper's perceptual loss needs a pretrained recogniser's features (a phone classifier); the
workbench has none for notes, so it is left out.

Notebook: notebooks/12_distillation.ipynb
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..dsp.spectral import stft
from ..errors import ParameterError
from . import distributions as D
from .iaf import IAFConfig, IAFStudent


@dataclass(frozen=True)
class ParallelWaveNetConfig(IAFConfig):
    teacher: str = "wavenet_mol"
    n_ce_samples: int = 8  # draws of each x_t for the cross-entropy
    power_weight: float = 1.0
    contrastive_weight: float = 0.0  # the paper's gamma (0.3); 0 switches it off
    n_fft: int = 256  # of the power spectra


PRESETS = {
    "tiny": dict(instruments=("piano", "flute"), pitch_range=(60, 64), velocities=(100,), note_seconds=0.25,
                 teacher_preset="tiny", n_flows=2, n_layers=4, residual_channels=8, gate_channels=16,
                 skip_channels=8, cond_channels=8, crop_samples=512, batch_size=4),
    # the data of wavenet's small preset (the teacher's); four flows of 6 layers: each sees 64 samples of
    # its input's past, the student 257 samples of noise (four periods of its lowest note)
    "small": dict(),
}


def average_power(x: torch.Tensor, n_fft: int) -> torch.Tensor:
    """The average power spectrum ``(batch, n_fft // 2 + 1)`` of clips ``(batch, time)`` (Hann window,
    hop ``n_fft // 4``, scaled so that a full-scale sine's bin holds about 1/4)."""
    window_sum = n_fft / 2
    return (stft(x, n_fft, n_fft // 4).abs() / window_sum).pow(2).mean(-1)


class ParallelWaveNet(IAFStudent):
    """IAF student on logistic noise, distilled from ``wavenet_mol`` by Monte Carlo reverse KL."""

    name = "parallel_wavenet"
    Config = ParallelWaveNetConfig
    PRESETS = PRESETS
    base = "logistic"
    teacher_output = "logistic_mixture"

    def __init__(self, config: ParallelWaveNetConfig):
        super().__init__(config)
        if config.n_ce_samples < 1:
            raise ParameterError(f"n_ce_samples={config.n_ce_samples} must be >= 1")
        if config.contrastive_weight and config.pitch_range[0] == config.pitch_range[1]:
            raise ParameterError("contrastive_weight > 0 needs another pitch to contrast with; widen pitch_range")

    def cross_entropy(self, student: dict, teacher_out: torch.Tensor, generator=None) -> torch.Tensor:
        """H(q(x_t | past), p(x_t | past)) per sample ``(batch, crop)``, nats, by ``n_ce_samples`` draws."""
        teacher = self.teacher()
        p = teacher.distribution(teacher_out)  # (batch, K, crop) each
        mu, log_s = student["mu_tot"], student["log_s_tot"]
        ce = 0
        for _ in range(self.config.n_ce_samples):
            eps = D.logistic_noise(mu.shape, generator, mu.dtype).to(mu.device)
            ce = ce - D.log_density(teacher.config.output, p, mu + torch.exp(log_s) * eps)
        return ce / self.config.n_ce_samples

    def distillation_loss(self, student, score, cond):
        entropy = student["log_s_tot"].mean() + D.BASE_ENTROPY["logistic"]
        cross = self.cross_entropy(student, score(cond)).mean()
        kl = cross - entropy
        logs = {"loss": kl, "kl": kl.detach(), "cross_entropy": cross.detach(), "entropy": entropy.detach()}
        if self.config.contrastive_weight:
            low, high = self.config.pitch_range
            span = high - low + 1
            pitch = torch.as_tensor(cond["pitch"]).long()
            other = dict(cond, pitch=low + (pitch - low + max(1, span // 2)) % span)
            kl_other = self.cross_entropy(student, score(other)).mean() - entropy
            logs["loss"] = logs["loss"] - self.config.contrastive_weight * kl_other
            logs["kl_other_note"] = kl_other.detach()
        return logs

    def spectral_loss(self, x, real):
        target = average_power(real, self.config.n_fft)  # (batch, freq)
        error = (average_power(x, self.config.n_fft) - target).pow(2).sum(-1) / target.pow(2).sum(-1).clamp_min(1e-12)
        power = error.mean()
        return self.config.power_weight * power, {"power_loss": power.detach()}
