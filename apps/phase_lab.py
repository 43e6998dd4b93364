"""Phase lab: what the phase of a spectrogram carries.

One clip, several resyntheses from (nearly) the same magnitude: random phase, zero phase,
Griffin-Lim, and every vocoder model with a checkpoint (mel frames -> waveform). Each has a
player and magnitude + phase plots on the same colour scales; the table beside them shows
that spectral convergence (magnitude) can be small while the waveform SNR is near 0 dB.
"""

from __future__ import annotations

import time

import gradio as gr

import workbench.viz as viz
from apps import common
from workbench import dsp, metrics
from workbench.audio import Audio

VERSIONS = ("original", "random phase", "zero phase", "Griffin-Lim")
VIEWS = {"phase": "phase", "instantaneous frequency": "if"}
#: Vocoders run on at most this much of the clip: interactive ones (``model.interactive``, measured)
#: on all of it, the others on a short piece.
VOCODER_SECONDS = {True: 4.0, False: 0.5}
FIGURE_WIDTH = 6.0  # inches: two versions side by side
#: Screen widths (px) the figures are drawn for: a version (half the page at 1024 px), the
#: convergence curve beside the table, a vocoder's column.
PLOT_PX, CURVE_PX, VOCODER_PX = 460, 460, 300
#: What the tab shows when it opens.
DEFAULTS = {"n_iter": 32, "view": "phase"}


def resynthesise(clip: Audio, n_iter: int, seed: int = 0) -> tuple[dict[str, Audio], list[float]]:
    """The clip and its phase-swapped versions, all of the clip's length.

    Returns
    -------
    ``({version: Audio}, Griffin-Lim spectral convergence per iteration)``.
    """
    mag = dsp.magnitude(clip.samples)  # (1, 1, freq, frames)
    gl, convergence = dsp.griffin_lim(mag, n_iter=int(n_iter), length=clip.n_samples,
                                      return_convergence=True)
    versions = {
        "original": clip,
        "random phase": dsp.random_phase(clip, generator=seed),
        "zero phase": dsp.zero_phase(clip),
        "Griffin-Lim": clip.with_samples(gl),
    }
    return versions, convergence


def compare_row(name: str, reference: Audio, version: Audio, gain: float) -> list:
    """Spectral convergence and waveform SNR of ``version`` against ``reference``."""
    sc = metrics.spectral_convergence(reference, version)
    snr = metrics.snr(reference, version)
    note = "" if gain == 1.0 else f"scaled by {gain:.2f} to play without clipping"
    return [name, f"{sc:.3f}", f"{snr:.1f}", note]


def run(example, upload, n_iter, view, progress=gr.Progress()):
    """The four versions: players, figures, a comparison table and the Griffin-Lim curve."""
    with common.user_errors():
        clip, what = common.choose_clip(example, upload)
        progress(0.1, desc="Griffin-Lim")
        versions, convergence = resynthesise(clip, int(n_iter))
        kind = VIEWS.get(view, "phase")
        players, figures, rows = [], [], []
        for name, audio in versions.items():
            played, gain = common.playable(audio)
            players.append(common.to_gradio(played))
            figures.append(common.legible(viz.magnitude_phase(audio, title=name, kind=kind, width=FIGURE_WIDTH),
                                          PLOT_PX))
            rows.append(compare_row(name, clip, audio, gain))
        table = (f"**{what}**, {clip.seconds:.2f} s at {clip.sample_rate} Hz. Spectral convergence "
                 "compares magnitudes (0 = identical); SNR compares waveforms (dB, higher = closer).\n\n"
                 + common.markdown_table(["version", "spectral convergence", "SNR (dB)", "note"], rows))
        curve = viz.line_plot(list(range(len(convergence))), {"Griffin-Lim": convergence},
                              xlabel="iteration", ylabel="spectral convergence",
                              title="Griffin-Lim: distance to a consistent spectrogram", logy=True)
        return (*players, *figures, table, common.legible(curve, CURVE_PX))


def default_outputs() -> tuple:
    """:func:`run` on the first example clip with :data:`DEFAULTS`: what the tab shows when it opens
    (about a second on one core)."""
    return run(common.example_names()[0], None, DEFAULTS["n_iter"], DEFAULTS["view"], progress=lambda *a, **k: None)


def vocode(label: str, model, flags: common.CancelFlags, example, upload, view, progress, request):
    """Mel frames of the clip -> the vocoder's waveform, with its figure and distances."""
    with common.user_errors():
        clip, what = common.choose_clip(example, upload, sample_rate=model.sample_rate)
        limit = VOCODER_SECONDS[model.interactive]
        clip = clip.trim(min(clip.seconds, limit))
        cond = common.clip_frames(model, clip)  # the mel, and a source's f0 measured on the clip itself
        session = common.session_of(request)
        flags.reset(session)
        callback = common.progress_callback(progress, flags, session, f"vocoding with {label}")
        began = time.perf_counter()
        audio = model.generate(1, seconds=clip.seconds, cond=cond, generator=0, progress=callback)
        took = time.perf_counter() - began
        n = min(audio.n_samples, clip.n_samples)
        reference, audio = clip.with_samples(clip.samples[..., :n]), audio.with_samples(audio.samples[..., :n])
        played, levels = common.check_levels(audio)
        row = compare_row(label, reference, audio, 1.0)
        text = (f"{what}: the first {reference.seconds:.2f} s at {model.sample_rate} Hz, vocoded in "
                f"{took:.2f} s.\n\n"
                + common.markdown_table(["version", "spectral convergence", "SNR (dB)", "note"], [row])
                + "".join(f"\n\n⚠️ {note}" for note in levels.notes))
        fig = common.legible(viz.magnitude_phase(audio, title=f"{label} (vocoded)", kind=VIEWS.get(view, "phase"),
                                                 width=FIGURE_WIDTH), VOCODER_PX)
        return common.to_gradio(played), fig, text


def build(models: dict, flags: common.CancelFlags) -> None:
    """The phase lab's layout and callbacks, inside an open ``gr.Blocks``."""
    names = common.example_names()
    with gr.Row():
        with gr.Column(scale=1):
            example = gr.Dropdown(names, value=names[0], label="example clip")
            upload = gr.Audio(sources=["upload", "microphone"], type="filepath",
                              label="or your own clip (used instead of the example while present)")
        with gr.Column(scale=1):
            n_iter = gr.Slider(0, 200, value=DEFAULTS["n_iter"], step=1, label="Griffin-Lim iterations",
                               info="0 = invert with zero phase; more iterations, more consistent phase")
            view = gr.Radio(list(VIEWS), value=DEFAULTS["view"], label="second plot")
            button = gr.Button("Resynthesise", variant="primary")
    with gr.Row():
        table = gr.Markdown(elem_classes=["wb-table"])
        curve = gr.Plot(label="Griffin-Lim convergence", format="png", show_label=False)
    players, figures = [], []
    for pair in (VERSIONS[:2], VERSIONS[2:]):
        with gr.Row():
            for name in pair:
                with gr.Column(min_width=320):
                    players.append(gr.Audio(label=name, type="numpy", interactive=False))
                    figures.append(gr.Plot(label=name, format="png", show_label=False))
    button.click(run, [example, upload, n_iter, view], [*players, *figures, table, curve],
                 api_name="phase_lab", concurrency_id="lab")
    common.on_load(default_outputs, [*players, *figures, table, curve], concurrency_id="lab")

    vocoder_models = common.vocoders(models)
    if not vocoder_models:
        gr.Markdown("No vocoder checkpoint yet (a model whose conditioning takes `mel` frames); "
                    "when one ships it appears here.")
        return
    gr.Markdown("### Vocoders: mel frames → waveform")
    events = []
    with gr.Row():
        for label, model in vocoder_models.items():
            with gr.Column(min_width=320):
                voc_button = gr.Button(f"Vocode with {label}")
                voc_audio = gr.Audio(label=f"{label} (vocoded)", type="numpy", interactive=False)
                voc_plot = gr.Plot(label=label, format="png", show_label=False)
                voc_text = gr.Markdown(elem_classes=["wb-table"])

            def handler(example, upload, view, progress=gr.Progress(), request: gr.Request = None,
                        label=label, model=model):
                return vocode(label, model, flags, example, upload, view, progress, request)

            events.append(voc_button.click(handler, [example, upload, view], [voc_audio, voc_plot, voc_text],
                                           api_name=common.endpoint("vocode", label), concurrency_limit=1,
                                           concurrency_id="generate"))
    stop = gr.Button("Stop vocoding", variant="stop")

    def stop_vocoding(request: gr.Request):
        flags.cancel(common.session_of(request))

    stop.click(stop_vocoding, None, None, cancels=events, queue=False, api_visibility="private")


def build_demo(extra_checkpoints: dict | None = None) -> gr.Blocks:
    """The phase lab on its own page."""
    with gr.Blocks(title="workbench · phase lab", analytics_enabled=False) as demo:
        models, _ = common.available_models(extra_checkpoints)
        build(models, common.CancelFlags())
    return demo
