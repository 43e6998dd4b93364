"""Measure the DDSP and note-to-mel checkpoints against held-out real notes and Griffin-Lim.

    python benchmarks/spectral_route.py [--write-card] [--threads 1]

1. pitch accuracy of generated notes: a fixed pitch x instrument grid, fixed seeds, median pyin
   f0 within 50 cents of the note asked for;
2. multi-resolution STFT distance (workbench.metrics) to every held-out note
   (``Notes(split="test")`` of the checkpoint's own config), for:
   - Griffin-Lim from the true log-mel (80 bands, n_fft 1024, hop 256; random initial phase),
   - Griffin-Lim from the true linear magnitude (what magnitude-only resynthesis can do at best),
   - DDSP resynthesis (encode the real note: pyin f0 and loudness, then decode),
   - DDSP generation from (pitch, instrument, velocity) alone,
   - note-to-mel + Griffin-Lim generation from (pitch, instrument, velocity) alone.
Prints a table; with ``--write-card`` stores the numbers under "metrics" in each card.json.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from workbench import Audio
from workbench.data import Notes
from workbench.metrics import multi_resolution_stft_distance, pitch_accuracy
from workbench.models import checkpoint_dir, create_model, load_model

SEEDS = (0, 1)


def grid(model) -> list[dict]:
    c = model.config
    pitches = list(range(c.pitch_range[0], c.pitch_range[1] + 1, 3))
    return [{"pitch": p, "instrument": i, "velocity": max(c.velocities)} for i in c.instruments for p in pitches]


def measure_pitch(model, seconds: float) -> dict:
    notes = grid(model)
    audios, midis = [], []
    for seed in SEEDS:
        cond = {k: [g[k] for g in notes] for k in notes[0]}
        out = model.generate(len(notes), seconds=seconds, cond=cond, generator=seed)
        audios += [out[i] for i in range(len(notes))]
        midis += [g["pitch"] for g in notes]
    return {"pitch_accuracy": pitch_accuracy(audios, midis), "pitch_grid": {
        "pitches": sorted({g["pitch"] for g in notes}), "instruments": sorted({g["instrument"] for g in notes}),
        "velocity": notes[0]["velocity"], "seeds": list(SEEDS), "n_notes": len(audios)}}


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
    results = {"ddsp": measure_pitch(ddsp, ddsp.config.note_seconds)}
    if note2mel is not None:
        results["note2mel"] = measure_pitch(note2mel, note2mel.config.note_seconds)
    table = mrstft_table(ddsp, note2mel)
    note = ("multi-resolution STFT distance (workbench.metrics, FFT 2048..64, spectral convergence + "
            "log-magnitude L1, lower is better) to the held-out soundfont notes; Griffin-Lim: 32 "
            "iterations, momentum 0.99, random initial phase (seed 0)")
    for name in results:
        keys = [k for k in table if k.startswith("mrstft_") and (name in k or "griffinlim_true" in k)]
        results[name].update({k: table[k] for k in keys}, n_test_notes=table["n_test_notes"],
                             mrstft_note=note, measured_by="python benchmarks/spectral_route.py --write-card")
    print(json.dumps(results, indent=2))
    print(f"measured in {time.time() - began:.0f} s")
    if args.write_card:
        for name, metrics in results.items():
            card_file = checkpoint_dir(name) / "card.json"
            card = json.loads(card_file.read_text()) if card_file.exists() else {}
            card["metrics"] = metrics
            card_file.write_text(json.dumps(card, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
