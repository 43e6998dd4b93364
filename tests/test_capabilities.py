"""Conformance of the declared capabilities: every registered model that declares one keeps it.

Each test is parametrised over the models (at their tiny preset) whose class declares the
capability, so a new model inherits these checks by declaring it.
"""

import json

import pytest
import torch

from workbench import Audio
from workbench.errors import ParameterError
from workbench.models import (
    ClipFrames,
    LatentModel,
    Speed,
    Streaming,
    Vocoder,
    create_model,
    list_models,
    load_model,
    model_class,
)
from workbench.models.base import INTERACTIVE_REAL_TIME


def _declaring(capability):
    return [name for name in list_models() if issubclass(model_class(name), capability)]


def _tone(model, seconds=0.3, midi=None):
    """A harmonic tone at the model's rate, at a pitch it knows: ``(1, time)``."""
    low, high = model.config.pitch_range
    f0 = 440.0 * 2 ** (((midi or (low + high) // 2) - 69) / 12)
    t = torch.arange(int(seconds * model.sample_rate)) / model.sample_rate
    return sum(0.3 / k * torch.sin(2 * torch.pi * k * f0 * t) for k in range(1, 4))[None]


def test_every_capability_has_a_model_that_declares_it():
    for capability in (ClipFrames, Vocoder, LatentModel, Streaming):
        assert _declaring(capability), f"no registered model declares {capability.__name__}"


# ---- ClipFrames ---------------------------------------------------------------------------------
@pytest.fixture(params=_declaring(ClipFrames))
def framed(request):
    torch.manual_seed(0)
    return create_model(request.param, "tiny").eval()


def test_clip_frames_measures_every_frames_conditioning_and_nothing_else(framed):
    frame_specs = {s.name for s in framed.conditioning if s.kind == "frames"}
    assert set(framed.frame_makers()) == frame_specs


def test_frames_measured_on_a_clip_condition_generation_of_its_length(framed):
    x = _tone(framed)
    cond = framed.clip_frames(x[0])  # one clip: frames without a batch dimension
    for name, frames in cond.items():
        assert frames.shape[-1] == x.shape[-1] // framed.config.hop_length + 1, name
        assert bool(torch.isfinite(frames).all()), name
    audio = framed.generate(1, seconds=x.shape[-1] / framed.sample_rate, cond=cond, generator=0)
    assert abs(audio.n_samples - x.shape[-1]) <= framed.config.hop_length


def test_asking_for_frames_a_model_does_not_take_names_what_it_measures(framed):
    with pytest.raises(ParameterError, match="does not measure 'pianoroll' frames"):
        framed.frames_from_clip("pianoroll", _tone(framed))


def test_a_batch_of_clips_gives_a_batch_of_frames(framed):
    x = torch.cat([_tone(framed), 0.5 * _tone(framed)])
    for name in framed.frame_makers():
        both = framed.frames_from_clip(name, x)
        one = framed.frames_from_clip(name, x[1])
        assert both.shape[0] == 2 and torch.allclose(both[1], one, atol=1e-4), name


# ---- Vocoder -------------------------------------------------------------------------------------
@pytest.fixture(params=_declaring(Vocoder))
def vocoder(request):
    torch.manual_seed(0)
    return create_model(request.param, "tiny").eval()


def test_a_vocoder_takes_mel_frames_in_its_own_convention(vocoder):
    mel = vocoder.mel_of(_tone(vocoder))
    assert mel.shape[:2] == (1, vocoder.config.n_mels)
    specs = {s.name: s for s in vocoder.conditioning}
    assert specs["mel"].kind == "frames"


def test_example_frames_are_the_mel_of_a_tone_at_the_asked_pitch(vocoder):
    low, high = vocoder.config.pitch_range
    a, b = vocoder.example_frames(0.3, pitch=low), vocoder.example_frames(0.3, pitch=high)
    assert a.shape == b.shape and a.shape[0] == vocoder.config.n_mels
    # the higher tone's energy sits in higher mel bands
    bands = torch.arange(a.shape[0], dtype=torch.float32)[:, None]
    centroid = [float((bands * f.exp()).sum() / f.exp().sum()) for f in (a, b)]
    assert centroid[1] > centroid[0]


def test_a_vocoder_renders_about_hop_samples_per_frame(vocoder):
    mel = vocoder.example_frames(0.25)
    audio = vocoder.generate(1, seconds=0.25, cond={"mel": mel}, generator=0)
    assert abs(audio.n_samples - (mel.shape[-1] - 1) * vocoder.config.hop_length) <= vocoder.config.hop_length


def test_f0_of_mel_follows_the_tone_the_frames_came_from(vocoder):
    low, high = vocoder.config.pitch_range
    midi = (low + high) // 2
    f0 = vocoder.f0_of_mel(vocoder.example_frames(0.5, pitch=midi))
    assert f0.shape[-1] == vocoder.example_frames(0.5).shape[-1]
    expected = 440.0 * 2 ** ((midi - 69) / 12)
    assert abs(float(f0.median()) / expected - 1) < 0.06  # within a semitone


# ---- LatentModel ---------------------------------------------------------------------------------
@pytest.fixture(params=_declaring(LatentModel))
def latent(request):
    torch.manual_seed(0)
    return create_model(request.param, "tiny").eval()


def test_prior_draws_are_seeded_and_decode_to_the_asked_length(latent):
    a = latent.sample_latent(2, seconds=0.1, generator=4)
    b = latent.sample_latent(2, seconds=0.1, generator=4)
    for key in a.data:
        assert torch.equal(a.data[key], b.data[key]), key
    assert latent.decode(a).n_samples == round(0.1 * latent.sample_rate)


def test_prior_draws_are_the_kind_encode_returns(latent):
    x = Audio(0.1 * _tone(latent, 0.1)[None], latent.sample_rate)
    real = latent.encode(x)
    drawn = latent.sample_latent(1, seconds=0.1, generator=0)
    assert drawn.kind == real.kind
    assert set(real.data) >= set(drawn.data)
    for key in drawn.data:
        assert drawn.data[key].shape == real.data[key].shape, key


def test_decoding_an_encoding_gives_a_clip_of_the_input_length(latent):
    x = Audio(0.1 * _tone(latent, 0.1)[None], latent.sample_rate)
    assert latent.decode(latent.encode(x)).n_samples == x.n_samples


# ---- speed (every model) ---------------------------------------------------------------------------
def test_speed_is_read_from_the_card_and_decides_interactivity(tmp_path):
    model = create_model("vae", "tiny")
    assert model.speed is None and not model.interactive  # unmeasured: never guessed fast
    model.save(tmp_path)
    for factor in (0.5 * INTERACTIVE_REAL_TIME, 2 * INTERACTIVE_REAL_TIME):
        card = {"metrics": {"samples_per_second": factor * model.sample_rate, "real_time_factor": factor,
                            "threads": 1}}
        (tmp_path / "card.json").write_text(json.dumps(card))
        loaded = load_model(tmp_path)
        assert loaded.speed == Speed(factor * model.sample_rate, factor, 1)
        assert loaded.interactive == (factor >= INTERACTIVE_REAL_TIME)
