"""WaveGlow and FloWaveNet: exact inversion, log-determinants, the 1x1 convolution, vocoding."""

import pytest
import torch

from workbench.dsp.synth import upsample
from workbench.errors import ParameterError
from workbench.layers import ActNorm, FrameUpsampler, InvertibleConv1x1
from workbench.models import create_model, has_checkpoint, load_model

FLOWS = ("waveglow", "flowavenet")
#: The same flows with the oscillator source (not in their papers).
AIDED_FLOWS = ("waveglow+source", "flowavenet+source")


def _scrambled(name, **overrides):
    """A tiny flow whose couplings and ActNorms are not the identity (fresh ones are)."""
    torch.manual_seed(0)
    model = create_model(name, "tiny", **overrides).double().eval()
    with torch.no_grad():
        for module in model.modules():
            if hasattr(module, "end"):
                module.end.weight.normal_(0, 0.1)
                module.end.bias.normal_(0, 0.1)
            if isinstance(module, ActNorm):
                module.bias.normal_(0, 0.3)
                module.log_scale.normal_(0, 0.3)
    return model


def _cond(model, n_samples):
    """Random mel frames and, where the flow has a source, a gliding f0 on the same frames."""
    n_frames = n_samples // model.config.hop_length + 2
    mel = torch.randn(1, model.config.n_mels, n_frames, dtype=torch.float64)
    f0 = torch.linspace(220.0, 330.0, n_frames)[None] if model.config.source_harmonics else None
    return model.cond_features(mel, n_samples, 1, f0).double()


@pytest.mark.parametrize("name", FLOWS)
@pytest.mark.parametrize("mode", FrameUpsampler.MODES)
def test_flow_inverts_exactly(name, mode):
    model = _scrambled(name, upsample=mode)
    n = 16 * model.multiple
    x = torch.randn(2, 1, n, dtype=torch.float64) * 0.3
    c = _cond(model, n).expand(2, -1, -1)
    with torch.no_grad():
        z, _ = model.flow(x, c)
        again = model.inverse(z, c)
    assert z.shape == (2, n)
    assert torch.allclose(again, x, atol=1e-5)
    # and float32, the way the app runs it
    model = model.float()
    with torch.no_grad():
        z, _ = model.flow(x.float(), c.float())
        assert torch.allclose(model.inverse(z, c.float()), x.float(), atol=1e-5)


@pytest.mark.parametrize("name", FLOWS)
def test_log_determinant_equals_slogdet_of_the_autograd_jacobian(name):
    model = _scrambled(name)
    x = torch.randn(1, 1, 16, dtype=torch.float64) * 0.3
    c = _cond(model, 16)
    jac = torch.autograd.functional.jacobian(lambda v: model.flow(v.view(1, 1, 16), c)[0][0], x.flatten())
    _, logdet = model.flow(x, c)
    sign, expected = torch.linalg.slogdet(jac)  # (16, 16)
    assert float(sign) != 0
    assert torch.allclose(logdet[0], expected, atol=1e-8)


def test_frame_upsampler_repeats_interpolates_and_starts_learning_from_linear():
    frames = torch.randn(2, 3, 6)
    hop, n = 8, 5 * 8 + 3
    repeat = FrameUpsampler(3, hop, "repeat")(frames, n)
    linear = FrameUpsampler(3, hop, "linear")(frames, n)
    learned = FrameUpsampler(3, hop, "learned")
    assert repeat.shape == linear.shape == (2, 3, n)
    # every mode puts frame j on sample j * hop
    for up in (repeat, linear, learned(frames, n)):
        assert torch.allclose(up[..., ::hop], frames[..., : len(range(0, n, hop))], atol=1e-6)
    # repeat steps once per frame; linear lands halfway between two frames halfway between them
    assert torch.equal(repeat[..., hop + 1], repeat[..., hop + 3])
    assert torch.allclose(linear[..., hop + hop // 2], frames[..., 1:3].mean(-1), atol=1e-6)
    # the transposed convolution starts as linear interpolation, the DSP helper's, and is trainable
    assert torch.allclose(learned(frames, n), upsample(frames, n, hop), atol=1e-6)
    assert learned.conv.weight.requires_grad
    with pytest.raises(ParameterError, match="upsample='cubic'"):
        FrameUpsampler(3, hop, "cubic")


def test_invertible_1x1_conv_starts_with_positive_determinant():
    for seed in range(20):
        conv = InvertibleConv1x1(6, torch.Generator().manual_seed(seed))
        assert float(torch.det(conv.weight.detach())) > 0
        assert torch.allclose(conv.weight @ conv.weight.T, torch.eye(6), atol=1e-5)


def test_actnorm_initialises_from_the_first_training_batch():
    norm = ActNorm(3).train()
    x = torch.randn(4, 3, 100) * torch.tensor([1.0, 5.0, 0.1])[:, None] + 2.0
    y, _ = norm(x)
    assert torch.allclose(y.mean(dim=(0, 2)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(y.std(dim=(0, 2)), torch.ones(3), atol=1e-3)


@pytest.mark.parametrize("name", FLOWS)
def test_flows_are_vocoders(name):
    model = create_model(name, "tiny").eval()
    assert any(s.name == "mel" and s.kind == "frames" for s in model.conditioning)
    mel = model.example_frames(0.2)
    audio = model.generate(1, cond={"mel": mel}, generator=0)
    assert audio.n_samples % model.multiple == 0
    assert abs(audio.n_samples - (mel.shape[-1] - 1) * model.config.hop_length) < model.multiple


@pytest.mark.parametrize("name", FLOWS)
def test_encode_decode_round_trip(name):
    model = _scrambled(name).float()
    x = model.generate(1, seconds=0.1, generator=1)
    y = model.decode(model.encode(x))
    assert torch.allclose(y.samples, x.samples[..., : y.n_samples], atol=1e-4)


@pytest.mark.parametrize("name", FLOWS)
def test_shipped_checkpoint_loads_and_generates(name):
    if not has_checkpoint(name):
        pytest.skip(f"{name} ships no checkpoint yet")
    model = load_model(name)
    audio = model.generate(1, seconds=0.2, cond={"pitch": 60}, generator=0)
    assert bool(torch.isfinite(audio.samples).all()) and float(audio.samples.abs().max()) > 1e-4



@pytest.mark.parametrize("name", AIDED_FLOWS)
def test_the_source_f0_is_the_curve_given_else_the_pitch_else_pyin_on_the_clip(name):
    from workbench.data import Notes
    from workbench.metrics import cents_error

    model = create_model(name, "tiny").eval()
    c = model.config
    x = Notes(source="soundfont", instruments=("flute",), pitches=(62,), velocities=(100,), seconds=0.25,
              sample_rate=c.sample_rate)[0][0][None]  # (1, 1, time)
    x = model._trim(x)
    n_frames = x.shape[-1] // c.hop_length + 1
    checked = model.check_cond({}, 1)
    measured = model.f0_for({}, checked, n_frames, 1, x=x[:, 0])
    assert measured.shape == (1, n_frames) and abs(cents_error(float(measured.median()), 62)) < 50
    told = model.f0_for({"pitch": 60}, model.check_cond({"pitch": 60}, 1), n_frames, 1, x=x[:, 0])
    assert torch.allclose(told, torch.full((1, n_frames), 261.6256), atol=1e-3)
    curve = torch.linspace(200.0, 300.0, n_frames)
    given = model.f0_for({"f0_hz": curve}, model.check_cond({"f0_hz": curve}, 1), n_frames, 1, x=x[:, 0])
    assert torch.equal(given[0], curve)
    # the flow hears it: another f0 gives the same clip another z (couplings that are not the identity)
    model = _scrambled(name).float()
    with torch.no_grad():
        z_measured = model.flow(x, model.features_of(x))[0]
        z_told = model.flow(x, model.features_of(x, {"pitch": 60}))[0]
    assert not torch.allclose(z_measured, z_told)


@pytest.mark.parametrize("name", AIDED_FLOWS)
def test_a_wrong_f0_curve_is_refused_with_what_was_expected(name):
    from workbench.errors import ParameterError

    model = create_model(name, "tiny").eval()
    mel = model.example_frames(0.1)
    with pytest.raises(ParameterError, match="f0_hz has shape"):
        model.generate(1, cond={"mel": mel, "f0_hz": mel})  # frames of the wrong kind
    with pytest.raises(ParameterError, match="NaN"):
        model.generate(1, cond={"mel": mel, "f0_hz": torch.full((mel.shape[-1],), float("nan"))})


# ---- FloWaveNet's learned prior on the split-off channels (Glow's split; the authors' Block.prior) ----------
def _with_prior(**overrides):
    """A scrambled tiny FloWaveNet with a learned split prior whose network is scrambled too."""
    model = _scrambled("flowavenet", learned_prior=True, **overrides)
    assert model.priors is not None and len(model.priors) == model.config.n_blocks - 1
    return model


def test_the_default_flowavenet_has_no_prior_weights_and_the_option_adds_them():
    plain = create_model("flowavenet", "tiny")
    assert not any(k.startswith("priors.") for k in plain.state_dict())
    prior = create_model("flowavenet", "prior-tiny")
    assert prior.config.learned_prior and any(k.startswith("priors.") for k in prior.state_dict())
    assert any(step.startswith("prior") for step, _ in prior.flow_diagram())


@pytest.mark.parametrize("mode", FrameUpsampler.MODES)
def test_a_flow_with_a_learned_prior_inverts_exactly(mode):
    model = _with_prior(upsample=mode)
    n = 16 * model.multiple
    x = torch.randn(2, 1, n, dtype=torch.float64) * 0.3
    c = _cond(model, n).expand(2, -1, -1)
    with torch.no_grad():
        splits = model.split_priors(x, c)
        assert float(splits[0]["mean"].abs().max()) > 1e-3 and float(splits[0]["log_sd"].abs().max()) > 1e-3
        z, _ = model.flow(x, c)
        again = model.inverse(z, c)
    assert z.shape == (2, n)
    assert torch.allclose(again, x, atol=1e-6)


def test_the_learned_prior_log_density_is_the_change_of_variables_done_by_hand():
    from torch.distributions import Normal

    model = _with_prior()
    # the same flow without the prior: its Jacobian, by autograd, maps x to the raw split halves and the output
    plain = create_model("flowavenet", "tiny").double().eval()
    missing, unexpected = plain.load_state_dict(model.state_dict(), strict=False)
    assert not missing and unexpected and all(k.startswith("priors.") for k in unexpected)
    n = 16
    x = torch.randn(1, 1, n, dtype=torch.float64) * 0.3
    c = _cond(model, n)
    jac = torch.autograd.functional.jacobian(lambda v: plain.flow(v.view(1, 1, n), c)[0][0], x.flatten())
    sign, log_det = torch.linalg.slogdet(jac)  # (16, 16)
    assert float(sign) != 0
    with torch.no_grad():
        splits = model.split_priors(x, c)
        raw, _ = plain.flow(x, c)  # the raw split halves first, then the last block's output
        n_split = sum(s["z"].numel() for s in splits)
        log_p = sum(Normal(s["mean"], s["log_sd"].exp()).log_prob(s["z"]).sum() for s in splits)
        log_p = log_p + Normal(0.0, 1.0).log_prob(raw[0, n_split:]).sum()
        assert torch.allclose(model.log_density(x, c)[0], log_p + log_det, atol=1e-8)


def test_a_fresh_learned_prior_is_the_standard_normal_so_the_likelihood_is_the_default_models():
    torch.manual_seed(0)
    plain = create_model("flowavenet", "tiny").eval()
    prior = create_model("flowavenet", "prior-tiny").eval()
    missing, _ = prior.load_state_dict(plain.state_dict(), strict=False)
    assert missing and all(k.startswith("priors.") for k in missing)  # the prior nets stay zero-initialised
    audio = plain.generate(2, seconds=0.1, generator=0)
    assert torch.equal(prior.log_prob(audio), plain.log_prob(audio))
    x = prior._trim(audio.samples)
    c = prior.features_of(x)
    with torch.no_grad():
        assert torch.equal(prior.flow(x, c)[0], plain.flow(x, c)[0])


def test_the_split_prior_mean_moves_with_the_kept_channels():
    model = _with_prior()
    n = 16 * model.multiple
    x = torch.randn(1, 1, n, dtype=torch.float64) * 0.3
    c = _cond(model, n)
    with torch.no_grad():
        split = model.split_priors(x, c)[0]
        cond = model._conds(c)[0]
        mean, log_sd = model.priors[0](split["kept"], cond)
        assert torch.equal(mean, split["mean"]) and torch.equal(log_sd, split["log_sd"])
        moved, _ = model.priors[0](split["kept"] + 0.1 * torch.randn_like(split["kept"]), cond)
    assert float((moved - mean).abs().max()) > 1e-3


def test_sampling_at_temperature_zero_gives_the_prior_means_and_temperature_scales_the_std():
    model = _with_prior()
    n = 16 * model.multiple
    c = _cond(model, n)
    eps = torch.randn(1, n, dtype=torch.float64)
    with torch.no_grad():
        for temperature in (0.0, 0.5):
            x = model.inverse(temperature * eps, c)  # what _generate does, at sigma = 1
            splits = model.split_priors(x, c)
            assert float(splits[0]["mean"].abs().max()) > 1e-3
            offset = 0
            for s in splits:
                noise = eps[:, offset: offset + s["z"].numel()].view_as(s["z"])
                assert torch.allclose(s["z"], s["mean"] + s["log_sd"].exp() * temperature * noise, atol=1e-8)
                offset += s["z"].numel()


def test_a_flowavenet_with_a_learned_prior_keeps_the_contract(tmp_path):
    torch.manual_seed(0)
    model = create_model("flowavenet", "prior-tiny").eval()
    mel = model.example_frames(0.1)
    a = model.generate(2, cond={"mel": mel}, generator=3)
    assert a.batch_size == 2 and bool(torch.isfinite(a.samples).all())
    assert torch.equal(model.generate(2, cond={"mel": mel}, generator=3).samples, a.samples)
    bits = model.log_prob(a)
    assert bits.shape == (2,) and bool(torch.isfinite(bits).all())
    model.save(tmp_path / "ckpt")
    again = load_model(tmp_path / "ckpt")
    assert again.config.learned_prior
    assert torch.equal(again.generate(2, cond={"mel": mel}, generator=3).samples, a.samples)
    y = model.decode(model.encode(a))
    assert torch.allclose(y.samples, a.samples[..., : y.n_samples], atol=1e-4)
    aided = create_model("flowavenet+source", "prior-tiny")
    assert aided.config.learned_prior and aided.config.source_harmonics


def test_training_with_a_learned_prior_reaches_the_prior_network():
    torch.manual_seed(0)
    model = create_model("flowavenet", "prior-tiny").train()
    samples = 0.3 * torch.randn(2, 1, 2000)
    logs = model.training_step((samples, {"pitch": [60, 62]}), generator=torch.Generator().manual_seed(0))
    logs["loss"].backward()
    grads = [p.grad for p in model.priors.parameters()]
    assert torch.isfinite(logs["loss"]) and any(g is not None and float(g.abs().max()) > 0 for g in grads)
