"""What the teaching notebooks share, one module per concern.

Notebooks hold prose and calls; anything longer than a few lines that they need lives here,
with a test (``tests/test_notebook_helpers.py``). ``import workbench.notebook as nb`` gives all
of it:

- :mod:`.display`: :func:`setup`, :func:`is_fast`, :func:`has_front_end`, :func:`show`,
  :func:`players` and :class:`Explorer` (ipywidgets with a static fallback);
- :mod:`.models`: :func:`load_or_create`;
- :mod:`.phase` (notebook 01): :func:`phase_acceleration`, :func:`griffin_lim_view`;
- :mod:`.quantisation` (notebook 02): :func:`snr_by_bits`, :func:`code_entropy`,
  :func:`next_code_distribution`, :func:`quantisation_view`;
- :mod:`.receptive_fields` (notebook 03): :func:`measure_receptive_field`,
  :func:`training_step_cost`, :func:`receptive_field_view`;
- :mod:`.attention` (notebook 10): the Sparse Transformer's patterns and memory, used as
  ``nb.attention.pattern_view(...)``;
- :mod:`.modes` (notebook 04): :class:`Mixture`, :func:`fit_mixture`, :func:`kl_divergences`,
  :func:`ring_mixture`, :func:`mode_coverage`, :func:`covering_vs_seeking`.
"""

from . import attention
from .display import (
    FAST_ENV,
    STATIC_ENV,
    Explorer,
    Players,
    Text,
    has_front_end,
    is_fast,
    players,
    setup,
    show,
)
from .models import load_or_create
from .modes import (
    ConditionStudy,
    Mixture,
    covering_vs_seeking,
    fit_mixture,
    kl_divergences,
    log_magnitude_db,
    mode_coverage,
    ring_mixture,
)
from .phase import griffin_lim_view, phase_acceleration
from .quantisation import code_entropy, next_code_distribution, quantisation_view, snr_by_bits
from .receptive_fields import measure_receptive_field, receptive_field_view, training_step_cost

__all__ = [
    "FAST_ENV", "attention", "STATIC_ENV", "ConditionStudy", "Explorer", "Mixture", "Players", "Text", "code_entropy",
    "covering_vs_seeking", "fit_mixture", "griffin_lim_view", "has_front_end", "is_fast", "kl_divergences",
    "load_or_create", "log_magnitude_db", "measure_receptive_field", "mode_coverage", "next_code_distribution",
    "phase_acceleration", "players", "quantisation_view", "receptive_field_view", "ring_mixture", "setup",
    "show", "snr_by_bits", "training_step_cost",
]
