"""Measure the adversarial checkpoints (WaveGAN, GANSynth, MelGAN) against real notes.

    python benchmarks/adversarial.py [--models wavegan gansynth melgan] [--write-card] [--threads 1]

1. diversity for one condition (the generators): ``N_SAMPLES`` samples for one pitch and
   instrument, mean pairwise log-mel L1 distance between them, next to the same number for the
   real notes nearest that condition (same instrument, pitches within 2 semitones, every
   velocity). A mode-seeking model sits well below the data: that is the point of the notebook.
2. for MelGAN: every held-out note (``Notes(split="test")`` of its config) is turned into log-mel
   frames and resynthesised by MelGAN and by Griffin-Lim (32 fast iterations, random initial
   phase, the same frames); multi-resolution STFT distance to the real note and the L1 error of
   the resynthesis's own log-mel frames against the input frames.
Prints a table; with ``--write-card`` stores the numbers under "metrics" in each card.json.
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
import torch

from workbench.data import Notes
from workbench.dsp.spectral import log_mel
from workbench.evaluate import write_benchmark
from workbench.metrics import hop_periodicity, multi_resolution_stft_distance
from workbench.models import Vocoder, create_model, has_checkpoint, load_model

N_SAMPLES = 8


def mel_distance(a: torch.Tensor, b: torch.Tensor, sample_rate: int) -> float:
    """Mean |log-mel(a) - log-mel(b)| (80 bands, n_fft 1024, hop 256) of two clips ``(time,)``."""
    n = min(a.shape[-1], b.shape[-1])
    ma = log_mel(a[:n], sample_rate, 1024, 256, 80)
    mb = log_mel(b[:n], sample_rate, 1024, 256, 80)
    return float((ma - mb).abs().mean())


def mean_pairwise(clips: list[torch.Tensor], sample_rate: int) -> float:
    return float(np.mean([mel_distance(a, b, sample_rate) for a, b in itertools.combinations(clips, 2)]))


def diversity(model) -> dict:
    """Pairwise spread of samples for one condition vs the real notes nearest it."""
    c = model.config
    pitch = (c.pitch_range[0] + c.pitch_range[1]) // 2
    instrument = c.instruments[0]
    seconds = model.max_seconds or model.default_seconds
    out = model.generate(N_SAMPLES, seconds=seconds, cond={"pitch": pitch, "instrument": instrument}, generator=0)
    samples = [out.samples[i, 0] for i in range(N_SAMPLES)]
    real = Notes(source=c.data_source, instruments=(instrument,), pitches=range(pitch - 2, pitch + 3),
                 velocities=c.velocities, seconds=c.note_seconds, sample_rate=c.sample_rate)
    real_clips = [real[i][0][0, : out.n_samples] for i in range(len(real))]
    return {"diversity": round(mean_pairwise(samples, c.sample_rate), 4),
            "diversity_real": round(mean_pairwise(real_clips, c.sample_rate), 4),
            "diversity_condition": {"pitch": pitch, "instrument": instrument, "n_samples": N_SAMPLES,
                                    "real": f"{len(real_clips)} notes: pitches {pitch - 2}..{pitch + 2}, "
                                            f"velocities {list(c.velocities)}",
                                    "distance": "mean pairwise log-mel L1 (80 bands, n_fft 1024, hop 256)"}}


def vocoder_table(melgan) -> dict:
    """MelGAN vs Griffin-Lim resynthesis of held-out notes from the same log-mel frames."""
    c = melgan.config
    test = Notes(source=c.data_source, instruments=c.instruments, pitches=range(c.pitch_range[0], c.pitch_range[1] + 1),
                 velocities=c.velocities, seconds=c.note_seconds, sample_rate=c.sample_rate, split="test")
    gl = melgan.griffin_lim()
    rows = {"melgan": {"mrstft": [], "mel_error": [], "hop_periodicity": []},
            "griffinlim": {"mrstft": [], "mel_error": [], "hop_periodicity": []},
            "real": {"hop_periodicity": []}}
    for i in range(len(test)):
        x = test[i][0]  # (1, time)
        mel = melgan.mel_of(x)  # (1, n_mels, frames)
        for name, model in (("melgan", melgan), ("griffinlim", gl)):
            y = model.generate(1, seconds=c.note_seconds, cond={"mel": mel[0]}, generator=i).samples[0, 0]
            y = torch.nn.functional.pad(y, (0, max(0, x.shape[-1] - y.shape[-1])))[: x.shape[-1]]
            rows[name]["mrstft"].append(multi_resolution_stft_distance(x[0], y))
            rows[name]["mel_error"].append(float((melgan.mel_of(y[None]) - mel).abs().mean()))
            rows[name]["hop_periodicity"].append(hop_periodicity(y[: c.sample_rate // 2], c.hop_length))
        rows["real"]["hop_periodicity"].append(hop_periodicity(x[0, : c.sample_rate // 2], c.hop_length))
    out = {"vocoder_n_notes": len(test),
           "vocoder_note": "each vocoder gets only the held-out note's log-mel frames (MelGAN's source f0: "
                           "pYIN on their Griffin-Lim inversion); hop periodicity over the first 0.5 s "
                           "(workbench.metrics.hop_periodicity, median; about 1 = one frame's cycle repeated)"}
    for name, values in rows.items():
        for key, v in values.items():
            out[f"{name}_{key}"] = round(float(np.median(v) if key == "hop_periodicity" else np.mean(v)), 4)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["wavegan", "gansynth", "melgan"])
    parser.add_argument("--write-card", action="store_true")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    for name in args.models:
        began = time.time()
        model = load_model(name) if has_checkpoint(name) else create_model(name, "tiny")
        metrics = vocoder_table(model) if isinstance(model, Vocoder) else diversity(model)
        metrics["benchmark_seconds"] = round(time.time() - began, 1)
        print(f"{name}:")
        for k, v in metrics.items():
            print(f"  {k:24s} {v}")
        if args.write_card and has_checkpoint(name):
            write_benchmark(name, "adversarial", metrics, f"python benchmarks/adversarial.py --models {name} --write-card")


if __name__ == "__main__":
    main()
