"""Distillation: the teachers' output distributions, the IAF students' two directions, the KL terms."""

import math

import pytest
import torch

from workbench import Audio
from workbench.errors import ParameterError, WorkbenchError
from workbench.models import create_model
from workbench.models import distributions as D
from workbench.models.clarinet import composed_gaussian

COND = {"pitch": [61], "instrument": ["piano"], "velocity": [100]}
TEACHERS = ("wavenet", "wavenet_mol", "wavenet_gaussian")
STUDENTS = ("parallel_wavenet", "clarinet")


def _tiny(name, **overrides):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return create_model(name, "tiny", **overrides).eval()


def _student(name, **overrides):
    """A tiny student in float64 whose flows are not the identity (their last layers start at zero)."""
    model = _tiny(name, **overrides).double()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for flow in model.flows:
            w = flow.head[3].weight
            w.copy_(torch.randn(w.shape, generator=gen, dtype=w.dtype) * 0.3)
    return model


# ---- the output distributions ------------------------------------------------------------------------------


@pytest.mark.parametrize("output", ["logistic_mixture", "gaussian"])
def test_bin_probabilities_of_a_continuous_output_sum_to_one(output):
    gen = torch.Generator().manual_seed(0)
    k = 5 if output == "logistic_mixture" else 1
    raw = torch.randn(64, D.n_parameters(output, 256, k), generator=gen, dtype=torch.float64) * 3
    raw[:8, -k:] = -12.0  # scales at the lower bound: all mass in a bin or two
    raw[8:16, k:2 * k] = 1.7  # means beyond full scale: mass in the outermost bin
    for temperature in (1.0, 0.3, 4.0):
        p = D.split(raw, output, log_scale_min=-9.0, temperature=temperature)
        total = D.bin_log_probs(output, p, bits=8).exp().sum(-1)
        assert torch.allclose(total, torch.ones(64, dtype=torch.float64), atol=1e-9)


def test_bin_probability_is_the_density_integrated_over_the_bin():
    p = {"means": torch.tensor([[0.3]], dtype=torch.float64), "log_scales": torch.tensor([[-2.0]], dtype=torch.float64),
         "logits": torch.zeros(1, 1, dtype=torch.float64)}
    low, high = D.bin_edges(8)
    code = 200
    grid = torch.linspace(float(low[code]), float(high[code]), 2001, dtype=torch.float64)
    for output in ("logistic_mixture", "gaussian"):
        q = {k: v.expand(grid.shape[0], -1)[..., None] for k, v in p.items()}
        density = D.log_density(output, q, grid[:, None])[:, 0].exp()
        integral = torch.trapezoid(density, grid)
        mass = D.bin_log_probs(output, p, 8)[0, code].exp()
        assert abs(float(integral / mass) - 1) < 1e-6


def test_closed_form_gaussian_kl_equals_a_monte_carlo_estimate():
    gen = torch.Generator().manual_seed(0)
    mu_q, ls_q, mu_p, ls_p = (torch.tensor(v, dtype=torch.float64) for v in (0.2, -1.0, -0.1, -0.6))
    x = mu_q + ls_q.exp() * torch.randn(2_000_000, generator=gen, dtype=torch.float64)
    log_n = lambda x, mu, ls: -0.5 * ((x - mu) / ls.exp()) ** 2 - ls - 0.5 * math.log(2 * math.pi)  # noqa: E731
    monte_carlo = float((log_n(x, mu_q, ls_q) - log_n(x, mu_p, ls_p)).mean())
    closed = float(D.gaussian_kl(mu_q, ls_q, mu_p, ls_p))
    assert closed > 0.1 and abs(monte_carlo / closed - 1) < 0.01


def test_composing_gaussian_iaf_layers_gives_the_analytic_total_shift_and_scale():
    gen = torch.Generator().manual_seed(0)
    mus = [torch.randn(100, generator=gen, dtype=torch.float64) for _ in range(4)]
    log_sigmas = [0.5 * torch.randn(100, generator=gen, dtype=torch.float64) for _ in range(4)]
    z = torch.randn(100, generator=gen, dtype=torch.float64)
    x = z
    for mu, ls in zip(mus, log_sigmas):  # the layers one after another
        x = x * ls.exp() + mu
    mu_tot, ls_tot = composed_gaussian(mus, log_sigmas)
    assert torch.allclose(x, z * ls_tot.exp() + mu_tot, atol=1e-6)
    # and the student's own pass reports the same totals for its flows
    model = _student("clarinet")
    out = model.transform(model.noise(2, 300, torch.Generator().manual_seed(2)), COND, keep_flows=True)
    mu_tot, ls_tot = composed_gaussian(*zip(*out["flows"]))
    assert (mu_tot - out["mu_tot"]).abs().max() < 1e-6 and (ls_tot - out["log_s_tot"]).abs().max() < 1e-6


# ---- the teachers ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["wavenet_mol", "wavenet_gaussian"])
def test_cached_sampling_equals_naive_sampling_for_a_continuous_output(name):
    model = _tiny(name)
    cached = model.generate(2, seconds=0.015, cond={"pitch": 62}, generator=11, temperature=0.8, method="cached")
    naive = model.generate(2, seconds=0.015, cond={"pitch": 62}, generator=11, temperature=0.8, method="naive")
    assert torch.equal(cached.samples, naive.samples)


@pytest.mark.parametrize("name", ["wavenet_mol", "wavenet_gaussian"])
def test_the_compiled_kernel_is_softmax_only_so_auto_means_cached(name):
    model = _tiny(name)
    assert model.resolve_method("auto") == "cached"
    assert "fast" not in model.generate_options["method"]
    with pytest.raises(ParameterError, match="softmax"):
        model.sample_codes(1, 10, COND, method="fast")
    auto = model.generate(1, seconds=0.01, generator=3)
    cached = model.generate(1, seconds=0.01, generator=3, method="cached")
    assert torch.equal(auto.samples, cached.samples)
    assert _tiny("wavenet").resolve_method("auto") == "fast"


@pytest.mark.parametrize("name", ["wavenet_mol", "wavenet_gaussian"])
def test_cached_parameters_equal_teacher_forced_ones_and_the_waveform_pass(name):
    model = _tiny(name).double()
    codes, outs = model.sample_codes(1, 120, COND, 1.0, torch.Generator().manual_seed(1), method="cached",
                                     return_logits=True)
    inputs = torch.nn.functional.pad(codes[:, :-1], (1, 0), value=model.silence)
    assert (model(inputs, COND, start=-1) - outs).abs().max() < 1e-9
    # the waveform pass hears the same thing from the decoded samples
    from workbench.dsp.quantise import mu_law_decode

    x = mu_law_decode(inputs, 8).double()  # float32 values: equal to float32 rounding
    assert (model.forward_waveform(x, COND, start=-1) - outs).abs().max() < 1e-5


def test_log_prob_of_every_output_is_bits_per_mu_law_code():
    """Finite, the same units: a clip is scored through its 8-bit mu-law codes only, and a head that
    says nothing (a uniform softmax) costs exactly 8 bits."""
    from workbench.dsp.quantise import mu_law_decode, mu_law_encode

    clip = Audio(0.4 * torch.sin(torch.arange(800) * 0.2) + 0.01 * torch.randn(800), 8000)
    quantised = Audio(mu_law_decode(mu_law_encode(clip.samples, 8), 8), 8000)
    bits = {}
    for name in TEACHERS:
        model = _tiny(name)
        bits[name] = model.log_prob(clip, {"pitch": 60})
        assert bool(torch.isfinite(bits[name]).all()) and float(bits[name]) > 0
        assert torch.allclose(bits[name], model.log_prob(quantised, {"pitch": 60}), atol=1e-5)
    uniform = _tiny("wavenet")
    with torch.no_grad():
        uniform.head[3].weight.zero_()
        uniform.head[3].bias.zero_()
    assert torch.allclose(uniform.log_prob(clip, {"pitch": 60}), torch.tensor([8.0]), atol=1e-5)


@pytest.mark.parametrize("name", ["wavenet_mol", "wavenet_gaussian"])
def test_a_continuous_teacher_learns_a_few_notes(name):
    from workbench.data import Notes, collate

    model = _tiny(name).train()
    ds = Notes(instruments=("piano",), pitches=(60, 62), velocities=(100,), seconds=0.25, sample_rate=8000)
    batch = collate([ds[0], ds[1]])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    first = model.eval_step(batch, generator=torch.Generator().manual_seed(5))["loss"]
    assert first < 9 * math.log(2)  # starts near a uniform choice of code (8 bits), not at random (11)
    for _ in range(30):
        model.train_step(batch, [opt], generator=gen)
    last = model.eval_step(batch, generator=torch.Generator().manual_seed(5))["loss"]
    assert last < first - 0.5


def test_a_registered_name_keeps_its_output():
    with pytest.raises(ParameterError, match="wavenet_mol"):
        create_model("wavenet", "tiny", output="logistic_mixture")
    with pytest.raises(ParameterError, match="wavenet_gaussian"):
        create_model("wavenet_mol", "tiny", output="gaussian")


# ---- the students ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", STUDENTS)
def test_iaf_density_of_a_sample_equals_its_density_by_the_sequential_inverse(name):
    model = _student(name)
    z = model.noise(2, 400, torch.Generator().manual_seed(3))
    forward = model.transform(z, COND)  # parallel: x and log q(x) at once
    inverse = model.inverse(forward["x"], COND)  # sequential: z back, then log q(x)
    assert (inverse["z"] - z).abs().max() < 1e-5
    assert (inverse["log_q"] - forward["log_q"]).abs().max() < 1e-5
    assert (inverse["log_s_tot"] - forward["log_s_tot"]).abs().max() < 1e-5


@pytest.mark.parametrize("name", STUDENTS)
def test_each_student_sample_depends_only_on_the_noise_up_to_its_own_time(name):
    model = _student(name)
    n = 120
    z = model.noise(1, n, torch.Generator().manual_seed(4)).requires_grad_(True)
    x = model.transform(z, COND)["x"]
    for t in (0, 37, n - 1):
        (grad,) = torch.autograd.grad(x[0, t], z, retain_graph=True)
        assert torch.equal(grad[0, t + 1:], torch.zeros(n - t - 1, dtype=grad.dtype))  # never the future
        assert grad[0, t] != 0  # itself, through the scale
        if t:
            assert grad[0, :t].abs().sum() > 0  # and its past, through the shift and scale
    support = model.receptive_field
    (grad,) = torch.autograd.grad(x[0, n - 1], z)
    assert torch.equal(grad[0, : n - support], torch.zeros(n - support, dtype=grad.dtype))


@pytest.mark.parametrize("name", STUDENTS)
def test_student_log_prob_uses_the_teachers_bins(name):
    """Bits per mu-law code: the bins of every sample sum to one under the student's conditional, and
    the clip is scored through its codes only."""
    from workbench.dsp.quantise import mu_law_decode, mu_law_encode

    model = _student(name).float()
    clip = model.generate(1, seconds=0.05, generator=0)
    bits = model.log_prob(clip)
    quantised = Audio(mu_law_decode(mu_law_encode(clip.samples, 8), 8), model.sample_rate)
    assert torch.allclose(bits, model.log_prob(quantised), atol=1e-5)
    enc = model.encode(clip)
    p = model.conditional(torch.zeros(1, 1) + 0.1, torch.zeros(1, 1) - 3.0)
    total = D.bin_log_probs(model.conditional_output, {k: (None if v is None else v[..., 0]) for k, v in p.items()}).exp().sum()
    assert abs(float(total) - 1) < 1e-9
    assert torch.allclose(enc.data["bits"].mean(-1).float(), bits, atol=1e-5)


def test_identical_single_gaussian_teacher_and_student_leave_nothing_to_distil():
    """A teacher that always says N(m, s^2) and a two-flow student composed to the same Gaussian."""
    teacher = _tiny("wavenet_gaussian").double()
    student = _student("clarinet", teacher_preset="tiny")
    (a1, l1), (a2, l2) = (0.05, -2.5), (-0.02, -0.7)
    with torch.no_grad():
        for flow, (a, ls) in zip(student.flows, ((a1, l1), (a2, l2))):
            flow.head[3].weight.zero_()
            flow.head[3].bias.copy_(torch.tensor([a, ls]))
        teacher.head[3].weight.zero_()
        teacher.head[3].bias.copy_(torch.tensor([a1 * math.exp(l2) + a2, l1 + l2]))
    student._teacher["model"] = teacher
    from workbench.data import collate
    from workbench.train import make_datasets

    train_set, _ = make_datasets(student)
    batch = collate([train_set[i] for i in range(2)])
    logs = student.eval_step(batch, generator=torch.Generator().manual_seed(0))
    assert abs(logs["kl"]) < 1e-9 and abs(logs["log_sigma_gap"]) < 1e-9
    with torch.no_grad():  # a teacher that disagrees leaves a positive divergence
        teacher.head[3].bias[0] += 0.01
    assert student.eval_step(batch, generator=torch.Generator().manual_seed(0))["kl"] > 1e-3


def _train_student(student, steps=20):
    """``steps`` distillation steps on 4 notes; the eval logs before and after."""
    from workbench.data import collate
    from workbench.train import make_datasets

    train_set, _ = make_datasets(student)
    batch = collate([train_set[i] for i in range(4)])
    opt = student.configure_optimizers()
    gen = torch.Generator().manual_seed(0)
    first = student.eval_step(batch, generator=torch.Generator().manual_seed(9))
    for _ in range(steps):
        logs = student.train_step(batch, opt, generator=gen)
    assert math.isfinite(logs["loss"])
    return first, student.eval_step(batch, generator=torch.Generator().manual_seed(9))


@pytest.mark.parametrize("name", STUDENTS)
def test_distillation_lowers_the_divergence_and_never_trains_the_teacher(name):
    no_spectral = {"parallel_wavenet": {"power_weight": 0.0}, "clarinet": {"stft_weight": 0.0}}[name]
    student = _tiny(name, **no_spectral).train()
    teacher = student.teacher()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    first, last = _train_student(student)
    assert last["kl"] < first["kl"]
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())
    assert not any(k.startswith(("teacher", "_teacher")) for k in student.state_dict())
    for key in ("rms_ratio_db", "harmonic_share", "harmonic_share_real", "collapsed"):
        assert key in last


@pytest.mark.parametrize("name,weight,key", [("parallel_wavenet", "power_weight", "power_loss"),
                                             ("clarinet", "stft_weight", "stft_loss")])
@pytest.mark.slow
def test_the_spectral_loss_pulls_the_student_towards_the_real_notes(name, weight, key):
    """Trained with the spectral loss (loud, against an untrained teacher) the student ends nearer the
    real notes' spectra than trained without it."""
    _, with_loss = _train_student(_tiny(name, **{weight: 100.0}).train())
    _, without = _train_student(_tiny(name, **{weight: 0.0}).train())
    assert with_loss[key] < without[key]


def test_a_student_that_falls_silent_is_flagged_and_can_stop_training():
    student = _tiny("clarinet", collapse_patience=2, stop_on_collapse=True).train()
    t = torch.arange(2000) / 8000
    real = 0.3 * torch.sin(2 * math.pi * 277.18 * t)[None]  # MIDI 61
    noise = 0.3 * torch.randn(1, 2000, generator=torch.Generator().manual_seed(0))
    assert student.spectral_check(0.5 * real, real, [61])["collapsed"] == 0.0
    flagged = student.spectral_check(noise, real, [61])
    assert flagged["collapsed"] == 1.0 and flagged["harmonic_share"] < 0.5 * flagged["harmonic_share_real"]
    with pytest.raises(WorkbenchError, match="silence"):
        for _ in range(2):
            student.spectral_check(1e-4 * real, real, [61])


def test_a_student_refuses_a_teacher_with_other_notes_or_another_output(tmp_path, monkeypatch):
    other = create_model("wavenet_mol", "tiny", pitch_range=(60, 66))
    other.save(tmp_path / "other")
    with pytest.raises(ParameterError, match="pitch_range"):
        create_model("parallel_wavenet", "tiny", teacher=str(tmp_path / "other")).teacher()
    with pytest.raises(ParameterError, match="gaussian"):
        create_model("clarinet", "tiny", teacher="wavenet_mol").teacher()
    with pytest.raises(ParameterError, match="neither a registered model nor a checkpoint folder"):
        create_model("parallel_wavenet", "tiny", teacher=str(tmp_path / "missing")).teacher()
    import workbench.models

    monkeypatch.setattr(workbench.models, "has_checkpoint", lambda name: False)  # as before any is trained
    with pytest.raises(WorkbenchError, match="train it first"):
        create_model("parallel_wavenet", "tiny", teacher_preset="").teacher()


def test_the_contrastive_loss_scores_the_samples_under_another_note_too():
    from workbench.data import collate
    from workbench.train import make_datasets

    student = _tiny("parallel_wavenet", contrastive_weight=0.3).train()
    train_set, _ = make_datasets(student)
    batch = collate([train_set[i] for i in range(2)])
    logs = student.train_step(batch, student.configure_optimizers(), generator=torch.Generator().manual_seed(0))
    assert math.isfinite(logs["loss"]) and math.isfinite(logs["kl_other_note"])
    assert abs(logs["loss"] - (logs["kl"] - 0.3 * logs["kl_other_note"] + logs["power_loss"])) < 1e-4
    with pytest.raises(ParameterError, match="another pitch"):
        create_model("parallel_wavenet", "tiny", contrastive_weight=0.3, pitch_range=(60, 60))
