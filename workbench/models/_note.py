"""Note conditioning shared by the note models (WaveNet, issue 7 models): the same three controls everywhere.

``note_specs(config)`` gives the pitch / instrument / velocity :class:`CondSpec` of a config with
``pitch_range``, ``instruments`` and ``velocities``; ``note_tensors(model, cond)`` turns a checked
(or collated) cond dict into the index tensors :class:`workbench.layers.NoteEmbedding` takes.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from ..dsp.synth import midi_to_hz, upsample
from .base import CondSpec

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
    return 2 * math.pi * 440.0 * 2.0 ** ((midi - 69.0) / 12.0) / sample_rate


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


def pyin_f0_frames(x: torch.Tensor, sample_rate: int, hop_length: int, n_frames: int, fallback_hz: float,
                   fmin: float = 50.0, fmax: float = 2000.0) -> torch.Tensor:
    """pYIN f0 of each item of ``x`` ``(batch, time)`` on a frame grid ``(batch, n_frames)`` (Hz, float32).

    Frame ``j`` sits at sample ``j * hop_length``. Unvoiced gaps are interpolated in log
    frequency between voiced frames and held at the ends; a clip with no voiced frame gets
    ``fallback_hz`` throughout.
    """
    from ..metrics import f0 as pyin_f0

    grid = np.arange(n_frames) * hop_length
    pyin_hop = 2048 // 4 if sample_rate > 12000 else 1024 // 4  # metrics.f0's frame length / 4
    rows = []
    for item in x.detach().cpu():
        f = pyin_f0(item, sample_rate, fmin=fmin, fmax=fmax)
        at = np.arange(len(f)) * pyin_hop
        voiced = np.isfinite(f)
        if voiced.any():
            rows.append(np.exp(np.interp(grid, at[voiced], np.log(f[voiced]))))
        else:
            rows.append(np.full(n_frames, fallback_hz))
    return torch.tensor(np.stack(rows), dtype=torch.float32)


def f0_on_frames(x: torch.Tensor, config, fmin: float = 50.0, fmax: float = 2000.0) -> torch.Tensor:
    """pYIN f0 of samples ``(batch, time)`` on a vocoder's mel frames ``(batch, time // hop + 1)``.

    ``config`` gives ``sample_rate``, ``hop_length`` and ``pitch_range`` (its middle is the
    fallback for a clip with no voiced frame).
    """
    fallback = float(midi_to_hz(sum(config.pitch_range) / 2))
    return pyin_f0_frames(x, config.sample_rate, config.hop_length, x.shape[-1] // config.hop_length + 1,
                          fallback, fmin, fmax)


@functools.lru_cache(maxsize=8)
def _griffin_lim(sample_rate: int, n_fft: int, hop_length: int, n_mels: int):
    from . import create_model

    return create_model("griffinlim", "small", sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length,
                        n_mels=n_mels)


def f0_from_mel(mel: torch.Tensor, config, n_fft: int) -> torch.Tensor:
    """An f0 curve ``(batch, frames)`` for log-mel frames alone: pYIN on their Griffin-Lim inversion.

    What a vocoder with a source does when it is handed mel frames and nothing else. ``config``
    gives ``sample_rate``, ``hop_length`` and ``pitch_range`` (pYIN searches an octave beyond it).
    """
    import torch.nn.functional as F

    mel = mel[None] if mel.dim() == 2 else mel
    n_frames, hop = mel.shape[-1], config.hop_length
    short = 2 * n_fft // hop  # Griffin-Lim needs a few windows: repeat the last frame
    padded = F.pad(mel.detach().cpu().float(), (0, max(0, short - n_frames)), mode="replicate")
    gl = _griffin_lim(int(config.sample_rate), int(n_fft), int(hop), int(mel.shape[-2]))
    with torch.no_grad():
        audio = gl.generate(mel.shape[0], seconds=(padded.shape[-1] - 1) * hop / config.sample_rate,
                            cond={"mel": padded}, generator=0)
    lo, hi = config.pitch_range
    f0 = f0_on_frames(audio.samples[:, 0], config, fmin=midi_to_hz(lo - 12), fmax=midi_to_hz(hi + 12))
    return F.pad(f0, (0, max(0, n_frames - f0.shape[-1])), mode="replicate")[..., :n_frames]


def f0_frames(value, batch: int, n_frames: int, device=None) -> torch.Tensor:
    """An ``f0_hz`` conditioning value as ``(batch, n_frames)`` float32 Hz, checked.

    Takes ``(n_frames,)`` (shared by the batch) or ``(1 or batch, n_frames)``; finite, >= 0
    (0 = unvoiced).
    """
    from ..errors import ParameterError

    f0 = torch.as_tensor(value, dtype=torch.float32, device=device)
    f0 = f0[None] if f0.dim() == 1 else f0
    if f0.dim() != 2 or f0.shape[0] not in (1, batch) or f0.shape[-1] != n_frames:
        raise ParameterError(f"f0_hz has shape {tuple(torch.as_tensor(value).shape)}; expected ({n_frames},) or "
                             f"({batch}, {n_frames}): one f0 in Hz per mel frame (the model's estimate_f0 makes it)")
    if not bool(torch.isfinite(f0).all()) or float(f0.min()) < 0:
        raise ParameterError("f0_hz holds NaN, infinite or negative values; use 0 for unvoiced frames")
    return f0.expand(batch, -1)


def f0_source(f0, batch: int, n_frames: int, n_samples: int, config, device=None) -> torch.Tensor:
    """A vocoder's source ``(batch, 2 * source_harmonics, n_samples)`` float32 from its f0 frames.

    ``config`` gives ``hop_length``, ``sample_rate`` and ``source_harmonics``; ``f0`` is checked by
    :func:`f0_frames` (None: a ParameterError saying how to make one).
    """
    from ..errors import ParameterError

    if f0 is None:
        raise ParameterError(f"this vocoder hears a source: pass f0_hz ({batch}, {n_frames}) in Hz, one per mel "
                             "frame (the model's estimate_f0 makes it from a clip)")
    f0 = f0_frames(f0, batch, n_frames, device)
    return harmonic_source_from_f0(f0, config.hop_length, n_samples, config.sample_rate,
                                   config.source_harmonics).float()
