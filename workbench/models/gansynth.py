"""GANSynth (Engel et al. 2019): a GAN that paints spectrograms whose phase is a running sum.

Instead of samples, the generator draws an image of two channels, log-magnitude and
*instantaneous frequency* (IF: how much each bin's phase advances from frame to frame,
divided by pi). A steady partial has a constant IF, a flat line the network can draw, where
the wrapped phase itself is a tangle. Inversion is exact and cheap::

    z ~ N(0, I) ++ one-hot(pitch) ++ one-hot(instrument)
      --linear--> (channels, 4, 4) --[upsample x2, conv 3x3, pixel norm] ...-->
      (2, n_fft / 2, frames)          channel 0: log-magnitude, channel 1: IF in [-1, 1]
    phase = cumsum(IF * pi) over frames;  magnitude = exp(log-magnitude) - eps
    samples = istft(magnitude * exp(i * phase))

The critic mirrors the generator and has two extra heads that classify pitch and instrument
(the auxiliary classification loss that makes the pitch conditioning stick).

With ``pitch_map`` (not in the paper; the spectral cousin of the source WaveNet and SampleRNN
take here), both networks also see the requested pitch drawn where it belongs: a comb with a
tooth at every harmonic's bin, one extra channel at every scale of the generator and at the
critic's input. The generator no longer has to discover, from a one-hot, which rows of the
image a pitch lights up; the critic can check the partials against the request directly.

With ``if_mask`` the critic sees IF multiplied by a soft gate on loudness (open above about
-50 dB of full scale). In a real note nearly every bin is quiet, and a quiet bin's phase, hence
its IF, is noise (uniform in [-1, 1]); a critic that sees all of it wins by checking that texture,
which is inaudible, instead of the partials, which are not. Trained as
WGAN-GP (gradient penalty weight 10, ProGAN's small drift penalty), without the progressive
schedule (a single scale is enough at this size).

With ``freq_scale="mel"`` the image is the paper's best variant, IF-Mel (with the ``small``
presets' 1024-point FFT, IF-Mel + H): both channels are drawn on a mel frequency axis with as many
mel bands as the image has rows, so nothing is compressed, only the axis is warped. Low bands are
narrower than a linear bin and high bands pool several bins, so the low harmonics, where a pitch
lives, get more rows and more room apart. The steps are those of GANSynth's code (Magenta's
``specgrams_helper``)::

    linear -> mel:  mel power = M |S|^2             mel phase = M cumsum(IF * pi)     (unwrapped)
                    log-magnitude = log sqrt(mel power)  (half the log of the mel power)
                    mel IF = diff(unwrap(mel phase)) / pi
    mel -> linear:  |S|^2 = M' mel power            phase = M' cumsum(mel IF * pi)
                    with M' = M^T diag(1 / column sums of M M^T)   (mel_to_linear_matrix)

``M`` is librosa's (Slaney) mel filterbank with each row scaled to sum to one, so that a band holds
the average power and the average unwrapped phase under its triangle: the mel IF stays within
[-1, 1] and its unwrap loses nothing (Magenta's triangles peak at 1 on an HTK mel scale and are at
least 1.5 bins wide; a band too narrow to hold a bin stays silent here, like the Nyquist row).
Unlike the linear image, the mel one is lossy: ``M'`` spreads a high band's one value evenly over
its bins again, and the average of unwrapped phases that disagree by whole turns is nobody's phase.
A real note comes back recognisable but not exact: spectral convergence 0.18 to 0.37 on four
soundfont notes at the ``mel-small`` preset, where the linear image gives ~1e-7.
The pitch map, when on, is drawn through the same projection, so its teeth sit on the mel rows
where the partials are.

Training the small model on IF-Mel: ``workbench train gansynth --preset mel-small`` (the ``small``
preset with ``--set freq_scale=mel``).

``encode`` gives the model's own representation of a sound (log-magnitude + IF, which
``decode`` inverts: exactly for the linear image) and a latent found by inversion
(:meth:`GANSynth.invert`).

Notebook: notebooks/07_adversarial.ipynb
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..audio import Audio
from ..dsp.spectral import (
    if_to_phase,
    istft,
    mel_filterbank,
    mel_to_linear_matrix,
    phase_to_if,
    stft,
    unwrapped_phase,
)
from ..dsp.synth import midi_to_hz
from ..errors import ParameterError
from ..layers import equalise_lr_, he_init_, minibatch_stddev
from ..losses import gradient_penalty
from ._note import HARMONIC_COMB, note_specs
from .base import AdversarialModel, CondSpec, Encoding, NoteDataConfig

MAG_EPS = 1e-4  # log(magnitude + eps): silence sits at log(eps)
LOG_LOW, LOG_HIGH = math.log(MAG_EPS), math.log(100.0)  # mapped to -1 and 1
IF_GATE_LEVEL = 0.3  # scaled log-magnitude where the critic's IF gate is half open (|X| ~ 0.8)
FREQ_SCALES = ("linear", "mel")


@dataclass(frozen=True)
class GANSynthConfig(NoteDataConfig):
    n_fft: int = 256
    hop_length: int = 128
    latent_size: int = 64
    channels: tuple = (64, 64, 48, 32, 24, 16)  # generator, from 4 x 4 upwards (critic: reversed)
    gp_weight: float = 10.0
    drift_weight: float = 1e-3
    aux_weight: float = 10.0  # auxiliary pitch / instrument classification in the critic
    n_critic: int = 1
    inversion_steps: int = 100
    learning_rate: float = 5e-4
    betas: tuple = (0.0, 0.99)
    equalised_lr: bool = False  # ProGAN's run-time weight scaling (layers.equalise_lr_)
    minibatch_std: bool = False  # ProGAN's batch-diversity channel before the critic's heads
    pitch_map: bool = False  # the requested pitch's harmonic comb as an extra image channel (see below)
    if_mask: bool = False  # the critic sees IF weighted by loudness (silent bins' IF is noise; see below)
    ema_decay: float = 0.0  # > 0: sample from a running average of the generator's weights
    freq_scale: str = "linear"  # "mel": the paper's IF-Mel image, as many mel bands as rows (see above)
    # conditioning and data
    note_seconds: float = 0.5


PRESETS = {
    "tiny": dict(n_fft=128, hop_length=64, latent_size=8, channels=(16, 8, 8, 8, 4), inversion_steps=3,
                 instruments=("piano", "flute"), pitch_range=(60, 62), velocities=(100,), note_seconds=0.25,
                 batch_size=2, equalised_lr=True, minibatch_std=True, if_mask=True),
    # high frequency resolution (the paper's "+H": bins narrower than a semitone at the lowest
    # pitch), so a pitch is where the harmonic comb's teeth are, not a fine IF value
    # ProGAN's equalised learning rate and minibatch stddev at the paper's learning rate, the pitch
    # map and the IF gate (both explained in the module docstring)
    "small": dict(sample_rate=8000, n_fft=1024, hop_length=256, channels=(64, 64, 64, 48, 32, 24, 16, 16),
                  equalised_lr=True, minibatch_std=True, if_mask=True, learning_rate=8e-4),
}
# the paper's best image, IF-Mel (+ H at the small size): the same models on a mel frequency axis
PRESETS.update({f"mel-{size}": {**PRESETS[size], "freq_scale": "mel"} for size in ("tiny", "small")})

#: ``gansynth+comb``: the same presets with the aid switched on.
AIDED_PRESETS = {name: {**preset, "pitch_map": True} for name, preset in PRESETS.items()}


class PixelNorm(nn.Module):
    """ProGAN's pixel norm: each position's feature vector scaled to unit RMS."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


@functools.lru_cache(maxsize=8)
def _mel_matrices(n_fft: int, sample_rate: int) -> tuple[torch.Tensor, torch.Tensor]:
    """IF-Mel's two projections in float64 (cached and shared: never modify them).

    Returns
    -------
    to_mel : Tensor ``(n_fft / 2, n_fft / 2 + 1)``
        Librosa's mel filterbank with one band per image row (the Nyquist row aside), each row
        scaled to sum to one: a band's value is the weighted average of the bins under it.
    to_linear : Tensor ``(n_fft / 2 + 1, n_fft / 2)``
        GANSynth's approximate inverse of ``to_mel`` (:func:`~workbench.dsp.spectral.mel_to_linear_matrix`).
    """
    with warnings.catch_warnings():
        # bands narrower than a bin hold none (small FFTs): expected here, they stay silent
        warnings.filterwarnings("ignore", message=".*mel filterbank has all zero values.*")
        bank = mel_filterbank(n_fft, n_fft // 2, sample_rate).double()  # (n_mels, n_freq)
    sums = bank.sum(dim=1, keepdim=True)
    to_mel = bank / torch.where(sums > 0, sums, torch.ones_like(sums))
    return to_mel, mel_to_linear_matrix(to_mel)


def _scales(n_freq: int, n_frames: int, n_stages: int) -> list[tuple[int, int]]:
    """Upsampling factors (freq, time) per stage from 4 x 4 to ``(n_freq, n_frames)``: time stops at its size."""
    out, f, t = [], 4, 4
    for _ in range(n_stages):
        sf, st = (2 if f < n_freq else 1), (2 if t < n_frames else 1)
        out.append((sf, st))
        f, t = f * sf, t * st
    if (f, t) != (n_freq, n_frames):
        raise ParameterError(f"{n_stages} stages from 4 x 4 reach {f} x {t}, not {n_freq} x {n_frames}; "
                             "change channels (one stage per entry after the first) or n_fft / hop_length")
    return out


class GANSynth(AdversarialModel):
    """Log-magnitude + instantaneous-frequency spectrogram GAN (WGAN-GP, auxiliary pitch classifier)."""

    name = "gansynth"
    family = "adversarial"
    likelihood = "none"
    Config = GANSynthConfig
    PRESETS = PRESETS
    aid_fields = ("pitch_map",)
    notebook = "notebooks/07_adversarial.ipynb"

    def __init__(self, config: GANSynthConfig):
        super().__init__(config)
        c = config
        if c.freq_scale not in FREQ_SCALES:
            raise ParameterError(f"freq_scale={c.freq_scale!r} is not one of {', '.join(FREQ_SCALES)}; "
                                 "'linear' is the STFT's own axis, 'mel' the paper's IF-Mel image")
        self.n_pitches = c.pitch_range[1] - c.pitch_range[0] + 1
        self.n_instruments = len(c.instruments)
        n_bins = c.n_fft // 2  # the Nyquist bin is left out of the image and set to zero
        self.image_frames = 2 ** math.ceil(math.log2(self.n_frames))
        self.stages = _scales(n_bins, self.image_frames, len(c.channels) - 1)
        ch = c.channels
        # generator: latent ++ one-hots -> 4 x 4 -> ... -> (2, n_bins, image_frames)
        self.g_input = nn.Linear(c.latent_size + self.n_pitches + self.n_instruments, ch[0] * 16)
        extra = int(c.pitch_map)  # the comb channel
        self.g_blocks = nn.ModuleList(
            nn.Sequential(nn.Conv2d(a + extra, b, 3, padding=1), nn.LeakyReLU(0.2), PixelNorm(),
                          nn.Conv2d(b, b, 3, padding=1), nn.LeakyReLU(0.2), PixelNorm())
            for a, b in zip(ch[:-1], ch[1:]))
        self.g_out = nn.Conv2d(ch[-1] + extra, 2, 1)
        if c.pitch_map:
            self.register_buffer("combs", self._combs(), persistent=False)  # (pitches, n_bins)
        # critic: the mirror image, plus a score head and two classification heads
        rev = ch[::-1]
        self.d_input = nn.Conv2d(2 + extra, rev[0], 1)
        self.d_blocks = nn.ModuleList(
            nn.Sequential(nn.Conv2d(a, a, 3, padding=1), nn.LeakyReLU(0.2),
                          nn.Conv2d(a, b, 3, padding=1), nn.LeakyReLU(0.2))
            for a, b in zip(rev[:-1], rev[1:]))
        head = (rev[-1] + int(c.minibatch_std)) * 16
        self.d_score = nn.Linear(head, 1)
        self.d_pitch = nn.Linear(head, self.n_pitches)
        self.d_instrument = nn.Linear(head, self.n_instruments)
        # He init: with PyTorch's default, 7 stages of the critic leave its score flat (input
        # gradient ~1e-8), the gradient penalty sits at 1 and nothing is learned
        if c.equalised_lr:
            equalise_lr_(self)
        else:
            he_init_(self)

    # ---- facts ----------------------------------------------------------------------------------------
    @property
    def n_samples(self) -> int:
        return int(round(self.config.note_seconds * self.config.sample_rate))

    @property
    def max_seconds(self) -> float:
        return self.n_samples / self.sample_rate

    @property
    def n_frames(self) -> int:
        return self.n_samples // self.config.hop_length + 1

    @property
    def conditioning(self) -> tuple[CondSpec, ...]:
        c = self.config
        return tuple(note_specs(c, pitch="one-hot in the latent; the critic must recognise it",
                                instrument="one-hot in the latent; the critic must recognise it",
                                velocity=None))

    # ---- the representation: log-magnitude + instantaneous frequency ----------------------------------------
    def to_representation(self, x: torch.Tensor) -> torch.Tensor:
        """Samples ``(batch, time)`` -> ``(batch, 2, n_fft / 2 + 1, frames)``: scaled log-magnitude and IF.

        Rows are linear STFT bins, or mel bands with ``freq_scale="mel"`` (the top row then stays
        silent, as the generator draws it). Computed in float64 so that :meth:`from_representation`
        inverts the linear image to ~1e-7.
        """
        c = self.config
        spec = stft(x.double(), c.n_fft, c.hop_length)  # (batch, freq, frames)
        if c.freq_scale == "mel":
            mag, inst_freq = self._linear_to_mel(spec)
        else:
            mag, inst_freq = spec.abs(), phase_to_if(spec.angle())
        logmag = torch.log(mag + MAG_EPS)
        scaled = 2 * (logmag - LOG_LOW) / (LOG_HIGH - LOG_LOW) - 1
        return torch.stack([scaled, inst_freq], dim=1).float()

    def from_representation(self, rep: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """Scaled log-magnitude + IF ``(batch, 2, freq, frames)`` -> samples ``(batch, time)``.

        1. magnitude = exp(log-magnitude) - eps; 2. phase = cumsum(IF * pi) over frames (with
        ``freq_scale="mel"``: both back onto the linear bins, :meth:`_mel_to_linear`);
        3. inverse STFT.
        """
        c = self.config
        rep = rep.double()
        logmag = (rep[:, 0] + 1) / 2 * (LOG_HIGH - LOG_LOW) + LOG_LOW
        mag = (logmag.exp() - MAG_EPS).clamp_min(0)
        if c.freq_scale == "mel":
            spec = self._mel_to_linear(mag, rep[:, 1])
        else:
            spec = torch.polar(mag, if_to_phase(rep[:, 1]))
        y = istft(spec, c.n_fft, c.hop_length, length=length)
        return y.float()

    def _linear_to_mel(self, spec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Complex STFT ``(batch, n_fft / 2 + 1, frames)`` -> mel magnitude and mel IF, each of that shape.

        1. power |S|^2 and the unwrapped phase (cumsum of IF * pi) onto the mel bands (band averages);
        2. mel magnitude = sqrt(mel power), so that its log is half the log of the mel power;
        3. mel IF = the projected phase unwrapped, differenced over frames, divided by pi;
        4. one silent row on top, where the linear image has its Nyquist bin.
        """
        to_mel = _mel_matrices(self.config.n_fft, self.config.sample_rate)[0].to(spec.device)
        mel_power = to_mel @ spec.abs().pow(2)  # (batch, n_mels, frames)
        mel_phase = to_mel @ unwrapped_phase(spec)  # (batch, n_mels, frames)
        top = (0, 0, 0, 1)  # pad the frequency axis at its high end
        return F.pad(mel_power.sqrt(), top), F.pad(phase_to_if(mel_phase), top)

    def _mel_to_linear(self, mel_mag: torch.Tensor, mel_if: torch.Tensor) -> torch.Tensor:
        """Mel magnitude and mel IF ``(batch, n_fft / 2 + 1, frames)`` -> complex STFT of that shape.

        The mel power and the unwrapped mel phase (cumsum of IF * pi) go back onto the linear bins
        through GANSynth's approximate inverse; the top (silent) row is left out.
        """
        n_mels = self.config.n_fft // 2
        to_linear = _mel_matrices(self.config.n_fft, self.config.sample_rate)[1].to(mel_mag.device)
        power = to_linear @ mel_mag[:, :n_mels].pow(2)  # (batch, freq, frames); >= 0 (so is the matrix)
        phase = to_linear @ torch.cumsum(mel_if[:, :n_mels] * math.pi, dim=-1)
        return torch.polar(power.sqrt(), phase)

    def row_frequencies(self) -> torch.Tensor:
        """The frequency in Hz at the centre of each image row ``(n_fft / 2 + 1,)``: bins, or mel bands.

        With ``freq_scale="mel"`` the rows are the mel bands' centres (librosa's Slaney scale), then
        the silent top row at Nyquist.
        """
        c = self.config
        if c.freq_scale != "mel":
            return torch.arange(c.n_fft // 2 + 1, dtype=torch.float64) * c.sample_rate / c.n_fft
        import librosa

        centres = librosa.mel_frequencies(c.n_fft // 2 + 2, fmin=0.0, fmax=c.sample_rate / 2)[1:-1]
        return torch.cat([torch.from_numpy(centres), torch.tensor([c.sample_rate / 2])]).double()

    # ---- the pitch map -------------------------------------------------------------------------------------
    def _combs(self) -> torch.Tensor:
        """``(pitches, n_fft / 2)``: for each pitch, a Gaussian tooth (1 bin wide) at each harmonic below Nyquist.

        With ``freq_scale="mel"`` each tooth goes through the image's own linear-to-mel projection
        (and is scaled back to a peak of 1), so it lands on the mel rows its partial lights up.
        """
        c = self.config
        midi = torch.arange(c.pitch_range[0], c.pitch_range[1] + 1, dtype=torch.float64)
        f0_bins = midi_to_hz(midi) * c.n_fft / c.sample_rate  # (pitches,)
        n_bins = c.n_fft // 2
        centres = f0_bins[:, None] * torch.arange(1, int(n_bins / f0_bins.min()) + 1, dtype=torch.float64)
        bins = torch.arange(n_bins, dtype=torch.float64)
        teeth = torch.exp(-0.5 * (bins[None, None] - centres[..., None]) ** 2) * (centres < n_bins)[..., None]
        if c.freq_scale == "mel":
            to_mel = _mel_matrices(c.n_fft, c.sample_rate)[0]  # (n_bins, n_bins + 1)
            teeth = F.pad(teeth, (0, 1)) @ to_mel.T  # (pitches, harmonics, n_bins): on mel rows
            teeth = teeth / teeth.amax(-1, keepdim=True).clamp_min(1e-12)
        return teeth.sum(1).clamp_max(1).float()

    def pitch_comb(self, onehot: torch.Tensor) -> torch.Tensor | None:
        """The comb of each item's pitch ``(batch, 1, n_fft / 2, 1)`` (read off its one-hot), or None."""
        if not self.config.pitch_map:
            return None
        return (onehot[:, : self.n_pitches] @ self.combs)[:, None, :, None]

    # ---- generator and critic ------------------------------------------------------------------------------
    def one_hots(self, pitch, instrument) -> torch.Tensor:
        c = self.config
        pitch = torch.as_tensor(pitch, device=self.device).long() - c.pitch_range[0]
        inst = instrument if isinstance(instrument, torch.Tensor) else self.cond_index("instrument", instrument)
        return torch.cat([F.one_hot(pitch, self.n_pitches), F.one_hot(inst.to(self.device), self.n_instruments)],
                         dim=-1).float()

    def generator_image(self, z: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
        """Latent ``(batch, latent)`` + one-hots -> representation ``(batch, 2, n_fft / 2 + 1, frames)``."""
        c = self.config
        h = self.g_input(torch.cat([z, onehot], dim=-1)).view(z.shape[0], c.channels[0], 4, 4)
        h = F.leaky_relu(h, 0.2)
        comb = self.pitch_comb(onehot)
        for block, scale in zip(self.g_blocks, self.stages):
            h = self._with_comb(F.interpolate(h, scale_factor=scale, mode="nearest"), comb)
            h = block(h)  # (batch, ch, freq, time)
        out = self.g_out(self._with_comb(h, comb))  # (batch, 2, n_fft / 2, image_frames)
        # the Nyquist bin is silent: log-magnitude -1 (magnitude 0), IF 0
        logmag = F.pad(out[:, :1], (0, 0, 0, 1), value=-1.0)
        inst_freq = F.pad(torch.tanh(out[:, 1:]), (0, 0, 0, 1))
        image = torch.cat([logmag, inst_freq], dim=1)  # (batch, 2, n_fft / 2 + 1, image_frames)
        return image[..., : self.n_frames]

    @staticmethod
    def if_gate(logmag: torch.Tensor) -> torch.Tensor:
        """How much of each bin's IF the critic sees (``if_mask``), from the scaled log-magnitude."""
        return torch.sigmoid(10 * (logmag - IF_GATE_LEVEL))

    @staticmethod
    def _with_comb(h: torch.Tensor, comb: torch.Tensor | None) -> torch.Tensor:
        """``h`` ``(batch, ch, freq, time)`` with the comb, pooled to ``freq`` rows, as one more channel."""
        if comb is None:
            return h
        rows = F.adaptive_avg_pool2d(comb, (h.shape[2], 1)) if h.shape[2] != comb.shape[2] else comb
        return torch.cat([h, rows.expand(-1, -1, -1, h.shape[3])], dim=1)

    def critic(self, rep: torch.Tensor, heads: bool = False, onehot: torch.Tensor | None = None):
        """Score ``(batch,)`` of representations (and pitch / instrument logits with ``heads``).

        With ``pitch_map`` the critic is conditional: pass the one-hots of the requested notes.
        """
        c = self.config
        h = rep[:, :, : c.n_fft // 2]  # drop the Nyquist bin
        h = F.pad(h, (0, self.image_frames - h.shape[-1]))  # (batch, 2, n_bins, image_frames)
        if c.if_mask:
            h = torch.cat([h[:, :1], h[:, 1:] * self.if_gate(h[:, :1])], dim=1)
        if c.pitch_map:
            if onehot is None:
                raise ParameterError("this critic is conditional (pitch_map=True): pass onehot=")
            h = self._with_comb(h, self.pitch_comb(onehot))
        h = F.leaky_relu(self.d_input(h), 0.2)
        for block, scale in zip(self.d_blocks, reversed(self.stages)):
            h = F.avg_pool2d(block(h), scale)
        if c.minibatch_std:
            h = minibatch_stddev(h)
        h = h.flatten(1)  # (batch, channels * 16)
        score = self.d_score(h)[:, 0]
        return (score, self.d_pitch(h), self.d_instrument(h)) if heads else score

    def _generate(self, n, seconds, cond, temperature, generator, progress):
        z = temperature * torch.randn(n, self.config.latent_size, generator=generator).to(self.device)
        rep = self.generator_image(z, self.one_hots(cond["pitch"], cond["instrument"]))
        y = self.from_representation(rep, self.n_samples)
        return y[:, None, : max(1, min(self.n_samples, int(round(seconds * self.sample_rate))))]

    # ---- encode / decode ------------------------------------------------------------------------------------
    def _fit_length(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, (0, max(0, self.n_samples - x.shape[-1])))[..., : self.n_samples]

    def invert(self, x: torch.Tensor, cond: dict | None = None, steps: int | None = None):
        """GAN inversion: the latent whose image is closest (L1 on log-magnitude) to ``x`` ``(batch, time)``.

        Starts from z = 0 for every item and runs Adam; returns ``(z, error)``.
        """
        checked = self.check_cond(cond, x.shape[0])
        target = self.to_representation(self._fit_length(x).to(self.device))[:, 0]
        onehot = self.one_hots(checked["pitch"], checked["instrument"])
        z = torch.zeros(x.shape[0], self.config.latent_size, device=self.device, requires_grad=True)
        opt = torch.optim.Adam([z], lr=0.05)
        for p in self.parameters():
            p.requires_grad_(False)
        try:
            with torch.enable_grad():
                for _ in range(self.config.inversion_steps if steps is None else steps):
                    opt.zero_grad()
                    error = (self.generator_image(z, onehot)[:, 0] - target).abs().mean(dim=(1, 2))
                    error.sum().backward()
                    opt.step()
        finally:
            for p in self.parameters():
                p.requires_grad_(True)
        with torch.no_grad():
            error = (self.generator_image(z, onehot)[:, 0] - target).abs().mean(dim=(1, 2))
        return z.detach(), error

    def encode(self, audio: Audio, cond: dict | None = None) -> Encoding:
        """The representation (scaled log-magnitude + IF) and a latent found by inversion."""
        x = self.check_audio_input(audio)[:, 0]
        rep = self.to_representation(x)
        z, error = self.invert(x, cond)
        return Encoding("spectral+latent", {"representation": rep, "z": z, "inversion_error": error},
                        self.sample_rate, meta={"n_samples": x.shape[-1], "cond": cond})

    def decode(self, encoding: Encoding) -> Audio:
        """Invert the representation, exactly for the linear image and approximately for IF-Mel
        (``decode_latent`` renders the inversion latent instead)."""
        y = self.from_representation(encoding.data["representation"], encoding.meta.get("n_samples"))
        return Audio(y[:, None].clamp(-1, 1).cpu(), self.sample_rate)

    def decode_latent(self, encoding: Encoding) -> Audio:
        """What the generator makes of the inversion latent (how much of the sound it can reach)."""
        z = encoding.data["z"]
        checked = self.check_cond(encoding.meta.get("cond"), z.shape[0])
        with torch.no_grad():
            rep = self.generator_image(z.to(self.device), self.one_hots(checked["pitch"], checked["instrument"]))
            y = self.from_representation(rep, self.n_samples)
        return Audio(y[:, None].clamp(-1, 1).cpu(), self.sample_rate)

    # ---- training -----------------------------------------------------------------------------------------------
    def _batch(self, batch, generator=None):
        samples, cond = batch
        x = self._fit_length(samples.to(self.device)[:, 0])
        real = self.to_representation(x)
        pitch = torch.as_tensor(cond["pitch"], device=self.device).long()
        inst = self.cond_index("instrument", list(cond["instrument"]))
        onehot = self.one_hots(pitch, inst)
        z = torch.randn(x.shape[0], self.config.latent_size, generator=generator).to(self.device)
        return real, onehot, z, pitch - self.config.pitch_range[0], inst

    def critic_loss(self, real, fake, pitch, inst, generator=None, onehot=None) -> dict:
        c = self.config
        s_real, p_real, i_real = self.critic(real, heads=True, onehot=onehot)
        s_fake = self.critic(fake.detach(), onehot=onehot)
        gp = gradient_penalty(self.critic, real, fake, generator, onehot=onehot)
        aux = F.cross_entropy(p_real, pitch) + F.cross_entropy(i_real, inst)
        wasserstein = s_real.mean() - s_fake.mean()
        loss = -wasserstein + c.gp_weight * gp + c.drift_weight * s_real.pow(2).mean() + c.aux_weight * aux
        return {"d_loss": loss, "wasserstein": wasserstein, "gp": gp, "d_aux": aux}

    def generator_loss(self, fake, pitch, inst, onehot=None) -> dict:
        s_fake, p_fake, i_fake = self.critic(fake, heads=True, onehot=onehot)
        aux = F.cross_entropy(p_fake, pitch) + F.cross_entropy(i_fake, inst)
        return {"loss": -s_fake.mean() + self.config.aux_weight * aux, "g_aux": aux}

    def training_step(self, batch, generator=None) -> dict:
        """Critic and generator losses on one batch, nothing updated (what evaluation reports)."""
        real, onehot, z, pitch, inst = self._batch(batch, generator)
        fake = self.generator_image(z, onehot)
        with torch.enable_grad():
            logs = self.critic_loss(real, fake, pitch, inst, generator, onehot)
        return {**self.generator_loss(fake, pitch, inst, onehot), **{k: v.detach() for k, v in logs.items()}}

    def train_step(self, batch, optimizers, *, generator=None, clip: float | None = 1.0, sync=None) -> dict:
        """1. ``n_critic`` critic steps (WGAN-GP + auxiliary classifier), 2. one generator step."""
        opt_g, opt_d = optimizers
        real, onehot, z, pitch, inst = self._batch(batch, generator)
        for _ in range(self.config.n_critic):
            opt_d.zero_grad(set_to_none=True)
            with torch.no_grad():
                fake = self.generator_image(
                    torch.randn(z.shape, generator=generator).to(self.device), onehot)
            d_logs = self.critic_loss(real, fake, pitch, inst, generator, onehot)
            d_logs["d_loss"].backward()
            if sync is not None:
                sync(self._d_params())
            opt_d.step()
        opt_g.zero_grad(set_to_none=True)
        for p in self._d_params():
            p.requires_grad_(False)
        logs = self.generator_loss(self.generator_image(z, onehot), pitch, inst, onehot)
        logs["loss"].backward()
        for p in self._d_params():
            p.requires_grad_(True)
        if sync is not None:
            sync(self._g_params())
        opt_g.step()
        logs.update(d_logs)
        return {k: float(v.detach()) if isinstance(v, torch.Tensor) else float(v) for k, v in logs.items()}

    # ---- figure ----------------------------------------------------------------------------------------------
    def visualise(self, audio: Audio | None = None, pitch: int | None = None):
        """What the generator draws: log-magnitude, instantaneous frequency and the wrapped phase it implies.

        With the pitch map, the comb's teeth for ``pitch`` (the default note's when ``audio`` is
        None) are marked on the log-magnitude.
        """
        from ..viz import new_figure

        c = self.config
        if audio is None:
            audio = self.generate(1, seconds=c.note_seconds, generator=0)
            pitch = self.check_cond(None)["pitch"][0] if pitch is None else pitch
        x = self._fit_length(self.check_audio_input(audio)[:1, 0])
        rep = self.to_representation(x)[0].cpu()
        phase = if_to_phase(rep[1].double()).float()
        fig, axes = new_figure(1, 3, width=11, row_height=3.2)
        mel = c.freq_scale == "mel"
        # linear rows are drawn in kHz; mel rows one unit each, with ticks naming their kHz
        n_rows = rep.shape[1]
        extent = [0, c.note_seconds, -0.5, n_rows - 0.5] if mel else [0, c.note_seconds, 0, c.sample_rate / 2000]
        for ax, img, title, cmap in ((axes[0, 0], rep[0], "log-magnitude (scaled)", "magma"),
                                     (axes[0, 1], rep[1], "instantaneous frequency / pi", "twilight"),
                                     (axes[0, 2], phase, "wrapped phase = cumsum(IF * pi)", "twilight")):
            ax.imshow(img.numpy(), origin="lower", aspect="auto", cmap=cmap, extent=extent)
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("time (s)")
            if mel:
                ticks = torch.linspace(0, n_rows - 1, 6).round().long()
                ax.set_yticks(ticks.tolist(), [f"{hz / 1000:.1f}" for hz in self.row_frequencies()[ticks].tolist()])
        axes[0, 0].set_ylabel("kHz (mel axis)" if mel else "kHz")
        if c.pitch_map and pitch is not None:
            comb = self.pitch_comb(self.one_hots([pitch], [c.instruments[0]]))[0, 0, :, 0].cpu()
            rows = torch.nonzero((comb[1:-1] > comb[:-2]) & (comb[1:-1] >= comb[2:]))[:, 0] + 1  # tooth centres
            for i, row in enumerate(rows.tolist()):
                axes[0, 0].axhline(row if mel else row * c.sample_rate / c.n_fft / 1000, color="cyan", lw=0.6, ls="--", alpha=0.7,
                                   label="pitch map" if i == 0 else None)
            if len(rows):
                axes[0, 0].legend(loc="upper right", fontsize=7)
        fig.suptitle("GANSynth draws the first two images; the third follows by a running sum", fontsize=10)
        return fig


class GANSynthWithComb(GANSynth):
    """GANSynth plus the pitch's harmonic comb (not in the paper) as an extra image channel of generator and critic."""

    name = "gansynth+comb"
    aid = HARMONIC_COMB
    PRESETS = AIDED_PRESETS
