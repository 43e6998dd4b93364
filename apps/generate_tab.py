"""Generate: any model with a checkpoint, its controls built from its CondSpecs alone.

Beside the generated sound: the same pitch and instrument from the real dataset (SoundFont
notes), so the ear can judge the model against what it was trained on.
"""

from __future__ import annotations

import math
import time

import gradio as gr
import torch

import workbench.viz as viz
from apps import common
from workbench.dsp.synth import midi_to_hz
from workbench.models.base import note_name

VIEWS = {"none": None, "phase": "phase", "instantaneous frequency": "if"}
#: The choice of a frames control that passes nothing (the model uses its default).
NO_FRAMES = "(none)"
MIN_SECONDS, STEP_SECONDS = 0.05, 0.05


def default_seconds(model) -> float:
    """A length that answers quickly: the model's own, or at most 0.5 s where generation is slow
    (not measured as :attr:`~workbench.models.base.GenerativeModel.interactive`)."""
    seconds = model.default_seconds if model.max_seconds is None else min(model.default_seconds, model.max_seconds)
    return seconds if model.interactive else min(seconds, 0.5)


def describe(model) -> str:
    """One line about a model: family, likelihood, size, rate."""
    return (f"**{model.name}** · {model.family} · likelihood: {model.likelihood} · "
            f"{model.n_parameters:,} parameters · {model.sample_rate} Hz")


def control_for(spec):
    """The Gradio component for one CondSpec (the only source of the model's controls)."""
    label = spec.name + (f" ({spec.unit})" if spec.unit else "")
    if spec.kind == "choice":
        return gr.Dropdown(list(spec.choices), value=spec.default, label=label, info=spec.help)
    if spec.kind == "frames":
        # a vocoder's mel is its main input; f0 or loudness curves override what pitch and
        # velocity would give, so by default they are left to the model
        names = common.example_names()
        return gr.Dropdown([*names, NO_FRAMES], value=names[0] if spec.name == "mel" else NO_FRAMES,
                           label=f"{spec.name} from an example clip",
                           info=f"{spec.help}; {NO_FRAMES} leaves it to the model")
    if spec.range is not None and spec.range[0] < spec.range[1]:
        low, high = spec.range
        step = 1 if spec.kind == "int" else (high - low) / 100
        return gr.Slider(low, high, value=spec.default, step=step, label=label, info=spec.help)
    if spec.range is not None:  # a single value: show it, nothing to choose
        return gr.Number(spec.range[0], label=label, interactive=False,
                         info=f"{spec.help} (this checkpoint knows only this value)")
    return gr.Number(spec.default, label=label, info=spec.help,
                     precision=0 if spec.kind == "int" else None)


def seconds_control(model):
    """The length control: a slider, or the fixed length shown where the model has one."""
    if model.max_seconds is not None:
        return gr.Number(round(model.max_seconds, 3), label="seconds", interactive=False,
                         info=f"{model.name} always makes {model.max_seconds:.3g} s (its generator's fixed size)")
    return gr.Slider(MIN_SECONDS, 4.0, value=default_seconds(model), step=STEP_SECONDS, label="seconds",
                     info="frame-level conditions from a clip are cut to this length" if model.interactive
                     else "this model is slow to sample (measured): keep it short")


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


def figure(audio, title: str, view: str | None):
    """Waveform, spectrogram and optionally phase or IF, with an FFT size the clip can hold."""
    n_fft = min(1024, 2 ** int(math.log2(max(16, audio.n_samples))))
    rows = 3 if view else 2
    fig, axes = viz.new_figure(rows, 1, row_height=2.0)
    viz.waveform(audio, ax=axes[0, 0], title=title)
    viz.spectrogram(audio, ax=axes[1, 0], n_fft=n_fft, hop_length=n_fft // 4)
    if view:
        viz.phase_plot(audio, ax=axes[2, 0], n_fft=n_fft, hop_length=n_fft // 4, kind=view)
    return fig


def _cond_from(model, specs, values, seconds: float) -> dict:
    cond = {}
    for spec, value in zip(specs, values):
        if value is None:
            raise common.error(f"{spec.name} has no value; set it and press Generate again")
        if spec.kind == "frames":
            if value == NO_FRAMES:
                continue
            clip = common.example_clip(value, model.sample_rate).trim(seconds)
            cond[spec.name] = common.frames_from_clip(model, spec.name, clip)
        elif spec.kind == "int":
            cond[spec.name] = int(round(float(value)))
        elif spec.kind == "float":
            cond[spec.name] = float(value)
        else:
            cond[spec.name] = value
    return cond


def _measured_pitch(audio, midi: int) -> str:
    from workbench.metrics import cents_error, median_f0

    f0 = median_f0(audio, fmin=max(30.0, midi_to_hz(midi - 12)), fmax=midi_to_hz(midi + 12))
    if not math.isfinite(f0):
        return f"measured pitch: none found near {note_name(midi)} (pyin heard no steady note)"
    cents = cents_error(f0, midi)
    return f"measured pitch (pyin): {f0:.1f} Hz, {cents:+.0f} cents from {note_name(midi)}"


def generate(label: str, model, flags: common.CancelFlags, values, progress, request):
    """One Generate press: sample, plot, fetch the real note, report speed."""
    specs = model.conditioning
    *cond_values, seconds, temperature, seed, view, measure = values
    with common.user_errors():
        seconds = float(seconds)
        cond = _cond_from(model, specs, cond_values, seconds)
        session = common.session_of(request)
        flags.reset(session)
        callback = common.progress_callback(progress, flags, session, f"sampling {label}")
        began = time.perf_counter()
        audio = model.generate(1, seconds=seconds, cond=cond, temperature=float(temperature),
                               generator=int(seed or 0), progress=callback)
        took = time.perf_counter() - began
        shown = {k: (f"{v} ({note_name(v)})" if k == "pitch" else v)
                 for k, v in cond.items() if not isinstance(v, torch.Tensor)}
        shown.update({spec.name: f"from '{value}'" for spec, value in zip(specs, cond_values)
                      if spec.kind == "frames" and value != NO_FRAMES})
        title = ", ".join(f"{k} {v}" for k, v in shown.items()) or label
        fig = figure(audio, f"{label}: {title}", VIEWS.get(view))
        took = max(took, 1e-9)
        lines = [f"**{title}** · temperature {float(temperature):g} · seed {int(seed or 0)}",
                 f"generated {audio.seconds:.2f} s in **{took:.2f} s** ({audio.n_samples / took:,.0f} "
                 f"samples/s): real-time factor **{audio.seconds / took:.3g}** (seconds of audio per "
                 "second of compute; 1 or more keeps up with playback)"]
        if "pitch" in cond and measure:
            lines.append(_measured_pitch(audio, cond["pitch"]))
        ref_audio, ref_fig = None, None
        if "pitch" in cond and "instrument" in cond:
            ref, why = common.reference_note(cond["instrument"], cond["pitch"],
                                             int(cond.get("velocity", 100)), round(audio.seconds, 3),
                                             model.sample_rate)
            if ref is not None:
                ref_audio = common.to_gradio(ref)
                ref_fig = figure(ref, f"real {cond['instrument']} {note_name(cond['pitch'])} "
                                      "(SoundFont dataset)", VIEWS.get(view))
            else:
                lines.append(f"no real note to compare: {why}")
        return common.to_gradio(audio), fig, ref_audio, ref_fig, "\n\n".join(lines)


def build(models: dict, failures: dict, flags: common.CancelFlags) -> None:
    """The Generate tab's layout and callbacks, inside an open ``gr.Blocks``."""
    for label, why in failures.items():
        gr.Markdown(f"⚠️ `{label}` could not be loaded: {why}")
    if not models:
        gr.Markdown(
            "No model has a trained checkpoint yet. Train one, e.g.\n\n"
            "```\nworkbench train wavenet --preset small --out assets/checkpoints/wavenet\n```\n\n"
            "then restart the studio. The other tabs work without any checkpoint."
        )
        return
    labels = list(models)
    with gr.Row():
        model_choice = gr.Dropdown(labels, value=labels[0], label="model", scale=1)
        model_info = gr.Markdown(describe(models[labels[0]]))
    with gr.Row():
        with gr.Column(scale=1):
            columns, per_model = [], []
            for label, model in models.items():
                with gr.Column(visible=label == labels[0]) as column:
                    controls = []
                    for spec in model.conditioning:
                        control = control_for(spec)
                        controls.append(control)
                        if spec.name == "pitch" and isinstance(control, gr.Slider):
                            note = gr.Markdown(pitch_text(spec.default))
                            control.change(pitch_text, control, note, queue=False,
                                           show_progress="hidden", api_visibility="private")
                    seconds = seconds_control(model)
                    temperature = temperature_control(model)
                columns.append(column)
                per_model.append((label, model, controls, seconds, temperature))
            seed = gr.Number(0, precision=0, minimum=0, maximum=2**31 - 1, label="seed",
                             info="the same seed gives the same sound")
            view = gr.Radio(list(VIEWS), value="none", label="extra plot")
            measure = gr.Checkbox(True, label="measure the pitch of the result (pyin)")
            with gr.Row():
                buttons = [gr.Button("Generate", variant="primary", visible=label == labels[0], scale=2)
                           for label in labels]
                stop = gr.Button("Stop", variant="stop", scale=1)
        with gr.Column(scale=2):
            info = gr.Markdown("Press **Generate**.")
            with gr.Row():
                with gr.Column():
                    out_audio = gr.Audio(label="generated", type="numpy", interactive=False)
                    out_plot = gr.Plot(label="generated", format="png", show_label=False)
                with gr.Column():
                    ref_audio = gr.Audio(label="real note (SoundFont dataset)", type="numpy",
                                         interactive=False)
                    ref_plot = gr.Plot(label="real note", format="png", show_label=False)

    outputs = [out_audio, out_plot, ref_audio, ref_plot, info]
    events = []
    for (label, model, controls, seconds, temperature), button in zip(per_model, buttons):
        inputs = [*controls, seconds, temperature, seed, view, measure]

        def handler(values, progress, request, label=label, model=model):
            return generate(label, model, flags, values, progress, request)

        def live_handler(values, progress, request, label=label, model=model):
            *values, chosen = values
            if chosen != label:  # a stray release on a model column that is being hidden
                return tuple(gr.skip() for _ in outputs)
            return generate(label, model, flags, values, progress, request)

        fn = common.with_positional_inputs(len(inputs), handler)
        events.append(button.click(fn, inputs, outputs, api_name=common.endpoint("generate", label),
                                   concurrency_limit=1, concurrency_id="generate"))
        if model.interactive:  # models measured fast enough answer every control change
            live = common.with_positional_inputs(len(inputs) + 1, live_handler)
            for control in controls:
                if isinstance(control, gr.Slider):
                    events.append(control.release(live, [*inputs, model_choice], outputs,
                                                  api_visibility="private", concurrency_limit=1,
                                                  concurrency_id="generate", trigger_mode="always_last"))

    def choose(label):
        visible = [other == label for other in labels]
        return ([gr.Column(visible=v) for v in visible] + [gr.Button(visible=v) for v in visible]
                + [describe(models[label])])

    model_choice.change(choose, model_choice, [*columns, *buttons, model_info], queue=False,
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
