"""Receptive fields, measured: by gradients, and the cost of a training step against depth.

Notebook: notebooks/03_receptive_fields.ipynb
"""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F

from ..errors import ParameterError
from .display import Text


def measure_receptive_field(model, n_samples: int | None = None) -> int:
    """Receptive field of a WaveNet-like model measured with gradients, in samples.

    Feeds random features ``(1, channels, n_samples)`` through ``model.forward_features``,
    backpropagates from the last output step and counts the span of inputs whose gradient is
    non-zero. Doubles ``n_samples`` until the span no longer touches the first input.

    Raises
    ------
    ParameterError
        The model is not a WaveNet (the measurement drives its dilated stack directly).
    """
    from ..models.wavenet import WaveNet

    if not isinstance(model, WaveNet):
        raise ParameterError(f"{type(model).__name__} is not a WaveNet; pass a WaveNet")
    channels = model.embed.weight.shape[1]
    n = n_samples or 256
    gen = torch.Generator().manual_seed(0)
    was_training = model.training
    model.eval()
    try:
        while True:
            x = torch.randn(1, channels, n, generator=gen, dtype=model.embed.weight.dtype, requires_grad=True)
            model.forward_features(x)[0, :, -1].sum().backward()
            support = (x.grad.abs().sum(dim=1)[0] > 0).nonzero().flatten()  # inputs that matter
            model.zero_grad(set_to_none=True)
            if int(support.min()) > 0 or n >= 1 << 22:
                return int(support.max() - support.min() + 1)
            n *= 2
    finally:
        model.train(was_training)


def training_step_cost(model, n_targets: int = 256, batch_size: int = 1, repeats: int = 3,
                       generator=0, statistic: str = "min") -> dict:
    """Activation memory and time of one teacher-forced training step with full context.

    Every target sees a full receptive field of real samples (as in ``WaveNet.training_step``
    away from the onset), so the input is ``receptive_field + n_targets - 1`` samples long.

    What is measured:

    - ``activation_bytes``: bytes of the tensors autograd keeps for the backward pass (counted
      with ``torch.autograd.graph.saved_tensors_hooks``, each storage once, parameters excluded).
      This is the part of training memory that grows with depth and input length; the step's
      peak adds parameters, gradients and short-lived temporaries on top.
    - ``step_seconds``: wall time of forward + backward over ``repeats`` runs: the fastest
      (``statistic="min"``) or the median (``"median"``, steadier on a busy machine); every
      run's time is kept in ``step_times``.

    Returns
    -------
    dict with ``receptive_field``, ``n_layers`` (convolution layers), ``input_samples``,
    ``activation_bytes``, ``step_seconds``, ``step_times``, ``n_parameters``.

    Raises
    ------
    ParameterError
        Unknown ``statistic``.
    """
    if statistic not in ("min", "median"):
        raise ParameterError(f"statistic={statistic!r} must be 'min' or 'median'")
    from ..dsp.spectral import make_generator

    rf = model.receptive_field
    n_in = rf + n_targets - 1
    gen = make_generator(generator) or torch.Generator().manual_seed(0)
    codes = torch.randint(0, model.n_classes, (batch_size, n_in + 1), generator=gen)
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    times, saved_bytes = [], 0
    model.train()
    for _ in range(max(1, repeats)):
        saved: dict[int, int] = {}

        def pack(t, saved=saved):
            storage = t.untyped_storage()
            if storage.data_ptr() not in params:
                saved[storage.data_ptr()] = storage.nbytes()
            return t

        model.zero_grad(set_to_none=True)
        start = time.perf_counter()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            logits = model(codes[:, :-1])[..., rf - 1:]  # (batch, classes, n_targets)
            loss = F.cross_entropy(logits, codes[:, rf:])
        loss.backward()
        times.append(time.perf_counter() - start)
        saved_bytes = sum(saved.values())
    model.zero_grad(set_to_none=True)
    model.eval()
    return {"receptive_field": rf, "n_layers": len(model.dilations), "input_samples": n_in,
            "activation_bytes": saved_bytes, "n_parameters": model.n_parameters, "step_times": times,
            "step_seconds": min(times) if statistic == "min" else float(statistics.median(times))}


def step_time_figure(receptive_fields, step_seconds, title: str | None = None):
    """Training step time against receptive field on log-log axes, with a slope-1 guide.

    On log-log axes a cost proportional to the receptive field is a line of slope 1; the guide
    runs through the largest model's point, so a curve that bends away from it at the small end
    shows the fixed overhead every step pays whatever its size.

    Returns
    -------
    Figure

    Raises
    ------
    ParameterError
        Fewer than two points, or a non-positive value.
    """
    import numpy as np

    from ..viz import line_plot

    rf = np.asarray(receptive_fields, dtype=float)
    ms = 1000 * np.asarray(step_seconds, dtype=float)
    if rf.size < 2 or rf.size != ms.size or (rf <= 0).any() or (ms <= 0).any():
        raise ParameterError("step_time_figure needs two or more positive (receptive field, time) pairs")
    guide = ms[-1] * rf / rf[-1]  # slope 1 through the last point
    fig = line_plot(rf, {"training step (ms), median of runs": ms, "slope 1: time proportional to the field": guide},
                    xlabel="receptive field (samples)", ylabel="ms", logx=True, logy=True,
                    title=title or "training step time against receptive field (log-log)")
    fig.axes[0].lines[1].set(linestyle="--", marker="", color="0.5")
    fig.axes[0].legend(fontsize=8)
    return fig


def slope(x, y) -> float:
    """Least-squares slope of log(y) against log(x): the exponent of a power law y ~ x^slope."""
    import numpy as np

    return float(np.polyfit(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)), 1)[0])


def stack_diagram(dilations, kernel_size: int = 2, sample_rate: int | None = None, title: str | None = None):
    """:func:`workbench.viz.receptive_field_diagram` of one stack, marked "x n" when ``dilations``
    repeat one stack n times (drawing all of them squeezes the picture until nothing can be read).

    The receptive field of n stacks in series is n times one stack's span (``(k - 1) * sum``) plus 1.

    Returns
    -------
    (Figure, dict with ``n_stacks``, ``stack``, ``one_stack``, ``receptive_field``)
    """
    from ..viz import receptive_field_diagram

    dilations = [int(d) for d in dilations]
    n_stacks = 1
    for n in range(len(dilations), 1, -1):
        if len(dilations) % n == 0 and dilations == dilations[: len(dilations) // n] * n:
            n_stacks = n
            break
    stack = dilations[: len(dilations) // n_stacks]
    one = (kernel_size - 1) * sum(stack) + 1
    total = (kernel_size - 1) * sum(dilations) + 1
    label = (f"one stack of {len(stack)} layers (x{n_stacks} in series): {one} samples; "
             f"all {n_stacks}: {total} samples" if n_stacks > 1 else f"{len(stack)} layers: {total} samples")
    if sample_rate:
        label += f" = {1000 * total / sample_rate:.1f} ms at {sample_rate} Hz"
    fig = receptive_field_diagram(stack, kernel_size, title=title or label)
    ax = fig.axes[0]
    if n_stacks > 1:
        ax.text(1.01, 0.5, f"x{n_stacks}", transform=ax.transAxes, fontsize=22, fontweight="bold",
                color="C3", va="center", ha="left")
    if title:
        ax.texts[0].set_text(label)
    return fig, {"n_stacks": n_stacks, "stack": stack, "one_stack": one, "receptive_field": total}


def receptive_field_view(n_layers: int, n_stacks: int, kernel_size: int, sample_rate: int = 16000,
                         preset: str = "tiny"):
    """A fresh WaveNet with this stack: its dilation diagram, and its receptive field by formula and by gradients.

    Returns
    -------
    (Figure, Text)
    """
    from ..models import create_model
    from ..viz import receptive_field_diagram

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = create_model("wavenet", preset, n_layers=int(n_layers), n_stacks=int(n_stacks),
                             kernel_size=int(kernel_size), timing=False).double()
    formula = (kernel_size - 1) * sum(model.dilations) + 1
    measured = measure_receptive_field(model)
    fig = receptive_field_diagram(model.dilations, kernel_size, sample_rate=sample_rate,
                                  title=f"{n_stacks} stack(s) x {n_layers} layers, kernel {kernel_size}")
    text = Text(f"formula (k - 1) * sum(dilations) + 1 = {formula} samples; measured by gradients: "
                f"{measured} samples = {1000 * measured / sample_rate:.1f} ms at {sample_rate} Hz "
                f"({len(model.dilations)} layers)")
    return fig, text
