"""Network blocks shared by more than one model."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CausalConv1d(nn.Conv1d):
    """A dilated convolution that only looks at the present and the past.

    Left-pads by ``dilation * (kernel_size - 1)`` so output ``t`` depends on inputs
    ``t - dilation * (kernel_size - 1) .. t``::

        kernel 2, dilation 4:   in   . . . . x x x x x x
                                          |       |
                                out               y      (y_t sees x_t and x_{t-4})
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 2, dilation: int = 1,
                 bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation, bias=bias)
        self.left_pad = dilation * (kernel_size - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (self.left_pad, 0)))  # (batch, out, time)


class GatedResidualBlock(nn.Module):
    """WaveNet's block: dilated causal conv, tanh x sigmoid gate, residual and skip 1x1 convs.

    ``cond`` (already projected to ``gate_channels``) is added before the gate: global
    conditioning as ``(batch, gate, 1)``, local conditioning as ``(batch, gate, time)``.
    """

    def __init__(self, residual_channels: int, gate_channels: int, skip_channels: int,
                 kernel_size: int, dilation: int):
        super().__init__()
        self.dilation = dilation
        self.kernel_size = kernel_size
        self.conv = CausalConv1d(residual_channels, gate_channels, kernel_size, dilation)
        self.residual = nn.Conv1d(gate_channels // 2, residual_channels, 1)
        self.skip = nn.Conv1d(gate_channels // 2, skip_channels, 1)

    def gate(self, h: torch.Tensor) -> torch.Tensor:
        a, b = h.chunk(2, dim=1)  # (batch, gate / 2, time) each
        return torch.tanh(a) * torch.sigmoid(b)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None):
        h = self.conv(x)  # (batch, gate, time)
        if cond is not None:
            h = h + cond
        z = self.gate(h)
        return (x + self.residual(z)) * 0.5**0.5, self.skip(z)


def upsample_frames(frames: torch.Tensor, hop_length: int, n_samples: int) -> torch.Tensor:
    """Repeat frame-rate features to sample rate, frame ``j`` centred on sample ``j * hop``.

    ``frames`` ``(batch, channels, n_frames)`` -> ``(batch, channels, n_samples)``; sample ``t``
    takes frame ``round(t / hop)`` (clamped to the last frame).
    """
    index = torch.div(torch.arange(n_samples, device=frames.device) + hop_length // 2, hop_length,
                      rounding_mode="floor").clamp_max(frames.shape[-1] - 1)
    return frames[..., index]


# ---- adversarial building blocks (WaveGAN, GANSynth, MelGAN) -------------------------------------


def wn_conv1d(*args, **kwargs) -> nn.Module:
    """``nn.Conv1d`` under weight normalisation (MelGAN's only normaliser)."""
    return nn.utils.parametrizations.weight_norm(nn.Conv1d(*args, **kwargs))


def wn_conv_transpose1d(*args, **kwargs) -> nn.Module:
    """``nn.ConvTranspose1d`` under weight normalisation."""
    return nn.utils.parametrizations.weight_norm(nn.ConvTranspose1d(*args, **kwargs))


class ResidualStack(nn.Module):
    """MelGAN's residual stack: dilated convs (dilations 1, 3, 9 by default) with 1x1 shortcuts.

    Each unit is ``x + conv1x1(lrelu(conv_k3_dilated(lrelu(x))))``; three units with dilations
    1, 3, 9 see 27 neighbouring samples at kernel 3, enough to connect the copies a transposed
    convolution spreads out.
    """

    def __init__(self, channels: int, dilations=(1, 3, 9), kernel_size: int = 3):
        super().__init__()
        self.units = nn.ModuleList(
            nn.Sequential(nn.LeakyReLU(0.2),
                          wn_conv1d(channels, channels, kernel_size, dilation=d, padding=d * (kernel_size - 1) // 2),
                          nn.LeakyReLU(0.2), wn_conv1d(channels, channels, 1))
            for d in dilations)
        self.shortcuts = nn.ModuleList(wn_conv1d(channels, channels, 1) for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for unit, shortcut in zip(self.units, self.shortcuts):
            x = shortcut(x) + unit(x)  # (batch, channels, time)
        return x


class WaveformDiscriminator(nn.Module):
    """MelGAN's discriminator block: strided grouped convolutions on a waveform.

    Returns every layer's activations (for feature matching); the last is the score map
    ``(batch, 1, time / 4**n_layers)``.
    """

    def __init__(self, channels: int = 16, n_layers: int = 4, max_channels: int = 1024, downsample: int = 4):
        super().__init__()
        layers = [nn.Sequential(wn_conv1d(1, channels, 15, padding=7), nn.LeakyReLU(0.2))]
        ch = channels
        for _ in range(n_layers):
            nxt = min(ch * downsample, max_channels)
            layers.append(nn.Sequential(
                wn_conv1d(ch, nxt, downsample * 10 + 1, stride=downsample, padding=downsample * 5,
                          groups=max(1, ch // 4)),
                nn.LeakyReLU(0.2)))
            ch = nxt
        layers.append(nn.Sequential(wn_conv1d(ch, ch, 5, padding=2), nn.LeakyReLU(0.2)))
        layers.append(wn_conv1d(ch, 1, 3, padding=1))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for layer in self.layers:
            x = layer(x)
            features.append(x)
        return features


class MultiScaleDiscriminator(nn.Module):
    """``n_scales`` waveform discriminators, each on the audio average-pooled once more.

    Scale 0 hears the raw samples, scale 1 the audio pooled by 2, scale 2 by 4: coarse
    scales judge structure, fine ones judge texture. Returns one feature list per scale.
    """

    def __init__(self, n_scales: int = 3, channels: int = 16, n_layers: int = 4, max_channels: int = 1024):
        super().__init__()
        self.discriminators = nn.ModuleList(
            WaveformDiscriminator(channels, n_layers, max_channels) for _ in range(n_scales))
        self.pool = nn.AvgPool1d(4, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        outputs = []
        for i, d in enumerate(self.discriminators):
            if i:
                x = self.pool(x)  # (batch, 1, time / 2**i)
            outputs.append(d(x))
        return outputs


def random_window_starts(n_samples: int, window: int, n: int, generator=None, multiple: int = 1) -> torch.Tensor:
    """GAN-TTS's random windows: ``n`` start indices so that ``[start, start + window)`` fits.

    Starts are multiples of ``multiple`` (the hop, so a window lines up with conditioning frames).

    Raises
    ------
    ValueError
        The window is longer than the clip.
    """
    if window > n_samples:
        raise ValueError(f"window={window} is longer than the clip ({n_samples} samples)")
    n_positions = (n_samples - window) // multiple + 1
    return torch.randint(n_positions, (n,), generator=generator) * multiple


class RandomWindowDiscriminator(nn.Module):
    """GAN-TTS's random-window discriminator, conditional (on mel frames) or not.

    A window of ``window`` samples is folded into ``(hop, window / hop)`` (one column per
    conditioning frame), then 1-D convolutions run at the frame rate; the conditional one adds
    a 1x1 projection of the window's mel frames after the first layer. Returns the score map's
    feature list like :class:`WaveformDiscriminator`.
    """

    def __init__(self, hop_length: int, n_mels: int | None = None, channels: int = 64, n_layers: int = 3):
        super().__init__()
        self.hop_length = hop_length
        self.first = nn.Sequential(wn_conv1d(hop_length, channels, 3, padding=1), nn.LeakyReLU(0.2))
        self.cond = wn_conv1d(n_mels, channels, 1) if n_mels else None
        self.layers = nn.ModuleList(
            nn.Sequential(wn_conv1d(channels, channels, 3, padding=d, dilation=d), nn.LeakyReLU(0.2))
            for d in (2 ** i for i in range(n_layers)))
        self.out = wn_conv1d(channels, 1, 3, padding=1)

    def forward(self, x: torch.Tensor, mel: torch.Tensor | None = None) -> list[torch.Tensor]:
        batch, _, time = x.shape
        h = x.reshape(batch, time // self.hop_length, self.hop_length).transpose(1, 2)  # (batch, hop, frames)
        h = self.first(h)
        if self.cond is not None:
            h = h + self.cond(mel)
        features = [h]
        for layer in self.layers:
            h = layer(h)
            features.append(h)
        features.append(self.out(h))
        return features


def phase_shuffle(x: torch.Tensor, radius: int, generator=None) -> torch.Tensor:
    """WaveGAN's phase shuffle: shift each item's activations by a random ``-radius..radius`` steps.

    The gap left by the shift is filled by reflection, so the discriminator cannot use the
    exact sample phase of periodic artefacts (the checkerboard of transposed convolutions).
    ``radius=0`` is the identity. ``x`` ``(batch, channels, time)``; returns the same shape.
    """
    if radius == 0:
        return x
    shifts = torch.randint(-radius, radius + 1, (x.shape[0],), generator=generator).tolist()
    out = []
    for item, k in zip(x, shifts):
        padded = F.pad(item[None], (max(k, 0), max(-k, 0)), mode="reflect")  # (1, channels, time + |k|)
        out.append(padded[..., max(-k, 0): max(-k, 0) + x.shape[-1]] if k <= 0 else padded[..., : x.shape[-1]])
    return torch.cat(out)


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
