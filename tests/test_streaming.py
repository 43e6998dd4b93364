"""Streaming generation: the chunks of ``generate_stream`` are ``generate``'s clip, handed over early.

Parametrised over every registered model that declares :class:`Streaming` (at its tiny preset),
so a model that declares it inherits these checks (the conformance suite of this capability, kept
apart from tests/test_capabilities.py because it samples).
"""

import pytest
import torch

from workbench.errors import ParameterError
from workbench.models import Streaming, Vocoder, create_model, list_models, model_class

#: The models whose samplers run from the start of the clip to its end and hand chunks back.
STREAMING = {"wavenet", "wavenet+source", "wavenet_vocoder", "wavenet_mol", "wavenet_gaussian", "midi2wave",
             "samplernn", "samplernn+source", "sparse_transformer"}
#: Short clips in a few chunks: the continuous-output teachers sample slowly on the cached path.
SECONDS, CHUNK_SECONDS = 0.06, 0.02
DECLARING = [name for name in list_models() if issubclass(model_class(name), Streaming)]


def _tiny(name):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = create_model(name, "tiny").eval()
        if name == "midi2wave":  # a conditioning path that is not zero, so the score is heard
            with torch.no_grad():
                torch.nn.init.normal_(model.local_proj.weight, std=0.5)
    return model


def _cond(model):
    """Conditioning that exercises each model's own inputs (a vocoder needs mel frames)."""
    if isinstance(model, Vocoder):
        return {"mel": model.example_frames(SECONDS)}
    if model.name == "midi2wave":
        return model.roll_from_events([(0.0, 0.1, 60, 100), (0.08, 0.1, 67, 90)], seconds=SECONDS)
    return {"pitch": 62}


def _joined(chunks):
    return torch.cat([c.samples for c in chunks], dim=-1)


def test_exactly_the_autoregressive_samplers_declare_streaming():
    assert set(DECLARING) == STREAMING
    for name in list_models():
        declares = name in STREAMING
        assert isinstance(create_model(name, "tiny"), Streaming) == declares, name


@pytest.fixture(params=DECLARING)
def streaming(request):
    return _tiny(request.param)


def test_the_chunks_joined_are_the_generated_clip_under_the_same_seed(streaming):
    cond = _cond(streaming)
    whole = streaming.generate(2, seconds=SECONDS, cond=cond, temperature=0.9, generator=5)
    chunks = list(streaming.generate_stream(2, seconds=SECONDS, cond=cond, temperature=0.9, generator=5,
                                            chunk_seconds=CHUNK_SECONDS))
    assert len(chunks) > 1
    assert all(c.samples.shape[:2] == (2, 1) and c.sample_rate == whole.sample_rate for c in chunks)
    assert all(c.n_samples == round(CHUNK_SECONDS * streaming.sample_rate) for c in chunks[:-1])
    assert torch.equal(_joined(chunks), whole.samples)


def test_the_first_chunk_comes_before_the_rest_is_sampled(streaming):
    calls = []
    stream = streaming.generate_stream(seconds=SECONDS, cond=_cond(streaming), generator=0, chunk_seconds=CHUNK_SECONDS,
                                       progress=lambda done, total: calls.append((done, total)))
    assert calls == []  # nothing is sampled until the first chunk is asked for
    first = next(stream)
    total = calls[-1][1]
    assert first.n_samples < total and calls[-1][0] < total  # the sampler has stopped part way
    rest = list(stream)
    assert calls[-1] == (total, total) and first.n_samples + sum(c.n_samples for c in rest) == total


@pytest.mark.parametrize("method", ["fast", "cached", "naive"])
def test_every_wavenet_sampler_streams_the_clip_it_generates(method):
    model = _tiny("wavenet+source")
    seconds = {"fast": 0.3, "cached": 0.1, "naive": 0.006}[method]
    whole = model.generate(1, seconds=seconds, cond={"pitch": 63}, generator=7, method=method)
    chunks = list(model.generate_stream(seconds=seconds, cond={"pitch": 63}, generator=7, method=method,
                                        chunk_seconds=seconds / 10))
    assert len(chunks) == 10
    assert torch.equal(_joined(chunks), whole.samples)


@pytest.mark.parametrize("method", ["fast", "cached", "naive"])
def test_every_sparse_transformer_sampler_streams_the_clip_it_generates_across_windows(method):
    model = _tiny("sparse_transformer")
    n = {"fast": 2 * model.config.context + 37, "cached": model.config.context + 37, "naive": 300}[method]
    seconds = n / model.sample_rate
    whole = model.generate(1, seconds=seconds, cond={"pitch": 63}, generator=7, method=method)
    chunks = list(model.generate_stream(seconds=seconds, cond={"pitch": 63}, generator=7, method=method,
                                        chunk_seconds=100 / model.sample_rate))
    assert [c.n_samples for c in chunks] == [100] * (n // 100) + ([n % 100] if n % 100 else [])
    assert torch.equal(_joined(chunks), whole.samples)


def test_wavenet_code_chunks_do_not_depend_on_the_chunk_size():
    model = _tiny("wavenet+source")
    cond = {"pitch": [61], "instrument": ["piano"], "velocity": [100]}
    codes = {chunk: torch.cat([c for c, _ in model.code_chunks(1, 1000, cond, 1.0, torch.Generator().manual_seed(2),
                                                                 method="fast", chunk=chunk)], dim=1)
             for chunk in (1, 77, 2048)}
    assert torch.equal(codes[1], codes[77]) and torch.equal(codes[77], codes[2048])


BAD = [
    (dict(n=0), "n=0"),
    (dict(seconds=0), "seconds=0"),
    (dict(seconds=31.0), "seconds=31.0"),
    (dict(temperature=0), "temperature=0"),
    (dict(cond={"pitch": 130}), "pitch=130"),
    (dict(cond={"colour": "red"}), "does not take conditioning colour"),
    (dict(method="quick"), "method='quick'"),
]


@pytest.mark.parametrize("kwargs,message", BAD, ids=[m for _, m in BAD])
def test_bad_arguments_raise_what_generate_raises_at_the_call(kwargs, message):
    model = _tiny("wavenet")
    kwargs = {"seconds": 0.1, **kwargs}
    with pytest.raises(ParameterError) as from_generate:
        model.generate(**kwargs)
    with pytest.raises(ParameterError) as from_stream:
        model.generate_stream(**kwargs)  # raised when called, before any chunk is asked for
    assert message in str(from_generate.value)
    assert str(from_stream.value) == str(from_generate.value)


def test_a_samplernn_refuses_an_option_as_generate_does():
    model = _tiny("samplernn")
    for call in (model.generate, model.generate_stream):
        with pytest.raises(ParameterError, match="method='cached' must be one of auto, fast, pytorch"):
            call(seconds=0.1, method="cached")


@pytest.mark.parametrize("chunk_seconds", [0, -0.1, float("nan"), 31.0, "0.1", True])
def test_a_bad_chunk_length_is_refused(chunk_seconds):
    with pytest.raises(ParameterError, match="chunk_seconds"):
        _tiny("wavenet").generate_stream(seconds=0.1, chunk_seconds=chunk_seconds)


def test_a_vocoder_without_frames_raises_at_the_call():
    with pytest.raises(ParameterError, match="pass cond="):
        _tiny("wavenet_vocoder").generate_stream(seconds=0.1)


def test_streaming_leaves_gradients_on_between_chunks():
    stream = _tiny("samplernn").generate_stream(seconds=0.05, chunk_seconds=0.01, generator=0)
    next(stream)
    assert torch.is_grad_enabled()
    list(stream)
    assert torch.is_grad_enabled()
