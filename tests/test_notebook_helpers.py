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


# ---- display: tables and the explorer's static view -------------------------------------------
def test_table_formats_cells_and_refuses_ragged_rows():
    table = nb.Table(["model", "bits"], [["wavenet", 4.7712], ["vae", None], ["gan", float("nan")]], title="t",
                     notes=["a note"])
    text = repr(table)
    assert text.splitlines()[0] == "t" and "4.77" in text and text.count("—") == 2 and text.endswith("a note")
    html = table._repr_html_()
    assert html.count("<tr>") == 4 and "<caption>t</caption>" in html
    with pytest.raises(ParameterError, match="cells"):
        nb.Table(["a", "b"], [[1]])


def test_with_a_front_end_the_default_view_is_drawn_before_the_controls(monkeypatch, capsys):
    import workbench.notebook.display as display

    monkeypatch.setattr(display, "has_front_end", lambda: True)
    ex = nb.Explorer(lambda bits: nb.Text(f"bits={bits}"), bits=widgets.IntSlider(value=8, min=2, max=16))
    ex._ipython_display_()
    out = capsys.readouterr().out
    assert "bits=8" in out and "VBox" in out and out.index("bits=8") < out.index("VBox")
    assert ex.n_calls == 1  # the controls' output area is not drawn a second time
    ex.controls["bits"].value = 9  # moving a control still redraws
    assert ex.n_calls == 2 and repr(ex.result) == "bits=9"


# ---- models: which checkpoint, which aid --------------------------------------------------------
def test_aid_line_says_whether_the_aid_is_in_the_paper():
    from workbench.models import model_class

    assert "no aid" in nb.aid_line(model_class("wavenet"))
    line = nb.aid_line(model_class("wavenet+source"))
    assert "oscillator source" in line and "not in the paper" in line
    assert "part of the published model" in nb.aid_line(model_class("ddsp"))


def test_load_shipped_takes_the_first_name_with_a_checkpoint(monkeypatch, tmp_path):
    import workbench.models as models

    monkeypatch.setattr(models, "CHECKPOINTS", tmp_path)
    model, note = nb.load_shipped("wavenet", "wavenet+source")
    assert model.name == "wavenet" and "UNTRAINED" in note  # nothing shipped: the first, untrained
    with torch.random.fork_rng():
        torch.manual_seed(0)
        create_model("wavenet+source", "tiny", timing=False).save(tmp_path / "wavenet+source")
    model, note = nb.load_shipped("wavenet", "wavenet+source")
    assert model.name == "wavenet+source" and "wavenet ships no checkpoint yet" in note and "aid = oscillator" in note
    _tiny_wavenet().save(tmp_path / "wavenet")
    model, note = nb.load_shipped("wavenet", "wavenet+source")
    assert model.name == "wavenet" and "no aid" in note
    with pytest.raises(ParameterError):
        nb.load_shipped()


# ---- families: the survey's table, measured ------------------------------------------------------
def test_diversity_is_zero_for_copies_and_grows_with_difference():
    sr = 16000
    t = torch.arange(sr // 2) / sr
    a = 0.5 * torch.sin(2 * math.pi * 330 * t)
    close = 0.5 * torch.sin(2 * math.pi * 335 * t)
    far = 0.5 * torch.sin(2 * math.pi * 660 * t) + 0.05 * torch.randn(len(t), generator=torch.Generator().manual_seed(0))
    assert nb.diversity([a, a, a], sr) == 0.0
    assert 0 < nb.diversity([a, close], sr) < nb.diversity([a, far], sr)
    assert nb.diversity(Audio(torch.stack([a, far])[:, None], sr), sr) == pytest.approx(nb.diversity([a, far], sr))
    with pytest.raises(ParameterError):
        nb.diversity([a], sr)


def test_each_aided_variant_finds_its_published_model():
    from workbench.models import REGISTRY, GenerativeModel, list_models, model_class

    assert nb.families.published_partner("notes_lm") is None
    for name in list_models(GenerativeModel):
        cls = model_class(name)
        partner = nb.families.published_partner(name)
        if cls.aid is not None and not cls.aid.in_paper and cls.aid_fields:
            assert partner is not None and partner in REGISTRY and model_class(partner).aid is None, name
    assert nb.families.published_partner("wavenet+source") == "wavenet"
    assert nb.families.published_partner("gansynth+comb") == "gansynth"
    assert nb.families.published_partner("wavenet") is None


def test_the_family_table_lists_published_models_before_their_aided_variants(monkeypatch, tmp_path):
    import workbench.models as models

    monkeypatch.setattr(models, "CHECKPOINTS", tmp_path)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        create_model("wavenet+source", "tiny", timing=False).save(tmp_path / "wavenet+source")
        create_model("vae", "tiny").save(tmp_path / "vae")
    assert nb.families.table_models() == ["wavenet", "wavenet+source", "vae"]
    missing = nb.families.measure_model("wavenet")
    assert missing == {"name": "wavenet", "family": "autoregressive", "likelihood": "exact", "sample_rate": None,
                       "aid": "none", "shipped": False}
    row = nb.families.measure_model("vae", n_conditions=1, n_draws=2, seconds=0.25, speed_seconds=0.05, bits_notes=1)
    assert row["shipped"] and row["real_time_factor"] > 0 and row["n_notes"] == 2
    assert 0 <= row["pitch_accuracy"] <= 1 and 0 <= row["harmonic_share"] <= 1 and row["diversity"] >= 0
    assert math.isfinite(row["bits_per_sample"])
    table = nb.families.family_table([missing, row], real=1.5)
    text = repr(table)
    assert "no checkpoint yet" in text and "real notes of those conditions: 1.50" in text
    assert len(table.rows) == 2 and len(table.rows[0]) == len(table.headers)


def test_speed_comparison_is_worded_by_the_numbers():
    fast, slow = {"name": "wavenet", "real_time_factor": 2.0}, {"name": "samplernn", "real_time_factor": 0.25}
    assert "WaveNet is 8.0 times faster" in nb.families.speed_comparison(fast, slow)
    assert "SampleRNN is 8.0 times faster" in nb.families.speed_comparison(slow | {"name": "wavenet"},
                                                                          fast | {"name": "samplernn"})
    assert "about the same" in nb.families.speed_comparison(fast, {"name": "samplernn", "real_time_factor": 1.9})
    assert "ships no checkpoint" in nb.families.speed_comparison(fast, {"name": "samplernn"})


# ---- figures --------------------------------------------------------------------------------------
def _harmonic_note(seconds=1.0, sr=16000, f0=261.63):
    t = torch.arange(int(seconds * sr)) / sr
    return Audio(sum(torch.sin(2 * math.pi * k * f0 * t) / k for k in range(1, 6)) * 0.2, sr)


def test_note_spectrogram_is_relative_to_the_peak_zoomed_and_leaves_out_the_end():
    from workbench.notebook import figures

    note = _harmonic_note()
    db, n_inside = figures.relative_db(note)
    assert db.max() == pytest.approx(0.0) and n_inside < db.shape[-1]  # the last frames run past the end
    assert (n_inside - 1) * 256 + 512 <= note.n_samples < n_inside * 256 + 512
    fig = figures.note_spectrogram(note, fmax_hz=2000)
    ax = fig.axes[0]
    assert ax.get_ylim() == (0.0, 2.0) and ax.get_xlim() == (0.0, note.seconds)
    image = ax.get_images()[0]
    assert image.get_array().shape == (int(round(2000 / 8000 * 512)) + 1, n_inside)
    with pytest.raises(ParameterError):
        figures.note_spectrogram(note, fmax_hz=-1)


def test_harmonics_view_masks_quiet_bins_and_keeps_the_harmonics():
    from workbench.notebook import figures

    note = _harmonic_note()
    fig = figures.harmonics_view(note, kind="if", fmax_hz=2000, floor_db=-40)
    shown = fig.axes[1].get_images()[0].get_array()  # axes: magnitude, IF, then their colour bars
    assert fig.axes[1].get_ylim() == (0.0, 2.0)
    assert 0.5 < shown.mask.mean() < 1.0  # most bins are quiet, the harmonics are not
    assert figures.masked_share(note) == pytest.approx(shown.mask.mean(), abs=0.01)
    bin_of_f0 = round(261.63 / 16000 * 1024)
    assert not shown.mask[bin_of_f0, 2:-2].any()
    assert float(np.ma.std(shown[bin_of_f0, 2:-2])) < 0.05  # a steady partial: a flat IF line
    with pytest.raises(ParameterError):
        figures.harmonics_view(note, kind="magnitude")
    with pytest.raises(ParameterError):
        figures.harmonics_view(note, floor_db=10)


def test_short_clips_get_a_shorter_window():
    from workbench.notebook import figures

    short = _harmonic_note(0.25, sr=8000)  # 2,000 samples: a 256-sample window fits four times over
    db, n_inside = figures.relative_db(short)
    assert db.shape[0] == 256 // 2 + 1 and n_inside >= 10
    assert len(figures.spectrograms_side_by_side({"a": short, "b": short}).axes) == 4


# ---- likelihood: surprise, temperature, pairs -----------------------------------------------------
class _KnownSurprise:
    """A stand-in model whose per-sample bits are given: encode() returns them."""

    def __init__(self, bits):
        self.bits = torch.as_tensor(bits, dtype=torch.float64)

    def encode(self, clip, cond):
        from workbench.models.base import Encoding

        return Encoding("codes", {"log_likelihood_bits": -self.bits[None]}, clip.sample_rate)


def test_surprise_profile_splits_attack_from_sustain_and_correlates_with_loudness():
    sr = 8000
    n = sr
    envelope = torch.exp(-torch.arange(n) / (0.2 * sr))
    clip = Audio(0.8 * envelope * torch.sin(2 * math.pi * 220 * torch.arange(n) / sr), sr)
    bits = 1.0 + 5.0 * envelope  # louder costs more
    profile = nb.likelihood.surprise_profile(_KnownSurprise(bits), clip, {}, window=80, attack_seconds=0.05)
    attack = int(0.05 * sr)
    assert profile["onset_seconds"] == 0.0
    assert profile["attack_bits"] == pytest.approx(float(bits[:attack].mean()))
    assert profile["sustain_bits"] == pytest.approx(float(bits[attack:].mean()))
    assert profile["correlation"] > 0.8 and len(profile["bits"]) == n // 80
    text = nb.likelihood.describe_surprise(profile)
    assert text.startswith("the attack costs more") and "follow loudness closely" in text
    flat = nb.likelihood.surprise_profile(_KnownSurprise(torch.full((n,), 3.0)), clip, {}, window=80)
    assert "about the same" in nb.likelihood.describe_surprise(flat)
    with pytest.raises(ParameterError):
        nb.likelihood.surprise_profile(_KnownSurprise(bits[:100]), clip.trim(100 / sr), {}, window=80)


def test_temperature_and_pair_sentences_follow_the_numbers():
    sweep = {0.6: {"harmonic_share": 0.8}, 1.0: {"harmonic_share": 0.64}, 1.2: {"harmonic_share": 0.56}}
    assert nb.likelihood.describe_temperature(sweep).startswith("harmonic share falls as the temperature rises")
    assert "hardly changes" in nb.likelihood.describe_temperature({0.6: {"harmonic_share": 0.7},
                                                                   1.2: {"harmonic_share": 0.69}})
    rows = {"wavenet": {"shipped": False, "aid": "none", "pitch_accuracy": None},
            "wavenet+source": {"shipped": True, "aid": "oscillator source", "pitch_accuracy": 0.75}}
    assert "ships no checkpoint yet" in nb.likelihood.compare_pair(rows, "wavenet", "wavenet+source")
    rows["wavenet"] = {"shipped": True, "aid": "none", "pitch_accuracy": 0.3}
    sentence = nb.likelihood.compare_pair(rows, "wavenet", "wavenet+source")
    assert sentence.startswith("pitch accuracy 30% without the oscillator source") and "the aid helps" in sentence
    with pytest.raises(ParameterError):
        nb.likelihood.temperature_sweep(_tiny_wavenet(), temperatures=(0.0, 1.0))


def test_card_or_live_measures_what_the_card_lacks(monkeypatch, tmp_path):
    import json

    import workbench.models as models

    monkeypatch.setattr(models, "CHECKPOINTS", tmp_path)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = create_model("wavenet+source", "tiny", timing=False)
    model.save(tmp_path / "wavenet+source")
    (tmp_path / "wavenet+source" / "card.json").write_text(json.dumps({"metrics": {"pitch_accuracy": 0.5}}))
    table, rows = nb.likelihood.pair_table([("wavenet", "wavenet+source")], n_notes=2, seconds=0.1)
    row = rows["wavenet+source"]
    assert row["pitch_accuracy"] == 0.5 and row["source"]["pitch_accuracy"] == "card"
    assert 0 <= row["harmonic_share"] <= 1 and row["source"]["harmonic_share"] == "measured now, 2 notes"
    assert not rows["wavenet"]["shipped"] and "no checkpoint yet" in repr(table)


# ---- latents ----------------------------------------------------------------------------------------
def test_vq_codes_in_order_and_shuffled_are_scored_by_the_same_decoder():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        vq = create_model("vqvae+source", "tiny").eval()
    cond = {"pitch": vq.conditioning[0].default}
    clip = _harmonic_note(0.25, sr=vq.sample_rate, f0=261.63)
    study = nb.latents.own_vs_shuffled(vq, clip, cond, generator=0)
    assert math.isfinite(study["own"]) and math.isfinite(study["shuffled"])
    assert sorted(study["codes"][0].tolist()) == sorted(study["shuffled_codes"][0].tolist())
    assert nb.latents.decoder_bits(vq, clip, cond, study["codes"]) == pytest.approx(study["own"])
    with pytest.raises(ParameterError, match="frames"):
        nb.latents.decoder_bits(vq, clip, cond, study["codes"][:, :-1])
    assert "more bits" in nb.latents.describe_codes({"own": 5.0, "shuffled": 9.0})
    assert "about the same" in nb.latents.describe_codes({"own": 5.0, "shuffled": 5.01})


# ---- receptive fields: medians, log-log, stacks ---------------------------------------------------
def test_step_cost_keeps_every_run_and_reports_the_median_when_asked():
    cost = nb.training_step_cost(_tiny_wavenet(n_layers=3), n_targets=64, repeats=3, statistic="median")
    assert len(cost["step_times"]) == 3 and cost["step_seconds"] == sorted(cost["step_times"])[1]
    with pytest.raises(ParameterError):
        nb.training_step_cost(_tiny_wavenet(n_layers=3), statistic="mean")


def test_step_time_figure_is_log_log_with_a_slope_one_guide():
    fig = nb.step_time_figure([16, 64, 256], [0.01, 0.02, 0.08])
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    guide = ax.lines[1].get_ydata()
    assert guide[-1] == pytest.approx(80.0) and guide[0] == pytest.approx(80.0 * 16 / 256)
    assert nb.receptive_fields.slope([16, 64, 256], [1, 4, 16]) == pytest.approx(1.0)
    with pytest.raises(ParameterError):
        nb.step_time_figure([16], [0.1])


def test_stack_diagram_draws_one_stack_and_marks_the_repeats():
    fig, info = nb.stack_diagram([1, 2, 4, 8] * 3, kernel_size=2, sample_rate=16000)
    assert info == {"n_stacks": 3, "stack": [1, 2, 4, 8], "one_stack": 16, "receptive_field": 46}
    assert any(t.get_text() == "x3" for t in fig.axes[0].texts)
    assert len(fig.axes[0].get_yticks()) == 5  # four layers and the input
    _, single = nb.stack_diagram([1, 2, 4, 3])
    assert single["n_stacks"] == 1 and single["receptive_field"] == 11


# ---- quantisation: level dependence and the mid-tread quantiser -----------------------------------
@pytest.mark.parametrize("bits", [1, 3, 8, 16])
def test_mid_tread_quantiser_matches_numpy_rounding(bits):
    from workbench import dsp

    x = np.concatenate([np.linspace(-1.2, 1.2, 20001), [0.0, 1.0, -1.0, 0.5 / 2 ** (bits - 1)]])
    x = x.astype(np.float32).astype(np.float64)  # the values the float32 quantiser sees
    half = 2 ** (bits - 1)
    expected = np.clip(np.round(np.clip(x, -1, 1) * half), -half, half - 1) / half
    got = dsp.quantise(torch.tensor(x, dtype=torch.float32), bits, "mid_tread").numpy()
    assert np.allclose(got, expected, atol=1e-7)
    codes = dsp.mid_tread_encode(torch.tensor(x, dtype=torch.float32), bits)
    assert int(codes.min()) >= 0 and int(codes.max()) <= 2 ** bits - 1
    assert float(dsp.quantise(torch.zeros(1), bits, "mid_tread")) == 0.0  # silence stays silent
    with pytest.raises(ParameterError):
        dsp.mid_tread_decode(torch.tensor([2 ** bits]), bits)


def test_level_dependence_is_large_for_uniform_and_shrinks_with_bits_for_mu_law(clips):
    loud = clips["piano"]
    quiet = loud.with_samples(loud.samples * 0.03)
    uniform = nb.level_dependence(loud, quiet, range(4, 13), "uniform")
    mu_law = nb.level_dependence(loud, quiet, range(4, 13), "mu_law")
    assert uniform["level_db"] == pytest.approx(20 * math.log10(0.03))
    assert (uniform["loss"] > 25).all()
    assert mu_law["loss"][0] > 10 and mu_law["loss"][-1] < 1 and (np.diff(mu_law["loss"]) < 0.1).all()
    text = nb.quantisation.describe_level_dependence(mu_law)
    assert text.startswith("30 dB quieter") and "at 4 bits" in text and "only from" in text
    assert "never under" in nb.quantisation.describe_level_dependence(uniform)


def test_quantisation_view_offers_the_mid_tread_quantiser(clips):
    fig, table = nb.quantisation_view(clips["piano"].trim(0.2), 8, uniform_kind="mid_tread")
    assert "mid-tread 8 bits" in table.clips
    with pytest.raises(ParameterError):
        nb.quantisation_view(clips["piano"].trim(0.2), 8, uniform_kind="a-law")


# ---- docs -------------------------------------------------------------------------------------------
def test_the_course_sequence_has_neighbours_and_pages_go_offline():
    from workbench.notebook import docs

    assert docs.neighbours("00_tour") == (None, "01_phase")
    assert docs.neighbours("12_distillation") == ("11_long_range_structure", None)
    with pytest.raises(ParameterError):
        docs.neighbours("99_nothing")
    page = ('<script src="https://cdn.example/require.js"></script><script>var x = 1;</script>'
            '<link rel="stylesheet" href="https://cdn.example/a.css"><a href="02_mu_law.ipynb">02</a>'
            '<script type="text/javascript" src="//cdn.example/mathjax.js"> </script>')
    assert len(docs.remote_scripts(page)) == 2
    clean = docs.offline(page)
    assert docs.remote_scripts(clean) == [] and "https://" not in clean and "//cdn" not in clean
    assert "<script>var x = 1;</script>" in clean and 'href="02_mu_law.html"' in clean
    with pytest.raises(ParameterError):
        docs.notebooks(["99_nothing"])
