"""Long-range structure (notebook 11): what each level of a code hierarchy hears, where its bits go,
the trade-off between fidelity and reach, samples drawn top-down, and structure scores.

Every function takes a model that declares :class:`~workbench.models._levels.CodeHierarchy`
(``ada``, ``hierarchical_wavenet``, ``jukebox_mini``).

Notebook: notebooks/11_long_range_structure.ipynb
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from ..audio import Audio
from ..errors import ParameterError
from .display import Text

BENCHMARK = Path(__file__).resolve().parent.parent.parent / "benchmarks" / "hierarchy.json"


def _check(model):
    from ..models._levels import CodeHierarchy

    if not isinstance(model, CodeHierarchy):
        raise ParameterError(f"{type(model).__name__} is not a hierarchy of codes; use ada, "
                             "hierarchical_wavenet or jukebox_mini")


def _levels(model) -> int:
    return len(model.level_hops()) - 1


def real_music(model, n: int = 2, seconds: float = 4.0, split: str = "test", seed: int = 0) -> Audio:
    """``n`` clips of ``seconds`` of held-out music from the model's collection (each from another piece
    where the split has enough), at the model's sample rate: the clips the notebook compares with.

    Raises
    ------
    ParameterError
        The model does not learn from music, or the split has too few non-silent clips.
    """
    from ..models.base import ScoreDataConfig
    from ..scores import Scores
    from ..structure import music_clips

    c = model.config
    if not isinstance(c, ScoreDataConfig):
        raise ParameterError(f"{model.name} does not learn from music; pass a music model")
    scores = Scores(c.collection, split=split, max_pieces=c.max_pieces, segment_seconds=seconds,
                    sample_rate=model.sample_rate, hop_length=c.hop_length, programs=c.programs)
    return Audio(music_clips(model, split, n, seconds, seed, dataset=scores), model.sample_rate)


def what_each_level_hears(model, clip: Audio, generator=0) -> dict[str, Audio]:
    """``{"original": clip, "level k (R codes/s)": audio rebuilt from level k's codes alone, ...}``.

    A WaveNet decoder samples (the same seed for every level), a Jukebox level decodes its codes.
    """
    _check(model)
    hops = model.level_hops()
    out = {"original": clip}
    for level in range(1, _levels(model) + 1):
        rate = model.sample_rate / hops[level]
        out[f"level {level} ({rate:g} codes/s)"] = model.reconstruct(clip, level, generator=generator)
    return out


def bits_by_level(model, clip: Audio):
    """Each stage's share of the bits per sample of ``clip`` (mean over its items), as bars and a table.

    Returns
    -------
    (Figure, Text, dict stage -> bits per sample)
    """
    from ..viz import new_figure

    _check(model)
    shares = {name: float(bits.mean()) for name, bits in model.bits_by_stage(clip).items()}
    hops, rate = model.level_hops(), clip.sample_rate
    fig, axes = new_figure(1, 1, width=8, row_height=3.0)
    ax = axes[0, 0]
    ax.barh(list(shares), list(shares.values()), color=[f"C{i}" for i in range(len(shares))])
    ax.invert_yaxis()
    ax.set_xlabel("bits per sample of audio")
    ax.set_title(f"{model.name}: where the bits of {clip.seconds:.1f} s go "
                 f"(total {sum(shares.values()):.3f} bits per sample)")
    lines = [f"{'stage':<40}{'bits/sample':>12}{'bits/step':>12}{'bits/second':>13}"]
    for stage in model.stages:
        share = shares[stage.name]
        per_step = share * hops[stage.target]
        lines.append(f"{stage.name:<40}{share:>12.4f}{per_step:>12.3f}{share * rate:>13.0f}")
    return fig, Text("\n".join(lines)), shares


def level_tradeoff(model, clip: Audio, generator=0):
    """The survey's trade-off, per level: how far the model of that level's codes sees (seconds) against
    how well the level's codes alone rebuild the clip (multi-resolution STFT distance, lower is closer).

    Returns
    -------
    (Figure, Text, list of rows) with ``level``, ``codes_per_second``, ``bits_per_second`` (of the
    codebook at full use), ``context_seconds`` and ``distance``.
    """
    from ..metrics import multi_resolution_stft_distance
    from ..viz import new_figure

    _check(model)
    hops, classes = model.level_hops(), model.level_classes()
    contexts = model.context_seconds()
    by_target = {stage.target: contexts[stage.name] for stage in model.stages}
    rows = []
    for level in range(1, _levels(model) + 1):
        rebuilt = model.reconstruct(clip, level, generator=generator)
        distance = float(np.mean([multi_resolution_stft_distance(clip.samples[i, 0], rebuilt.samples[i, 0],
                                                                 (1024, 512, 256, 128))
                                  for i in range(clip.batch_size)]))
        rate = model.sample_rate / hops[level]
        rows.append({"level": level, "codes_per_second": rate, "bits_per_second": rate * math.log2(classes[level]),
                     "context_seconds": by_target.get(level, float("nan")), "distance": distance})
    fig, axes = new_figure(1, 2, width=10, row_height=3.0)
    levels = [r["level"] for r in rows]
    axes[0, 0].bar(levels, [r["context_seconds"] for r in rows], color="C0")
    axes[0, 0].set_ylabel("seconds seen by its model")
    axes[0, 0].set_title("reach: the past the model of each level's codes sees")
    axes[0, 1].bar(levels, [r["distance"] for r in rows], color="C3")
    axes[0, 1].set_ylabel("spectral distance to the original")
    axes[0, 1].set_title("fidelity: each level's codes alone, rebuilt")
    for ax in axes[0]:
        ax.set_xticks(levels, [f"level {lv}\n{r['codes_per_second']:g}/s" for lv, r in zip(levels, rows)])
    lines = [f"{'level':<7}{'codes/s':>9}{'bits/s':>9}{'reach (s)':>11}{'distance':>10}"]
    lines += [f"{r['level']:<7}{r['codes_per_second']:>9g}{r['bits_per_second']:>9.0f}{r['context_seconds']:>11.2f}"
              f"{r['distance']:>10.3f}" for r in rows]
    return fig, Text("\n".join(lines)), rows


def generate_top_down(model, seconds: float, generator=0, temperature: float | None = None,
                      progress: bool = True) -> Audio:
    """One clip sampled top-down (prior, then every level below), with a progress bar."""
    _check(model)
    bar = None
    if progress:
        from tqdm import (
            tqdm,  # a text bar: a widget bar would be a control with nothing drawn above it
        )

        bar = tqdm(total=1, desc=f"{model.name}: top-down", leave=False)

    def report(done, total):
        if bar is not None:
            bar.total = total
            bar.n = done
            bar.refresh()

    try:
        return model.generate(1, seconds=seconds, generator=generator, temperature=temperature,
                              progress=report if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()


def structure_table(clips: dict[str, Audio], lags_seconds=None):
    """Structure scores (:func:`workbench.structure.structure_scores`) of each set of clips.

    Returns
    -------
    (Figure, Text, dict name -> scores)
    """
    from ..structure import structure_scores
    from ..viz import new_figure

    if not clips:
        raise ParameterError("structure_table needs at least one set of clips, e.g. {'real': audio}")
    scores = {name: structure_scores(audio, lags_seconds) for name, audio in clips.items()}
    fig, axes = new_figure(1, 2, width=10, row_height=3.0)
    names = list(scores)
    axes[0, 0].bar(names, [s["repetition"] for s in scores.values()], color="C2")
    axes[0, 0].set_title("repetition above chance (higher: material returns)")
    axes[0, 1].bar(names, [s["pitch_class_kl"] for s in scores.values()], color="C1")
    axes[0, 1].set_title("pitch-class KL, 2nd half vs 1st (lower: one key)")
    for ax in axes[0]:
        ax.tick_params(axis="x", labelrotation=20)
    lines = [f"{'clips':<28}{'seconds':>8}{'repetition':>12}{'pitch-class KL':>16}"]
    lines += [f"{n:<28}{s['seconds']:>8.1f}{s['repetition']:>12.3f}{s['pitch_class_kl']:>16.3f}"
              for n, s in scores.items()]
    return fig, Text("\n".join(lines)), scores


def read_benchmark(path: str | Path | None = None) -> dict | None:
    """``benchmarks/hierarchy.json`` (written by ``python benchmarks/hierarchy.py``), or None."""
    path = Path(path) if path is not None else BENCHMARK
    return json.loads(path.read_text()) if path.exists() else None


def memory_table(bench: dict) -> Text:
    """The benchmark's training memory rows as a table (MB per example)."""
    lines = [f"{'what':<46}{'reach (s)':>10}{'saved MB':>10}{'step s':>8}"]
    for row in bench["memory"]:
        lines.append(f"{row['what']:<46}{row['reach_seconds']:>10.2f}{row['activation_bytes'] / 1e6:>10.1f}"
                     f"{row['step_seconds']:>8.2f}")
    return Text("\n".join(lines))


def stage_training_memory(model, stage: str, batch_size: int = 1, seed: int = 0) -> dict:
    """Memory and time of one training step of one stage (``train_stage``) of ``model``, per example.

    A random segment of the model's length is the batch; the stage's ``training_step`` runs under
    ``saved_tensors_hooks`` and the bytes autograd keeps for the backward pass are counted (each
    storage once, parameters excluded), as :func:`workbench.notebook.training_step_cost` does for a
    WaveNet.

    Returns
    -------
    dict with ``stage``, ``activation_bytes``, ``step_seconds`` (forward and backward).
    """
    import time

    staged = model.with_config(train_stage=stage).train()
    n = int(round(model.config.segment_seconds * model.sample_rate))
    gen = torch.Generator().manual_seed(seed)
    x = 0.3 * torch.randn(batch_size, 1, n, generator=gen)
    params = {p.untyped_storage().data_ptr() for p in staged.parameters()}
    saved: dict[int, int] = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    began = time.perf_counter()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        logs = staged.training_step((x, {}), generator=gen)
    logs["loss"].backward()
    return {"stage": stage, "activation_bytes": sum(saved.values()),
            "step_seconds": time.perf_counter() - began}


__all__ = ["BENCHMARK", "bits_by_level", "generate_top_down", "level_tradeoff", "memory_table", "read_benchmark",
           "real_music", "stage_training_memory", "structure_table", "what_each_level_hears"]
