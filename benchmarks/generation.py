"""Generation speed of every shipped checkpoint: samples/s and real-time factor.

Run with ``make bench``. For each model with a checkpoint, generates audio at batch 1 and 8 with
every sampler it has (WaveNet: naive, cached and fast), all in this one process on this machine,
prints a table and writes ``benchmarks/results.json``. Slow samplers are timed on shorter clips
(the ``seconds`` column); samples/s is what compares.

Nothing here is asserted: speed belongs in benchmarks, not tests.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from workbench.dsp.synth import midi_to_hz
from workbench.models import Vocoder, list_checkpoints, load_model, model_class
from workbench.models.base import GenerativeModel

HERE = Path(__file__).resolve().parent

#: seconds of audio per sampler (the naive sampler recomputes the receptive field each step)
CLIP_SECONDS = {"naive": 0.1, "cached": 0.25, "pytorch": 0.25, "fast": 1.0, "default": 1.0}


def samplers(model) -> list[str]:
    """The samplers a model offers (its declared ``method`` option, without ``auto``), or its one default."""
    methods = [m for m in model.generate_options.get("method", ()) if m != "auto"]
    return methods or ["default"]


def time_one(model, method: str, batch: int, seconds: float) -> dict:
    kwargs = {} if method == "default" else {"method": method}
    cond = {}
    if isinstance(model, Vocoder):  # a vocoder's mel frames (other curves, such as f0, left to the model)
        cond["mel"] = model.example_frames(seconds=seconds)
    if "mel" in cond and any(s.name == "f0_hz" for s in model.conditioning):
        # a source's f0 given, as the phase lab gives it: the timing is the network's, not pYIN's
        lo, hi = model.config.pitch_range
        cond["f0_hz"] = torch.full((cond["mel"].shape[-1],), float(midi_to_hz((lo + hi) / 2)))
    model.generate(batch, seconds=min(seconds, 0.1), cond=cond or None, generator=0, **kwargs)  # warm-up
    began = time.perf_counter()
    audio = model.generate(batch, seconds=seconds, cond=cond or None, generator=0, **kwargs)
    took = time.perf_counter() - began
    per_second = audio.n_samples * batch / took
    return {"model": model.name, "method": method, "batch": batch, "seconds": audio.seconds,
            "wall_s": round(took, 4), "samples_per_second": round(per_second, 1),
            "real_time_factor": round(per_second / model.sample_rate, 4),
            "sample_rate": model.sample_rate}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 = one core)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--models", nargs="*", default=None)
    parser.add_argument("--skip", nargs="*", default=[], metavar="SAMPLER",
                        help="samplers to leave out (e.g. naive: minutes at batch 8)")
    parser.add_argument("--out", default=str(HERE / "results.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    audio_models = [n for n in list_checkpoints() if issubclass(model_class(n), GenerativeModel)]
    for name in args.models or audio_models:  # not the language model of notes or the transcriber
        model = load_model(name)
        for method in [m for m in samplers(model) if m not in args.skip]:
            for batch in args.batches:
                rows.append(time_one(model, method, batch, CLIP_SECONDS[method]))
                r = rows[-1]
                print(f"{r['model']:<20}{r['method']:<9}batch {r['batch']:<3}{r['samples_per_second']:>12,.0f} samples/s"
                      f"{r['real_time_factor']:>9.2f}x real time  ({r['seconds']:.2f} s clip)", flush=True)
    by_key = {(r["model"], r["method"], r["batch"]): r["samples_per_second"] for r in rows}
    ratios = {}
    for (model, method, batch), speed in by_key.items():
        if method == "fast" and (model, "cached", batch) in by_key:
            ratios[f"{model} fast/cached batch {batch}"] = round(speed / by_key[(model, "cached", batch)], 1)
        for slower in ("naive", "pytorch"):
            if method == "fast" and (model, slower, batch) in by_key:
                ratios[f"{model} fast/{slower} batch {batch}"] = round(speed / by_key[(model, slower, batch)], 1)
    print()
    for k, v in ratios.items():
        print(f"{k}: {v}x")
    result = {"rows": rows, "ratios": ratios, "threads": args.threads, "platform": platform.platform(),
              "processor": platform.processor(), "torch": torch.__version__,
              "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
