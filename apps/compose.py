"""Compose: music from notes. Pick a score (a held-out tune, your own file, or one ``notes_lm``
writes), see its piano roll, hear it played by ``midi2wave`` beside FluidSynth's rendering of the
same notes, and transcribe any audio back to notes, drawn over the score.

The three legs are :mod:`workbench.pipeline`'s functions; the page only lays them out. A model
that ships no checkpoint yet is named with the command that trains it, and its button stays off;
FluidSynth needs no checkpoint.
"""

from __future__ import annotations

import functools
from pathlib import Path

import gradio as gr

import workbench.viz as viz
from apps import common
from workbench.errors import WorkbenchError

SOURCES = ("a held-out tune", "your score file", "notes_lm writes one")
#: What the music models are called in the registry (their shipped checkpoints).
SYNTH, WRITER, EAR = "midi2wave", "notes_lm", "transcriber"
SCORE_SUFFIXES = [".mid", ".midi", ".musicxml", ".mxl", ".xml", ".abc"]
PLOT_PX = 620


@functools.lru_cache(maxsize=1)
def held_out_tunes(max_tunes: int = 40) -> dict[str, object]:
    """Titles -> pieces of the folk collection's test split (the tunes no model here trained on)."""
    from workbench.scores import Scores

    scores = Scores("folk", split="test", max_pieces=400, segment_seconds=2.0, sample_rate=8000)
    return {f"{p.title} ({p.seconds:.0f} s)": p for p in scores.pieces[:max_tunes]}


def shipped(name: str):
    """The shipped model, or None and why not."""
    from workbench.models import has_checkpoint

    if not has_checkpoint(name):
        return None, f"`{name}` ships no checkpoint yet: `workbench train {name} --preset small --out assets/checkpoints/{name}`"
    return common.load_cached(name), ""


def roll_figure(notes: dict, title: str):
    fig = viz.piano_roll(notes, title=title)
    return common.legible(fig, PLOT_PX)


def get_score(source, tune, upload, seconds, temperature, seed, progress, request, flags):
    """The score the page works on: ``(events as tuples, figure, description)``."""
    from workbench.pipeline import compose, notes_of

    with common.user_errors():
        if source == SOURCES[0]:
            tunes = held_out_tunes()
            if tune not in tunes:
                raise common.error("pick a held-out tune from the list")
            events, what = list(tunes[tune].events), f"held-out tune {tune!r} (folk collection, test split)"
        elif source == SOURCES[1]:
            if upload is None:
                raise common.error("no score file given: upload a .mid, .musicxml, .mxl or .abc file")
            name = Path(str(upload)).name
            try:
                events, _ = notes_of(upload)
            except WorkbenchError as exc:
                raise common.error(str(exc).replace(str(upload), name)) from None
            what = f"your score {name!r}"
        else:
            writer, why = shipped(WRITER)
            if writer is None:
                raise common.error(why)
            session = common.session_of(request)
            flags.reset(session)
            events = compose(float(seconds), model=writer, temperature=float(temperature), generator=int(seed or 0),
                             progress=common.progress_callback(progress, flags, session, "writing notes"))
            what = f"{len(events)} notes written by notes_lm (seed {int(seed or 0)}, temperature {float(temperature):g})"
        if not events:
            raise common.error("the score has no notes; pick another one")
        rows = [e.as_tuple() for e in events]
        return rows, roll_figure({"score": rows}, what), f"**{what}**: {len(rows)} notes over " \
                                                         f"{max(r[0] + r[1] for r in rows):.1f} s"


def play_score(rows, seconds, temperature, seed, progress, request, flags):
    """midi2wave and FluidSynth on the same notes: two players and a line about each."""
    from workbench.pipeline import MAX_PLAY_SECONDS, fluidsynth, play

    with common.user_errors():
        if not rows:
            raise common.error("no score yet: press 'Get the score' first")
        events = [r for r in rows if r[0] < float(seconds)]
        real = fluidsynth(events, ("flute",))
        lines = [f"FluidSynth, flute: {real.seconds:.1f} s (what the models learned from)"]
        synth, why = shipped(SYNTH)
        played = None
        if synth is None:
            lines.append(why)
        else:
            session = common.session_of(request)
            flags.reset(session)
            audio = play(events, model=synth, seconds=min(float(seconds), MAX_PLAY_SECONDS),
                         temperature=float(temperature), generator=int(seed or 0),
                         progress=common.progress_callback(progress, flags, session, "midi2wave plays"))
            audio, levels = common.check_levels(audio)
            played = common.to_gradio(audio)
            lines.append(f"midi2wave: {audio.seconds:.1f} s at {audio.sample_rate} Hz, sampled one sample at a "
                         "time from the roll alone (no oscillator)" + "".join(f"; {n}" for n in levels.notes))
        return played, common.to_gradio(real), "\n\n".join(lines)


def transcribe_clip(rows, use_played, played, upload, request):
    """The transcriber's notes for the chosen audio, drawn over the score, with note F1 against it."""
    from workbench.audio import Audio
    from workbench.models.transcriber import note_f1
    from workbench.pipeline import transcribe
    from workbench.scores import NoteEvent

    with common.user_errors():
        ear, why = shipped(EAR)
        if ear is None:
            raise common.error(why)
        if use_played:
            if played is None:
                raise common.error("nothing played yet: press 'Play' first, or upload a clip")
            rate, samples = played
            import torch

            audio = Audio(torch.as_tensor(samples, dtype=torch.float32)[None, None] / 32768.0, rate)
            what = "the midi2wave output"
        else:
            audio = common.read_clip(upload, sample_rate=16000)
            what = f"your clip ({Path(str(upload)).name})"
        heard = [e.as_tuple() for e in transcribe(audio, model=ear)]
        notes = {"transcription": heard}
        text = f"**{what}**: the transcriber heard {len(heard)} notes."
        if rows:
            notes = {"score": rows, **notes}
            f1 = note_f1([NoteEvent(*r) for r in rows if r[0] < audio.seconds],
                         [NoteEvent(*r) for r in heard])
            text += (f" Against the score's notes in those {audio.seconds:.1f} s: note onset F1 "
                     f"**{f1['onset_f1']:.0%}** (precision {f1['onset_precision']:.0%}, recall "
                     f"{f1['onset_recall']:.0%}; onsets within 50 ms, the same key), with offsets "
                     f"{f1['onset_offset_f1']:.0%}. This is how much of the score survived being played.")
        return roll_figure(notes, f"what the transcriber heard in {what}"), text


def build(flags: common.CancelFlags) -> None:
    """The Compose tab's layout and callbacks, inside an open ``gr.Blocks``."""
    gr.Markdown("Music factorises into notes: p(audio) = p(notes) · p(audio | notes). Here a score comes "
                "from the held-out tunes, your file or the language model `notes_lm`; `midi2wave` plays "
                "it; `transcriber` writes down what it hears. Notebook 09 explains each step.")
    rows = gr.State([])
    with gr.Row():
        with gr.Column(scale=1):
            source = gr.Radio(list(SOURCES), value=SOURCES[0], label="score from")
            tune = gr.Dropdown([], label="held-out tune", info="folk tunes no model here trained on")
            upload = gr.File(label="your score file", file_types=SCORE_SUFFIXES, type="filepath")
            with gr.Row():
                seconds = gr.Slider(4, 30, value=12, step=1, label="seconds",
                                    info="how long notes_lm writes, and how much of the score is played")
                temperature = gr.Slider(0.5, 1.5, value=1.0, step=0.05, label="temperature",
                                        info="notes_lm's and midi2wave's sampling temperature")
                seed = gr.Number(0, precision=0, minimum=0, label="seed", info="the same seed, the same music")
            get = gr.Button("Get the score", variant="primary")
            with gr.Row():
                play_button = gr.Button("Play", variant="primary")
                stop = gr.Button("Stop", variant="stop")
        with gr.Column(scale=2):
            about = gr.Markdown("Pick a score and press **Get the score**.")
            roll = gr.Plot(label="piano roll", format="png", show_label=False)
            with gr.Row():
                played = gr.Audio(label="midi2wave", type="numpy", interactive=False)
                real = gr.Audio(label="FluidSynth (the same notes)", type="numpy", interactive=False)
            play_text = gr.Markdown()
    gr.Markdown("### Transcribe: audio back to notes")
    with gr.Row():
        with gr.Column(scale=1):
            use_played = gr.Checkbox(True, label="transcribe the midi2wave output",
                                     info="or untick and upload any clip")
            clip = gr.Audio(sources=["upload"], type="filepath", label="your clip")
            listen = gr.Button("Transcribe", variant="primary")
        with gr.Column(scale=2):
            heard_plot = gr.Plot(label="transcription", format="png", show_label=False)
            heard_text = gr.Markdown()

    def score_handler(source, tune, upload, seconds, temperature, seed, progress=gr.Progress(),
                      request: gr.Request = None):
        return get_score(source, tune, upload, seconds, temperature, seed, progress, request, flags)

    def play_handler(rows, seconds, temperature, seed, progress=gr.Progress(), request: gr.Request = None):
        return play_score(rows, seconds, temperature, seed, progress, request, flags)

    def transcribe_handler(rows, use_played, played, clip, request: gr.Request = None):
        return transcribe_clip(rows, use_played, played, clip, request)

    events = [
        get.click(score_handler, [source, tune, upload, seconds, temperature, seed], [rows, roll, about],
                  api_name="compose_score", concurrency_limit=1, concurrency_id="generate"),
        play_button.click(play_handler, [rows, seconds, temperature, seed], [played, real, play_text],
                          api_name="compose_play", concurrency_limit=1, concurrency_id="generate"),
    ]
    listen.click(transcribe_handler, [rows, use_played, played, clip], [heard_plot, heard_text],
                 api_name="compose_transcribe", concurrency_limit=1, concurrency_id="generate")

    def stop_handler(request: gr.Request):
        flags.cancel(common.session_of(request))

    stop.click(stop_handler, None, None, cancels=events, queue=False, api_visibility="private")

    def fill_tunes():
        try:
            names = list(held_out_tunes())
        except WorkbenchError as exc:  # no corpus or no FluidSynth: say so, keep the page
            return gr.Dropdown(choices=[], info=f"held-out tunes unavailable: {exc}")
        return gr.Dropdown(choices=names, value=names[0] if names else None)

    common.on_load(fill_tunes, [tune], queue=False)


def build_demo() -> gr.Blocks:
    """The Compose tab on its own page."""
    with gr.Blocks(title="workbench · compose", analytics_enabled=False) as demo:
        build(common.CancelFlags())
    return demo
