"""The spectrogram route: Griffin-Lim as a model, note-to-mel frames, vocoders by name."""

from __future__ import annotations

import pytest
import torch

from workbench import Audio
from workbench.errors import ParameterError
from workbench.metrics import cents_error, median_f0, spectral_convergence
from workbench.models import create_model, load_model
from workbench.models.griffinlim import mel_to_magnitude
from workbench.models.note2mel import available_vocoders

SR = 16000


@pytest.fixture(scope="module")
def gl():
    return create_model("griffinlim", "small", n_iter=16)


@pytest.fixture(scope="module")
def piano_note(gl):
    return Audio(gl.render_note(60, "piano", 100, 1.0), SR)


# ---- Griffin-Lim -------------------------------------------------------------------------------------


def test_griffinlim_spectral_convergence_decreases_with_iterations(gl, piano_note):
    for momentum in (0.0, 0.99):
        values = gl.convergence(piano_note, n_iter=16, momentum=momentum)
        assert len(values) == 17
        assert values[-1] < 0.5 * values[0]
        assert values[8] < values[0] and values[-1] < values[8]


def test_griffinlim_encode_decode_keeps_the_magnitude(gl, piano_note):
    enc = gl.encode(piano_note)
    assert enc.kind == "magnitude" and enc.data["magnitude"].shape == (1, 513, SR // 256 + 1)
    out = gl.decode(enc)
    assert out.n_samples == piano_note.n_samples
    assert spectral_convergence(piano_note, out) < 0.35


def test_griffinlim_generates_the_dataset_note_with_a_seeded_random_phase(gl, piano_note):
    a = gl.generate(1, seconds=1.0, cond={"pitch": 60, "instrument": "piano", "velocity": 100}, generator=1)
    b = gl.generate(1, seconds=1.0, cond={"pitch": 60, "instrument": "piano", "velocity": 100}, generator=1)
    c = gl.generate(1, seconds=1.0, cond={"pitch": 60, "instrument": "piano", "velocity": 100}, generator=2)
    assert torch.equal(a.samples, b.samples) and not torch.equal(a.samples, c.samples)
    assert spectral_convergence(piano_note, a) < 0.35  # same magnitude, a phase rebuilt from noise


def test_mel_to_magnitude_then_mel_gives_back_the_mel(gl, piano_note):
    mel = gl.mel_of(piano_note.samples[:, 0])
    mag = mel_to_magnitude(mel, SR, gl.config.n_fft)
    assert mag.shape == (1, 513, mel.shape[-1]) and float(mag.min()) >= 0
    again = torch.log((_fb(gl) @ mag).clamp_min(1e-5))  # back through the filterbank
    loud = mel > mel.max() - 6  # bands within ~50 dB of the peak
    assert float((again - mel)[loud].abs().mean()) < 0.2


def _fb(gl):
    from workbench.dsp.spectral import mel_filterbank

    return mel_filterbank(gl.config.n_fft, gl.config.n_mels, SR)


def test_griffinlim_inverts_mel_frames_as_a_vocoder(gl, piano_note):
    mel = gl.mel_of(piano_note.samples[:, 0])[0]
    out = gl.generate(1, cond={"mel": mel}, generator=0)
    assert out.n_samples == (mel.shape[-1] - 1) * gl.config.hop_length
    again = gl.mel_of(out.samples[:, 0])[0]
    loud = mel > mel.max() - 6
    assert float((again - mel)[loud].abs().mean()) < 0.5
    with pytest.raises(ParameterError, match="n_mels=80"):
        gl.generate(1, cond={"mel": torch.zeros(20, 10)})


# ---- note-to-mel ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [0.1, 0.5, 1.0])
def test_note2mel_predicts_the_expected_frames(seconds):
    model = create_model("note2mel", "tiny")
    mel = model.predict_mel(3, seconds=seconds, cond={"pitch": [60, 61, 62]})
    n_samples = round(seconds * SR)
    assert mel.shape == (3, model.config.n_mels, n_samples // model.config.hop_length + 1)
    assert model.generate(1, seconds=seconds, generator=0).n_samples == n_samples


def test_note2mel_training_target_frames_match_its_predictions():
    model = create_model("note2mel", "tiny")
    x = torch.randn(2, 1, 4000) * 0.1
    cond = {"pitch": torch.tensor([60, 62]), "instrument": ["piano", "flute"], "velocity": torch.tensor([100, 100])}
    assert model.mel_of(x[:, 0]).shape == model(cond, 4000 // 256 + 1, 0.25).shape


def test_vocoders_are_found_by_name_and_unknown_ones_refused():
    assert available_vocoders()[0] == "griffinlim"
    model = create_model("note2mel", "tiny")
    names = model.conditioning[-1].choices
    assert "griffinlim" in names and "note2mel" not in names and "ddsp" not in names
    with pytest.raises(ParameterError, match="not one of"):
        model.generate(1, seconds=0.1, cond={"vocoder": "no-such-vocoder"})


def test_note2mel_renders_through_a_vocoder_with_another_mel_convention():
    """A WaveNet vocoder at 8 kHz, 20 bands, hop 64: frames are recomputed in its convention."""
    torch.manual_seed(0)
    model = create_model("note2mel", "tiny")
    vocoder = create_model("wavenet_vocoder", "tiny").eval()
    mel = model.predict_mel(1, seconds=0.05, cond={"pitch": 60})
    out = model.vocode(mel, vocoder, cond={"pitch": [60], "instrument": ["piano"]}, generator=0)
    assert out.sample_rate == vocoder.sample_rate and bool(torch.isfinite(out.samples).all())
    assert not model._same_convention(vocoder)
    assert model._same_convention(model.get_vocoder("griffinlim"))


# ---- the shipped checkpoint ------------------------------------------------------------------------------


@pytest.mark.parametrize("pitch,instrument", [(52, "piano"), (64, "flute"), (71, "trumpet")])
def test_shipped_note2mel_generates_the_requested_pitch(pitch, instrument):
    model = load_model("note2mel")
    audio = model.generate(1, seconds=1.0, cond={"pitch": pitch, "instrument": instrument}, generator=0)
    assert float(audio.samples.abs().max()) > 0.01
    assert abs(cents_error(median_f0(audio, fmin=60, fmax=1100), pitch)) <= 50
