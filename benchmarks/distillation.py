"""Distilled students against their teachers: speed, pitch and diversity, on one thread.

    python benchmarks/distillation.py [--students parallel_wavenet clarinet] [--tiny] [--write-card]

For each student (``parallel_wavenet``, ``clarinet``) and the teacher it was distilled from
(``student.teacher()``: the teacher its config names):

1. speed at batch 1 on one thread (``torch.set_num_threads(1)``): the teacher's cached PyTorch
   sampler (the readable reference; the compiled kernel knows only the softmax) against the
   student's parallel pass: samples per second, their ratio (goal: at least 1000x) and the
   student's real-time factor (goal: at least 20x real time);
2. pitch accuracy and harmonic share of each (:func:`workbench.evaluate.measure_pitch` on
   :func:`workbench.evaluate.evaluation_notes`, the test split's notes; seed 0; each model's default
   temperature);
3. diversity for one condition: ``--n-samples`` samples of the middle pitch and first instrument,
   mean pairwise log-mel L1 distance (notebook 07's measure), teacher, student and the real notes
   nearest that condition.

Trained checkpoints are used where they exist (``assets/checkpoints/<student>``, and the teacher
the student names); otherwise, or with ``--tiny``, untrained tiny models stand in (a smoke run:
speed ratios hold, quality numbers say nothing). Prints a table and writes
``benchmarks/distillation.json``; with ``--write-card`` also stores each trained student's numbers
under ``"benchmarks"`` in its card.

Notebook: notebooks/12_distillation.ipynb
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from workbench.evaluate import evaluation_notes, measure_pitch, write_benchmark
from workbench.models import create_model, has_checkpoint, load_model
from workbench.notebook import distillation as dist

HERE = Path(__file__).resolve().parent


def load_student(name: str, tiny: bool):
    """The shipped student (trained) or a fresh tiny one, and whether it is trained."""
    if not tiny and has_checkpoint(name):
        return load_model(name).eval(), True
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return create_model(name, "tiny").eval(), False


def pitch_of(model, max_notes: int | None) -> dict:
    grid, where = evaluation_notes(model)
    grid = grid[:max_notes] if max_notes else grid
    began = time.perf_counter()
    scored = measure_pitch(model, grid, seeds=(0,))
    return {"pitch_accuracy": round(scored["pitch_accuracy"], 4), "harmonic_share": scored["harmonic_share"],
            "notes": len(grid), "notes_from": where, "seconds": round(time.perf_counter() - began, 1)}


def benchmark(name: str, args) -> dict:
    student, trained = load_student(name, args.tiny)
    teacher = student.teacher()
    c = student.config
    row = {"trained": trained, "student": name, "teacher": teacher.name, "teacher_source": c.teacher,
           "student_parameters": student.n_parameters, "teacher_parameters": teacher.n_parameters}
    # 1. speed, batch 1, one thread
    speed = dist.generation_speed(teacher, student, teacher_seconds=args.teacher_seconds, student_seconds=args.seconds)
    row.update(speed)
    row["goals"] = {"speedup": 1000, "student_real_time_factor": 20}
    # 2. pitch on the test notes
    for who, model in (("teacher", teacher), ("student", student)):
        for key, value in pitch_of(model, args.max_notes).items():
            row[f"{who}_{key}"] = value
    # 3. diversity for one condition
    pitch, instrument = sum(c.pitch_range) // 2, c.instruments[0]
    cond = {"pitch": pitch, "instrument": instrument}
    seconds = min(args.diversity_seconds, c.note_seconds)
    _, row["teacher_diversity"] = dist.spread_of(teacher, cond, args.n_samples, seconds, generator=1)
    _, row["student_diversity"] = dist.spread_of(student, cond, args.n_samples, seconds, generator=1)
    row["real_diversity"] = dist.diversity(dist.real_notes_near(c, pitch, instrument, seconds), c.sample_rate)
    row["diversity_condition"] = {"pitch": pitch, "instrument": instrument, "n_samples": args.n_samples,
                                  "seconds": seconds, "distance": "mean pairwise log-mel L1 (80 bands, n_fft 1024, hop 256)"}
    for key in ("teacher_diversity", "student_diversity", "real_diversity"):
        row[key] = round(row[key], 4)
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--students", nargs="+", default=["parallel_wavenet", "clarinet"])
    parser.add_argument("--tiny", action="store_true", help="untrained tiny models even where checkpoints exist")
    parser.add_argument("--seconds", type=float, default=1.0, help="of the student's timed generation")
    parser.add_argument("--teacher-seconds", type=float, default=0.25, help="of the teacher's timed generation")
    parser.add_argument("--max-notes", type=int, default=None, help="pitch on the first N test notes only")
    parser.add_argument("--n-samples", type=int, default=6)
    parser.add_argument("--diversity-seconds", type=float, default=0.5)
    parser.add_argument("--out", default=str(HERE / "distillation.json"))
    parser.add_argument("--write-card", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    began = time.time()
    rows = {name: benchmark(name, args) for name in args.students}
    result = {"students": rows, "threads": torch.get_num_threads(), "platform": platform.platform(),
              "processor": platform.processor(), "torch": torch.__version__,
              "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "benchmark_seconds": round(time.time() - began, 1),
              "command": "python benchmarks/distillation.py " + " ".join(
                  a for a in ("--tiny" if args.tiny else "", f"--students {' '.join(args.students)}") if a)}
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    keys = ("trained", "student_parameters", "teacher_parameters", "teacher_samples_per_second",
            "student_samples_per_second", "speedup", "student_real_time_factor", "teacher_pitch_accuracy",
            "student_pitch_accuracy", "teacher_harmonic_share", "student_harmonic_share", "teacher_diversity",
            "student_diversity", "real_diversity")
    print(f"{'':28s}" + "".join(f"{name:>18s}" for name in rows))
    for key in keys:
        print(f"{key:28s}" + "".join(f"{str(row.get(key)):>18s}" for row in rows.values()))
    print(f"goals: speedup >= 1000x, student real time >= 20x; written to {args.out}")
    if args.write_card:
        for name, row in rows.items():
            if row["trained"]:
                write_benchmark(name, "distillation", row, "python benchmarks/distillation.py --write-card")


if __name__ == "__main__":
    main()
