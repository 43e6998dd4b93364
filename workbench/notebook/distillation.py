"""Distillation: how fast a teacher and its student generate, the IAF's two directions, and how
varied their samples are.

Notebook: notebooks/12_distillation.ipynb
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import numpy as np
import torch

from ..audio import Audio
from ..dsp.spectral import log_mel
from ..errors import ParameterError


def diversity(clips, sample_rate: int, n_fft: int = 1024, hop_length: int = 256, n_mels: int = 80) -> float:
    """Mean pairwise log-mel L1 distance of clips: how different they are from one another.

    The measure of notebook 07 (and ``benchmarks/adversarial.py``): clips cut to the shortest,
    natural-log mel magnitudes, mean absolute difference over bands and frames, averaged over pairs.

    Parameters
    ----------
    clips : Audio ``(n, 1, time)`` or a list of Tensors ``(time,)``
    sample_rate : int

    Raises
    ------
    ParameterError
        Fewer than two clips, or clips shorter than ``n_fft // 2 + 1`` samples.

    Examples
    --------
    >>> import torch
    >>> same = [torch.sin(torch.arange(4000) * 0.1)] * 3
    >>> diversity(same, 8000)
    0.0
    """
    if isinstance(clips, Audio):
        clips = [clips.samples[i, 0] for i in range(clips.batch_size)]
    clips = [torch.as_tensor(c, dtype=torch.float32).flatten() for c in clips]
    if len(clips) < 2:
        raise ParameterError(f"got {len(clips)} clip; diversity compares pairs, pass at least 2")
    n = min(c.shape[-1] for c in clips)
    if n <= n_fft // 2:
        raise ParameterError(f"the shortest clip has {n} samples; n_fft={n_fft} needs more than {n_fft // 2}")
    mels = [log_mel(c[:n], sample_rate, n_fft, hop_length, n_mels) for c in clips]
    return float(np.mean([float((a - b).abs().mean()) for a, b in itertools.combinations(mels, 2)]))


def real_notes_near(config, pitch: int, instrument: str, seconds: float) -> list[torch.Tensor]:
    """The real notes nearest one condition (same instrument, pitches within 2 semitones, every
    velocity of the config), cut to ``seconds``: what notebook 07 compares a model's spread with."""
    from ..data import Notes

    low, high = config.pitch_range
    pitches = range(max(low, pitch - 2), min(high, pitch + 2) + 1)
    notes = Notes(source=config.data_source, instruments=(instrument,), pitches=pitches,
                  velocities=config.velocities, seconds=config.note_seconds, sample_rate=config.sample_rate)
    n = int(round(seconds * config.sample_rate))
    return [notes[i][0][0, :n] for i in range(len(notes))]


def spread_of(model, cond: dict, n: int = 4, seconds: float = 0.25, generator=0, **options) -> tuple[Audio, float]:
    """``n`` samples of ``model`` for one condition and their :func:`diversity`."""
    audio = model.generate(n, seconds=seconds, cond=cond, generator=generator, **options)
    return audio, diversity(audio, model.sample_rate)


@dataclass
class Directions:
    """The IAF's two directions on one clip: parallel sampling, sequential density."""

    n_samples: int
    parallel_seconds: float  # noise -> samples and their log q, all at once
    sequential_seconds: float  # samples -> noise and log q, one sample at a time
    log_q_parallel: float  # nats, first item
    log_q_sequential: float
    max_z_error: float  # how well the inverse recovers the noise

    @property
    def ratio(self) -> float:
        return self.sequential_seconds / max(self.parallel_seconds, 1e-9)


def iaf_directions(student, n_samples: int = 800, cond: dict | None = None, generator=0) -> Directions:
    """Time a student's parallel pass (noise -> samples, with their density) and its sequential
    inverse (samples -> noise, density) on the same clip, and check that they agree."""
    from ..dsp.spectral import make_generator

    checked = student.note_cond(student.check_cond(cond, 1))
    with torch.no_grad():
        z = student.noise(1, n_samples, make_generator(generator))
        began = time.perf_counter()
        forward = student.transform(z, checked)
        parallel = time.perf_counter() - began
        began = time.perf_counter()
        inverse = student.inverse(forward["x"], checked)
        sequential = time.perf_counter() - began
    return Directions(n_samples, parallel, sequential, float(forward["log_q"][0]), float(inverse["log_q"][0]),
                      float((inverse["z"] - z).abs().max()))


def generation_speed(teacher, student, teacher_seconds: float = 0.1, student_seconds: float = 1.0) -> dict:
    """Samples per second at batch 1 of the teacher's cached PyTorch sampler and of the student's
    parallel pass (:func:`workbench.evaluate.measure_speed`, one run after a warm-up), their ratio,
    and each real-time factor (seconds of audio per second of compute)."""
    from ..evaluate import measure_speed

    t = measure_speed(teacher, seconds=teacher_seconds, method="cached")
    s = measure_speed(student, seconds=student_seconds)
    return {"teacher_samples_per_second": t["samples_per_second"], "teacher_real_time_factor": t["real_time_factor"],
            "student_samples_per_second": s["samples_per_second"], "student_real_time_factor": s["real_time_factor"],
            "speedup": round(s["samples_per_second"] / max(t["samples_per_second"], 1e-9), 1),
            "threads": torch.get_num_threads()}


__all__ = ["Directions", "diversity", "generation_speed", "iaf_directions", "real_notes_near", "spread_of"]
