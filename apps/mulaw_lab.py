"""Mu-law lab: what storing samples with few bits does, uniformly or mu-law companded.

Notebook: notebooks/02_mu_law.ipynb
"""

from __future__ import annotations

import gradio as gr

import workbench.viz as viz
from apps import common
from workbench import dsp, metrics

KINDS = {"uniform": "uniform", "mu-law": "mu_law"}
#: Screen width (px) the two figures are drawn for: half the page at 1024 px.
PLOT_PX = 460
DEFAULT_BITS = 8


def run(example, upload, bits):
    """Players for the original and both quantisers, error signals, SNRs and the curves."""
    with common.user_errors():
        clip, what = common.choose_clip(example, upload)
        bits = int(bits)
        versions = {name: dsp.quantise(clip, bits=bits, kind=kind) for name, kind in KINDS.items()}
        rows = []
        for name, audio in versions.items():
            rows.append([name, f"{metrics.snr(clip, audio):.1f}",
                         f"{metrics.segmental_snr(clip, audio):.1f}"])
        table = (f"**{what}** stored with {bits} bits ({2 ** bits} levels). SNR over the whole clip and "
                 "segmental SNR (mean over 16 ms frames, so quiet passages count as much as loud ones):\n\n"
                 + common.markdown_table(["quantiser", "SNR (dB)", "segmental SNR (dB)"], rows))
        errors = common.legible(viz.error_signals(clip, versions, title=f"quantisation error at {bits} bits"), PLOT_PX)
        curve = common.legible(viz.companding_curve(bits), PLOT_PX)
        players = [common.to_gradio(clip)] + [common.to_gradio(a) for a in versions.values()]
        return (*players, errors, table, curve)


def build() -> None:
    """The mu-law lab's layout and callbacks, inside an open ``gr.Blocks``."""
    names = common.example_names()
    with gr.Row():
        with gr.Column(scale=1):
            example = gr.Dropdown(names, value=names[0], label="example clip")
            upload = gr.Audio(sources=["upload", "microphone"], type="filepath",
                              label="or your own clip (used instead of the example while present)")
            bits = gr.Slider(1, 16, value=DEFAULT_BITS, step=1, label="bits per sample",
                             info="WaveNet uses 8-bit mu-law: 256 classes for its softmax")
            button = gr.Button("Quantise", variant="primary")
        with gr.Column(scale=2):
            table = gr.Markdown(elem_classes=["wb-table"])
            with gr.Row():
                original = gr.Audio(label="original (16-bit)", type="numpy", interactive=False)
                uniform = gr.Audio(label="uniform", type="numpy", interactive=False)
                mu_law = gr.Audio(label="mu-law", type="numpy", interactive=False)
    with gr.Row():
        errors = gr.Plot(label="error signals", format="png", show_label=False)
        curve = gr.Plot(label="companding", format="png", show_label=False)
    inputs = [example, upload, bits]
    outputs = [original, uniform, mu_law, errors, table, curve]
    button.click(run, inputs, outputs, api_name="mu_law_lab", concurrency_id="lab")
    bits.release(run, inputs, outputs, api_visibility="private", concurrency_id="lab",
                 trigger_mode="always_last")
    example.input(run, inputs, outputs, api_visibility="private", concurrency_id="lab",
                  trigger_mode="always_last")
    common.on_load(lambda: run(names[0], None, DEFAULT_BITS), outputs, concurrency_id="lab")


def build_demo() -> gr.Blocks:
    """The mu-law lab on its own page."""
    with gr.Blocks(title="workbench · mu-law lab", analytics_enabled=False) as demo:
        build()
    return demo
