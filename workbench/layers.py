"""Network blocks shared by more than one model: causal and gated convolutions, frame upsamplers,
discriminators, note embeddings, flow layers (squeeze, couplings, 1x1 convolutions, ActNorm), the
vector quantiser and the encoders and decoders around it, and ProGAN's layer tricks.

Losses live in :mod:`workbench.losses`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .dsp.synth import upsample as synth_upsample
from .errors import ParameterError


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


class FrameUpsampler(nn.Module):
    """Frame-rate features to sample rate: ``"repeat"``, ``"linear"`` or ``"learned"``.

    ``"repeat"`` holds each frame for ``hop`` samples (:func:`upsample_frames`): the features
    step at the frame rate, and a vocoder that hears them can lock its output to that rate.
    ``"linear"`` interpolates between frame centres (:func:`workbench.dsp.synth.upsample`).
    ``"learned"`` is WaveGlow's transposed convolution (kernel ``2 hop``, stride ``hop``),
    started as linear interpolation: a triangle of width ``2 hop`` on each channel.
    ``(batch, channels, n_frames)`` -> ``(batch, channels, n_samples)``.
    """

    MODES = ("repeat", "linear", "learned")

    def __init__(self, channels: int, hop_length: int, mode: str = "repeat"):
        super().__init__()
        if mode not in self.MODES:
            raise ParameterError(f"upsample={mode!r} is not one of {self.MODES}")
        self.hop_length, self.mode = hop_length, mode
        if mode == "learned":
            self.conv = nn.ConvTranspose1d(channels, channels, 2 * hop_length, stride=hop_length, padding=hop_length)
            k = torch.arange(2 * hop_length, dtype=torch.float32)
            triangle = 1 - (k - hop_length).abs() / hop_length  # weight hop/hop on the frame, 0 a frame away
            with torch.no_grad():
                self.conv.weight.zero_()
                self.conv.weight[range(channels), range(channels)] = triangle
                self.conv.bias.zero_()

    def forward(self, frames: torch.Tensor, n_samples: int) -> torch.Tensor:
        if self.mode == "repeat":
            return upsample_frames(frames, self.hop_length, n_samples)
        if self.mode == "linear":
            return synth_upsample(frames, n_samples, self.hop_length)
        up = self.conv(F.pad(frames, (0, 1), mode="replicate"))  # one more frame: hold the last
        up = up[..., :n_samples]
        if up.shape[-1] < n_samples:
            up = F.pad(up, (0, n_samples - up.shape[-1]), mode="replicate")
        return up


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


# ---- conditioning on a note ---------------------------------------------------------------------
class NoteEmbedding(nn.Module):
    """Pitch, instrument and velocity of a note -> one vector ``(batch, channels)``.

    ``pitch`` holds MIDI notes (offset by ``low_pitch``), ``instrument`` indices, ``velocity``
    MIDI velocities (scaled by 1/127): the three embeddings are summed.
    """

    def __init__(self, n_pitches: int, n_instruments: int, channels: int, low_pitch: int = 0):
        super().__init__()
        self.low_pitch = low_pitch
        self.pitch = nn.Embedding(n_pitches, channels)
        self.instrument = nn.Embedding(n_instruments, channels)
        self.velocity = nn.Linear(1, channels)

    def forward(self, pitch: torch.Tensor, instrument: torch.Tensor, velocity: torch.Tensor) -> torch.Tensor:
        dtype = self.velocity.weight.dtype
        return (self.pitch(pitch - self.low_pitch) + self.instrument(instrument)
                + self.velocity(velocity.to(dtype)[:, None] / 127.0))


# ---- flows: invertible blocks that return (output, log |det J|) ------------------------------------------
def squeeze(x: torch.Tensor, factor: int) -> torch.Tensor:
    """``(batch, c, time)`` -> ``(batch, c * factor, time / factor)``: each group of ``factor``
    consecutive samples becomes a column (WaveGlow's "squeeze")::

        x0 x1 x2 x3 x4 x5 x6 x7   factor 4 ->   x0 x4
                                                x1 x5
                                                x2 x6
                                                x3 x7
    """
    b, c, t = x.shape
    x = x.reshape(b, c, t // factor, factor)  # (batch, c, time / f, f)
    return x.permute(0, 1, 3, 2).reshape(b, c * factor, t // factor)


def unsqueeze(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Inverse of :func:`squeeze`."""
    b, cf, t = x.shape
    x = x.reshape(b, cf // factor, factor, t)  # (batch, c, f, time / f)
    return x.permute(0, 1, 3, 2).reshape(b, cf // factor, t * factor)


class WaveNetCouplingNet(nn.Module):
    """Non-causal WaveNet-like network of a coupling layer: ``(x_a, cond) -> (log_s, t)`` for ``x_b``.

    Dilated convolutions (dilation 1, 2, 4, ...) with gated tanh x sigmoid units and local
    conditioning added before the gate, residual and skip paths. The last convolution starts at
    zero, so a fresh coupling layer is the identity (log_s = 0, t = 0).
    """

    def __init__(self, in_channels: int, out_channels: int, cond_channels: int, hidden: int = 32,
                 n_layers: int = 4, kernel_size: int = 3):
        super().__init__()
        self.start = nn.Conv1d(in_channels, hidden, 1)
        self.convs = nn.ModuleList(
            nn.Conv1d(hidden, 2 * hidden, kernel_size, dilation=2**i, padding=(kernel_size - 1) * 2**i // 2)
            for i in range(n_layers))
        self.conds = nn.ModuleList(nn.Conv1d(cond_channels, 2 * hidden, 1) for _ in range(n_layers))
        self.res = nn.ModuleList(nn.Conv1d(hidden, hidden, 1) for _ in range(n_layers))
        self.end = nn.Conv1d(hidden, 2 * out_channels, 1)
        nn.init.zeros_(self.end.weight)
        nn.init.zeros_(self.end.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.start(x)
        skips = 0
        for conv, proj, res in zip(self.convs, self.conds, self.res):
            a, b = (conv(h) + proj(cond)).chunk(2, dim=1)
            z = torch.tanh(a) * torch.sigmoid(b)  # (batch, hidden, time)
            skips = skips + z
            h = (h + res(z)) * 0.5**0.5
        log_s, t = self.end(skips).chunk(2, dim=1)
        return log_s, t


class AffineCoupling(nn.Module):
    """``y_a = x_a``, ``y_b = x_b * exp(log_s(x_a, c)) + t(x_a, c)``: invertible whatever the net.

    log |det J| = sum of ``log_s``: the Jacobian is triangular.
    """

    def __init__(self, channels: int, cond_channels: int, hidden: int = 32, n_layers: int = 4,
                 kernel_size: int = 3):
        super().__init__()
        self.n_a = channels // 2
        self.net = WaveNetCouplingNet(self.n_a, channels - self.n_a, cond_channels, hidden, n_layers, kernel_size)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x_a, x_b = x[:, : self.n_a], x[:, self.n_a:]
        log_s, t = self.net(x_a, cond)
        y_b = x_b * torch.exp(log_s) + t
        return torch.cat([x_a, y_b], dim=1), log_s.flatten(1).sum(-1)

    def reverse(self, y: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        y_a, y_b = y[:, : self.n_a], y[:, self.n_a:]
        log_s, t = self.net(y_a, cond)
        return torch.cat([y_a, (y_b - t) * torch.exp(-log_s)], dim=1)


class InvertibleConv1x1(nn.Module):
    """WaveGlow's invertible 1x1 convolution: mixes channels with a learned matrix ``W``.

    ``W`` starts as a random rotation with determinant +1 (a reflection is flipped), so it can
    never pass through a singular matrix by continuity. log |det J| = time * log |det W|.
    """

    def __init__(self, channels: int, generator: torch.Generator | None = None):
        super().__init__()
        w = torch.linalg.qr(torch.randn(channels, channels, generator=generator))[0]
        if torch.det(w) < 0:
            w[:, 0] = -w[:, 0]
        self.weight = nn.Parameter(w)

    def forward(self, x: torch.Tensor, cond=None) -> tuple[torch.Tensor, torch.Tensor]:
        logdet = torch.linalg.slogdet(self.weight)[1] * x.shape[-1]
        return torch.einsum("ij,bjt->bit", self.weight, x), logdet.expand(x.shape[0])

    def reverse(self, y: torch.Tensor, cond=None) -> torch.Tensor:
        w_inv = torch.linalg.inv(self.weight.double()).to(y.dtype)
        return torch.einsum("ij,bjt->bit", w_inv, y)


class ActNorm(nn.Module):
    """FloWaveNet's (Glow's) activation normalisation: ``y = (x - b) * exp(log_scale)`` per channel.

    The first training batch sets ``b`` and ``log_scale`` so that outputs have zero mean and unit
    variance per channel (data-dependent initialisation); then both are ordinary parameters.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1))
        self.log_scale = nn.Parameter(torch.zeros(1, channels, 1))
        self.register_buffer("initialised", torch.zeros(()))

    @torch.no_grad()
    def _initialise(self, x: torch.Tensor) -> None:
        self.bias.copy_(x.mean(dim=(0, 2), keepdim=True))
        self.log_scale.copy_(-torch.log(x.std(dim=(0, 2), keepdim=True) + 1e-6))
        self.initialised.fill_(1.0)

    def forward(self, x: torch.Tensor, cond=None) -> tuple[torch.Tensor, torch.Tensor]:
        if self.training and not bool(self.initialised):
            self._initialise(x)
        logdet = self.log_scale.sum() * x.shape[-1]
        return (x - self.bias) * torch.exp(self.log_scale), logdet.expand(x.shape[0])

    def reverse(self, y: torch.Tensor, cond=None) -> torch.Tensor:
        return y * torch.exp(-self.log_scale) + self.bias


class ChannelSwap(nn.Module):
    """FloWaveNet's fixed permutation between couplings: the two halves trade places (|det| = 1)."""

    def forward(self, x: torch.Tensor, cond=None) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.flip(x, dims=(1,)), x.new_zeros(x.shape[0])

    def reverse(self, y: torch.Tensor, cond=None) -> torch.Tensor:
        return torch.flip(y, dims=(1,))


# ---- autoencoders: strided encoder, upsampling decoder, vector quantiser ---------------------------------
class DownsampleEncoder(nn.Module):
    """Waveform ``(batch, 1, time)`` -> latents ``(batch, out, time / 2**n_down)``: stride-2 convolutions."""

    def __init__(self, out_channels: int, hidden: int = 32, n_down: int = 5):
        super().__init__()
        layers = [nn.Conv1d(1, hidden, 7, padding=3), nn.GELU()]
        for _ in range(n_down):
            layers += [nn.Conv1d(hidden, hidden, 4, stride=2, padding=1), nn.GELU()]
        layers += [nn.Conv1d(hidden, out_channels, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class UpsampleDecoder(nn.Module):
    """Latents ``(batch, in, frames)`` plus a note vector -> per-sample outputs ``(batch, out, frames * 2**n_up)``.

    Transposed stride-2 convolutions; the note vector (pitch, instrument, velocity) is added
    after the first layer. The output is factorised: each sample's distribution depends on the
    latents, not on the other samples drawn.

    With ``source_channels`` the decoder also takes a sample-rate source ``(batch, source_channels,
    time)`` (the sines and cosines of :func:`workbench.models._note.harmonic_source`): at sample
    rate, each hidden channel adds a mix of the source scaled by a gate the latents set, so the
    latents carry how loud each partial is and the source carries the phase. Without it a
    factorised decoder cannot know the phase and its mean blurs towards silence.
    """

    def __init__(self, in_channels: int, out_channels: int, cond_channels: int, hidden: int = 32, n_up: int = 5,
                 source_channels: int = 0):
        super().__init__()
        self.inp = nn.Conv1d(in_channels, hidden, 3, padding=1)
        self.cond = nn.Linear(cond_channels, hidden)
        self.ups = nn.ModuleList(nn.ConvTranspose1d(hidden, hidden, 4, stride=2, padding=1) for _ in range(n_up))
        self.source_channels = source_channels
        if source_channels:
            self.source_mix = nn.Conv1d(source_channels, hidden, 1, bias=False)
            self.source_gate = nn.Conv1d(hidden, hidden, 1)
        self.out = nn.Sequential(nn.GELU(), nn.Conv1d(hidden, hidden, 7, padding=3), nn.GELU(),
                                 nn.Conv1d(hidden, out_channels, 1))

    def forward(self, z: torch.Tensor, note: torch.Tensor, source: torch.Tensor | None = None) -> torch.Tensor:
        h = self.inp(z) + self.cond(note)[..., None]
        for up in self.ups:
            h = up(F.gelu(h))
        if self.source_channels:
            if source is None or source.shape[1] != self.source_channels or source.shape[-1] != h.shape[-1]:
                got = None if source is None else tuple(source.shape)
                raise ValueError(f"the decoder takes a source (batch, {self.source_channels}, {h.shape[-1]}); got {got}")
            h = h + self.source_mix(source) * torch.sigmoid(self.source_gate(h))
        return self.out(h)


class VectorQuantiser(nn.Module):
    """Nearest-codeword quantisation with EMA codebook updates and restarts of dead codes.

    ``forward(z)`` with ``z`` ``(batch, dim, frames)`` returns ``(z_q, codes, commitment)``: ``z_q``
    carries the straight-through gradient (``z + (q - z).detach()``, the identity for the
    encoder), ``codes`` ``(batch, frames)``, and the commitment loss ``||z - sg(q)||^2``. In
    training the codebook follows the running mean of the vectors assigned to each code (van den
    Oord et al. 2017, appendix); the first training batch seeds the codebook with encoder outputs,
    and a code whose usage falls below ``dead_threshold`` is moved onto a random encoder output of
    the batch.
    """

    def __init__(self, n_codes: int, dim: int, decay: float = 0.95, dead_threshold: float = 0.05):
        super().__init__()
        self.n_codes, self.dim, self.decay, self.dead_threshold = n_codes, dim, decay, dead_threshold
        self.register_buffer("codebook", torch.randn(n_codes, dim) * 0.1)
        self.register_buffer("ema_count", torch.ones(n_codes))
        self.register_buffer("ema_sum", self.codebook.clone())
        self.register_buffer("restarts", torch.zeros(()))
        self.register_buffer("initialised", torch.zeros(()))

    def nearest(self, flat: torch.Tensor) -> torch.Tensor:
        """Index of the nearest codeword of each row of ``flat`` ``(n, dim)``."""
        d = (flat.pow(2).sum(1, keepdim=True) - 2 * flat @ self.codebook.T
             + self.codebook.pow(2).sum(1)[None])  # (n, n_codes)
        return d.argmin(dim=1)

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``(batch, frames)`` -> vectors ``(batch, dim, frames)``."""
        return self.codebook[codes].transpose(1, 2)

    def forward(self, z: torch.Tensor, generator: torch.Generator | None = None):
        b, d, t = z.shape
        flat = z.transpose(1, 2).reshape(-1, d)  # (batch * frames, dim)
        codes = self.nearest(flat.detach())
        if self.training:
            self._update(flat.detach(), codes, generator)
        q = self.codebook[codes].view(b, t, d).transpose(1, 2)  # (batch, dim, frames)
        commitment = F.mse_loss(z, q.detach())
        return z + (q - z).detach(), codes.view(b, t), commitment

    @torch.no_grad()
    def _update(self, flat: torch.Tensor, codes: torch.Tensor, generator) -> None:
        if not bool(self.initialised):
            # the first batch seeds the codebook with encoder outputs (no code starts dead)
            pick = torch.randint(flat.shape[0], (self.n_codes,), generator=generator).to(flat.device)
            self.codebook.copy_(flat[pick])
            self.ema_sum.copy_(flat[pick])
            self.initialised.fill_(1.0)
            codes = self.nearest(flat)
        onehot = F.one_hot(codes, self.n_codes).to(flat.dtype)  # (n, n_codes)
        self.ema_count.mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
        self.ema_sum.mul_(self.decay).add_(onehot.T @ flat, alpha=1 - self.decay)
        self.codebook.copy_(self.ema_sum / self.ema_count.clamp_min(1e-5)[:, None])
        dead = self.ema_count < self.dead_threshold
        n_dead = int(dead.sum())
        if n_dead:
            pick = torch.randint(flat.shape[0], (n_dead,), generator=generator).to(flat.device)
            self.codebook[dead] = flat[pick]
            self.ema_sum[dead] = flat[pick]
            self.ema_count[dead] = 1.0
            self.restarts.add_(n_dead)


def he_init_(module: nn.Module, negative_slope: float = 0.2) -> nn.Module:
    """He (Kaiming) normal init of every conv and linear layer, biases zero; returns ``module``.

    PyTorch's default init shrinks a signal a little at every layer; through a dozen leaky-ReLU
    convs without normalisation (a GAN critic) the score stops depending on its input, the
    gradient penalty sees a zero gradient, and the critic never learns. He init keeps the
    activations' scale through depth (what ProGAN's equalised learning rate starts from).
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, a=negative_slope)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


class _RuntimeScale(nn.Module):
    """The parametrisation behind :func:`equalise_lr_`: ``weight = stored * scale``."""

    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale

    def forward(self, stored: torch.Tensor) -> torch.Tensor:
        return stored * self.scale


def equalise_lr_(module: nn.Module, negative_slope: float = 0.2) -> nn.Module:
    """ProGAN's equalised learning rate on every conv and linear layer; returns ``module``.

    Weights are stored as N(0, 1) draws and multiplied by He's constant sqrt(2 / (1 + a^2) / fan_in)
    at every forward pass. The network computes what a He-initialised one does, but Adam, whose
    steps have about the same size for every parameter, now moves every layer by the same share
    of its scale: a wide layer no longer learns slower (relative to its weights) than a narrow one.
    """
    from torch.nn.utils import parametrize

    gain = math.sqrt(2.0 / (1.0 + negative_slope**2))
    for m in list(module.modules()):
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            fan_in = m.weight[0].numel()  # (out, in, *kernel): in * kernel
            nn.init.normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
            parametrize.register_parametrization(m, "weight", _RuntimeScale(gain / math.sqrt(fan_in)))
    return module


def minibatch_stddev(h: torch.Tensor) -> torch.Tensor:
    """ProGAN's minibatch standard deviation: append one channel holding the mean over features
    of each feature's standard deviation across the batch, so the critic can see a batch that is
    too alike (mode collapse). ``(batch, channels, ...)`` -> ``(batch, channels + 1, ...)``."""
    std = h.std(dim=0, unbiased=False).mean()
    return torch.cat([h, std.expand(h.shape[0], 1, *h.shape[2:])], dim=1)


class ArgmaxQuantiser(nn.Module):
    """The argmax autoencoder's bottleneck (AMAE; Dieleman, van den Oord and Simonyan 2018, arXiv:1806.10474).

    The encoder emits one non-negative score per code ("queries" ``(batch, n_codes, frames)``):
    a ReLU, then divisive normalisation so that each frame's scores sum to one. The code is the
    argmax; the forward pass carries its one-hot vector, the backward pass the gradient of the
    normalised scores (straight-through: ``p + sg(onehot - p)``). Each code has a learned
    embedding ``(n_codes, dim)``, so ``z_q`` is one embedding per frame. Unlike a vector quantiser
    there is no codebook to collapse; instead a diversity loss pulls the batch's use of the codes
    towards uniform.

    ``forward(q)`` returns ``(z_q (batch, dim, frames), codes (batch, frames), diversity)`` with
    ``diversity = n_codes * sum_k (u_k - 1 / n_codes) ** 2`` (0 at uniform use, up to
    ``n_codes - 1`` when one code takes everything), where ``u`` is the batch's mean of the
    straight-through one-hots: its value is how often each code *is* chosen, its gradient that of
    the mean of ``p``. (Measured on ``p`` alone, the loss lets the encoder spread ``p`` evenly
    while one code still wins every argmax.)
    """

    def __init__(self, n_codes: int, dim: int, eps: float = 1e-6):
        super().__init__()
        self.n_codes, self.dim, self.eps = n_codes, dim, eps
        self.embedding = nn.Parameter(torch.randn(n_codes, dim))

    def normalise(self, q: torch.Tensor) -> torch.Tensor:
        """Queries ``(batch, n_codes, frames)`` -> non-negative scores summing to one over codes."""
        r = F.relu(q)
        return r / (r.sum(dim=1, keepdim=True) + self.eps)

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``(batch, frames)`` -> embeddings ``(batch, dim, frames)``."""
        return self.embedding[codes].transpose(1, 2)

    def forward(self, q: torch.Tensor, generator: torch.Generator | None = None):
        if q.shape[1] != self.n_codes:
            raise ValueError(f"the argmax bottleneck takes {self.n_codes} query channels; got {q.shape[1]}")
        p = self.normalise(q)  # (batch, n_codes, frames)
        codes = p.argmax(dim=1)  # (batch, frames)
        onehot = F.one_hot(codes, self.n_codes).transpose(1, 2).to(p.dtype)
        straight_through = p + (onehot - p).detach()  # forward: one-hot; backward: d/dp is the identity
        z_q = torch.einsum("bkt,kd->bdt", straight_through, self.embedding)
        usage = straight_through.mean(dim=(0, 2))  # (n_codes,) the share of frames each code takes
        diversity = self.n_codes * (usage - 1.0 / self.n_codes).pow(2).sum()
        return z_q, codes, diversity
