"""DDSP (Engel et al. 2020): a small network drives a harmonic-plus-noise synthesiser.

Instead of predicting 16,000 samples a second, the network predicts a few interpretable
controls 250 times a second, and fixed, differentiable DSP turns them into sound::

    f0_hz, loudness_db (+ instrument) --decoder (MLP -> GRU -> MLP)--> controls per frame
        amplitude            (batch, frames)              exp_sigmoid: positive, bounded
        harmonic_distribution (batch, n_harmonics, frames) harmonics above Nyquist removed, sum 1
        noise_magnitudes     (batch, n_bands, frames)     a time-varying FIR filter for noise
    controls --harmonic_synth + filtered_noise (+ reverb)--> samples (batch, time)

Trained with the multi-scale spectral loss (no phase, so the oscillators keep their own).
``get_controls`` / ``get_signal`` are the two halves; ``visualise`` draws the controls.

Generation from a note (pitch, instrument, velocity): f0 is the note's frequency and the
loudness curve is the typical one *measured from the training notes*: while training, the
model accumulates the A-weighted loudness curve of every note it sees per instrument, velocity
and pitch into buffers (saved with the weights); a new note takes a kernel-weighted average
over nearby pitches and interpolates between velocities. :func:`timbre_transfer` encodes any
monophonic clip (f0 by pyin, loudness) and resynthesises it as another instrument.

Notebook: notebooks/08_spectrogram_and_dsp.ipynb
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..audio import Audio
from ..dsp.synth import (
    a_weighted_loudness,
    adsr_envelope,
    exp_sigmoid,
    filtered_noise,
    harmonic_synth_frames,
    hz_to_midi,
    midi_to_hz,
    remove_above_nyquist,
    reverb,
)
from ..errors import ParameterError
from ..losses import DEFAULT_FFT_SIZES, multi_scale_spectral_loss
from ._note import note_specs
from .base import Aid, CondSpec, Encoding, GenerativeModel, NoteDataConfig
from .capabilities import ClipFrames

#: Notes' default: the key is released after this share of the clip.
HOLD_SHARE = 0.75


@dataclass(frozen=True)
class DDSPConfig(NoteDataConfig):
    hop_length: int = 64  # samples per control frame: 250 Hz at 16 kHz
    n_harmonics: int = 60
    n_noise_bands: int = 65  # FIR of 2 * (65 - 1) = 128 taps
    decoder: str = "gru"  # "gru" or "mlp"
    hidden_size: int = 128
    n_mlp_layers: int = 2
    reverb_seconds: float = 0.0  # > 0: a learnable reverb impulse response this long
    fft_sizes: tuple = DEFAULT_FFT_SIZES
    loudness_n_fft: int = 1024
    min_db: float = -100.0  # loudness floor
    noise_bias: float = -5.0  # the noise starts quiet
    pitch_sigma: float = 1.5  # semitones: width of the pitch kernel when reading measured envelopes
    # conditioning and data
    batch_size: int = 16
    learning_rate: float = 1e-3


PRESETS = {
    "tiny": dict(n_harmonics=16, n_noise_bands=17, hidden_size=32, reverb_seconds=0.05,
                 fft_sizes=(1024, 256, 64), instruments=("piano", "flute"), pitch_range=(60, 62),
                 velocities=(100,), note_seconds=0.25, batch_size=4),
    "small": dict(),
    "mlp-tiny": dict(decoder="mlp", n_harmonics=16, n_noise_bands=17, hidden_size=32,
                     fft_sizes=(1024, 256, 64), instruments=("piano", "flute"), pitch_range=(60, 62),
                     velocities=(100,), note_seconds=0.25, batch_size=4),
}


def _mlp(n_in: int, hidden: int, n_layers: int) -> nn.Sequential:
    layers = []
    for i in range(n_layers):
        layers += [nn.Linear(n_in if i == 0 else hidden, hidden), nn.LayerNorm(hidden), nn.LeakyReLU(0.1)]
    return nn.Sequential(*layers)


def note_f0_hz(samples: torch.Tensor, pitch, sample_rate: int, n_partials: int = 10,
               search_cents: float = 60.0) -> torch.Tensor:
    """One refined f0 per note: the harmonic comb near the labelled pitch that collects most energy.

    SoundFont samples are not exactly in equal temperament (the piano is tuned ~20 cents sharp
    in places); training the oscillators on the label alone would misplace high partials.

    Parameters
    ----------
    samples : Tensor ``(batch, time)``
    pitch : sequence or Tensor of MIDI notes ``(batch,)``

    Returns
    -------
    Tensor ``(batch,)`` in Hz.
    """
    x = samples.detach().double()
    n = x.shape[-1]
    mag = torch.fft.rfft(x * torch.hann_window(n, dtype=x.dtype)).abs()  # (batch, n // 2 + 1)
    pitch = torch.as_tensor(pitch, dtype=torch.float64).reshape(-1)
    cents = torch.arange(-search_cents, search_cents + 1, 1.0, dtype=torch.float64)
    candidates = midi_to_hz(pitch[:, None] + cents[None] / 100)  # (batch, n_candidates)
    k = torch.arange(1, n_partials + 1, dtype=torch.float64)
    bins = candidates[..., None] * k * n / sample_rate  # (batch, n_candidates, n_partials)
    bins = bins.clamp(0, mag.shape[-1] - 2)
    low = bins.floor().long()
    w = bins - low
    flat = mag[:, None, :].expand(-1, bins.shape[1], -1)
    energy = torch.gather(flat, 2, low) * (1 - w) + torch.gather(flat, 2, low + 1) * w
    best = energy.sum(-1).argmax(-1)  # (batch,)
    return candidates.gather(1, best[:, None])[:, 0].float()


#: DDSP's oscillators play the f0 they are given: the pitch is the synthesiser's, by design.
OSCILLATOR_BANK = Aid(
    "oscillator bank",
    "a harmonic synthesiser plays the requested f0 exactly; the network predicts only the harmonic "
    "amplitudes, the loudness and the noise",
    "Engel, Hantrakul, Gu and Roberts 2020, arXiv:2001.04643", in_paper=True)


class DDSP(ClipFrames, GenerativeModel):
    """Harmonic-plus-noise synthesiser controlled by a GRU (or MLP) decoder at 250 Hz."""

    name = "ddsp"
    family = "dsp"
    likelihood = "none"
    Config = DDSPConfig
    PRESETS = PRESETS
    notebook = "notebooks/08_spectrogram_and_dsp.ipynb"
    aid = OSCILLATOR_BANK

    def __init__(self, config: DDSPConfig):
        super().__init__(config)
        c = config
        if c.decoder not in ("gru", "mlp"):
            raise ParameterError(f"decoder={c.decoder!r} must be 'gru' or 'mlp'")
        if c.n_noise_bands < 2 or c.n_harmonics < 1:
            raise ParameterError("need n_harmonics >= 1 and n_noise_bands >= 2")
        h = c.hidden_size
        self.input_mlp = _mlp(2, h, c.n_mlp_layers)  # (f0, loudness) per frame
        self.instrument_embed = nn.Embedding(len(c.instruments), h)
        self.gru = nn.GRU(h, h, batch_first=True) if c.decoder == "gru" else None
        self.output_mlp = _mlp(2 * h if self.gru is not None else h, h, c.n_mlp_layers)
        self.head = nn.Linear(h, 1 + c.n_harmonics + c.n_noise_bands)
        if c.reverb_seconds > 0:
            taps = max(2, int(c.reverb_seconds * c.sample_rate))
            t = torch.arange(taps) / c.sample_rate
            self.reverb_ir = nn.Parameter(1e-3 * torch.randn(taps) * torch.exp(-t / (c.reverb_seconds / 4)))
        else:
            self.reverb_ir = None
        # loudness curves measured from the training notes (sum and count per note kind)
        n_pitches = c.pitch_range[1] - c.pitch_range[0] + 1
        shape = (len(c.instruments), len(c.velocities), n_pitches)
        self.register_buffer("loudness_sum", torch.zeros(*shape, self.n_envelope_frames))
        self.register_buffer("loudness_count", torch.zeros(shape))

    # ---- facts ----------------------------------------------------------------------------------
    @property
    def control_rate(self) -> float:
        return self.config.sample_rate / self.config.hop_length

    @property
    def n_envelope_frames(self) -> int:
        c = self.config
        return int(round(c.note_seconds * c.sample_rate)) // c.hop_length + 1

    def n_frames_for(self, n_samples: int) -> int:
        return n_samples // self.config.hop_length + 1

    @property
    def conditioning(self) -> tuple[CondSpec, ...]:
        c = self.config
        return (
            *note_specs(c, pitch="the note: the oscillators play exactly this frequency",
                        instrument="which timbre the decoder imitates",
                        velocity="picks the loudness curve measured from notes played this hard"),
            CondSpec("f0_hz", "frames", None, unit="Hz",
                     help=f"an f0 curve at {self.control_rate:g} Hz (frames,) or (batch, frames): replaces the pitch"),
            CondSpec("loudness_db", "frames", None, unit="dB",
                     help=f"a loudness curve at {self.control_rate:g} Hz: replaces the measured envelope"),
        )

    # ---- the two halves: controls, then signal -----------------------------------------------------
    def get_controls(self, f0_hz: torch.Tensor, loudness_db: torch.Tensor, instrument) -> dict:
        """The decoder: frame-rate f0 and loudness (and instrument) to synthesiser controls.

        Parameters
        ----------
        f0_hz, loudness_db : Tensor ``(batch, frames)``
        instrument : list of names or LongTensor ``(batch,)``

        Returns
        -------
        dict with ``f0_hz``, ``loudness_db``, ``amplitude`` ``(batch, frames)``,
        ``harmonic_distribution`` ``(batch, n_harmonics, frames)`` (zero above Nyquist, sums to
        one) and ``noise_magnitudes`` ``(batch, n_bands, frames)``.
        """
        c = self.config
        f0_hz = f0_hz.to(self.device).float().clamp_min(20.0)
        loudness_db = loudness_db.to(self.device).float()
        inst = instrument if isinstance(instrument, torch.Tensor) else self.cond_index("instrument", instrument)
        # 1. features scaled to about [0, 1]: MIDI / 127 and loudness above the floor
        feats = torch.stack([hz_to_midi(f0_hz) / 127.0, 1.0 - loudness_db / c.min_db], dim=-1)  # (batch, frames, 2)
        h = self.input_mlp(feats) + self.instrument_embed(inst.to(self.device))[:, None]  # (batch, frames, hidden)
        # 2. the GRU carries state across frames (attacks, decays); the MLP decoder sees one frame
        if self.gru is not None:
            g, _ = self.gru(h)
            h = torch.cat([g, h], dim=-1)  # (batch, frames, 2 * hidden)
        out = self.head(self.output_mlp(h))  # (batch, frames, 1 + n_harmonics + n_bands)
        # 3. positive, bounded controls
        amplitude = exp_sigmoid(out[..., 0])
        harmonics = exp_sigmoid(out[..., 1: 1 + c.n_harmonics]).transpose(1, 2)  # (batch, n_harmonics, frames)
        harmonics = remove_above_nyquist(f0_hz, harmonics, c.sample_rate)
        noise = exp_sigmoid(out[..., 1 + c.n_harmonics:] + c.noise_bias).transpose(1, 2)  # (batch, n_bands, frames)
        return {"f0_hz": f0_hz, "loudness_db": loudness_db, "amplitude": amplitude,
                "harmonic_distribution": harmonics, "noise_magnitudes": noise}

    def get_signal(self, controls: dict, n_samples: int, generator=None, noise_scale: float = 1.0,
                   parts: bool = False):
        """The synthesiser: controls to samples ``(batch, n_samples)`` (no learned weights but the reverb).

        With ``parts=True`` returns a dict of ``harmonic``, ``noise``, ``dry`` and ``audio``.
        """
        hop = self.config.hop_length
        amps = controls["amplitude"][:, None] * controls["harmonic_distribution"]  # (batch, n_harmonics, frames)
        harmonic = harmonic_synth_frames(controls["f0_hz"], amps, hop, n_samples, self.config.sample_rate)
        noise = filtered_noise(controls["noise_magnitudes"], n_samples, hop, generator=generator) * noise_scale
        dry = harmonic + noise
        audio = reverb(dry, self.reverb_ir) if self.reverb_ir is not None else dry
        if parts:
            return {"harmonic": harmonic, "noise": noise, "dry": dry, "audio": audio}
        return audio

    # ---- features -------------------------------------------------------------------------------------
    def loudness(self, x: torch.Tensor) -> torch.Tensor:
        """A-weighted loudness (dB) on the control grid: ``(batch, time)`` -> ``(batch, frames)``."""
        c = self.config
        return a_weighted_loudness(x, c.sample_rate, c.loudness_n_fft, c.hop_length, c.min_db)

    def frame_makers(self) -> dict:
        """The curves a clip gives: its pYIN f0 and its loudness, on the control grid."""
        return {"f0_hz": self.estimate_f0, "loudness_db": self.loudness}

    # ---- measured loudness envelopes -------------------------------------------------------------------
    def _grid_index(self, cond: dict):
        """Indices (instrument, velocity, pitch) of each item, or None for items off the grid."""
        c = self.config
        out = []
        for inst, vel, pitch in zip(cond["instrument"], cond["velocity"], cond["pitch"]):
            vel, pitch = int(vel), int(pitch)
            if inst in c.instruments and vel in c.velocities and c.pitch_range[0] <= pitch <= c.pitch_range[1]:
                out.append((c.instruments.index(inst), c.velocities.index(vel), pitch - c.pitch_range[0]))
            else:
                out.append(None)
        return out

    @torch.no_grad()
    def record_loudness(self, loudness_db: torch.Tensor, cond: dict) -> None:
        """Add the loudness curves ``(batch, frames)`` of labelled notes to the envelope buffers."""
        if not all(k in cond for k in ("instrument", "velocity", "pitch")):
            return
        n = self.n_envelope_frames
        if loudness_db.shape[-1] < n:
            return
        for row, index in zip(loudness_db, self._grid_index(cond)):
            if index is not None:
                self.loudness_sum[index] += row[:n].to(self.loudness_sum.device)
                self.loudness_count[index] += 1

    def loudness_envelope(self, instrument: str, pitch: float, velocity: float, n_frames: int) -> torch.Tensor:
        """The typical loudness curve (dB, ``(n_frames,)``) of a note, read from what training measured.

        1. for each measured velocity, average the curves of nearby pitches with weights
           ``exp(-(dp / pitch_sigma)^2 / 2)`` (pitches never measured get no weight);
        2. interpolate linearly between the two nearest velocities;
        3. longer than the training notes: extend the held part with its own slope, then release.
        Before any training, an ADSR curve stands in.
        """
        c = self.config
        i = c.instruments.index(instrument)
        pitches = torch.arange(c.pitch_range[0], c.pitch_range[1] + 1, dtype=torch.float32)
        count = self.loudness_count[i].cpu()  # (velocities, pitches)
        mean = self.loudness_sum[i].cpu() / count.clamp_min(1)[..., None]  # (velocities, pitches, frames)
        kernel = torch.exp(-0.5 * ((pitches - pitch) / c.pitch_sigma) ** 2)[None] * (count > 0)
        per_velocity = (kernel[..., None] * mean).sum(1) / kernel.sum(1, keepdim=True).clamp_min(1e-12)
        have = kernel.sum(1) > 1e-6  # (velocities,)
        if not bool(have.any()):
            env = self._default_envelope()
        else:
            vels = torch.tensor(c.velocities, dtype=torch.float32)[have]
            curves = per_velocity[have]
            order = torch.argsort(vels)
            vels, curves = vels[order], curves[order]
            v = float(min(max(velocity, float(vels[0])), float(vels[-1])))
            j = int(torch.searchsorted(vels, torch.tensor(v)).clamp(1, len(vels) - 1)) if len(vels) > 1 else 0
            if len(vels) == 1:
                env = curves[0]
            else:
                w = (v - float(vels[j - 1])) / float(vels[j] - vels[j - 1])
                env = curves[j - 1] * (1 - w) + curves[j] * w
        return self._fit_length(env, n_frames)

    def _default_envelope(self) -> torch.Tensor:
        c = self.config
        n = self.n_envelope_frames
        env = adsr_envelope(n, int(self.control_rate), attack=0.02, decay=0.1, sustain=0.6,
                            release=(1 - HOLD_SHARE) * c.note_seconds)
        return (20 * torch.log10(0.1 * env.clamp_min(1e-5))).clamp_min(c.min_db)

    def _fit_length(self, env: torch.Tensor, n_frames: int) -> torch.Tensor:
        n = env.shape[-1]
        if n_frames <= n:
            return env[:n_frames]
        hold = int(HOLD_SHARE * (n - 1))
        tail = max(2, hold // 4)
        slope = min(0.0, float(env[hold] - env[hold - tail]) / tail) if hold > tail else 0.0
        extra = n_frames - n
        held = env[hold] + slope * torch.arange(1, extra + 1, dtype=env.dtype)
        release = env[hold:] - env[hold] + held[-1]  # the release, starting where the hold ends
        return torch.cat([env[:hold], held, release]).clamp_min(self.config.min_db)[:n_frames]

    def typical_loudness_db(self, instrument: str) -> float:
        """Mean loudness of the sounding frames (within 30 dB of each curve's peak) of an instrument."""
        env = torch.stack([self.loudness_envelope(instrument, p, v, self.n_envelope_frames)
                           for p in range(self.config.pitch_range[0], self.config.pitch_range[1] + 1, 6)
                           for v in self.config.velocities])
        loud = env >= env.max(-1, keepdim=True).values - 30
        return float(env[loud].mean())

    def note_curves(self, cond: dict, n_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
        """f0 and loudness curves ``(batch, frames)`` of notes given by pitch, instrument, velocity."""
        f0 = torch.stack([torch.full((n_frames,), float(midi_to_hz(p))) for p in cond["pitch"]])
        ld = torch.stack([self.loudness_envelope(i, p, v, n_frames)
                          for i, p, v in zip(cond["instrument"], cond["pitch"], cond["velocity"])])
        return f0.to(self.device), ld.to(self.device)

    # ---- the contract -----------------------------------------------------------------------------------
    def _generate(self, n, seconds, cond, temperature, generator, progress):
        n_samples = max(1, int(round(seconds * self.config.sample_rate)))
        curves = {k: cond.get(k) for k in ("f0_hz", "loudness_db") if cond.get(k) is not None}
        if curves:
            # dense curves drive the synthesiser directly; their length sets the duration
            lengths = {v.shape[-1] for v in curves.values()}
            if len(lengths) != 1:
                raise ParameterError(f"f0_hz and loudness_db have different frame counts {sorted(lengths)}; "
                                     "pass curves on the same frames")
            n_frames = lengths.pop()
            n_samples = (n_frames - 1) * self.config.hop_length + 1
        f0, ld = self.note_curves(cond, self.n_frames_for(n_samples))
        for key, curve in curves.items():
            curve = curve.to(self.device, torch.float32)
            curve = curve[None] if curve.dim() == 1 else curve
            if curve.dim() != 2 or curve.shape[0] not in (1, n):
                raise ParameterError(f"{key} has shape {tuple(curve.shape)}; expected (frames,) or ({n}, frames)")
            if key == "f0_hz":
                f0 = curve.expand(n, -1).clamp(20.0, self.config.sample_rate / 2)
            else:
                ld = curve.expand(n, -1).clamp(self.config.min_db, 0.0)
        controls = self.get_controls(f0, ld, cond["instrument"])
        # the only randomness in DDSP is the noise excitation: the seed picks it, temperature scales it
        return self.get_signal(controls, n_samples, generator, noise_scale=temperature)[:, None]

    def encode(self, audio: Audio, cond: dict | None = None) -> Encoding:
        """f0 (pyin), A-weighted loudness and the decoder's controls of a clip.

        With ``pitch`` in ``cond`` pyin searches one octave either side of it; else 50..2000 Hz.
        """
        x = self.check_audio_input(audio)[:, 0]  # (batch, time)
        checked = self.check_cond(cond, x.shape[0])
        if cond and "pitch" in cond:
            p = float(np.mean(checked["pitch"]))
            f0 = self.estimate_f0(x, fmin=midi_to_hz(p - 12), fmax=midi_to_hz(p + 12))
        else:
            f0 = self.estimate_f0(x)
        with torch.no_grad():
            ld = self.loudness(x)
            controls = self.get_controls(f0, ld, checked["instrument"])
        return Encoding("controls", controls, self.sample_rate,
                        meta={"instrument": checked["instrument"], "n_samples": x.shape[-1],
                              "hop_length": self.config.hop_length})

    def decode(self, encoding: Encoding, generator=None) -> Audio:
        """Render an encoding's controls (f0 and loudness alone are run through the decoder first)."""
        data = encoding.data
        n_samples = encoding.meta.get("n_samples") or (data["f0_hz"].shape[-1] - 1) * self.config.hop_length
        with torch.no_grad():
            if "amplitude" not in data:
                instrument = encoding.meta.get("instrument") or [self.config.instruments[0]] * data["f0_hz"].shape[0]
                data = self.get_controls(data["f0_hz"], data["loudness_db"], instrument)
            y = self.get_signal(data, n_samples, generator if generator is not None else 0)
        return Audio(y[:, None].clamp(-1, 1).cpu(), self.sample_rate)

    # ---- training -----------------------------------------------------------------------------------------
    def training_f0(self, x: torch.Tensor, cond: dict) -> torch.Tensor:
        """f0 curves ``(batch, frames)`` for training: the refined note pitch, or pyin without labels."""
        n_frames = self.n_frames_for(x.shape[-1])
        if "pitch" in cond:
            f0 = note_f0_hz(x, cond["pitch"], self.config.sample_rate).to(self.device)
            return f0[:, None].expand(-1, n_frames)
        return self.estimate_f0(x)

    def training_step(self, batch, generator=None) -> dict:
        """Multi-scale spectral loss between a note and its resynthesis from its own f0 and loudness."""
        samples, cond = batch
        x = samples.to(self.device)[:, 0]  # (batch, time)
        if "instrument" not in cond:
            cond = {**cond, "instrument": [self.config.instruments[0]] * x.shape[0]}
        f0 = self.training_f0(x, cond)
        ld = self.loudness(x)
        if self.training:
            self.record_loudness(ld, cond)
        controls = self.get_controls(f0, ld, list(cond["instrument"]))
        y = self.get_signal(controls, x.shape[-1], generator)
        loss = multi_scale_spectral_loss(x, y, self.config.fft_sizes)
        return {"loss": loss}

    # ---- figure ----------------------------------------------------------------------------------------------
    def visualise(self, audio: Audio | None = None, cond: dict | None = None):
        """The controls: f0 and loudness, harmonic distribution and noise magnitudes over time, output."""
        from ..viz import new_figure, spectrogram

        if audio is None:
            checked = self.check_cond(cond, 1)
            n_samples = int(round(self.config.note_seconds * self.config.sample_rate))
            with torch.no_grad():
                f0, ld = self.note_curves(checked, self.n_frames_for(n_samples))
                controls = self.get_controls(f0, ld, checked["instrument"])
            title = f"{checked['instrument'][0]}, MIDI {checked['pitch'][0]}, velocity {checked['velocity'][0]}"
        else:
            enc = self.encode(audio[0], cond)
            controls, n_samples = enc.data, enc.meta["n_samples"]
            title = f"encoded clip as {enc.meta['instrument'][0]}"
        with torch.no_grad():
            out = self.get_signal(controls, n_samples, generator=0)
        seconds = n_samples / self.sample_rate
        fig, axes = new_figure(4, 1, width=8, row_height=2.0)
        t = np.arange(controls["f0_hz"].shape[-1]) / self.control_rate
        ax = axes[0, 0]
        ax.plot(t, controls["f0_hz"][0].cpu(), color="C0")
        ax.set_ylabel("f0 (Hz)", color="C0")
        ax.set_title(f"DDSP controls at {self.control_rate:g} Hz: {title}")
        twin = ax.twinx()
        twin.plot(t, controls["loudness_db"][0].cpu(), color="C1")
        twin.set_ylabel("loudness (dB)", color="C1")
        harm = (controls["harmonic_distribution"][0] * controls["amplitude"][0]).cpu()
        extent = [0, seconds, 0.5, harm.shape[0] + 0.5]
        im = axes[1, 0].imshow(20 * np.log10(harm.clamp_min(1e-5).numpy()), origin="lower", aspect="auto",
                               extent=extent, vmin=-80, vmax=0, cmap="magma")
        axes[1, 0].set_ylabel("harmonic")
        fig.colorbar(im, ax=axes[1, 0], label="amplitude (dB)")
        noise = controls["noise_magnitudes"][0].cpu()
        im = axes[2, 0].imshow(20 * np.log10(noise.clamp_min(1e-5).numpy()), origin="lower", aspect="auto",
                               extent=[0, seconds, 0, self.sample_rate / 2000], vmin=-100, vmax=0, cmap="magma")
        axes[2, 0].set_ylabel("noise band (kHz)")
        fig.colorbar(im, ax=axes[2, 0], label="magnitude (dB)")
        spectrogram(Audio(out[:1, None].clamp(-1, 1).cpu(), self.sample_rate), ax=axes[3, 0],
                    title="output")
        return fig


def timbre_transfer(model: DDSP, audio: Audio, instrument: str, *, pitch_shift: float = 0.0,
                    loudness_shift_db: float | str = "auto", generator=0,
                    encoding: Encoding | None = None) -> Audio:
    """Resynthesise a monophonic clip as another instrument: keep its f0 and loudness, swap the timbre.

    1. encode: f0 by pyin, A-weighted loudness (or reuse ``encoding``);
    2. shift f0 by ``pitch_shift`` semitones, and loudness so the clip sits where the target
       instrument's training notes sat (``"auto"``) or by a number of dB;
    3. decode the curves as ``instrument`` and render.

    Parameters
    ----------
    model : DDSP
    audio : Audio
        One monophonic clip (the first item of a batch is used).
    instrument : str
        One of the model's instruments.
    pitch_shift : float
        Semitones.
    loudness_shift_db : float or "auto"
    generator : None, int or torch.Generator
        The noise excitation.
    encoding : Encoding, optional
        A previous ``model.encode(audio)`` (pyin is the slow part; the app caches it).

    Returns
    -------
    Audio ``(1, 1, time)`` at the model's sample rate.

    Raises
    ------
    ParameterError
        Unknown instrument or a bad shift.

    Examples
    --------
    >>> from workbench.models import create_model
    >>> from workbench.data import examples
    >>> model = create_model("ddsp", "tiny")
    >>> out = timbre_transfer(model, examples()["flute"], "piano")
    >>> out.sample_rate
    16000
    """
    if instrument not in model.config.instruments:
        raise ParameterError(
            f"instrument={instrument!r} is not one of this model's instruments: {', '.join(model.config.instruments)}"
        )
    if not isinstance(pitch_shift, int | float) or not math.isfinite(pitch_shift) or abs(pitch_shift) > 36:
        raise ParameterError(f"pitch_shift={pitch_shift!r} must be a number of semitones in -36..36")
    enc = encoding if encoding is not None else model.encode(audio[0], {"instrument": instrument})
    f0 = enc.data["f0_hz"][:1] * 2.0 ** (pitch_shift / 12)
    ld = enc.data["loudness_db"][:1]
    if loudness_shift_db == "auto":
        loud = ld >= ld.max() - 30  # the sounding frames
        shift = model.typical_loudness_db(instrument) - float(ld[loud].mean())
    elif isinstance(loudness_shift_db, int | float) and math.isfinite(loudness_shift_db):
        shift = float(loudness_shift_db)
    else:
        raise ParameterError(f"loudness_shift_db={loudness_shift_db!r} must be a number of dB or 'auto'")
    ld = (ld + shift).clamp(model.config.min_db, 0.0)
    with torch.no_grad():
        controls = model.get_controls(f0, ld, [instrument])
        y = model.get_signal(controls, enc.meta["n_samples"], generator)
    return Audio(y[:, None].clamp(-1, 1).cpu(), model.sample_rate)
