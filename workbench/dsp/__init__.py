"""Pure DSP functions: quantisation, spectral analysis and resynthesis, oscillators.

Every function accepts a tensor or an :class:`~workbench.audio.Audio` and returns the same kind.
"""

from .quantise import (
    mid_tread_decode,
    mid_tread_encode,
    mu_law_compress,
    mu_law_decode,
    mu_law_encode,
    mu_law_expand,
    quantise,
    uniform_decode,
    uniform_encode,
)
from .spectral import (
    SpectralConfig,
    griffin_lim,
    if_to_phase,
    instantaneous_frequency,
    istft,
    log_mel,
    magnitude,
    mel_filterbank,
    phase,
    phase_to_if,
    random_phase,
    stft,
    swap_phase,
    unwrapped_phase,
    zero_phase,
)
from .synth import adsr_envelope, harmonic_synth, hz_to_midi, midi_to_hz, sine

__all__ = [
    "SpectralConfig",
    "adsr_envelope",
    "griffin_lim",
    "harmonic_synth",
    "hz_to_midi",
    "if_to_phase",
    "instantaneous_frequency",
    "istft",
    "log_mel",
    "magnitude",
    "mel_filterbank",
    "midi_to_hz",
    "mid_tread_decode",
    "mid_tread_encode",
    "mu_law_compress",
    "mu_law_decode",
    "mu_law_encode",
    "mu_law_expand",
    "phase",
    "phase_to_if",
    "quantise",
    "random_phase",
    "sine",
    "stft",
    "swap_phase",
    "uniform_decode",
    "uniform_encode",
    "unwrapped_phase",
    "zero_phase",
]
