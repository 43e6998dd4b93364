"""Receptive field explorer: how far back a stack of causal dilated convolutions sees.

The numbers come from a real WaveNet built with the chosen shape (``create_model``): its
receptive field, its parameter count, and the activation memory one training step keeps for
backpropagation, measured by recording the tensors autograd saves.

Notebook: notebooks/03_receptive_fields.ipynb
"""

from __future__ import annotations

import gradio as gr
import torch

import workbench.viz as viz
from apps import common
from workbench.models import create_model

#: Screen width (px) the dilation diagram is drawn for: two thirds of the page at 1024 px.
PLOT_PX = 560
#: The explorer's starting shape (shown when the tab opens).
DEFAULTS = {"n_layers": 10, "n_stacks": 2, "kernel_size": 2, "residual_channels": 32, "sample_rate": 8000,
            "batch_size": 8, "crop_samples": 3000}
MEASURE_SAMPLES = (256, 512)  # two lengths: activation memory is affine in the input length
ADAM_COPIES = 4  # weights, gradients and Adam's two moments


def saved_bytes(model, n_samples: int) -> int:
    """Bytes of the activations autograd saves in one teacher-forced pass over ``n_samples``.

    Parameters are excluded (they are counted once, separately); tensors that share storage
    are counted once.
    """
    parameters = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages: dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in parameters:
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    specs = {s.name: s for s in model.conditioning}
    cond = {name: [specs[name].default] for name in ("pitch", "instrument", "velocity") if name in specs}
    codes = torch.full((1, n_samples), model.silence, dtype=torch.long)
    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(codes, cond)
    return sum(storages.values())


def wavenet_facts(n_layers: int, n_stacks: int, kernel_size: int, residual_channels: int,
                  sample_rate: int, batch_size: int, crop_samples: int) -> dict:
    """Receptive field, parameters and a training-memory estimate of a WaveNet of this shape.

    One training step feeds ``receptive_field + crop_samples - 1`` samples per item, so every
    prediction in the crop sees its full context.
    """
    model = create_model("wavenet", "small", n_layers=n_layers, n_stacks=n_stacks, kernel_size=kernel_size,
                         residual_channels=residual_channels, gate_channels=2 * residual_channels,
                         skip_channels=2 * residual_channels, sample_rate=sample_rate)
    short, long = (saved_bytes(model, n) for n in MEASURE_SAMPLES)
    per_sample = (long - short) / (MEASURE_SAMPLES[1] - MEASURE_SAMPLES[0])
    fixed = short - per_sample * MEASURE_SAMPLES[0]
    n_input = model.receptive_field + crop_samples - 1
    activations = batch_size * (fixed + per_sample * n_input)
    weights = ADAM_COPIES * 4 * model.n_parameters
    return {"dilations": model.dilations, "receptive_field": model.receptive_field,
            "parameters": model.n_parameters, "input_samples": n_input,
            "activation_bytes": activations, "optimiser_bytes": weights,
            "bytes_per_input_sample": per_sample}


def _size(n_bytes: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:,.1f} {unit}"
    return f"{n_bytes:.0f} B"


def _duration(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds >= 1 else f"{1000 * seconds:.1f} ms"


def explore(n_layers, n_stacks, kernel_size, residual_channels, sample_rate, batch_size, crop_samples):
    """Facts as Markdown and the dilation diagram."""
    with common.user_errors():
        sample_rate = int(sample_rate)
        facts = wavenet_facts(int(n_layers), int(n_stacks), int(kernel_size), int(residual_channels),
                              sample_rate, int(batch_size), int(crop_samples))
        rf = facts["receptive_field"]
        rows = [
            ["receptive field", f"{rf:,} samples = {_duration(rf / sample_rate)} at {sample_rate} Hz"],
            ["formula", f"(kernel - 1) × sum(dilations) + 1 = {int(kernel_size) - 1} × "
                        f"{sum(facts['dilations']):,} + 1"],
            ["layers", f"{len(facts['dilations'])} ({int(n_stacks)} stacks of {int(n_layers)}, "
                       f"dilations 1 … {2 ** (int(n_layers) - 1)})"],
            ["parameters", f"{facts['parameters']:,}"],
            ["samples per training item", f"{facts['input_samples']:,} (receptive field + crop - 1)"],
            ["activations kept for backprop", f"{_size(facts['activation_bytes'])} "
                                              f"({_size(facts['bytes_per_input_sample'])} per input sample)"],
            ["weights, gradients, Adam state", _size(facts["optimiser_bytes"])],
            ["training memory (estimate)",
             f"**{_size(facts['activation_bytes'] + facts['optimiser_bytes'])}**"],
        ]
        text = common.markdown_table(["", "value"], rows)
        fig = viz.receptive_field_diagram(facts["dilations"], int(kernel_size), sample_rate=sample_rate)
        return text, common.legible(fig, PLOT_PX)


def build() -> None:
    """The explorer's layout and callbacks, inside an open ``gr.Blocks``."""
    with gr.Row():
        with gr.Column(scale=1):
            d = DEFAULTS
            n_layers = gr.Slider(1, 14, value=d["n_layers"], step=1, label="layers per stack",
                                 info="dilations 1, 2, 4, … 2^(layers-1)")
            n_stacks = gr.Slider(1, 6, value=d["n_stacks"], step=1, label="stacks")
            kernel_size = gr.Slider(2, 4, value=d["kernel_size"], step=1, label="kernel size")
            residual = gr.Slider(8, 128, value=d["residual_channels"], step=8, label="residual channels",
                                 info="gate and skip channels are twice this")
            sample_rate = gr.Dropdown([8000, 16000, 22050, 24000, 44100], value=d["sample_rate"],
                                      label="sample rate (Hz)")
            batch_size = gr.Slider(1, 64, value=d["batch_size"], step=1, label="batch size")
            crop = gr.Slider(256, 16000, value=d["crop_samples"], step=256, label="training crop (samples)")
            button = gr.Button("Explore", variant="primary")
        with gr.Column(scale=2):
            facts = gr.Markdown(elem_classes=["wb-table"])
            diagram = gr.Plot(label="which inputs reach the output", format="png", show_label=False)
    inputs = [n_layers, n_stacks, kernel_size, residual, sample_rate, batch_size, crop]
    for control in inputs:
        event = control.release if isinstance(control, gr.Slider) else control.input
        event(explore, inputs, [facts, diagram], api_visibility="private", concurrency_id="lab",
              trigger_mode="always_last")
    button.click(explore, inputs, [facts, diagram], api_name="receptive_field", concurrency_id="lab")
    common.on_load(lambda: explore(*DEFAULTS.values()), [facts, diagram], concurrency_id="lab")


def build_demo() -> gr.Blocks:
    """The explorer on its own page."""
    with gr.Blocks(title="workbench · receptive field", analytics_enabled=False) as demo:
        build()
    return demo
