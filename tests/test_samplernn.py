"""SampleRNN: causal at every offset inside a frame; stateful generation = teacher forcing."""

import pytest
import torch

from workbench.models import create_model, has_checkpoint, load_model


def _model(name="samplernn"):
    torch.manual_seed(0)
    return create_model(name, "tiny").eval()


def _cond(n=1):
    return {"pitch": [62] * n, "instrument": ["piano"] * n, "velocity": [100] * n}


def test_causal_at_every_offset_inside_a_frame():
    model = _model()
    fs = model.config.frame_size
    codes = torch.randint(0, 256, (1, 5 * fs), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        base = model(codes, _cond())
        for offset in range(2 * fs):  # every offset inside a top frame, in two frames
            p = fs + offset
            changed = codes.clone()
            changed[0, p] = (changed[0, p] + 128) % 256
            out = model(changed, _cond())
            # predictions up to and including position p never see code p ...
            assert torch.allclose(out[..., : p + 1], base[..., : p + 1], atol=1e-6), offset
            # ... and the very next prediction does (the MLP sees the previous samples)
            assert not torch.allclose(out[..., p + 1], base[..., p + 1], atol=1e-6), offset


def test_stateful_generation_equals_teacher_forced_predictions():
    model = _model()
    n_samples = 3 * model.config.frame_size + 5  # not a whole number of frames
    with torch.no_grad():
        codes, logits = model.sample_codes(2, n_samples, _cond(2), generator=torch.Generator().manual_seed(1),
                                           return_logits=True)
        forced = model(codes, _cond(2))
    assert torch.allclose(logits, forced, atol=1e-5)


@pytest.mark.parametrize("name", ["samplernn", "samplernn+source"])
def test_the_compiled_sampler_draws_the_pytorch_samplers_codes(name):
    from workbench.models import samplernn_kernel

    if not samplernn_kernel.available():
        pytest.fail("numba (which comes with librosa) is missing: the compiled sampler cannot run")
    model = _model(name)
    n_samples = 40 * model.config.frame_size + 3  # not a whole number of frames
    runs = {}
    for method in ("pytorch", "fast"):
        with torch.no_grad():
            runs[method] = model.sample_codes(3, n_samples, _cond(3), 0.8, torch.Generator().manual_seed(2),
                                              return_logits=True, method=method)
    assert torch.equal(runs["fast"][0], runs["pytorch"][0])
    assert (runs["fast"][1] - runs["pytorch"][1]).abs().max() < 1e-4
    with torch.no_grad():  # and both are the teacher-forced predictions of the codes drawn
        assert torch.allclose(runs["fast"][1], model(runs["fast"][0], _cond(3)), atol=1e-4)
    assert model.resolve_method("auto") == "fast" and model.double().resolve_method("auto") == "pytorch"


def test_the_compiled_samplers_chunks_and_progress_do_not_change_the_codes():
    model = _model()
    seen = []
    whole = model.generate(1, seconds=0.2, cond={"pitch": 62}, generator=4, method="fast",
                           progress=lambda done, total: seen.append((done, total)))
    chunks = list(model.generate_stream(seconds=0.2, cond={"pitch": 62}, generator=4, method="fast",
                                        chunk_seconds=0.03))
    assert torch.equal(torch.cat([c.samples for c in chunks], dim=-1), whole.samples)
    assert seen[0] == (512, 1600) and seen[-1] == (1600, 1600)


def test_truncated_bptt_gives_the_same_forward_pass():
    model = _model()
    codes = torch.randint(0, 256, (2, 3 * model.config.tbptt_samples), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.allclose(model(codes, _cond(2), tbptt=True), model(codes, _cond(2)), atol=1e-5)


def test_the_source_reaches_the_prediction_and_is_placed_by_the_offset():
    model = _model("samplernn+source")
    assert model.config.source_harmonics == 2
    codes = torch.randint(0, 256, (1, 4 * model.config.frame_size), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        base = model(codes, _cond())
        shifted = model(codes, _cond(), offset=7)  # the same codes, later in the note
        assert not torch.allclose(base, shifted, atol=1e-4)
        for layer in (model.source_mid, model.source_mlp):
            layer.weight.zero_()
        assert torch.allclose(model(codes, _cond()), model(codes, _cond(), offset=7), atol=1e-6)


def test_the_source_is_silent_before_the_onset_and_repeats_every_period():
    model = _model("samplernn+source")
    period = model.config.sample_rate / 440.0  # A4 at 8 kHz: 18.18 samples
    src = model.source([69], torch.arange(-4, 400))[0]  # (time, 2 * harmonics)
    assert src[:4].abs().max() == 0
    k = 11  # 11 periods are 200 samples: a whole number of samples
    assert abs(k * period - 200) < 1e-9
    assert torch.allclose(src[4:204], src[204:404], atol=1e-5)


def test_encode_gives_codes_and_per_sample_bits():
    model = _model()
    x = model.generate(1, seconds=0.02, generator=0)
    enc = model.encode(x)
    assert enc.data["codes"].shape == enc.data["log_likelihood_bits"].shape == (1, x.n_samples)
    assert torch.allclose(-enc.data["log_likelihood_bits"].mean(-1), model.log_prob(x))


@pytest.mark.slow
@pytest.mark.skipif(not has_checkpoint("samplernn"), reason="no shipped samplernn checkpoint")
def test_shipped_checkpoint_loads_and_generates():
    model = load_model("samplernn")
    audio = model.generate(1, seconds=0.1, cond={"pitch": 60}, generator=0)
    assert bool(torch.isfinite(audio.samples).all()) and audio.n_samples == int(0.1 * model.sample_rate)
