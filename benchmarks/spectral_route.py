"""Measure the DDSP and note-to-mel checkpoints against held-out real notes and Griffin-Lim.

    python benchmarks/spectral_route.py [--write-card] [--threads 1]

Multi-resolution STFT distance (workbench.metrics) to every held-out note
   (``Notes(split="test")`` of the checkpoint's own config), for:
   - Griffin-Lim from the true log-mel (80 bands, n_fft 1024, hop 256; random initial phase),
   - Griffin-Lim from the true linear magnitude (what magnitude-only resynthesis can do at best),
   - DDSP resynthesis (encode the real note: pyin f0 and loudness, then decode),
   - DDSP generation from (pitch, instrument, velocity) alone,
   - note-to-mel + Griffin-Lim generation from (pitch, instrument, velocity) alone.
Prints a table; with ``--write-card`` stores the numbers under ``benchmarks.spectral_route`` in each
card.json (pitch accuracy and the other zoo numbers come from ``workbench evaluate``).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from workbench import Audio
from workbench.data import Notes
from workbench.evaluate import write_benchmark
from workbench.metrics import multi_resolution_stft_distance
from workbench.models import create_model, load_model


def held_out(model) -> Notes:
    c = model.config
    return Notes(source=c.data_source, instruments=c.instruments, pitches=range(c.pitch_range[0], c.pitch_range[1] + 1),
                 velocities=c.velocities, seconds=c.note_seconds, sample_rate=c.sample_rate, split="test")


def mrstft_table(ddsp, note2mel) -> dict:
    gl = create_model("griffinlim", "small")
    test = held_out(ddsp)
    rows: dict[str, list[float]] = {k: [] for k in ("griffinlim_true_mel", "griffinlim_true_magnitude",
                                                    "ddsp_resynthesis", "ddsp_generate", "note2mel_griffinlim")}
    for i in range(len(test)):
        x, cond = test[i]
        real = Audio(x, test.sample_rate)
        seconds = real.seconds
        rows["griffinlim_true_mel"].append(multi_resolution_stft_distance(
            real, gl.generate(1, cond={"mel": gl.mel_of(x)}, generator=0)))
        rows["griffinlim_true_magnitude"].append(multi_resolution_stft_distance(
            real, gl.decode(gl.encode(real), generator=0)))
        enc = ddsp.encode(real, cond)
        rows["ddsp_resynthesis"].append(multi_resolution_stft_distance(real, ddsp.decode(enc)))
        rows["ddsp_generate"].append(multi_resolution_stft_distance(
            real, ddsp.generate(1, seconds=seconds, cond=cond, generator=0)))
        if note2mel is not None:
            rows["note2mel_griffinlim"].append(multi_resolution_stft_distance(
                real, note2mel.generate(1, seconds=seconds, cond=cond, generator=0)))
    return {"n_test_notes": len(test),
            **{f"mrstft_{k}": round(float(np.mean(v)), 4) for k, v in rows.items() if v}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--write-card", action="store_true")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    began = time.time()
    ddsp = load_model("ddsp")
    try:
        note2mel = load_model("note2mel")
    except Exception as exc:  # the table still says what DDSP does
        print(f"note2mel not measured: {exc}")
        note2mel = None
    results = {"ddsp": {}, **({"note2mel": {}} if note2mel is not None else {})}
    table = mrstft_table(ddsp, note2mel)
    note = ("multi-resolution STFT distance (workbench.metrics, FFT 2048..64, spectral convergence + "
            "log-magnitude L1, lower is better) to the held-out soundfont notes; Griffin-Lim: 32 "
            "iterations, momentum 0.99, random initial phase (seed 0)")
    for name in results:
        keys = [k for k in table if k.startswith("mrstft_") and (name in k or "griffinlim_true" in k)]
        results[name].update({k: table[k] for k in keys}, n_test_notes=table["n_test_notes"],
                             mrstft_note=note)
    print(json.dumps(results, indent=2))
    print(f"measured in {time.time() - began:.0f} s")
    if args.write_card:
        for name, values in results.items():
            write_benchmark(name, "spectral_route", values, "python benchmarks/spectral_route.py --write-card")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
