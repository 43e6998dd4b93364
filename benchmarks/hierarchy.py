"""Long-range structure, made measurable: what a hierarchy saves in training memory, and what it buys.

Run with ``python benchmarks/hierarchy.py`` (minutes on one core; ``--smoke`` for a quick run on
untrained tiny models). Two measurements, written to ``benchmarks/hierarchy.json``:

1. **Training memory** (the survey's argument: "we cannot scale indefinitely using dilation").
   One training step per example (batch 1) of each stage of ``hierarchical_wavenet``, which trains
   its levels one at a time, against a single WaveNet with the level-1 decoder's widths and enough
   dilated layers to see as far as the whole hierarchy (its top prior's context in samples), on
   the same number of targets. Memory is what autograd keeps for the backward pass, counted with
   ``saved_tensors_hooks`` as notebook 03 does (parameters excluded, each storage once). A
   configuration estimated above ``--max-gb`` is measured with fewer layers and scaled (marked
   ``extrapolated``).
2. **Structure** (:func:`workbench.structure.structure_scores`): repetition above chance and
   pitch-class KL of real held-out music against samples of ``ada``, ``hierarchical_wavenet`` and
   ``jukebox_mini``: the shipped checkpoints where there are any, else untrained tiny models
   (marked ``untrained``), and optionally a single-level WaveNet on music (``--single PATH``: an
   ``ada`` checkpoint trained with ``--set n_codes=1``, whose codes carry nothing).

Nothing here is asserted: measurements belong in benchmarks, not tests.

Notebook: notebooks/11_long_range_structure.ipynb
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import torch

from workbench import Audio
from workbench.models import create_model, has_checkpoint, load_model
from workbench.notebook.receptive_fields import training_step_cost
from workbench.notebook.structure import stage_training_memory
from workbench.structure import music_clips, structure_scores

HERE = Path(__file__).resolve().parent
MODELS = ("ada", "hierarchical_wavenet", "jukebox_mini")


def memory_rows(preset: str, max_gb: float) -> list[dict]:
    """Saved-tensor bytes of one training step per example: each hierarchy stage, and the single WaveNet."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = create_model("hierarchical_wavenet", preset)
    rate = model.sample_rate
    contexts = model.context_seconds()
    rows = []
    for stage in model.train_stages[1:]:
        cost = stage_training_memory(model, stage)
        name = next(s.name for s in model.stages if (stage == "prior") == (s.cond is None)
                    and (stage == "prior" or s.target == int(stage[5:]) - 1))
        rows.append({"what": f"hierarchy: {name}", "reach_seconds": contexts[name], **cost})
    reach = int(round(model.prior.context * model.total_hop))  # samples the top prior's window spans
    n_layers = max(1, math.ceil(math.log2(reach)))
    n_targets = model.config.crop_samples
    c = model.config

    def wavenet(layers: int):
        with torch.random.fork_rng():
            torch.manual_seed(0)
            return create_model("wavenet", "small", n_stacks=1, n_layers=layers, residual_channels=c.residual_channels,
                                gate_channels=c.gate_channels, skip_channels=c.skip_channels, timing=False,
                                sample_rate=rate)

    # estimate from a 12-layer network (memory grows with layers x input length), measure if it fits
    small_layers = min(12, n_layers)
    small = training_step_cost(wavenet(small_layers), n_targets=n_targets, repeats=1)
    scale = (n_layers / small_layers) * (2**n_layers + n_targets) / (2**small_layers + n_targets)
    estimate = small["activation_bytes"] * scale
    if estimate <= max_gb * 1e9:
        big = training_step_cost(wavenet(n_layers), n_targets=n_targets, repeats=1)
        single = {"activation_bytes": big["activation_bytes"], "step_seconds": big["step_seconds"],
                  "extrapolated": False}
    else:
        single = {"activation_bytes": int(estimate), "step_seconds": small["step_seconds"] * scale,
                  "extrapolated": True}
    rows.append({"what": f"single WaveNet, {n_layers} layers (receptive field {2**n_layers} samples)",
                 "reach_seconds": 2**n_layers / rate, "n_targets": n_targets, **single})
    return rows


def structure_rows(seconds: float, n_clips: int, smoke: bool, single: str | None) -> dict:
    """Structure scores of real test clips and of samples of every hierarchy model."""
    from workbench.scores import Scores

    out = {}
    with torch.random.fork_rng():
        torch.manual_seed(0)
        models = {name: (load_model(name), "checkpoint") if has_checkpoint(name) and not smoke
                  else (create_model(name, "tiny"), "untrained tiny") for name in MODELS}
        if single:
            models["single-level WaveNet"] = (load_model(single), "checkpoint")
        elif smoke:
            models["single-level WaveNet"] = (create_model("ada", "tiny", n_codes=1), "untrained tiny")
    reference = models["hierarchical_wavenet"][0]
    c = reference.config
    real = Scores(c.collection, split="test", max_pieces=c.max_pieces, segment_seconds=seconds,
                  sample_rate=reference.sample_rate, hop_length=c.hop_length, programs=c.programs)
    clips = music_clips(reference, n_clips=n_clips, seconds=seconds, dataset=real)
    out["real (test split)"] = {"source": "corpus", **_scores(Audio(clips, reference.sample_rate))}
    for name, (model, source) in models.items():
        began = time.perf_counter()
        audio = model.eval().generate(n_clips, seconds=seconds, generator=0)
        out[name] = {"source": source, "generate_seconds": round(time.perf_counter() - began, 1), **_scores(audio)}
    return out


def _scores(audio: Audio) -> dict:
    s = structure_scores(audio)
    return {"repetition": round(s["repetition"], 4), "pitch_class_kl": round(s["pitch_class_kl"], 4),
            "per_clip_repetition": [round(p["repetition"], 4) for p in s["per_clip"]], "seconds": s["seconds"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small", help="hierarchical_wavenet preset for the memory table")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of real clips and samples")
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--max-gb", type=float, default=2.0, help="extrapolate the single WaveNet above this")
    parser.add_argument("--single", default=None, help="checkpoint of a single-level WaveNet (ada, n_codes=1)")
    parser.add_argument("--smoke", action="store_true", help="tiny presets, short clips, untrained models")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=HERE / "hierarchy.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.smoke:
        args.preset, args.seconds, args.clips = "tiny", min(args.seconds, 2.0), min(args.clips, 2)

    began = time.perf_counter()
    memory = memory_rows(args.preset, args.max_gb)
    print(f"{'what':<62}{'reach (s)':>10}{'saved MB':>11}{'step s':>8}")
    for row in memory:
        mark = " (extrapolated)" if row.get("extrapolated") else ""
        print(f"{row['what']:<62}{row['reach_seconds']:>10.2f}{row['activation_bytes'] / 1e6:>11.1f}"
              f"{row['step_seconds']:>8.2f}{mark}")
    structure = structure_rows(args.seconds, args.clips, args.smoke, args.single)
    print(f"\n{'clips':<28}{'source':<16}{'repetition':>12}{'pitch-class KL':>16}")
    for name, row in structure.items():
        print(f"{name:<28}{row['source']:<16}{row['repetition']:>12.3f}{row['pitch_class_kl']:>16.3f}")
    result = {"memory": memory, "structure": structure, "preset": args.preset, "seconds": args.seconds,
              "clips": args.clips, "smoke": args.smoke, "threads": args.threads,
              "machine": {"platform": platform.platform(), "torch": torch.__version__},
              "wall_seconds": round(time.perf_counter() - began, 1)}
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
