"""Differentiable training losses shared by models (the numbers to report live in ``metrics``):
the multi-scale spectral loss, and the adversarial losses (WGAN-GP's gradient penalty, hinge
losses, MelGAN's feature matching).

Notebook: notebooks/08_spectrogram_and_dsp.ipynb
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .dsp.spectral import stft
from .errors import ParameterError

#: DDSP's FFT sizes: long windows resolve harmonics, short ones resolve onsets.
DEFAULT_FFT_SIZES = (2048, 1024, 512, 256, 128, 64)


def multi_scale_spectral_loss(target: torch.Tensor, estimate: torch.Tensor,
                              fft_sizes: tuple[int, ...] = DEFAULT_FFT_SIZES, overlap: float = 0.75,
                              magnitude_weight: float = 1.0, log_weight: float = 1.0,
                              eps: float = 1e-5) -> torch.Tensor:
    """DDSP's multi-scale spectral loss: L1 between STFT magnitudes at several resolutions.

    For each FFT size ``n``, with hop ``n * (1 - overlap)``::

        loss += magnitude_weight * mean |S - S_hat|  +  log_weight * mean |log S - log S_hat|

    The linear term is dominated by loud partials, the log term gives quiet detail (the noise
    floor, the release) a voice. No phase enters, so two sounds that differ only in phase have
    zero loss: the synthesiser may choose its own phases.

    Parameters
    ----------
    target, estimate : Tensor ``(..., time)``
        Same shape.
    fft_sizes : tuple of int
        Sizes longer than twice the signal are skipped.
    overlap : float
        Share of each window shared with the next.
    magnitude_weight, log_weight : float
    eps : float
        Floor of the magnitudes inside the log.

    Returns
    -------
    Scalar tensor (0 for identical inputs), differentiable in ``estimate``.

    Raises
    ------
    ParameterError
        Shapes differ, the clip is too short for every FFT size, or ``overlap`` is not in [0, 1).

    Examples
    --------
    >>> import torch
    >>> x = torch.randn(2, 4000, generator=torch.Generator().manual_seed(0))
    >>> float(multi_scale_spectral_loss(x, x))
    0.0
    >>> bool(multi_scale_spectral_loss(x, 0.5 * x) > 0)
    True
    """
    if target.shape != estimate.shape:
        raise ParameterError(
            f"target {tuple(target.shape)} and estimate {tuple(estimate.shape)} must have the same shape"
        )
    if not 0 <= overlap < 1:
        raise ParameterError(f"overlap={overlap!r} must be in [0, 1); 0.75 is DDSP's")
    total = target.new_zeros(())
    used = 0
    for n_fft in fft_sizes:
        if target.shape[-1] <= n_fft // 2:
            continue
        hop = max(1, int(n_fft * (1 - overlap)))
        s = stft(target, n_fft, hop).abs()
        s_hat = stft(estimate, n_fft, hop).abs()
        if magnitude_weight:
            total = total + magnitude_weight * (s - s_hat).abs().mean()
        if log_weight:
            log_diff = torch.log(s.clamp_min(eps)) - torch.log(s_hat.clamp_min(eps))
            total = total + log_weight * log_diff.abs().mean()
        used += 1
    if not used:
        raise ParameterError(
            f"the clips have {target.shape[-1]} samples: too short for every FFT size {fft_sizes}; "
            "pass smaller sizes or longer clips"
        )
    return total


# ---- adversarial losses ----------------------------------------------------------------------
def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, generator=None, **kwargs) -> torch.Tensor:
    """WGAN-GP's penalty ``mean((||grad_x critic(x_hat)|| - 1)**2)`` on random interpolates.

    ``x_hat = a * real + (1 - a) * fake`` with ``a ~ U(0, 1)`` per item; ``critic`` returns one
    score per item (extra ``kwargs`` such as conditioning go to it). Differentiable (the
    graph is kept so the penalty trains the critic).
    """
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    a = torch.rand(shape, generator=generator).to(real.device, real.dtype)
    x_hat = (a * real.detach() + (1 - a) * fake.detach()).requires_grad_(True)
    score = critic(x_hat, **kwargs)
    (grad,) = torch.autograd.grad(score.sum(), x_hat, create_graph=True)
    norm = grad.reshape(grad.shape[0], -1).norm(dim=1)
    return ((norm - 1) ** 2).mean()


def feature_matching_loss(real_features, fake_features) -> torch.Tensor:
    """MelGAN's feature matching: mean L1 between discriminator activations on real and fake.

    ``real_features``/``fake_features``: lists (per discriminator) of lists of activations
    (the final score map is left out). Real activations are detached. Zero for identical inputs.
    """
    total, n = 0.0, 0
    for real, fake in zip(real_features, fake_features):
        for r, f in zip(real[:-1], fake[:-1]):
            total = total + (r.detach() - f).abs().mean()
            n += 1
    return total / max(n, 1)


def hinge_d_loss(real_scores, fake_scores) -> torch.Tensor:
    """Hinge loss of the discriminator: ``relu(1 - D(real)) + relu(1 + D(fake))``, summed over heads."""
    return sum(F.relu(1 - r).mean() + F.relu(1 + f).mean() for r, f in zip(real_scores, fake_scores))


def hinge_g_loss(fake_scores) -> torch.Tensor:
    """Hinge loss of the generator: ``-D(fake)``, summed over heads."""
    return sum(-f.mean() for f in fake_scores)
