"""Note conditioning shared by the note models: the same three controls everywhere, and the
features and sources made from a note.

``note_specs(config)`` gives the pitch / instrument / velocity :class:`CondSpec` of a config with
``pitch_range``, ``instruments`` and ``velocities``; ``note_tensors(model, cond)`` turns a checked
(or collated) cond dict into the index tensors :class:`workbench.layers.NoteEmbedding` takes.
``timing_features`` tell a network where in the note it is; ``harmonic_source`` and
``harmonic_source_from_f0`` are the oscillator source of neural source-filter models.
"""

from __future__ import annotations

import math

import torch

from ..dsp.synth import midi_to_hz, upsample
from .base import Aid, CondSpec

#: The oscillator source of neural source-filter models, which the published WaveNet, SampleRNN,
#: WaveGlow, FloWaveNet, VQ-VAE, WaveGAN and MelGAN do not have.
OSCILLATOR_SOURCE = Aid(
    "oscillator source",
    "sines and cosines of the note's first harmonics, phase-locked to the onset (or following an f0 "
    "curve), added to the network's input at sample rate: the network learns the filter around them",
    "neural source-filter models: Wang, Takaki and Yamagishi 2019, arXiv:1904.12088")

#: A picture of where the note's harmonics fall, handed to a network that works on spectra.
HARMONIC_COMB = Aid(
    "harmonic comb",
    "the requested pitch's harmonics drawn as a comb over the frequency bins (or mel bands) and given "
    "to the network as an extra input",
    "an aid of this workbench, after the pitch conditioning of Engel et al. 2019, arXiv:1902.08710")

#: Time constants (seconds) of the note-position features exp(-t / T) (as in WaveNet).
TIMING_CONSTANTS = (0.01, 0.03, 0.1, 0.3, 1.0)


def note_specs(c, pitch: str = "the note to play (60 = middle C)",
               instrument: str = "which sampled instrument to imitate",
               velocity: str | None = "how hard the key is struck") -> list[CondSpec]:
    """Pitch, instrument and velocity specs of a config, each with the model's own help text.

    ``velocity=None`` leaves velocity out (for models that do not condition on it).
    """
    specs = [
        CondSpec("pitch", "int", (c.pitch_range[0] + c.pitch_range[1]) // 2, tuple(c.pitch_range),
                 unit="MIDI", help=pitch),
        CondSpec("instrument", "choice", c.instruments[0], choices=tuple(c.instruments), help=instrument),
    ]
    if velocity is not None:
        specs.append(CondSpec("velocity", "int", max(c.velocities), (min(c.velocities), max(c.velocities)),
                              unit="MIDI", help=velocity))
    return specs


def note_tensors(model, cond: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(pitch, instrument index, velocity)`` long tensors ``(batch,)`` on the model's device."""
    pitch = torch.as_tensor(cond["pitch"], device=model.device).long()
    inst = cond["instrument"]
    inst = inst.to(model.device) if isinstance(inst, torch.Tensor) else model.cond_index("instrument", inst)
    vel = torch.as_tensor(cond["velocity"], device=model.device).long()
    return pitch, inst, vel


def timing_features(n_steps: int, step_seconds: float, device=None, dtype=torch.float32) -> torch.Tensor:
    """``(len(TIMING_CONSTANTS), n_steps)``: exp(-time since onset / T), so a net knows where in the note it is."""
    seconds = torch.arange(n_steps, device=device, dtype=dtype) * step_seconds
    t = torch.tensor(TIMING_CONSTANTS, device=device, dtype=dtype)[:, None]
    return torch.exp(-seconds[None] / t)


def phase_step(pitch, sample_rate: int, device=None) -> torch.Tensor:
    """Radians per sample of each note's fundamental ``(batch,)``, in float64."""
    midi = torch.as_tensor(pitch, device=device).double()
    return 2 * math.pi * midi_to_hz(midi) / sample_rate


def harmonic_source(omega: torch.Tensor, positions: torch.Tensor, n_harmonics: int) -> torch.Tensor:
    """The source of neural source-filter models: ``(batch, 2 * harmonics, time)`` in float64.

    Sin then cos of harmonic k's phase ``k * omega * position`` at sample ``positions`` counted
    from the onset; zero before the onset and for harmonics above Nyquist. Phases are computed
    in float64 so that sample 8000 is as exact as sample 8.
    """
    k = torch.arange(1, n_harmonics + 1, device=omega.device, dtype=torch.float64)
    positions = positions.to(omega.device).double()
    phase = omega[:, None, None] * k[None, :, None] * positions[None, None, :]
    audible = (omega[:, None] * k[None, :] < math.pi).double()[..., None]  # (batch, harmonics, 1)
    onset = (positions >= 0).double()
    return torch.cat([torch.sin(phase) * audible, torch.cos(phase) * audible], dim=1) * onset


def harmonic_source_from_f0(f0_frames: torch.Tensor, hop_length: int, n_samples: int, sample_rate: int,
                            n_harmonics: int) -> torch.Tensor:
    """A free-running source for a time-varying f0: ``(batch, 2 * harmonics, n_samples)`` in float64.

    ``f0_frames`` ``(batch, frames)`` in Hz, frame ``j`` at sample ``j * hop_length`` (0 or NaN:
    unvoiced, silent). The f0 is interpolated linearly to samples and the phase is its running sum
    (as in DDSP's oscillator), so the source glides without clicks; its starting phase is
    arbitrary, which suits losses that compare magnitudes (a vocoder's), not waveforms.
    """
    f0 = upsample(torch.nan_to_num(f0_frames.detach().double(), nan=0.0).clamp_min(0.0), n_samples, hop_length)
    cycles = torch.cumsum(f0 / sample_rate, dim=-1)
    cycles = cycles - cycles.floor()  # (batch, time), wrapped to [0, 1)
    k = torch.arange(1, n_harmonics + 1, device=f0.device, dtype=torch.float64)[None, :, None]
    phase = 2 * math.pi * cycles[:, None, :] * k
    audible = ((f0[:, None, :] * k < sample_rate / 2) & (f0[:, None, :] > 0)).double()
    return torch.cat([torch.sin(phase) * audible, torch.cos(phase) * audible], dim=1)
