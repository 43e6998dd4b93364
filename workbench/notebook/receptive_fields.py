"""Receptive fields, measured: by gradients, and the cost of a training step against depth.

Notebook: notebooks/03_receptive_fields.ipynb
"""

from __future__ import annotations

import math
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
                       generator=0) -> dict:
    """Activation memory and time of one teacher-forced training step with full context.

    Every target sees a full receptive field of real samples (as in ``WaveNet.training_step``
    away from the onset), so the input is ``receptive_field + n_targets - 1`` samples long.

    What is measured:

    - ``activation_bytes``: bytes of the tensors autograd keeps for the backward pass (counted
      with ``torch.autograd.graph.saved_tensors_hooks``, each storage once, parameters excluded).
      This is the part of training memory that grows with depth and input length; the step's
      peak adds parameters, gradients and short-lived temporaries on top.
    - ``step_seconds``: wall time of forward + backward, the fastest of ``repeats`` runs.

    Returns
    -------
    dict with ``receptive_field``, ``n_layers`` (convolution layers), ``input_samples``,
    ``activation_bytes``, ``step_seconds``, ``n_parameters``.
    """
    from ..dsp.spectral import make_generator

    rf = model.receptive_field
    n_in = rf + n_targets - 1
    gen = make_generator(generator) or torch.Generator().manual_seed(0)
    codes = torch.randint(0, model.n_classes, (batch_size, n_in + 1), generator=gen)
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    best, saved_bytes = math.inf, 0
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
        best = min(best, time.perf_counter() - start)
        saved_bytes = sum(saved.values())
    model.zero_grad(set_to_none=True)
    model.eval()
    return {"receptive_field": rf, "n_layers": len(model.dilations), "input_samples": n_in,
            "activation_bytes": saved_bytes, "step_seconds": best, "n_parameters": model.n_parameters}


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
