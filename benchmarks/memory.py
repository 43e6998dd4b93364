"""Training memory against context: dense attention, the Sparse Transformer's patterns, and WaveNet.

Run with ``python benchmarks/memory.py`` (a few minutes on one core). For each context from 1k to
64k samples it measures one training step at batch 1 (memory per example):

- dense causal attention, the ``strided`` and ``fixed`` patterns (``stride ~ sqrt(context)``),
  each also with gradient checkpointing (``+checkpoint``), all at the ``small`` preset's widths;
- the ``small`` WaveNet, about the same number of parameters.

Memory is what grows with context: the tensors autograd keeps for backward (counted with
``saved_tensors_hooks``) plus the attention scores an unfused implementation keeps (one float
per query-key pair computed), plus, with checkpointing, one block recomputed in backward (see
``workbench.notebook.attention.training_memory``). Contexts estimated over ``--max-gb`` are
skipped, not run. It prints the table, each family's growth exponent (slope of log memory
against log context) and the longest context each fits in ``--budget-gb``, then times cached
(incremental) generation against recomputing the whole window for every sample, on one thread.
Everything goes to ``benchmarks/memory.json``.

Nothing here is asserted: measurements belong in benchmarks, not tests.

Notebook: notebooks/10_attention.ipynb
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from workbench.models import create_model
from workbench.notebook import attention as at

HERE = Path(__file__).resolve().parent
CONTEXTS = [1024 * 2**i for i in range(7)]  # 1k .. 64k samples
FAMILIES = ("dense", "strided", "fixed", "dense+checkpoint", "strided+checkpoint", "fixed+checkpoint", "wavenet")


def generation_timing(seconds_cached: float, steps_naive: int) -> dict:
    """Samples per second of the small preset's cached and naive samplers, and a full-window step."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = create_model("sparse_transformer", "small").eval()
    rate, context = model.sample_rate, model.config.context
    cached = at.decoding_speed(model, int(seconds_cached * rate), "cached")
    naive = at.decoding_speed(model, steps_naive, "naive")  # windows grow from 1 to steps_naive inputs
    # once the window is full, the naive sampler runs the network over `context` inputs per sample
    codes = torch.randint(0, model.n_classes, (1, context), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        model(codes[:, :8])
        began = time.perf_counter()
        repeats = 3
        for _ in range(repeats):
            model(codes, start=-1)
        full_window = (time.perf_counter() - began) / repeats
    return {"context": context, "cached_samples_per_second": round(cached, 1),
            "naive_samples_per_second_first_steps": round(naive, 1), "naive_steps_timed": steps_naive,
            "full_window_seconds_per_sample": round(full_window, 5),
            "cached_over_naive_first_steps": round(cached / naive, 1),
            "cached_over_full_window": round(cached * full_window, 1)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contexts", type=int, nargs="+", default=CONTEXTS)
    parser.add_argument("--families", nargs="+", default=list(FAMILIES))
    parser.add_argument("--max-gb", type=float, default=3.0, help="skip contexts estimated above this")
    parser.add_argument("--budget-gb", type=float, default=1.0, help="the budget for 'longest context that fits'")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--generate-seconds", type=float, default=0.5, help="cached sampler: seconds generated")
    parser.add_argument("--naive-steps", type=int, default=300, help="naive sampler: samples generated")
    parser.add_argument("--out", type=Path, default=HERE / "memory.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    began = time.perf_counter()
    rows = at.memory_scan(sorted(args.contexts), args.families, max_bytes=args.max_gb * 1e9, repeats=1,
                          progress=lambda r: print(f"  {r['family']} {r['context']}: "
                                                   f"{r.get('skipped') or format(r['total_bytes'] / 1e6, '.1f') + ' MB'}",
                                                   flush=True))
    print()
    print(at.memory_table(rows))
    budget = args.budget_gb * 1e9
    summary = at.summarise(rows, budget)
    attention_growth = at.summarise([r for r in rows if r["family"] != "wavenet"], budget, key="attention_bytes")
    print(f"\ngrowth exponents (slope of log memory vs log context) and the longest context within "
          f"{args.budget_gb:g} GB per example:")
    print(f"{'family':20} {'total':>6} {'attention':>9} {'longest measured':>16} {'power-law fit':>13}")
    for family, s in summary.items():
        attn = attention_growth.get(family, {}).get("exponent")
        print(f"{family:20} {s['exponent'] or float('nan'):6.2f} {'-' if attn is None else format(attn, '.2f'):>9} "
              f"{s['longest_measured'] or '-':>16} {s['fit_at_budget'] or '-':>13}")
    for family, s in summary.items():
        # like for like: a checkpointed pattern against checkpointed dense attention
        dense = "dense+checkpoint" if family.endswith("+checkpoint") else "dense"
        reference = summary.get(dense, {}).get("fit_at_budget")
        if family != dense and reference and s["fit_at_budget"]:
            print(f"  {family} reaches {s['fit_at_budget'] / reference:.1f}x the context of {dense} in the same memory")

    print("\ngeneration, small preset, batch 1, one thread:")
    timing = generation_timing(args.generate_seconds, args.naive_steps)
    print(f"  cached (incremental, key/value cache): {timing['cached_samples_per_second']:.0f} samples/s")
    print(f"  naive, first {args.naive_steps} samples (short windows): "
          f"{timing['naive_samples_per_second_first_steps']:.0f} samples/s "
          f"-> cached is {timing['cached_over_naive_first_steps']:.1f}x faster")
    print(f"  naive with a full {timing['context']}-sample window: {timing['full_window_seconds_per_sample'] * 1e3:.1f} "
          f"ms per sample -> cached is {timing['cached_over_full_window']:.0f}x faster")

    result = {"machine": platform.processor() or platform.machine(), "torch": torch.__version__,
              "threads": args.threads, "budget_bytes": budget, "max_bytes": args.max_gb * 1e9,
              "rows": rows, "summary": summary,
              "attention_exponents": {k: v["exponent"] for k, v in attention_growth.items()},
              "generation": timing, "wall_seconds": round(time.perf_counter() - began, 1)}
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"\nwrote {args.out} ({result['wall_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
