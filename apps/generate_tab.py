"""Generate: any model with a checkpoint, its controls built from its CondSpecs and its declared
abilities alone; and Compare A/B (:mod:`apps.compare`), two settings heard blind.

Every control does what it says or says why not: a control the current settings ignore (the
pitch, once an example clip's mel frames decide the note) is disabled with its reason, and the
header and the pitch reading describe what was actually made. Beside the generated sound: the
same pitch and instrument from the real dataset (SoundFont notes), or the clip the model was
given, so the ear can judge the model against what it was trained on.
"""

from __future__ import annotations

import functools
import math
import re
import time
from dataclasses import dataclass, field

import gradio as gr
import torch

import workbench.viz as viz
from apps import common
from workbench.audio import Audio
from workbench.dsp.synth import hz_to_midi, midi_to_hz
from workbench.errors import ParameterError
from workbench.models.base import note_name
from workbench.models.capabilities import Vocoder

VIEWS = {"none": None, "phase": "phase", "instantaneous frequency": "if"}
#: The choice of a frames control that passes nothing (the model uses its default).
NO_FRAMES = "(none)"
MIN_SECONDS, STEP_SECONDS, MAX_SLIDER_SECONDS = 0.05, 0.05, 4.0
#: What a dense input measured on a clip takes over from the scalar controls (the shared
#: conditioning vocabulary: a mel holds the whole note; an f0 curve the pitch; a loudness curve
#: the dynamics).
OVERRIDES = {"mel": ("pitch", "instrument", "velocity"), "f0_hz": ("pitch",), "loudness_db": ("velocity",)}
#: The inputs every model's Generate endpoint takes after its own controls (API parameter names).
SHARED_INPUTS = ("seconds", "temperature", "seed", "extra_plot", "measure_pitch")
#: Screen width (px) a generated-sound figure is drawn for (half the output column at 1024 px).
PLOT_PX = 250
#: Seconds of audio in each chunk a streaming model hands the live player: the first plays after
#: about this much sampling, and the stream's overhead stays small against it.
STREAM_CHUNK_SECONDS = 0.25
HARMONIC_SHARE_HELP = "the energy at those harmonics; near 100% is a clean note, noise or another pitch lowers it"


# ---- what the page says about a model ----------------------------------------------------------------
def default_seconds(model) -> float:
    """A length that answers quickly: the model's own, or at most 0.5 s where generation is slow
    (not measured as :attr:`~workbench.models.base.GenerativeModel.interactive`)."""
    seconds = model.default_seconds if model.max_seconds is None else min(model.default_seconds, model.max_seconds)
    return seconds if model.interactive else min(seconds, 0.5)


def aid_text(model) -> str:
    """What hands the model its pitch (its declared :class:`~workbench.models.base.Aid`), in one line."""
    aid = model.aid
    if aid is None:
        return "no aid: the network learns the pitch itself"
    where = "as in its paper" if aid.in_paper else "an aid its paper does not have"
    return f"aid: **{aid.kind}** ({where}): {aid.description}"


def describe(model) -> str:
    """Two lines about a model: family, likelihood, size, rate, speed; then its aid."""
    speed = model.speed
    pace = ("speed not measured in its card, so it waits for Generate" if speed is None else
            f"{speed.real_time_factor:.3g}× real time" + (", so it answers every change" if model.interactive
                                                           else ", so it waits for Generate"))
    return (f"**{model.name}** · {model.family} · likelihood: {model.likelihood} · "
            f"{model.n_parameters:,} parameters · {model.sample_rate} Hz · {pace}\n\n{aid_text(model)}")


# ---- controls -------------------------------------------------------------------------------------------
def control_for(spec, model=None):
    """The Gradio component for one CondSpec (the only source of the model's controls and their help)."""
    label = spec.name + (f" ({spec.unit})" if spec.unit else "")
    if spec.kind == "choice":
        return gr.Dropdown(list(spec.choices), value=spec.default, label=label, info=spec.help)
    if spec.kind == "frames":
        # a clip's frames take over what the scalar controls would give (OVERRIDES), so by
        # default they are left to the model and the pitch slider decides
        follows = (f"; {NO_FRAMES} with a mel clip chosen: measured on that clip"
                   if isinstance(model, Vocoder) and spec.name != "mel" else "")
        return gr.Dropdown([NO_FRAMES, *common.example_names()], value=NO_FRAMES,
                           label=f"{spec.name} from an example clip",
                           info=f"{spec.help}. {NO_FRAMES}: left to the controls above{follows}")
    if spec.range is not None and spec.range[0] < spec.range[1]:
        low, high = spec.range
        step = 1 if spec.kind == "int" else (high - low) / 100
        return gr.Slider(low, high, value=spec.default, step=step, label=label, info=spec.help)
    if spec.range is not None:  # a single value: show it, nothing to choose
        return gr.Number(spec.range[0], label=label, interactive=False,
                         info=f"{spec.help} (this checkpoint knows only this value)")
    return gr.Number(spec.default, label=label, info=spec.help,
                     precision=0 if spec.kind == "int" else None)


def option_control(name: str, choices: tuple):
    """A dropdown for one of the model's own ``generate`` options (its first choice is its default)."""
    return gr.Dropdown(list(choices), value=choices[0], label=name,
                       info=f"an option of this model's generate: {', '.join(map(str, choices))}")


def seconds_control(model):
    """The length control: a slider, or the fixed length shown where the model has one."""
    if model.max_seconds is not None:
        return gr.Number(round(model.max_seconds, 3), label="seconds (fixed)", interactive=False,
                         info=f"{model.name} always makes {model.max_seconds:.3g} s: its generator's output "
                              "has a fixed size")
    if model.interactive:
        info = "frame-level conditions from a clip are cut to this length"
    elif model.speed is None:
        info = "its speed is not measured yet (no card numbers), so it starts short"
    else:
        info = f"this model samples at {model.speed.real_time_factor:.2g}× real time (measured): keep it short"
    return gr.Slider(MIN_SECONDS, MAX_SLIDER_SECONDS, value=default_seconds(model), step=STEP_SECONDS,
                     label="seconds", info=info)


def temperature_control(model):
    """The temperature slider, starting at the model's own default; hidden where it changes nothing."""
    default = model.default_temperature
    note = "" if default == 1.0 else f" (this model's default is {default:g}, as its authors sample)"
    return gr.Slider(0.05, 2.0, value=default, step=0.05, label="temperature", visible=model.uses_temperature,
                     info="scales the sampling noise or logits; 1 samples the model as trained" + note)


def pitch_text(midi) -> str:
    if midi is None:
        return ""
    return f"**{note_name(int(midi))}** · {midi_to_hz(int(midi)):.1f} Hz"


@functools.lru_cache(maxsize=32)
def clip_pitch(name: str, seconds: float | None = None) -> float:
    """Median pYIN f0 (Hz) of an example clip, or of its first ``seconds`` (NaN when nothing is voiced)."""
    from workbench.metrics import median_f0

    clip = common.example_clip(name)
    return median_f0(clip if seconds is None else clip.trim(seconds), fmin=40.0, fmax=2000.0)


def clip_pitch_text(name: str) -> str:
    f0 = clip_pitch(name)
    if not math.isfinite(f0):
        return f"clip '{name}': pYIN hears no steady pitch in it"
    return f"clip '{name}': {note_name(round(float(hz_to_midi(f0))))} ({f0:.1f} Hz, pYIN median)"


def overrides(model, chosen: dict) -> dict[str, str]:
    """``{scalar control: frames name}`` for the controls that the chosen clips take over.

    The most specific clip wins (an f0 curve over a mel for the pitch). A vocoder given an f0 curve
    but no mel still draws its mel from the pitch control, so there the pitch stays in use.
    """
    names = {s.name for s in model.conditioning}
    picked = {frames: value for frames, value in chosen.items() if value not in (None, NO_FRAMES)}
    out: dict[str, str] = {}
    for frames in sorted(picked, key=lambda f: len(OVERRIDES.get(f, ()))):  # fewest targets: most specific
        if isinstance(model, Vocoder) and frames != "mel" and "mel" not in picked:
            continue
        for target in OVERRIDES.get(frames, ()):
            if target in names:
                out.setdefault(target, frames)
    return out


def override_reason(frames: str, target: str) -> str:
    what = "note" if frames == "mel" else target
    return (f"ignored now: the clip's {frames} frames decide the {what} (set '{frames} from an example "
            f"clip' to {NO_FRAMES} to use this control)")


# ---- one generation ---------------------------------------------------------------------------------------
def figure(audio, title: str, view: str | None, width_px: float = PLOT_PX):
    """Waveform, spectrogram and optionally phase or IF, with an FFT size the clip can hold."""
    n_fft = min(1024, 2 ** int(math.log2(max(16, audio.n_samples))))
    rows = 3 if view else 2
    fig, axes = viz.new_figure(rows, 1, width=5.0, row_height=2.0)
    viz.waveform(audio, ax=axes[0, 0], title=title)
    viz.spectrogram(audio, ax=axes[1, 0], n_fft=n_fft, hop_length=n_fft // 4)
    if view:
        viz.phase_plot(audio, ax=axes[2, 0], n_fft=n_fft, hop_length=n_fft // 4, kind=view)
    return common.legible(fig, width_px)


def number(name: str, value, cast=float):
    """A control's value as a number, or an error that names the control."""
    if value is None or value == "":
        raise common.error(f"{name} has no value; set it and press Generate again")
    try:
        result = cast(float(value))
    except (TypeError, ValueError):
        raise common.error(f"{name}={value!r} is not a number; set it and press Generate again") from None
    if not math.isfinite(result):
        raise common.error(f"{name}={value!r} must be a finite number")
    return result


@dataclass
class Request:
    """What one Generate press asks of a model: its ``cond`` and what the page should say about it."""

    cond: dict = field(default_factory=dict)
    clips: dict = field(default_factory=dict)  # frames name -> example clip it was measured on
    taken: dict = field(default_factory=dict)  # scalar control -> frames name that took it over
    seconds: float = 1.0


def cond_from(model, specs, values, seconds: float) -> Request:
    """The ``cond`` of a Generate press: scalar controls, and frames measured on the chosen clips.

    Controls taken over by a clip (:func:`overrides`) are left out, so the model cannot mix a
    slider's pitch into a clip's note. A vocoder given a mel clip also measures its other frames
    (a source's f0) on that clip unless another clip is chosen for them.
    """
    chosen = {spec.name: value for spec, value in zip(specs, values) if spec.kind == "frames"}
    taken = overrides(model, chosen)
    clips = {name: value for name, value in chosen.items() if value not in (None, NO_FRAMES)}
    if clips:  # every clip cut to the same length, so their frames line up
        seconds = min([seconds] + [common.example_clip(c).seconds for c in clips.values()])
    request = Request(taken=taken, seconds=seconds)
    if isinstance(model, Vocoder) and "mel" in clips:
        clip = common.example_clip(clips["mel"], model.sample_rate).trim(seconds)
        for name, frames in common.clip_frames(model, clip).items():
            if name not in clips:
                request.cond[name], request.clips[name] = frames, clips["mel"]
    for spec, value in zip(specs, values):
        if spec.kind == "frames":
            if value not in (None, NO_FRAMES):
                clip = common.example_clip(value, model.sample_rate).trim(seconds)
                request.cond[spec.name] = common.frames_from_clip(model, spec.name, clip)
                request.clips[spec.name] = value
            continue
        if spec.name in taken:
            continue
        if value is None or value == "":
            raise common.error(f"{spec.name} has no value; set it and press Generate again")
        if spec.kind == "int":
            request.cond[spec.name] = number(spec.name, value, lambda v: int(round(v)))
        elif spec.kind == "float":
            request.cond[spec.name] = number(spec.name, value)
        else:
            request.cond[spec.name] = value
    return request


def target_pitch(request: Request) -> tuple[float, str] | None:
    """The pitch the result should have (MIDI, fractional for a clip) and how to say it, or None."""
    if "pitch" in request.cond:
        midi = request.cond["pitch"]
        return float(midi), f"the asked {note_name(midi)}"
    frames = request.taken.get("pitch")
    if frames and frames in request.clips:
        f0 = clip_pitch(request.clips[frames], round(request.seconds, 3))
        if math.isfinite(f0):
            midi = float(hz_to_midi(f0))
            return midi, f"the clip's {note_name(round(midi))} ({f0:.1f} Hz)"
    return None


def pitch_report(audio, target: tuple[float, str] | None, measure: bool) -> list[str]:
    """The pYIN reading (when ``measure``) and the harmonic share of a clip against ``target``."""
    from workbench.metrics import cents_error, harmonic_share, median_f0

    if target is None:
        return ["no pitch to check: this model was given no note"]
    midi, said = target
    lines = []
    if measure:
        f0 = median_f0(audio, fmin=max(30.0, midi_to_hz(midi - 12)), fmax=midi_to_hz(midi + 12))
        if math.isfinite(f0):
            heard = note_name(round(float(hz_to_midi(f0))))
            lines.append(f"measured pitch (pYIN): **{f0:.1f} Hz = {heard}**, {cents_error(f0, midi):+.0f} cents "
                         f"from {said}")
        else:
            lines.append(f"measured pitch (pYIN): none found within an octave of {said} (no steady note)")
    try:
        share = harmonic_share(audio, midi)
    except ParameterError:
        lines.append("harmonic share: the clip is too short to measure (make it longer)")
    else:
        value = "none (silent)" if not math.isfinite(share) else f"**{share:.0%}**"
        lines.append(f"harmonic share at the harmonics of {said}: {value} ({HARMONIC_SHARE_HELP})")
    return lines


def header(model, label: str, request: Request, temperature: float, seed: int, options: dict) -> str:
    """What was made, in one line: by which model (its studio label: the result stays on the page when
    another model is chosen), the scalar conditioning used, the clips and their notes."""
    parts = [f"{k} {v} ({note_name(v)})" if k == "pitch" else f"{k} {v}"
             for k, v in request.cond.items() if not isinstance(v, torch.Tensor)]
    by_clip: dict[str, list[str]] = {}
    for name, clip in request.clips.items():
        by_clip.setdefault(clip, []).append(name)
    parts += [f"{' and '.join(names)} from clip '{clip}'" for clip, names in by_clip.items()]
    if request.taken.get("pitch") in request.clips:
        target = target_pitch(request)
        heard = ("pYIN hears no steady pitch in it" if target is None else
                 f"{note_name(round(target[0]))} ({float(midi_to_hz(target[0])):.1f} Hz, pYIN median)")
        parts.append(f"note set by the clip '{request.clips[request.taken['pitch']]}': {heard}")
    title = ", ".join(parts) or model.name
    extra = [f"temperature {temperature:g}"] if model.uses_temperature else []
    extra += [f"{k} {v}" for k, v in options.items()]
    return " · ".join([f"{label}: **{title}**", *extra, f"seed {seed}"])


@dataclass
class Press:
    """One Generate press read from the page: what to ask the model and how to show the result."""

    asked: Request
    temperature: float
    seed: int
    options: dict
    view: str | None
    measure: bool


def read_press(model, values) -> Press:
    """The values of a model's controls (its CondSpecs, its options, then :data:`SHARED_INPUTS`) read
    and checked; raises ``gr.Error`` naming the control that is wrong."""
    specs = model.conditioning
    n_specs, options = len(specs), list(model.generate_options)
    cond_values = values[:n_specs]
    option_values = values[n_specs:n_specs + len(options)]
    seconds, temperature, seed, view, measure = values[n_specs + len(options):]
    seconds = number("seconds", seconds)
    temperature = number("temperature", temperature)
    seed = number("seed", seed, int)
    asked = cond_from(model, specs, cond_values, seconds)
    return Press(asked, temperature, seed, dict(zip(options, option_values)), VIEWS.get(view), bool(measure))


def sampling_args(model, press: Press, flags: common.CancelFlags, progress, request, label: str) -> dict:
    """The keyword arguments of ``generate`` (or ``generate_stream``) for a press, with a progress
    callback that drives the page's progress bar and honours Stop."""
    session = common.session_of(request)
    flags.reset(session)
    callback = common.progress_callback(progress, flags, session, f"sampling {label}")
    return dict(seconds=press.asked.seconds, cond=press.asked.cond, temperature=press.temperature,
                generator=press.seed, progress=callback, **press.options)


def report(label: str, model, press: Press, audio, took: float, first_chunk: float | None = None):
    """The page's outputs for a finished clip: the player's audio (levels checked), its figure, the
    reference and its figure, and the text (header, level notes, pitch, speed)."""
    asked = press.asked
    played, levels = common.check_levels(audio)
    lines = [header(model, label, asked, press.temperature, press.seed, press.options)]
    lines += [f"⚠️ {note}" for note in levels.notes]
    lines += pitch_report(audio, target_pitch(asked), press.measure)
    lines.append(f"generated {audio.seconds:.2f} s in **{took:.2f} s** ({audio.n_samples / took:,.0f} "
                 f"samples/s): real-time factor **{audio.seconds / took:.3g}** (seconds of audio per "
                 "second of compute; 1 or more keeps up with playback)")
    if first_chunk is not None:
        lines.append(f"streamed: the first {min(STREAM_CHUNK_SECONDS, audio.seconds):g} s was ready for the live "
                     f"player after **{first_chunk:.2f} s**, while the rest was sampled (the browser starts playing "
                     "it a moment later)")
    fig = figure(played, label, press.view)
    ref_audio, ref_fig = None, None
    if asked.clips:  # the model was given a clip: play that beside the result
        name = next(iter(asked.clips.values()))
        ref = common.example_clip(name, model.sample_rate).trim(asked.seconds)
        ref_audio = common.to_gradio(ref)
        ref_fig = figure(ref, f"clip '{name}' (its frames were used)", press.view)
    elif "pitch" in asked.cond and "instrument" in asked.cond:
        cond = asked.cond
        ref, why = common.reference_note(cond["instrument"], cond["pitch"], int(cond.get("velocity", 100)),
                                         round(audio.seconds, 3), model.sample_rate)
        if ref is not None:
            ref_audio = common.to_gradio(ref)
            ref_fig = figure(ref, f"real {cond['instrument']} {note_name(cond['pitch'])} (SoundFont)", press.view)
        else:
            lines.append(f"no real note to compare: {why}")
    return common.to_gradio(played), fig, ref_audio, ref_fig, "\n\n".join(lines)


def generate(label: str, model, flags: common.CancelFlags, values, progress, request):
    """One Generate press: sample, check levels, plot, measure, fetch the real note, report speed."""
    with common.user_errors():
        press = read_press(model, values)
        kwargs = sampling_args(model, press, flags, progress, request, label)
        began = time.perf_counter()
        audio = model.generate(1, **kwargs)
        return report(label, model, press, audio, max(time.perf_counter() - began, 1e-9))


def generate_streaming(label: str, model, flags: common.CancelFlags, values, progress, request):
    """One Generate press on a :class:`~workbench.models.capabilities.Streaming` model: each chunk goes
    to the live player as soon as it is sampled (the first plays while the rest is computed), then
    the finished clip and everything :func:`generate` shows.

    Yields the live player's chunk and the five outputs of :func:`generate` (skipped until the end).
    """
    with common.user_errors():
        press = read_press(model, values)
        kwargs = sampling_args(model, press, flags, progress, request, label)
        began = time.perf_counter()
        chunks = common.read_ahead(model.generate_stream(1, chunk_seconds=STREAM_CHUNK_SECONDS, **kwargs))
        live = common.LiveStream(model.sample_rate)
        pieces, first_chunk = [], None
        try:
            yield live.start(), *(gr.skip() for _ in range(5))  # the player opens while the model samples
            for chunk in chunks:
                first_chunk = time.perf_counter() - began if first_chunk is None else first_chunk
                pieces.append(chunk.samples)
                yield live.chunk(chunk), *(gr.skip() for _ in range(5))
        except GeneratorExit:  # the page stopped listening (Stop): end the sampler too
            flags.cancel(common.session_of(request))
            raise
        took = max(time.perf_counter() - began, 1e-9)
        audio = Audio(torch.cat(pieces, dim=-1), model.sample_rate)
        yield gr.skip(), *report(label, model, press, audio, took, first_chunk)


# ---- layout ----------------------------------------------------------------------------------------------
@dataclass
class ModelColumn:
    """One model's controls (only the chosen model's column is visible)."""

    label: str
    model: object
    controls: list
    options: list
    seconds: object
    temperature: object


def _follow_clips(model, controls, note) -> None:
    """Events that disable the controls a chosen clip takes over (with the reason) and re-enable them;
    the note under the pitch slider names the clip's note instead of the slider's."""
    specs = model.conditioning
    frames = [(spec, c) for spec, c in zip(specs, controls) if spec.kind == "frames"]
    targets = [(spec, c) for spec, c in zip(specs, controls)
               if spec.kind != "frames" and any(spec.name in OVERRIDES.get(f.name, ()) for f, _ in frames)
               and c.interactive is not False]
    if not frames or not targets:
        return
    pitch = next((c for spec, c in zip(specs, controls) if spec.name == "pitch"), None)
    with_note = note is not None and pitch is not None
    outputs = [c for _, c in targets] + ([note] if with_note else [])

    def update(*values):
        chosen = dict(zip([spec.name for spec, _ in frames], values))
        taken = overrides(model, chosen)
        out = [gr.update(interactive=spec.name not in taken,
                         info=override_reason(taken[spec.name], spec.name) if spec.name in taken else spec.help)
               for spec, _ in targets]
        if with_note:
            out.append(f"note set by the {clip_pitch_text(chosen[taken['pitch']])}" if "pitch" in taken
                       else pitch_text(values[-1]))
        return out

    for _, control in frames:
        control.change(update, [c for _, c in frames] + ([pitch] if with_note else []), outputs, queue=False,
                       show_progress="hidden", api_visibility="private")


def build(models: dict, failures: dict, flags: common.CancelFlags) -> None:
    """The Generate tab's layout and callbacks, inside an open ``gr.Blocks``."""
    from apps import compare

    for label, why in failures.items():
        gr.Markdown(f"⚠️ `{label}` could not be loaded: {why}")
    if not models:
        gr.Markdown(
            "No model has a trained checkpoint yet. Train one, e.g.\n\n"
            "```\nworkbench train wavenet --preset small --out assets/checkpoints/wavenet\n```\n\n"
            "then restart the studio. The other tabs work without any checkpoint."
        )
        return
    with gr.Tabs():
        with gr.Tab("One model"):
            build_single(models, flags)
        with gr.Tab("Compare A/B"):
            compare.build(models, flags)


def element_id(label: str) -> str:
    """A model label as a page element id (letters, digits and dashes): ``wavenet+source`` ->
    ``wavenet-source``; the browser tests find a model's controls by it."""
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def build_single(models: dict, flags: common.CancelFlags) -> None:
    """One model at a time: its controls, Generate, the result beside the real note; a model that
    streams plays its first chunk in the live player while it samples the rest."""
    labels = list(models)
    with gr.Row():
        model_choice = gr.Dropdown(labels, value=labels[0], label="model", scale=1)
        model_info = gr.Markdown(describe(models[labels[0]]), elem_id="model-info")
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            columns, per_model = [], []
            for label, model in models.items():
                with gr.Column(visible=label == labels[0], elem_id=f"model-{element_id(label)}") as column:
                    controls, note = [], None
                    for spec in model.conditioning:
                        control = control_for(spec, model)
                        controls.append(control)
                        if spec.name == "pitch" and isinstance(control, gr.Slider):
                            note = gr.Markdown(pitch_text(spec.default))
                            control.change(pitch_text, control, note, queue=False,
                                           show_progress="hidden", api_visibility="private")
                    _follow_clips(model, controls, note)
                    options = [option_control(name, choices) for name, choices in model.generate_options.items()]
                    seconds = seconds_control(model)
                    temperature = temperature_control(model)
                columns.append(column)
                per_model.append(ModelColumn(label, model, controls, options, seconds, temperature))
            seed = gr.Number(0, precision=0, minimum=0, maximum=2**31 - 1, label="seed",
                             info="the same seed gives the same sound")
            view = gr.Radio(list(VIEWS), value="none", label="extra plot")
            measure = gr.Checkbox(True, label="measure the pitch of the result (pyin)")
            with gr.Row():
                buttons = [gr.Button("Generate", variant="primary", visible=label == labels[0], scale=2,
                                     elem_id=f"generate-{element_id(label)}") for label in labels]
                stop = gr.Button("Stop", variant="stop", scale=1)
        with gr.Column(scale=2):
            info = gr.Markdown("Press **Generate**.")
            with gr.Row():
                with gr.Column(min_width=280):
                    live_audio = gr.Audio(label="playing while it samples", streaming=True, autoplay=True,
                                          interactive=False, visible=common.streams(models[labels[0]]))
                    out_audio = gr.Audio(label="generated", type="numpy", interactive=False)
                    out_plot = gr.Plot(label="generated", format="png", show_label=False)
                with gr.Column(min_width=280):
                    ref_audio = gr.Audio(label="reference: the real note, or the clip given", type="numpy",
                                         interactive=False)
                    ref_plot = gr.Plot(label="real note", format="png", show_label=False)

    outputs = [out_audio, out_plot, ref_audio, ref_plot, info]
    events = []
    for column, button in zip(per_model, buttons):
        inputs = [*column.controls, *column.options, column.seconds, column.temperature, seed, view, measure]
        names = [s.name for s in column.model.conditioning] + list(column.model.generate_options) + list(SHARED_INPUTS)
        streaming = common.streams(column.model)

        def handler(values, progress, request, label=column.label, model=column.model):
            return generate(label, model, flags, values, progress, request)

        def stream_handler(values, progress, request, label=column.label, model=column.model):
            yield from generate_streaming(label, model, flags, values, progress, request)

        def live_handler(values, progress, request, label=column.label, model=column.model):
            *values, chosen = values
            if chosen != label:  # a stray release on a model column that is being hidden
                return tuple(gr.skip() for _ in outputs)
            return generate(label, model, flags, values, progress, request)

        def live_stream_handler(values, progress, request, label=column.label, model=column.model):
            *values, chosen = values
            if chosen != label:
                yield tuple(gr.skip() for _ in range(len(outputs) + 1))
                return
            yield from generate_streaming(label, model, flags, values, progress, request)

        fn = common.with_named_inputs(names, handler)
        api_name = common.endpoint("generate", column.label)
        if streaming:
            # the page's button streams into the live player; the API endpoint keeps returning the
            # finished clip (the same five outputs for every model), from a button that is never shown
            events.append(button.click(common.with_named_inputs(names, stream_handler), inputs,
                                       [live_audio, *outputs], show_progress_on=outputs, api_visibility="private",
                                       concurrency_limit=1, concurrency_id="generate"))
            events.append(gr.Button(visible=False).click(fn, inputs, outputs, api_name=api_name,
                                                         concurrency_limit=1, concurrency_id="generate"))
        else:
            events.append(button.click(fn, inputs, outputs, api_name=api_name, concurrency_limit=1,
                                       concurrency_id="generate"))
        if column.model.interactive:  # models measured fast enough answer every control change
            live = common.with_named_inputs([*names, "model"], live_stream_handler if streaming else live_handler)
            for control in column.controls:
                if isinstance(control, gr.Slider):
                    events.append(control.release(live, [*inputs, model_choice],
                                                  [live_audio, *outputs] if streaming else outputs,
                                                  show_progress_on=outputs, api_visibility="private", concurrency_limit=1,
                                                  concurrency_id="generate", trigger_mode="always_last"))

    def choose(label):
        visible = [other == label for other in labels]
        return ([gr.Column(visible=v) for v in visible] + [gr.Button(visible=v) for v in visible]
                + [describe(models[label]), gr.Audio(visible=common.streams(models[label]))])

    model_choice.change(choose, model_choice, [*columns, *buttons, model_info, live_audio], queue=False,
                        api_visibility="private")

    def stop_generation(request: gr.Request):
        flags.cancel(common.session_of(request))

    stop.click(stop_generation, None, None, cancels=events, queue=False, api_name="stop_generation")


def build_demo(extra_checkpoints: dict | None = None) -> gr.Blocks:
    """The Generate tab on its own page."""
    with gr.Blocks(title="workbench · generate", analytics_enabled=False) as demo:
        models, failures = common.available_models(extra_checkpoints)
        build(models, failures, common.CancelFlags())
    return demo
