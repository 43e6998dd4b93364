"""workbench.notebook: players, the widget explorer (headless), and the notebooks' experiments."""

from __future__ import annotations

import math

import ipywidgets as widgets
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from workbench import Audio
from workbench import notebook as nb
from workbench.errors import ParameterError
from workbench.models import create_model


def _tiny_wavenet(**overrides):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return create_model("wavenet", "tiny", timing=False, **overrides).eval()


# ---- display --------------------------------------------------------------------------------
def test_fast_flag_reads_the_environment(monkeypatch):
    monkeypatch.delenv(nb.FAST_ENV, raising=False)
    assert not nb.is_fast()
    for value, expected in (("1", True), ("yes", True), ("0", False), ("false", False)):
        monkeypatch.setenv(nb.FAST_ENV, value)
        assert nb.is_fast() is expected


def test_outside_a_kernel_there_is_no_front_end_and_setup_is_a_no_op(monkeypatch):
    assert not nb.has_front_end()
    assert nb.setup() is False
    monkeypatch.setenv(nb.STATIC_ENV, "1")
    assert not nb.has_front_end()


def test_players_list_every_clip_with_its_numbers():
    a = Audio(torch.zeros(800), 8000)
    b = Audio(torch.ones(1600) * 0.1, 16000)
    table = nb.players({"silence": a, "dc": b}, {"peak": {"dc": 0.1}}, title="two")
    text = repr(table)
    assert "silence" in text and "dc" in text and "0.1" in text and text.startswith("two")
    html = table._repr_html_()
    assert html.count("<audio") == 2 and "peak" in html


def test_players_refuse_what_they_cannot_play():
    with pytest.raises(ParameterError):
        nb.players({})
    with pytest.raises(ParameterError, match="Audio"):
        nb.players({"x": torch.zeros(10)})
    with pytest.raises(ParameterError, match="not there"):
        nb.players({"a": Audio(torch.zeros(800), 8000)}, {"snr": {"b": 1.0}})


# ---- the explorer, headless -------------------------------------------------------------------
def _bits_explorer(calls):
    def fn(bits, kind):
        calls.append((bits, kind))
        return f"{kind}:{bits}"

    return nb.Explorer(fn, bits=widgets.IntSlider(value=8, min=2, max=16),
                       kind=widgets.Dropdown(options=["mu_law", "uniform"], value="mu_law"))


def test_explorer_runs_with_the_controls_values_and_keeps_the_result():
    calls = []
    ex = _bits_explorer(calls)
    assert ex.values() == {"bits": 8, "kind": "mu_law"}
    assert ex.run() == "mu_law:8" and ex.run(bits=3) == "mu_law:3"
    assert ex.result == "mu_law:3" and ex.n_calls == 2


def test_moving_a_control_reruns_the_callback():
    calls = []
    ex = _bits_explorer(calls)
    ex.widget()
    assert calls == [(8, "mu_law")]
    ex.controls["bits"].value = 4
    assert ex.result == "mu_law:4"
    assert ex.set(kind="uniform") == "uniform:4"
    assert calls[-1] == (4, "uniform") and ex.n_calls == 3
    assert ex.widget() is ex.widget()  # built once


def test_callback_errors_are_kept_and_raised_not_swallowed():
    def fn(bits):
        if bits == 3:
            raise ValueError("bits=3 is cursed")
        return bits

    ex = nb.Explorer(fn, bits=widgets.IntSlider(value=8, min=2, max=16))
    ex.widget()
    with pytest.raises(ValueError, match="cursed"):
        ex.set(bits=3)
    assert isinstance(ex.error, ValueError)
    ex.set(bits=5)
    assert ex.error is None and ex.result == 5


def test_exercise_moves_every_control_once():
    calls = []
    ex = _bits_explorer(calls)
    moved = ex.exercise()
    assert moved == {"bits": 9, "kind": "uniform"}
    assert calls == [(8, "mu_law"), (9, "mu_law"), (9, "uniform")]
    assert ex.values() == moved and ex.n_calls == 3


def test_exercise_raises_what_the_first_render_raised():
    ex = nb.Explorer(lambda bits: 1 / 0, bits=widgets.IntSlider(value=8, min=2, max=16))
    with pytest.raises(ZeroDivisionError):
        ex.exercise()


def test_exercise_steps_down_from_a_slider_at_its_maximum():
    ex = nb.Explorer(lambda n: n, n=widgets.IntSlider(value=10, min=1, max=10))
    assert ex.exercise() == {"n": 9}


def test_explorer_accepts_ipywidgets_abbreviations_and_refuses_nonsense():
    ex = nb.Explorer(lambda n, flag: (n, flag), n=(1, 9, 2), flag=True)
    assert isinstance(ex.controls["n"], widgets.IntSlider) and ex.controls["n"].description == "n"
    assert isinstance(ex.controls["flag"], widgets.Checkbox)
    with pytest.raises(ParameterError):
        nb.Explorer(lambda n: n, n=object())
    with pytest.raises(ParameterError):
        nb.Explorer(lambda: None)
    with pytest.raises(ParameterError, match="no control"):
        nb.Explorer(lambda n: n, n=(1, 3, 1)).set(m=2)


def test_without_a_front_end_the_explorer_shows_its_default_once(capsys):
    ex = nb.Explorer(lambda bits: nb.Text(f"bits={bits}"), bits=widgets.IntSlider(value=8, min=2, max=16))
    ex._ipython_display_()
    assert ex.n_calls == 1 and "bits=8" in capsys.readouterr().out


# ---- models -------------------------------------------------------------------------------------
def test_load_or_create_falls_back_to_an_untrained_model_and_says_so(monkeypatch, tmp_path):
    import workbench.models as models

    monkeypatch.setattr(models, "CHECKPOINTS", tmp_path)
    model, note = nb.load_or_create("wavenet")
    assert not model.training and "UNTRAINED" in note and model.receptive_field == _tiny_wavenet().receptive_field


def test_load_or_create_loads_a_shipped_checkpoint(monkeypatch, tmp_path):
    import workbench.models as models

    monkeypatch.setattr(models, "CHECKPOINTS", tmp_path)
    saved = _tiny_wavenet(n_layers=3)
    saved.save(tmp_path / "wavenet")
    model, note = nb.load_or_create("wavenet")
    assert note.startswith("loaded the shipped wavenet checkpoint")
    assert model.dilations == saved.dilations
    for a, b in zip(model.parameters(), saved.parameters()):
        assert torch.equal(a, b)


# ---- receptive fields ---------------------------------------------------------------------------
@pytest.mark.parametrize("kernel_size,n_stacks,n_layers", [(2, 1, 6), (3, 2, 3), (2, 3, 4), (4, 1, 5)])
def test_measured_receptive_field_equals_the_formula(kernel_size, n_stacks, n_layers):
    model = _tiny_wavenet(kernel_size=kernel_size, n_stacks=n_stacks, n_layers=n_layers).double()
    expected = (kernel_size - 1) * sum(model.dilations) + 1
    assert nb.measure_receptive_field(model) == expected
    # a starting length shorter than the field is doubled until the field fits
    assert nb.measure_receptive_field(model, n_samples=8) == expected


def test_measure_receptive_field_refuses_models_without_a_convolution_stack():
    with pytest.raises(ParameterError):
        nb.measure_receptive_field(torch.nn.Linear(2, 2))


def test_training_activation_memory_grows_with_the_input_length():
    model = _tiny_wavenet(n_layers=5)
    short = nb.training_step_cost(model, n_targets=200, repeats=1)
    long = nb.training_step_cost(model, n_targets=1800, repeats=1)
    assert short["input_samples"] == model.receptive_field + 199
    assert short["activation_bytes"] > 0 and short["step_seconds"] > 0
    ratio = long["activation_bytes"] / short["activation_bytes"]
    length_ratio = long["input_samples"] / short["input_samples"]
    assert 0.75 * length_ratio < ratio <= 1.05 * length_ratio
    assert all(p.grad is None for p in model.parameters()) and not model.training


def test_training_activation_memory_grows_linearly_with_depth():
    # stacks of 3 layers (receptive field 8 each): same input length, 3, 6 and 9 layers
    costs = [nb.training_step_cost(_tiny_wavenet(n_layers=3, n_stacks=s), n_targets=600 - 7 * s, repeats=1)
             for s in (1, 2, 3)]
    assert len({c["input_samples"] for c in costs}) == 1
    first, second = (costs[1]["activation_bytes"] - costs[0]["activation_bytes"],
                     costs[2]["activation_bytes"] - costs[1]["activation_bytes"])
    assert first > 0 and second == pytest.approx(first, rel=0.05)


def test_receptive_field_view_draws_and_states_the_measurement():
    fig, text = nb.receptive_field_view(4, 2, 3)
    assert isinstance(fig, Figure)
    assert "formula (k - 1) * sum(dilations) + 1 = 61 samples; measured by gradients: 61 samples" in repr(text)


# ---- phase --------------------------------------------------------------------------------------
def test_phase_of_a_steady_tone_is_predictable_and_of_noise_is_not():
    sr = 16000
    t = torch.arange(sr) / sr
    tone = nb.phase_acceleration(Audio(0.5 * torch.sin(2 * math.pi * 440 * t), sr))
    assert np.median(tone["jump"][tone["level_db"] > -10]) < 0.01  # the edge frames see the padding
    noise = Audio(0.1 * torch.randn(4 * sr, generator=torch.Generator().manual_seed(0)), sr)
    disjoint = nb.phase_acceleration(noise, n_fft=1024, hop_length=1024)  # frames share no samples
    assert abs(disjoint["jump"].mean() - math.pi / 2) < 0.05  # uniform on (-pi, pi]
    overlapping = nb.phase_acceleration(noise, n_fft=1024, hop_length=256)
    assert 0.5 < overlapping["jump"].mean() < disjoint["jump"].mean()


def test_griffin_lim_view_reports_the_spectral_convergence(clips):
    clip = clips["flute"].trim(0.5)
    fig, table = nb.griffin_lim_view(clip, 512, 128, 8)
    assert isinstance(fig, Figure)
    sc = table.numbers["spectral convergence"]["Griffin-Lim (8 it.)"]
    assert 0 < sc < 0.5 and len(table.clips) == 2


# ---- quantisation -------------------------------------------------------------------------------
def test_uniform_snr_gains_about_six_db_per_bit(clips):
    snrs = nb.snr_by_bits(clips["piano"], range(4, 12), "uniform")
    assert np.all(np.diff(snrs) > 0)
    assert 5.5 < np.polyfit(np.arange(4, 12), snrs, 1)[0] < 7.0


def test_mu_law_keeps_quiet_clips_clean_where_uniform_does_not(clips):
    quiet = clips["piano"].with_samples(clips["piano"].samples * 0.03)
    fig, table = nb.quantisation_view(quiet, 8)
    assert isinstance(fig, Figure)
    snr = table.numbers["SNR (dB)"]
    assert snr["mu-law 8 bits"] > snr["uniform 8 bits"] + 20


def test_code_entropy_is_bits_for_uniform_use_and_zero_for_one_code():
    assert nb.code_entropy(torch.arange(256), 8) == pytest.approx(8.0)
    assert nb.code_entropy(torch.full((100,), 7), 8) == 0.0


def test_a_categorical_fits_the_next_code_better_than_a_gaussian(clips):
    study = nb.next_code_distribution(clips["piano"], bits=8)
    assert study["categorical"].sum() == pytest.approx(1.0) and study["gaussian"].sum() == pytest.approx(1.0)
    assert study["bits_categorical"] < study["bits_gaussian"]
    assert study["counts"].sum() == study["n_cases"]
    with pytest.raises(ParameterError):
        nb.next_code_distribution(Audio(torch.zeros(100) + 0.9, 16000))


# ---- mode covering and seeking ------------------------------------------------------------------
TARGET = dict(weights=[0.45, 0.35, 0.2], means=[-4.0, 0.0, 4.0], stds=[0.6, 0.6, 0.6])


def test_mixture_density_integrates_to_one_and_samples_match_it():
    target = nb.Mixture(**TARGET)
    x = torch.linspace(-12, 12, 4801, dtype=torch.float64)[:, None]
    assert float(torch.trapezoid(target.log_prob(x).exp(), x[:, 0])) == pytest.approx(1.0, abs=1e-6)
    samples = target.sample(20000, generator=0)
    assert float(samples.mean()) == pytest.approx(0.45 * -4 + 0.2 * 4, abs=0.1)
    with pytest.raises(ParameterError):
        nb.Mixture([1.0], [[0.0, 1.0]], [1.0, 1.0])
    with pytest.raises(ParameterError):
        nb.Mixture([1.0], [0.0], [0.0])


def test_kl_of_a_distribution_with_itself_is_zero():
    target = nb.Mixture(**TARGET)
    kl = nb.kl_divergences(target, target, n=2000)
    assert kl["forward"] == pytest.approx(0.0, abs=1e-9) and kl["reverse"] == pytest.approx(0.0, abs=1e-9)


def test_maximum_likelihood_gaussian_is_the_data_mean_and_std():
    target = nb.Mixture(**TARGET)
    q = nb.fit_mixture(target, 1, "forward", init_means=[0.5], init_std=0.5, generator=0)
    data = target.sample(512, generator=0)  # the fit's own training samples (same seed, drawn first)
    assert float(q.means) == pytest.approx(float(data.mean()), abs=0.1)
    assert float(q.stds) == pytest.approx(float(data.std()), rel=0.05)


def test_reverse_kl_seeks_the_mode_it_starts_near_and_forward_kl_covers():
    target = nb.Mixture(**TARGET)
    forward = nb.fit_mixture(target, 1, "forward", init_means=[0.5], init_std=0.5)
    for start, mode in ((-3.0, -4.0), (0.5, 0.0), (3.0, 4.0)):
        q = nb.fit_mixture(target, 1, "reverse", init_means=[start], init_std=0.5)
        assert float(q.means) == pytest.approx(mode, abs=0.15) and float(q.stds) == pytest.approx(0.6, abs=0.1)
        kl_q, kl_f = nb.kl_divergences(target, q), nb.kl_divergences(target, forward)
        assert kl_f["forward"] < kl_q["forward"]
    assert nb.kl_divergences(target, forward)["forward"] < 1.0


def test_fit_mixture_refuses_unknown_objectives():
    target = nb.Mixture(**TARGET)
    with pytest.raises(ParameterError, match="objective"):
        nb.fit_mixture(target, 1, "sideways")
    with pytest.raises(ParameterError):
        nb.fit_mixture(target, 0)


def test_mode_coverage_of_the_data_itself_is_complete():
    ring = nb.ring_mixture(8)
    coverage = nb.mode_coverage(ring.sample(4000, generator=0), ring)
    assert coverage["modes_hit"] == 8 and coverage["on_mode"] > 0.98
    assert nb.mode_coverage(torch.zeros(100, 2), ring)["modes_hit"] == 0


def test_on_the_ring_reverse_kl_is_sharp_and_forward_kl_hits_every_mode():
    ring = nb.ring_mixture(8)
    forward = nb.mode_coverage(nb.fit_mixture(ring, 1, "forward", init_std=0.5).sample(20000, 1), ring)
    reverse = nb.mode_coverage(nb.fit_mixture(ring, 1, "reverse", init_std=0.5).sample(20000, 1), ring)
    assert forward["modes_hit"] == 8 and forward["on_mode"] < 0.1
    assert reverse["modes_hit"] == 1 and reverse["on_mode"] > 0.9


def test_identical_candidates_have_no_spread_and_nothing_to_drop():
    sr = 16000
    tone = 0.5 * torch.sin(2 * math.pi * 330 * torch.arange(sr // 2) / sr)
    study = nb.covering_vs_seeking(Audio(torch.stack([tone, tone, tone])[:, None], sr))
    assert study.spread_db == pytest.approx(0.0, abs=1e-6)
    assert study.covering_gap_db == pytest.approx(0.0, abs=1e-4) and study.seeking_loss_db == pytest.approx(0.0, abs=1e-6)
    assert study.covering_audio.n_samples == tone.shape[-1]
    with pytest.raises(ParameterError):
        nb.covering_vs_seeking(Audio(tone, sr))


def test_wider_candidate_sets_spread_more_and_their_mean_is_further_from_all():
    sr = 16000
    t = torch.arange(sr // 2) / sr
    narrow = torch.stack([0.5 * torch.sin(2 * math.pi * 330 * t + p) for p in (0.0, 2.0, 4.0)])
    wide = torch.stack([0.5 * torch.sin(2 * math.pi * f * t) for f in (220.0, 330.0, 495.0)])
    narrow_study = nb.covering_vs_seeking(Audio(narrow[:, None], sr))
    wide_study = nb.covering_vs_seeking(Audio(wide[:, None], sr))
    assert wide_study.spread_db > 3 * narrow_study.spread_db
    assert wide_study.covering_gap_db > narrow_study.covering_gap_db
    assert wide_study.seeking_loss_db > narrow_study.seeking_loss_db
    # the mean of phase-shifted copies of one tone cancels: quieter than any of them
    assert narrow_study.mean_waveform.samples.abs().max() < 0.5 * narrow.abs().max()
