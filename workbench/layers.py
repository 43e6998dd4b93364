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
