"""``workbench list | train | render-notes | data describe | generate | evaluate | app | lab``.

Errors the user can fix print as one line (``error: ...``), not a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import subprocess
import sys
from pathlib import Path

from .errors import WorkbenchError

ROOT = Path(__file__).resolve().parent.parent


def _parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _overrides(pairs) -> dict:
    out = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise WorkbenchError(f"--set {pair!r} must look like key=value, e.g. --set n_layers=8")
        key, value = pair.split("=", 1)
        value = _parse_value(value)
        out[key] = tuple(value) if isinstance(value, list) else value
    return out


def cmd_list(args) -> int:
    from .models import has_checkpoint, list_models, model_class
    from .models.base import GenerativeModel

    rows = [("model", "family", "likelihood", "aid", "checkpoint")]
    for name in list_models():
        cls = model_class(name)
        aid = (cls.aid.kind if cls.aid else "none") if issubclass(cls, GenerativeModel) else "n/a"
        rows.append((name, cls.family, cls.likelihood, aid,
                     "yes" if has_checkpoint(name) else "no"))
    widths = [max(len(r[i]) for r in rows) + 2 for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("".join(cell.ljust(w) for cell, w in zip(row, widths)) + row[-1])
    return 0


def cmd_train(args) -> int:
    from .train import train

    command = "workbench " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    train(args.model, data=args.data, preset=args.preset, steps=args.steps, batch_size=args.batch_size,
          out=args.out, seed=args.seed, eval_every=args.eval_every, checkpoint_every=args.checkpoint_every,
          resume=args.resume, device=args.device, overrides=_overrides(args.set), command=command,
          max_minutes=args.max_minutes, select=args.select)
    if os.environ.get("RANK", "0") == "0":
        print(f"checkpoint written to {args.out}")
    return 0


def cmd_render_notes(args) -> int:
    from tqdm.auto import tqdm

    from .models import create_model
    from .train import make_dataset

    before = os.environ.get("WORKBENCH_NOTES_CACHE")
    os.environ["WORKBENCH_NOTES_CACHE"] = str(args.cache)  # what make_datasets' Notes read
    n = 0
    try:
        for name in args.model:
            model = create_model(name, args.preset, **_overrides(args.set))
            for ds in [make_dataset(model, "notes", "all")]:
                for i in tqdm(range(len(ds)), desc=f"{name} {ds.split}", leave=False):
                    ds[i]
                n += len(ds)
    finally:
        if before is None:
            os.environ.pop("WORKBENCH_NOTES_CACHE")
        else:
            os.environ["WORKBENCH_NOTES_CACHE"] = before
    print(f"{n} notes rendered or found in {args.cache}; train elsewhere with WORKBENCH_NOTES_CACHE={args.cache}")
    return 0


def cmd_data_describe(args) -> int:
    """The dataset card of a score collection (or your files), as a table or JSON."""
    from .data import Scores

    source = {"files": args.files} if args.files else {"collection": args.collection}
    card = Scores(**source, max_pieces=args.max_pieces, cache_dir=args.cache, progress=not args.json).describe()
    if args.json:
        print(json.dumps(card, indent=2))
        return 0
    print(f"scores: {card['collection']} ({card['pieces']['all']} pieces, {card['notes']} notes)")
    print(f"{'split':<12}{'pieces':>8}{'segments':>10}{'hours':>9}")
    for split in ("train", "validation", "test", "all"):
        print(f"{split:<12}{card['pieces'][split]:>8}{card['segments'][split]:>10}{card['hours'][split]:>9.3f}")
    low, high = card["pitch_range"]
    parts = ", ".join(f"{n} parts x {count}" for n, count in card["parts"].items())
    print(f"pitch range {low}..{high} (MIDI); {card['notes_per_second']:.2f} notes per second (mean); {parts}")
    return 0


def _model_from(args):
    from .models import load_model

    return load_model(args.checkpoint or args.model)


def _bar(desc: str, quiet: bool):
    """A tqdm bar driven by a model's ``progress(done, total)``, or None when quiet."""
    if quiet:
        return None
    from tqdm.auto import tqdm

    bar = tqdm(total=1, desc=desc, unit="step", unit_scale=True)

    def progress(done, total):
        bar.total = total
        bar.n = done
        bar.refresh()

    return progress


def cmd_generate(args) -> int:
    import time

    model = _model_from(args)
    names = {s.name for s in model.conditioning}
    cond = {k: v for k, v in (("pitch", args.pitch), ("instrument", args.instrument),
                              ("velocity", args.velocity)) if v is not None and k in names}
    ignored = [k for k, v in (("pitch", args.pitch), ("instrument", args.instrument),
                              ("velocity", args.velocity)) if v is not None and k not in names]
    if ignored:
        print(f"note: {model.name} ignores {', '.join(ignored)}", file=sys.stderr)
    began = time.perf_counter()
    audio = model.generate(1, seconds=args.seconds, cond=cond, temperature=args.temperature,
                           generator=args.seed, progress=_bar(f"generate {model.name}", args.quiet))
    took = time.perf_counter() - began
    audio.save(args.out)
    temperature = model.default_temperature if args.temperature is None else args.temperature
    print(f"wrote {args.out}: {audio.seconds:.2f} s at {audio.sample_rate} Hz in {took:.2f} s "
          f"({audio.seconds / took:.2f}x real time), temperature {temperature:g}")
    return 0


def cmd_evaluate(args) -> int:
    from .evaluate import evaluate_checkpoint

    report = evaluate_checkpoint(args.checkpoint or args.model, write_card=args.write_card,
                                 n_seeds=args.seeds, progress=not args.quiet)
    print(json.dumps(report, indent=2))
    return 0


def cmd_compose(args) -> int:
    from .pipeline import compose, play
    from .scores import events_to_midi

    events = compose(args.seconds, model=args.model, temperature=args.temperature, generator=args.seed,
                     progress=_bar(f"compose with {args.model}", args.quiet))
    events_to_midi(events, args.out)
    print(f"wrote {args.out}: {len(events)} notes over {max(e.offset_seconds for e in events):.1f} s")
    if args.play:
        audio = play(events, model=args.synth, generator=args.seed, progress=_bar(f"play with {args.synth}", args.quiet))
        audio.save(args.play)
        print(f"wrote {args.play}: played by {args.synth}")
    return 0


def cmd_transcribe(args) -> int:
    from .audio import Audio
    from .pipeline import transcribe
    from .scores import events_to_midi

    events = transcribe(Audio.load(args.audio, max_seconds=600), model=args.model)
    events_to_midi(events, args.out)
    print(f"wrote {args.out}: {len(events)} notes heard by {args.model}")
    return 0


def cmd_play(args) -> int:
    from .pipeline import play

    audio = play(args.score, model=args.model, seconds=args.seconds, temperature=args.temperature,
                 generator=args.seed, progress=_bar(f"play with {args.model}", args.quiet))
    audio.save(args.out)
    print(f"wrote {args.out}: {audio.seconds:.2f} s at {audio.sample_rate} Hz, played by {args.model}")
    return 0


def cmd_app(args) -> int:
    import importlib.util

    path = ROOT / "apps" / "studio.py"
    if not path.exists():
        raise WorkbenchError(f"the studio app is missing ({path}); run from a full checkout of the repository")
    sys.path.insert(0, str(ROOT))
    spec = importlib.util.spec_from_file_location("apps.studio", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.launch(port=args.port)
    return 0


def cmd_lab(args) -> int:
    return subprocess.call([sys.executable, "-m", "jupyter", "lab", str(ROOT / "notebooks")])


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="workbench", description="Generative models of raw audio, small enough to learn from.")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("list", help="registered models and whether they ship a checkpoint").set_defaults(fn=cmd_list)

    t = sub.add_parser("train", help="train a model and write a checkpoint folder")
    t.add_argument("model")
    t.add_argument("--data", default="notes", help="notes | soundfont | synth | a folder of audio files")
    t.add_argument("--preset", default="small")
    t.add_argument("--steps", type=int, default=1000)
    t.add_argument("--batch-size", type=int, default=None)
    t.add_argument("--out", required=True)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--eval-every", type=int, default=250)
    t.add_argument("--checkpoint-every", type=int, default=500)
    t.add_argument("--resume", action="store_true")
    t.add_argument("--device", default=None)
    t.add_argument("--threads", type=int, default=None)
    t.add_argument("--max-minutes", type=float, default=None, help="stop early after this much wall time")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config field")
    t.add_argument("--select", default="last", choices=["last", "validation-pitch"],
                   help="which checkpoint the run stands for: the last step, or the best on the validation "
                        "notes' pitch (copied to OUT/best); never the test notes")
    t.set_defaults(fn=cmd_train)

    r = sub.add_parser("render-notes", help="render the notes models train on into a cache folder "
                       "(train on a machine without FluidSynth with WORKBENCH_NOTES_CACHE=DIR)")
    r.add_argument("model", nargs="+")
    r.add_argument("--cache", required=True)
    r.add_argument("--preset", default="small")
    r.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config field")
    r.set_defaults(fn=cmd_render_notes)

    d = sub.add_parser("data", help="inspect the datasets").add_subparsers(dest="action", required=True)
    dd = d.add_parser("describe", help="a dataset's card: pieces and hours per split, pitch range, density")
    dd.add_argument("dataset", choices=["scores"])
    dd.add_argument("--collection", default="chorales", help="chorales | folk (music21's corpus)")
    dd.add_argument("--files", nargs="+", default=None, help="your MIDI / MusicXML / ABC files or folders instead")
    dd.add_argument("--max-pieces", type=int, default=None, help="only the collection's first N pieces")
    dd.add_argument("--cache", default=None, help="cache folder (default $WORKBENCH_SCORES_CACHE, else none)")
    dd.add_argument("--json", action="store_true", help="print the card as JSON")
    dd.set_defaults(fn=cmd_data_describe)

    g = sub.add_parser("generate", help="generate a sound to a file")
    g.add_argument("model")
    g.add_argument("--checkpoint", default=None, help="a checkpoint folder instead of the shipped one")
    g.add_argument("--pitch", type=int)
    g.add_argument("--instrument")
    g.add_argument("--velocity", type=int)
    g.add_argument("--seconds", type=float, default=1.0)
    g.add_argument("--temperature", type=float, default=None,
                   help="sampling temperature (default: the model's own, e.g. 0.6 for the flows)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--out", default="out.wav")
    g.add_argument("--quiet", action="store_true")
    g.set_defaults(fn=cmd_generate)

    e = sub.add_parser("evaluate", help="measure a checkpoint (pitch accuracy, bits/sample, speed)")
    e.add_argument("model")
    e.add_argument("--checkpoint", default=None)
    e.add_argument("--seeds", type=int, default=1)
    e.add_argument("--write-card", action="store_true", help="store the metrics in the checkpoint's card.json")
    e.add_argument("--quiet", action="store_true")
    e.set_defaults(fn=cmd_evaluate)

    c = sub.add_parser("compose", help="write a new piece with a language model over notes (a MIDI file)")
    c.add_argument("--seconds", type=float, default=20.0)
    c.add_argument("--temperature", type=float, default=None, help="sampling temperature (default: the model's)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--model", default="notes_lm", help="a registered name or a checkpoint folder")
    c.add_argument("--out", default="piece.mid")
    c.add_argument("--play", default=None, metavar="WAV", help="also play it to this audio file")
    c.add_argument("--synth", default="midi2wave", help="what plays it: midi2wave (or a folder) or fluidsynth")
    c.add_argument("--quiet", action="store_true")
    c.set_defaults(fn=cmd_compose)

    tr = sub.add_parser("transcribe", help="hear the notes in an audio file (a MIDI file)")
    tr.add_argument("audio")
    tr.add_argument("--model", default="transcriber", help="a registered name or a checkpoint folder")
    tr.add_argument("--out", default="notes.mid")
    tr.set_defaults(fn=cmd_transcribe)

    pl = sub.add_parser("play", help="render a MIDI / MusicXML / ABC score to audio")
    pl.add_argument("score")
    pl.add_argument("--model", default="midi2wave", help="midi2wave (or a checkpoint folder) or fluidsynth")
    pl.add_argument("--seconds", type=float, default=None, help="play only the beginning")
    pl.add_argument("--temperature", type=float, default=None)
    pl.add_argument("--seed", type=int, default=0)
    pl.add_argument("--out", default="out.wav")
    pl.add_argument("--quiet", action="store_true")
    pl.set_defaults(fn=cmd_play)

    a = sub.add_parser("app", help="launch the Gradio studio on 127.0.0.1")
    a.add_argument("--port", type=int, default=7860)
    a.set_defaults(fn=cmd_app)

    sub.add_parser("lab", help="open JupyterLab on notebooks/").set_defaults(fn=cmd_lab)
    return p


def main(argv=None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except WorkbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
