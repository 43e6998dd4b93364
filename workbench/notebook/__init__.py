"""What the teaching notebooks share, one module per concern.

Notebooks hold prose and calls; anything longer than a few lines that they need lives here,
with a test (``tests/test_notebook_helpers.py``). ``import workbench.notebook as nb`` gives all
of it:

- :mod:`.display`: :func:`setup`, :func:`is_fast`, :func:`has_front_end`, :func:`show`,
  :func:`players`, :class:`Table` and :class:`Explorer` (ipywidgets, its default view always
  drawn as ordinary output first);
- :mod:`.models`: :func:`load_or_create`, :func:`load_shipped`, :func:`aid_line`;
- :mod:`.figures`: note spectrograms in dB re. the loudest bin, zoomed, phase and IF with quiet
  bins greyed out (``nb.figures.note_overview(...)``);
- :mod:`.families` (notebook 00): the survey's table measured, ``nb.families.measure_model(...)``;
- :mod:`.phase` (notebook 01): :func:`phase_acceleration`, :func:`griffin_lim_view`;
- :mod:`.quantisation` (notebook 02): :func:`snr_by_bits`, :func:`code_entropy`,
  :func:`next_code_distribution`, :func:`quantisation_view`, :func:`level_dependence`;
- :mod:`.receptive_fields` (notebook 03): :func:`measure_receptive_field`,
  :func:`training_step_cost`, :func:`receptive_field_view`, :func:`stack_diagram`,
  :func:`step_time_figure`;
- :mod:`.modes` (notebook 04): :class:`Mixture`, :func:`fit_mixture`, :func:`kl_divergences`,
  :func:`ring_mixture`, :func:`mode_coverage`, :func:`covering_vs_seeking`;
- :mod:`.likelihood` (notebooks 04-07): surprise against loudness, temperature sweeps, published
  models beside their aided variants, ``nb.likelihood.pair_table(...)``;
- :mod:`.latents` (notebook 06): a VQ-VAE's own codes against shuffled ones;
- :mod:`.music` (notebook 09): held-out tunes, timescales, ``nb.music.first_seconds(...)``;
- :mod:`.attention` (notebook 10): the Sparse Transformer's patterns and memory, used as
  ``nb.attention.pattern_view(...)``;
- :mod:`.structure` (notebook 11): what each level of a hierarchy hears, structure scores;
- :mod:`.distillation` (notebook 12): teachers and students, diversity, speed;
- :mod:`.docs`: ``make docs``, the read-only HTML copies (``python -m workbench.notebook.docs``).
"""

from . import attention, distillation, families, figures, latents, likelihood, music, structure
from .display import (
    FAST_ENV,
    STATIC_ENV,
    Explorer,
    Players,
    Table,
    Text,
    has_front_end,
    is_fast,
    players,
    setup,
    show,
)
from .families import diversity
from .models import aid_line, load_or_create, load_shipped
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
from .quantisation import (
    code_entropy,
    level_dependence,
    next_code_distribution,
    quantisation_view,
    snr_by_bits,
)
from .receptive_fields import (
    measure_receptive_field,
    receptive_field_view,
    stack_diagram,
    step_time_figure,
    training_step_cost,
)

__all__ = [
    "FAST_ENV", "STATIC_ENV", "ConditionStudy", "Explorer", "Mixture", "Players", "Table", "Text", "aid_line",
    "attention", "code_entropy", "distillation", "music", "structure", "covering_vs_seeking", "diversity", "families", "figures", "fit_mixture",
    "griffin_lim_view", "has_front_end", "is_fast", "kl_divergences", "latents", "level_dependence", "likelihood",
    "load_or_create", "load_shipped", "log_magnitude_db", "measure_receptive_field", "mode_coverage",
    "next_code_distribution", "phase_acceleration", "players", "quantisation_view", "receptive_field_view",
    "ring_mixture", "setup", "show", "snr_by_bits", "stack_diagram", "step_time_figure", "training_step_cost",
]
