"""The one training loop for every model.

``train("wavenet", steps=2000, out="runs/wavenet")`` or ``workbench train wavenet ...``:
tqdm progress, periodic held-out evaluation, checkpoints (config.json + model.safetensors,
plus ``train_state.pt`` with the optimiser state for ``resume``), a CSV log of losses and a
``card.json`` that records the command, data, steps and wall time.

Data parallel under ``torchrun --nproc_per_node=N -m workbench train ...``: each process
trains on its own shard of the data and gradients are averaged across processes (gloo on
CPU, nccl on GPUs) before every optimiser step, which is what DistributedDataParallel does.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist

from .data import Notes, Scores, ScoreTargets, collate
from .errors import ParameterError
from .models import create_model, model_class
from .models.base import GenerativeModel

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent


def make_dataset(model: GenerativeModel, data: str = "notes", split: str = "train"):
    """One split (``train``, ``validation``, ``test`` or ``all``) of the model's data (:meth:`Model.dataset`)."""
    return model.dataset(split, data)


def make_datasets(model: GenerativeModel, data: str = "notes"):
    """The training set and the validation set that training evaluates on (never the test set)."""
    return make_dataset(model, data, "train"), make_dataset(model, data, "validation")


def _batches(dataset, batch_size: int, generator: torch.Generator, rank: int = 0, world: int = 1):
    """Endless shuffled batches; each process takes every world-th index of the permutation."""
    while True:
        order = torch.randperm(len(dataset), generator=generator).tolist()[rank::world]
        if len(order) < batch_size:
            order = (order * (batch_size // max(1, len(order)) + 1))[: max(batch_size, len(order))]
        for i in range(0, len(order) - batch_size + 1, batch_size):
            yield collate([dataset[j] for j in order[i: i + batch_size]])


def _average_gradients(parameters):
    world = dist.get_world_size()
    for p in parameters:
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad /= world


def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def evaluate_loss(model: GenerativeModel, dataset, batch_size: int, seed: int = 1234,
                  max_batches: int = 8) -> dict:
    """Mean of ``eval_step`` over (up to ``max_batches``) held-out batches, with fixed crops."""
    gen = torch.Generator().manual_seed(seed)
    totals: dict[str, float] = {}
    n = 0
    for i in range(0, min(len(dataset), batch_size * max_batches), batch_size):
        items = [dataset[j] for j in range(i, min(i + batch_size, len(dataset)))]
        logs = model.eval_step(collate(items), generator=gen)
        for k, v in logs.items():
            totals[k] = totals.get(k, 0.0) + v
        n += 1
    return {f"eval_{k}": v / max(n, 1) for k, v in totals.items()}


def train(model: str | GenerativeModel, *, data: str = "notes", preset: str = "small",
          steps: int = 1000, batch_size: int | None = None, out: str | os.PathLike | None = None,
          seed: int = 0, eval_every: int = 250, checkpoint_every: int = 500, resume: bool = False,
          clip: float | None = 1.0, device: str | None = None, overrides: dict | None = None,
          command: str | None = None, progress: bool = True,
          max_minutes: float | None = None, select: str = "last") -> GenerativeModel:
    """Train a model and write its checkpoint folder.

    Parameters
    ----------
    model : str or GenerativeModel
        A registry name (built from ``preset`` and ``overrides``) or a model instance.
    data : str
        ``"notes"`` (the model's configured note source), ``"soundfont"``, ``"synth"`` or a folder.
    steps : int
        Total optimiser steps (with ``resume``, training continues up to this count).
    out : path, optional
        Checkpoint folder (config.json, model.safetensors, train_state.pt, log.csv, card.json).
    seed : int
        Seeds initialisation (inside a forked RNG, not globally) and data order.
    resume : bool
        Continue from ``out`` if it holds a checkpoint; ``overrides`` then change its config
        (fields that keep the weights' shapes: schedules, loss weights, learning rates).
    max_minutes : float, optional
        Stop early after this much wall time; the card records the steps actually taken.
    select : {"last", "validation-pitch"}
        Which checkpoint the run stands for. ``"last"``: the final step (a budget fixed in
        advance). ``"validation-pitch"``: at every checkpoint, notes of the *validation* split are
        generated and scored (pitch accuracy, then harmonic share); the best so far is copied to
        ``out/best``, whose card says how it was chosen. The test split is never looked at.

    Returns
    -------
    The trained model (on CPU, in eval mode).

    Raises
    ------
    ParameterError
        Bad step counts or data.
    """
    if not isinstance(steps, int) or steps < 1:
        raise ParameterError(f"steps={steps!r} must be a positive integer")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend)
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    out = Path(out) if out is not None else None
    is_main = rank == 0

    # 1. the model: fresh from a preset (seeded without touching global RNG state) or resumed
    state = None
    if isinstance(model, str):
        name = model
        if resume and out is not None and (out / "model.safetensors").exists():
            model = model_class(name).load(out)
            if overrides:  # e.g. a later phase of the schedule: --set adversarial_start=0
                model = model.with_config(**overrides)
            state = _resume_state(out)
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model = create_model(name, preset, **(overrides or {}))
    model = model.to(device).train()
    if world > 1:
        for p in model.parameters():
            dist.broadcast(p.data, src=0)
    batch_size = batch_size or model.config.batch_size

    # 2. data, optimisers, RNG for crops and order
    train_set, valid_set = make_datasets(model, data)
    optimizers = model.configure_optimizers()
    start = 0
    gen = torch.Generator().manual_seed(seed * 1000 + rank)
    if state is not None:
        for opt, s in zip(optimizers, state.get("optimizers", [])):
            settings = [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
            opt.load_state_dict(s)
            if overrides:  # the moments carry on; learning rates and betas follow the (changed) config
                for group, fresh in zip(opt.param_groups, settings):
                    group.update(fresh)
        start = int(state["step"])
        if "generator" in state:
            gen.set_state(state["generator"])
    batches = _batches(train_set, batch_size, gen, rank, world)
    sync = _average_gradients if world > 1 else None

    def write_card(step: int, wall: float):
        _write_card(model, out, data=data, preset=preset, steps=step, batch_size=batch_size, seed=seed,
                    wall=wall, world=world, command=command, train_set=train_set, valid_set=valid_set,
                    resumed_from=start, run_wall=time.time() - began, device=device)

    # 3. the loop
    if select not in SELECTIONS:
        raise ParameterError(f"select={select!r} must be one of {', '.join(SELECTIONS)}")
    best: dict | None = None
    rows: list[dict] = []
    began = time.time()
    elapsed_before = float(state.get("wall_time_s", 0.0)) if state else 0.0
    bar = None
    if progress and is_main:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, initial=start, desc=f"train {model.name}", mininterval=2.0,
                   dynamic_ncols=True)
    step = start
    for step in range(start + 1, steps + 1):
        if max_minutes is not None and time.time() - began > 60 * max_minutes:
            step -= 1
            log.warning("stopping at step %d: the %.1f-minute budget is spent", step, max_minutes)
            break
        batch = next(batches)
        batch = (batch[0].to(device), batch[1])
        logs = model.train_step(batch, optimizers, generator=gen, clip=clip, sync=sync)
        row = {"step": step, **logs}
        last_step = step == steps or (max_minutes is not None and time.time() - began > 60 * max_minutes)
        if eval_every and (step % eval_every == 0 or last_step) and is_main:
            row.update(evaluate_loss(model, valid_set, batch_size))
            model.train()
        rows.append(row)
        if bar is not None:
            bar.update(1)
            bar.set_postfix({k: f"{v:.3f}" for k, v in row.items() if k in ("loss", "eval_loss")})
        if out is not None and is_main and (step % checkpoint_every == 0 or last_step):
            wall = elapsed_before + time.time() - began
            _write_checkpoint(model, optimizers, gen, step, wall, out, rows)
            rows = []
            # the card follows every checkpoint, so a run stopped by hand still says what made it
            write_card(step, wall)
            if select == "validation-pitch":
                best = _select_on_validation(model, valid_set, out, step, best)
                model.train()
    if bar is not None:
        bar.close()
    if out is not None and is_main:
        write_card(step, elapsed_before + time.time() - began)
    if world > 1:
        _check_replicas_agree(model)
        dist.barrier()
    return model.cpu().eval()


SELECTIONS = ("last", "validation-pitch")


def _select_on_validation(model: GenerativeModel, valid_set, out: Path, step: int, best: dict | None) -> dict:
    """Score the checkpoint just written on the validation notes; copy it to ``out/best`` if it is the best.

    The score is (pitch accuracy, harmonic share) of one note per validation note (seed 0, the
    model's default temperature; :func:`workbench.evaluate.evaluation_notes`), compared in that
    order; a later step wins ties.
    """
    import shutil

    from .evaluate import evaluation_notes, measure_pitch

    if not isinstance(valid_set, Notes):
        raise ParameterError("select='validation-pitch' scores generated notes, so it needs note data, not a folder")
    model.eval()
    grid, where = evaluation_notes(model, "validation")
    if not grid or "validation split" not in where:
        raise ParameterError("select='validation-pitch' needs validation notes; this note grid has none")
    scored = measure_pitch(model, grid, seeds=(0,))
    score = {"step": step, "pitch_accuracy": scored["pitch_accuracy"], "harmonic_share": scored["harmonic_share"]}
    history = [*(best or {}).get("history", []), score]
    key = (score["pitch_accuracy"], score["harmonic_share"])
    if best is None or key >= (best["pitch_accuracy"], best["harmonic_share"]):
        best = {**score}
        target = out / "best"
        target.mkdir(exist_ok=True)
        for name in ("config.json", "model.safetensors", "log.csv", "card.json"):
            shutil.copy2(out / name, target / name)
    best["history"] = history
    card_file = out / "best" / "card.json"
    card = json.loads(card_file.read_text())
    card["selection"] = {"rule": "best (pitch accuracy, harmonic share) on the validation split's notes, seed 0, "
                                 "the model's default temperature; checkpoints every checkpoint_every steps; "
                                 "a later step wins ties", "validation_notes": len(grid),
                         "chosen_step": best["step"], "chosen": {k: best[k] for k in ("pitch_accuracy", "harmonic_share")},
                         "candidates": history}
    card["steps_selected"] = best["step"]
    card_file.write_text(json.dumps(card, indent=2) + "\n")
    log.info("validation at step %d: pitch %.2f, harmonic share %.3f (best: step %d)", step,
             score["pitch_accuracy"], score["harmonic_share"], best["step"])
    return best


def _resume_state(out: Path) -> dict | None:
    """What a resumed run carries on from: ``train_state.pt``, or failing that the card's step count.

    A checkpoint copied without its optimiser state (a shipped one, or one fetched from a GPU box)
    still resumes: the step count and wall time come from ``card.json``; Adam's moments and the
    data order start afresh, which the warning says.
    """
    state_file = out / "train_state.pt"
    if state_file.exists():
        return torch.load(state_file, weights_only=True)
    card_file = out / "card.json"
    card = json.loads(card_file.read_text()) if card_file.exists() else {}
    if "steps" not in card:
        return None
    log.warning("no train_state.pt in %s: resuming from step %d with fresh optimiser moments and data order",
                out, card["steps"])
    return {"step": int(card["steps"]), "wall_time_s": float(card.get("wall_time_s") or 0.0)}


def _check_replicas_agree(model):
    """Averaged gradients keep every process's copy identical; fail loudly if they drifted."""
    for name, p in model.named_parameters():
        reference = p.data.clone()
        dist.broadcast(reference, src=0)
        if not torch.equal(reference, p.data):
            raise RuntimeError(f"data-parallel replicas disagree on {name}; gradients were not averaged")


def _write_checkpoint(model, optimizers, gen, step, wall, out: Path, rows):
    model.save(out)
    torch.save({"optimizers": [o.state_dict() for o in optimizers], "step": step,
                "generator": gen.get_state(), "wall_time_s": wall}, out / "train_state.pt")
    if rows:
        _append_log(out / "log.csv", rows)


def _append_log(log_file: Path, rows: list[dict]):
    """Append rows to the CSV log; when new columns appear, rewrite it with the wider header."""
    old_rows, header = [], []
    if log_file.exists():
        with log_file.open() as f:
            reader = csv.DictReader(f)
            header = list(reader.fieldnames or [])
            old_rows = list(reader)
    new_keys = [k for k in sorted({k for r in rows for k in r}, key=lambda k: (k != "step", k)) if k not in header]
    keys = header + new_keys
    if new_keys or not header:
        rows = old_rows + rows
        mode = "w"
    else:
        mode = "a"
    with log_file.open(mode, newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
        if mode == "w":
            writer.writeheader()
        writer.writerows(rows)


def read_log(out) -> list[dict]:
    """The rows of a run's ``log.csv`` as dicts of floats."""
    with (Path(out) / "log.csv").open() as f:
        return [{k: float(v) for k, v in r.items() if v not in ("", None)} for r in csv.DictReader(f)]


def _dataset_description(ds) -> dict:
    if isinstance(ds, Notes):
        return {"source": ds.source, "instruments": list(ds.instruments),
                "pitches": [min(ds.pitches), max(ds.pitches)], "velocities": list(ds.velocities),
                "seconds": ds.seconds, "sample_rate": ds.sample_rate, "split": ds.split, "n_items": len(ds)}
    scores = ds.scores if isinstance(ds, ScoreTargets) else ds
    if isinstance(scores, Scores):
        return {"type": type(ds).__name__, "collection": scores.collection, "split": scores.split,
                "pieces": len(scores.pieces), "segment_seconds": scores.segment / scores.sample_rate,
                "sample_rate": scores.sample_rate, "n_items": len(ds)}
    return {"type": type(ds).__name__, "n_items": len(ds)}


def _training_runs(card: dict, command: str, resumed_from: int, steps: int, run_wall: float,
                   device: str = "cpu") -> list[dict]:
    """Every command that trained this checkpoint, in order, with the device it ran on: a resumed
    run adds to the list."""
    this = {"command": command, "from_step": resumed_from, "to_step": steps, "wall_time_s": round(run_wall, 1),
            "device": device, "cpu_threads": torch.get_num_threads()}
    if not resumed_from:
        return [this]
    runs = list(card.get("runs", []))
    if not runs and "command" in card:  # a card from before runs were listed: its one command
        runs = [{"command": card["command"], "from_step": 0, "to_step": resumed_from,
                 "wall_time_s": card.get("wall_time_s")}]
    return [r for r in runs if r["from_step"] < resumed_from] + [this]


def _write_card(model, out: Path, *, data, preset, steps, batch_size, seed, wall, world, command,
                train_set, valid_set, resumed_from: int = 0, run_wall: float = 0.0, device="cpu"):
    card_file = out / "card.json"
    card = json.loads(card_file.read_text()) if card_file.exists() else {}
    last = read_log(out)[-1] if (out / "log.csv").exists() else {}
    command = command if command is not None else " ".join(["workbench", *sys.argv[1:]])
    device = torch.device(device)
    runs = _training_runs(card, command, resumed_from, steps, run_wall,
                          torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu")
    card.update({
        "model": model.name,
        "family": model.family,
        "likelihood": model.likelihood,
        "preset": preset,
        "parameters": model.n_parameters,
        "command": command,
        "runs": runs,
        "data": {"name": data, "train": _dataset_description(train_set),
                 "validation": _dataset_description(valid_set),
                 "selection": "the eval_* numbers in the log are on the validation split; "
                              "metrics (workbench evaluate) are on the test split"},
        "steps": steps,
        "batch_size": batch_size,
        "seed": seed,
        "wall_time_s": round(wall, 1),
        "processes": world,
        "machine": {"cpu_threads": torch.get_num_threads(), "cuda": torch.cuda.is_available(),
                    "platform": platform.platform(), "torch": torch.__version__},
        "final": {k: v for k, v in last.items() if k != "step"},
        "commit": git_commit(),
    })
    card_file.write_text(json.dumps(card, indent=2) + "\n")
