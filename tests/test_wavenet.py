"""WaveNet: causality, receptive field by gradients, three generation paths that agree."""

import pytest
import torch

from workbench.errors import ParameterError
from workbench.models import create_model

COND = {"pitch": [61], "instrument": ["piano"], "velocity": [100]}


def _tiny(name="wavenet", **overrides):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return create_model(name, "tiny", **overrides).eval()


def test_teacher_forced_pass_is_causal():
    model = _tiny()
    codes = torch.randint(0, 256, (1, 200), generator=torch.Generator().manual_seed(0))
    base = model(codes, COND)
    for t in (0, 50, 199):
        changed = codes.clone()
        changed[0, t] = (changed[0, t] + 97) % 256
        out = model(changed, COND)
        # outputs before t (which predict samples up to t) never see x[t]
        assert torch.equal(out[..., :t], base[..., :t])
        assert not torch.allclose(out[..., t], base[..., t])


@pytest.mark.parametrize("kernel_size,n_stacks,n_layers", [(2, 1, 5), (3, 1, 4), (2, 2, 4), (3, 3, 3)])
def test_receptive_field_measured_by_gradients_equals_the_formula(kernel_size, n_stacks, n_layers):
    model = _tiny(kernel_size=kernel_size, n_stacks=n_stacks, n_layers=n_layers, timing=False).double()
    t = model.receptive_field + 40
    x = torch.randn(1, model.config.residual_channels, t, dtype=torch.float64, requires_grad=True)
    model.forward_features(x)[0, :, -1].sum().backward()
    support = (x.grad.abs().sum(dim=1)[0] > 0).nonzero().flatten()
    measured = int(support.max() - support.min() + 1)
    assert support.max() == t - 1
    assert measured == model.receptive_field == (kernel_size - 1) * sum(model.dilations) + 1


def test_cached_generation_equals_naive_generation_exactly():
    model = _tiny()
    cached = model.generate(2, seconds=0.06, cond={"pitch": 62}, generator=11, method="cached")
    naive = model.generate(2, seconds=0.06, cond={"pitch": 62}, generator=11, method="naive")
    assert torch.equal(cached.samples, naive.samples)


def test_cached_logits_equal_teacher_forced_logits_in_float64():
    model = _tiny().double()
    codes, logits = model.sample_codes(1, 300, COND, 1.0, torch.Generator().manual_seed(1),
                                       method="cached", return_logits=True)
    inputs = torch.nn.functional.pad(codes[:, :-1], (1, 0), value=model.silence)
    teacher = model(inputs, COND, start=-1)
    assert (teacher - logits).abs().max() < 1e-5


def test_receptive_field_property_matches_presets():
    assert create_model("wavenet", "small").receptive_field == 1023
    assert _tiny().receptive_field == 64


def test_training_lowers_the_loss_on_a_few_notes():
    from workbench.data import Notes, collate

    model = _tiny().train()
    ds = Notes(instruments=("piano",), pitches=(60, 62), velocities=(100,), seconds=0.25, sample_rate=8000)
    batch = collate([ds[0], ds[1]])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    first = model.eval_step(batch, generator=torch.Generator().manual_seed(5))["loss"]
    for _ in range(40):
        model.train_step(batch, [opt], generator=gen)
    last = model.eval_step(batch, generator=torch.Generator().manual_seed(5))["loss"]
    assert last < first - 0.5


def test_encode_gives_codes_and_per_sample_surprise():
    from workbench import Audio

    model = _tiny()
    audio = Audio(torch.sin(torch.arange(800) * 0.2) * 0.5, 8000)
    enc = model.encode(audio, {"pitch": 60})
    assert enc.data["codes"].shape == (1, 800)
    assert enc.data["log_likelihood_bits"].shape == (1, 800)
    bits = model.log_prob(audio, {"pitch": 60})
    assert torch.allclose(bits, -enc.data["log_likelihood_bits"].mean(-1))


def test_vocoder_preset_needs_and_uses_mel_frames():
    from workbench import Audio

    model = create_model("wavenet_vocoder", "tiny").eval()
    audio = Audio(torch.sin(torch.arange(2000) * 0.1) * 0.5, 8000)
    mel = model.mel_of(audio.samples[:, 0])[0]
    with pytest.raises(ParameterError, match="mel"):
        model.generate(1, seconds=0.05)
    out = model.generate(1, cond={"mel": mel}, generator=0)
    assert out.n_samples == (mel.shape[-1] - 1) * model.config.hop_length


def test_bad_method_is_refused():
    with pytest.raises(ParameterError, match="method"):
        _tiny().generate(1, seconds=0.01, method="magic")


@pytest.mark.slow
def test_fast_kernel_matches_the_cached_reference_over_ten_thousand_steps():
    from workbench.models import wavenet_kernel

    assert wavenet_kernel.available(), "numba (installed with librosa) is needed for the fast path"
    model = _tiny(n_layers=3, residual_channels=8, gate_channels=16, skip_channels=16)
    cond = {"pitch": [60, 64], "instrument": ["piano", "flute"], "velocity": [100, 100]}
    fast, fast_logits = model.sample_codes(2, 10_000, cond, 1.0, torch.Generator().manual_seed(3),
                                           method="fast", return_logits=True)
    ref, ref_logits = model.sample_codes(2, 10_000, cond, 1.0, torch.Generator().manual_seed(3),
                                         method="cached", return_logits=True)
    assert (fast_logits - ref_logits).abs().max() < 1e-5
    assert torch.equal(fast, ref)


def test_auto_method_picks_the_fast_kernel_and_matches_cached_generation():
    model = _tiny()
    assert model.resolve_method("auto") == "fast"
    auto = model.generate(1, seconds=0.1, cond={"pitch": 63}, generator=9, temperature=0.8)
    cached = model.generate(1, seconds=0.1, cond={"pitch": 63}, generator=9, temperature=0.8, method="cached")
    assert torch.equal(auto.samples, cached.samples)


def test_a_longer_generation_starts_with_the_same_samples():
    model = _tiny()
    short = model.generate(1, seconds=0.05, generator=2)
    long = model.generate(1, seconds=0.2, generator=2)
    # the uniforms are drawn step by step, so the first 0.05 s are the same draw
    assert torch.equal(short.samples, long.samples[..., : short.n_samples])


# ---- the source: sample-rate harmonics of the requested pitch ------------------------------------------


def test_source_features_repeat_every_period_and_start_at_the_onset():
    model = _tiny("wavenet+source", source_harmonics=3, sample_rate=8000).double()
    omega = model.phase_step(torch.tensor([69]))  # 440 Hz
    assert torch.allclose(omega, torch.tensor([2 * torch.pi * 440 / 8000], dtype=torch.float64))
    positions = torch.arange(-5, 8000)
    feats = model.source_features(omega, positions)[0]  # (6, time)
    assert feats.shape == (6, positions.numel())
    assert torch.equal(feats[:, :5], torch.zeros(6, 5))  # silence before the onset
    # 440 Hz at 8 kHz: 11 periods are exactly 200 samples, for every harmonic
    assert torch.allclose(feats[:, 5:-200], feats[:, 205:], atol=1e-9)
    # sin^2 + cos^2 = 1 for each harmonic after the onset
    assert torch.allclose(feats[:3, 5:] ** 2 + feats[3:, 5:] ** 2, torch.ones(3, 8000, dtype=torch.float64))


def test_source_harmonics_above_nyquist_are_silent():
    model = _tiny("wavenet+source", source_harmonics=4, sample_rate=8000)
    omega = model.phase_step(torch.tensor([96]))  # 2093 Hz: the 2nd harmonic is above 4 kHz
    feats = model.source_features(omega, torch.arange(0, 100))[0]
    energy = feats.pow(2).sum(-1)
    assert energy[0] > 0 and energy[4] > 0  # harmonic 1: sin and cos
    assert torch.equal(energy[[1, 2, 3, 5, 6, 7]], torch.zeros(6))


@pytest.mark.slow
def test_source_reaches_every_generation_path_identically():
    model = _tiny("wavenet+source", n_layers=3, residual_channels=8, gate_channels=16, skip_channels=16,
                  source_harmonics=4)
    torch.nn.init.normal_(model.source_proj.weight, std=2.0)  # make the source matter
    cond = {"pitch": [60, 64], "instrument": ["piano", "flute"], "velocity": [100, 100]}
    paths = {m: model.sample_codes(2, 3000, cond, 1.0, torch.Generator().manual_seed(4), method=m,
                                   return_logits=True) for m in ("fast", "cached")}
    assert torch.equal(paths["fast"][0], paths["cached"][0])
    assert (paths["fast"][1] - paths["cached"][1]).abs().max() < 1e-5
    naive = model.sample_codes(2, 300, cond, 1.0, torch.Generator().manual_seed(4), method="naive")
    assert torch.equal(naive, paths["cached"][0][:, :300])
    # and a different pitch changes the logits after the onset, through the source alone
    other = dict(cond, pitch=[61, 63])
    model.global_proj.weight.data.zero_()
    _, a = model.sample_codes(2, 50, cond, 1.0, torch.Generator().manual_seed(4), method="cached", return_logits=True)
    _, b = model.sample_codes(2, 50, other, 1.0, torch.Generator().manual_seed(4), method="cached", return_logits=True)
    assert torch.equal(a[..., 0], b[..., 0])  # the first step runs before the onset: no source yet
    assert not torch.allclose(a[..., 10:], b[..., 10:])


@pytest.mark.slow
def test_a_few_seconds_of_training_make_unprimed_notes_at_the_requested_pitch():
    from workbench.data import Notes, collate
    from workbench.metrics import cents_error, median_f0

    model = _tiny(crop_samples=1024).train()
    ds = Notes(instruments=("flute",), pitches=(60, 64), velocities=(100,), seconds=0.25, sample_rate=8000)
    batch = collate([ds[0], ds[1]])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(150):
        model.train_step(batch, [opt], generator=gen)
    audio = model.eval().generate(2, seconds=0.25, cond={"pitch": [60, 64], "instrument": ["flute"] * 2},
                                  generator=0)
    for k, p in enumerate((60, 64)):
        f = median_f0(audio[k], fmin=150.0, fmax=600.0)
        assert f is not None and abs(cents_error(f, p)) <= 50, (p, f)
