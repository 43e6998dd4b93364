"""Conformance suite: every registered model at its tiny preset keeps the contract."""

import math

import pytest
import torch

from workbench import Audio
from workbench.errors import ParameterError, UnsupportedError, WorkbenchError
from workbench.models import Vocoder, create_model, list_models, load_model
from workbench.models.base import FAMILIES, LIKELIHOODS, CondSpec, Encoding, GenerativeModel


def _cond_for(model, n=1, seconds=0.1):
    """Default conditioning, with a vocoder's mel frames made from a short clip (other curves,
    such as f0, are left to the model, as the app leaves them by default)."""
    return {"mel": model.example_frames(seconds=seconds)} if isinstance(model, Vocoder) else {}


@pytest.fixture(params=list_models(GenerativeModel))
def model(request):
    torch.manual_seed(0)
    return create_model(request.param, "tiny").eval()


def test_declares_contract_fields(model):
    assert model.family in FAMILIES
    assert model.likelihood in LIKELIHOODS
    assert isinstance(model.sample_rate, int) and model.sample_rate >= 1000
    for spec in model.conditioning:
        assert isinstance(spec, CondSpec)
        assert spec.kind in ("int", "float", "choice", "frames")
        if spec.kind == "choice":
            assert spec.default in spec.choices
        elif spec.kind in ("int", "float"):
            assert spec.range[0] <= spec.default <= spec.range[1]


def test_generate_shape_dtype_and_rate(model):
    audio = model.generate(2, seconds=0.05, cond=_cond_for(model), generator=0)
    assert isinstance(audio, Audio)
    assert audio.samples.dtype == torch.float32
    assert audio.batch_size == 2 and audio.n_channels == 1 and audio.n_samples > 0
    assert audio.sample_rate == model.sample_rate
    assert bool(torch.isfinite(audio.samples).all())
    assert float(audio.samples.abs().max()) <= 1.0


def test_generate_is_deterministic_under_a_seed(model):
    a = model.generate(1, seconds=0.05, cond=_cond_for(model), generator=3)
    b = model.generate(1, seconds=0.05, cond=_cond_for(model), generator=3)
    assert torch.equal(a.samples, b.samples)


def test_the_seed_matters_exactly_where_the_model_says_it_is_stochastic(model):
    a = model.generate(1, seconds=0.05, cond=_cond_for(model), generator=1, temperature=1.0)
    b = model.generate(1, seconds=0.05, cond=_cond_for(model), generator=2, temperature=1.0)
    assert torch.equal(a.samples, b.samples) != model.stochastic


def test_save_load_round_trip_gives_identical_outputs(model, tmp_path):
    model.save(tmp_path / "ckpt")
    again = load_model(tmp_path / "ckpt")
    assert type(again) is type(model)
    a = model.generate(1, seconds=0.05, cond=_cond_for(model), generator=5)
    b = again.generate(1, seconds=0.05, cond=_cond_for(model), generator=5)
    assert torch.equal(a.samples, b.samples)


def test_weights_file_is_safetensors_not_pickle(model, tmp_path):
    model.save(tmp_path / "ckpt")
    files = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert files == ["config.json", "model.safetensors"]
    head = (tmp_path / "ckpt" / "model.safetensors").read_bytes()[:8]
    assert head[:2] != b"\x80\x04"  # not a pickle stream


def test_batch_consistency_of_likelihood_or_encoding(model):
    """Scoring a batch gives each item what scoring it alone gives."""
    x = model.generate(2, seconds=0.05, cond=_cond_for(model), generator=7)
    if model.likelihood != "none":
        both = model.log_prob(x, _cond_for(model))
        one = model.log_prob(x[0], _cond_for(model))
        assert both.shape == (2,)
        assert torch.allclose(both[0], one[0], atol=1e-4)
    else:
        enc_both = model.encode(x, _cond_for(model))
        enc_one = model.encode(x[0], _cond_for(model))
        key = next(iter(enc_one.data))
        assert torch.allclose(enc_both.data[key][:1].float(), enc_one.data[key].float(), atol=1e-4)


def test_log_prob_is_finite_where_defined(model):
    x = model.generate(1, seconds=0.05, cond=_cond_for(model), generator=0)
    if model.likelihood == "none":
        with pytest.raises(UnsupportedError, match="likelihood"):
            model.log_prob(x)
    else:
        bits = model.log_prob(x, _cond_for(model))
        assert bool(torch.isfinite(bits).all())


def test_encode_returns_an_encoding_and_decode_where_possible(model):
    x = model.generate(1, seconds=0.1, cond=_cond_for(model), generator=0)
    enc = model.encode(x, _cond_for(model))
    assert isinstance(enc, Encoding)
    assert enc.describe().startswith(enc.kind)
    try:
        y = model.decode(enc)
    except UnsupportedError as exc:
        assert "cannot decode" in str(exc)
    else:
        assert isinstance(y, Audio) and y.sample_rate == model.sample_rate


def test_training_step_returns_a_finite_loss_with_gradients(model):
    from workbench.data import collate
    from workbench.train import make_datasets

    train_set, _ = make_datasets(model, "notes")
    batch = collate([train_set[i] for i in range(min(2, len(train_set)))])
    optimizers = model.configure_optimizers()
    logs = model.train().train_step(batch, optimizers, generator=torch.Generator().manual_seed(0))
    assert math.isfinite(logs["loss"])


def test_visualise_returns_a_figure(model):
    from matplotlib.figure import Figure

    assert isinstance(model.visualise(), Figure)


def test_conditioning_is_validated(model):
    with pytest.raises(ParameterError, match="does not take conditioning"):
        model.generate(1, seconds=0.05, cond={"no_such_key": 1})
    for spec in model.conditioning:
        if spec.kind == "int":
            bad = spec.range[1] + 1
            with pytest.raises(ParameterError, match=f"{spec.name}={bad} is outside"):
                model.generate(1, seconds=0.05, cond={spec.name: bad})
        if spec.kind == "choice":
            with pytest.raises(ParameterError, match="not one of"):
                model.generate(1, seconds=0.05, cond={spec.name: "kazoo"})


def test_bad_generate_arguments_raise_parameter_errors(model):
    for kwargs in ({"seconds": 0}, {"seconds": 1e6}, {"temperature": 0}, {"temperature": float("nan")}):
        with pytest.raises(ParameterError):
            model.generate(1, **kwargs)
    with pytest.raises(ParameterError):
        model.generate(0)


def test_unknown_model_and_preset_errors_name_the_choices():
    with pytest.raises(ParameterError, match="registered models"):
        create_model("no-such-model")
    with pytest.raises(ParameterError, match="choose from"):
        create_model(list_models()[0], "enormous")
    with pytest.raises(WorkbenchError):
        load_model("/no/such/folder")


def test_generate_options_are_declared_checked_and_leave_no_state(model):
    before = {k: v for k, v in vars(model).items() if not k.startswith("_")}
    with pytest.raises(ParameterError, match="has no option no_such_option"):
        model.generate(1, seconds=0.05, cond=_cond_for(model), no_such_option=1)
    for option, values in model.generate_options.items():
        with pytest.raises(ParameterError, match=f"{option}='bogus' must be one of"):
            model.generate(1, seconds=0.05, cond=_cond_for(model), **{option: "bogus"})
        for value in values:
            model.generate(1, seconds=0.01, cond=_cond_for(model), generator=0, **{option: value})
    after = {k: v for k, v in vars(model).items() if not k.startswith("_")}
    assert before.keys() == after.keys()  # a shared model keeps no per-call state


def test_no_temperature_means_the_models_own_default(model):
    cond = _cond_for(model)
    default = model.generate(1, seconds=0.05, cond=cond, generator=2)
    explicit = model.generate(1, seconds=0.05, cond=cond, generator=2, temperature=model.default_temperature)
    assert torch.equal(default.samples, explicit.samples)


def test_generate_gives_the_asked_length_or_the_declared_maximum(model):
    asked = 0.3 if model.max_seconds is None else 4.0
    audio = model.generate(1, seconds=asked, cond=_cond_for(model, seconds=asked), generator=0)
    expected = asked if model.max_seconds is None else model.max_seconds
    assert abs(audio.n_samples - expected * model.sample_rate) <= 256  # vocoders: whole mel frames
    assert model.default_seconds > 0


@pytest.mark.parametrize("name", list_models())
def test_every_model_keeps_the_contracts_method_signatures(name):
    """A model may override the contract's methods but not change how they are called:
    ``workbench evaluate`` calls ``measure()`` and ``card_summary(metrics)`` on every checkpoint."""
    import inspect

    from workbench.models import model_class
    from workbench.models.base import Model

    cls = model_class(name)
    for method in ("measure", "card_summary", "training_step"):
        ours = inspect.signature(getattr(Model, method)).parameters
        theirs = inspect.signature(getattr(cls, method)).parameters
        required = [p for p in theirs.values() if p.default is p.empty and p.kind is p.POSITIONAL_OR_KEYWORD]
        assert len(required) <= len([p for p in ours.values() if p.default is p.empty]), (name, method, list(theirs))
