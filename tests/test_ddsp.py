"""DDSP: the spectral loss, controls, measured envelopes, timbre transfer and the shipped checkpoint."""

from __future__ import annotations

import math

import pytest
import torch

from workbench import Audio
from workbench.data import Notes, collate
from workbench.errors import ParameterError
from workbench.losses import multi_scale_spectral_loss
from workbench.metrics import cents_error, median_f0
from workbench.models import create_model, load_model
from workbench.models.ddsp import note_f0_hz, timbre_transfer


@pytest.fixture(scope="module")
def shipped():
    return load_model("ddsp")


@pytest.fixture()
def tiny():
    torch.manual_seed(0)
    return create_model("ddsp", "tiny")


# ---- the loss ----------------------------------------------------------------------------------


def test_multi_scale_spectral_loss_is_zero_for_identical_inputs_and_positive_otherwise():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4000, generator=g)
    assert float(multi_scale_spectral_loss(x, x.clone())) == 0.0
    assert float(multi_scale_spectral_loss(x, 0.9 * x)) > 0
    assert float(multi_scale_spectral_loss(x, torch.randn(2, 4000, generator=g))) > 0


def test_multi_scale_spectral_loss_grows_with_the_difference():
    t = torch.arange(8000) / 16000
    a = torch.sin(2 * math.pi * 440 * t)
    losses = [float(multi_scale_spectral_loss(a, gain * a)) for gain in (0.9, 0.5, 0.1)]
    assert losses[0] < losses[1] < losses[2]


def test_multi_scale_spectral_loss_has_gradients_and_checks_shapes():
    x = torch.randn(1, 3000)
    y = torch.zeros(1, 3000, requires_grad=True)
    multi_scale_spectral_loss(x, y + 0.01).backward()
    assert y.grad is not None and bool(torch.isfinite(y.grad).all())
    with pytest.raises(ParameterError, match="same shape"):
        multi_scale_spectral_loss(x, torch.zeros(1, 2000))
    with pytest.raises(ParameterError, match="too short"):
        multi_scale_spectral_loss(torch.zeros(1, 20), torch.zeros(1, 20), fft_sizes=(2048,))


# ---- controls and synthesis --------------------------------------------------------------------------


def test_controls_are_positive_bounded_and_silent_above_nyquist(tiny):
    frames = 20
    f0 = torch.full((2, frames), 2000.0)  # harmonics 4+ of 2 kHz are above 8 kHz
    with torch.no_grad():
        controls = tiny.get_controls(f0, torch.full((2, frames), -30.0), ["piano", "flute"])
    dist = controls["harmonic_distribution"]
    assert dist.shape == (2, tiny.config.n_harmonics, frames)
    assert torch.allclose(dist.sum(1), torch.ones(2, frames), atol=1e-5)
    assert float(dist[:, 3:].abs().max()) == 0.0
    for key in ("amplitude", "noise_magnitudes"):
        assert bool((controls[key] > 0).all()) and float(controls[key].max()) <= 2.0 + 1e-6
    y = tiny.get_signal(controls, 1216, generator=0, parts=True)
    assert set(y) == {"harmonic", "noise", "dry", "audio"} and y["audio"].shape == (2, 1216)


@pytest.mark.slow
def test_a_few_steps_on_one_batch_lower_the_loss(tiny):
    notes = Notes(source="synth", instruments=("bright", "soft"), pitches=(60, 61), velocities=(100,),
                  seconds=0.25)
    model = create_model("ddsp", "tiny", instruments=("bright", "soft"), data_source="synth", reverb_seconds=0.0)
    batch = collate([notes[i] for i in range(len(notes))])
    optimizers = model.configure_optimizers()
    first = model.train_step(batch, optimizers, generator=torch.Generator().manual_seed(0))["loss"]
    for _ in range(15):
        last = model.train_step(batch, optimizers, generator=torch.Generator().manual_seed(0))["loss"]
    assert last < 0.8 * first


def test_training_measures_loudness_envelopes_that_generation_reads(tiny):
    notes = Notes(source="synth", instruments=("bright",), pitches=(60,), velocities=(100,), seconds=0.25)
    model = create_model("ddsp", "tiny", instruments=("bright",), data_source="synth")
    samples, cond = collate([notes[0]])
    model.train().training_step((samples, cond))
    assert float(model.loudness_count.sum()) == 1
    env = model.loudness_envelope("bright", 61, 100, model.n_envelope_frames)  # a neighbouring pitch
    assert torch.allclose(env, model.loudness(samples[:, 0])[0], atol=1e-4)
    longer = model.loudness_envelope("bright", 60, 100, 3 * model.n_envelope_frames)
    assert longer.shape == (3 * model.n_envelope_frames,) and bool(torch.isfinite(longer).all())


def test_note_f0_finds_a_detuned_note():
    t = torch.arange(16000) / 16000
    f0 = 261.63 * 2 ** (20 / 1200)  # C4, 20 cents sharp
    x = sum(torch.sin(2 * math.pi * k * f0 * t) / k for k in range(1, 6))
    assert abs(cents_error(float(note_f0_hz(x[None], [60], 16000)[0]), 60) - 20) < 2


# ---- the shipped checkpoint --------------------------------------------------------------------------


def test_shipped_checkpoint_carries_measured_envelopes(shipped):
    assert float(shipped.loudness_count.min()) >= 0 and float(shipped.loudness_count.sum()) > 50


@pytest.mark.slow
@pytest.mark.parametrize("pitch,instrument", [(50, "piano"), (60, "flute"), (67, "strings"), (72, "trumpet")])
def test_shipped_checkpoint_generates_the_requested_pitch(shipped, pitch, instrument):
    audio = shipped.generate(1, seconds=1.0, cond={"pitch": pitch, "instrument": instrument}, generator=0)
    assert float(audio.samples.abs().max()) > 0.01
    f = median_f0(audio, fmin=60, fmax=1100)
    assert abs(cents_error(f, pitch)) <= 50


def test_shipped_checkpoint_resynthesis_keeps_a_held_out_note_f0_within_50_cents(shipped):
    c = shipped.config
    test = Notes(source=c.data_source, instruments=c.instruments, pitches=range(c.pitch_range[0], c.pitch_range[1] + 1),
                 velocities=c.velocities, seconds=c.note_seconds, split="test")
    x, cond = test[0]
    real = Audio(x, test.sample_rate)
    out = shipped.decode(shipped.encode(real, cond))
    assert out.n_samples == real.n_samples
    fmin, fmax = 0.5 * 440 * 2 ** ((cond["pitch"] - 69) / 12), 2 * 440 * 2 ** ((cond["pitch"] - 69) / 12)
    assert abs(cents_error(median_f0(out, fmin=fmin, fmax=fmax), cond["pitch"])) <= 50


def test_timbre_transfer_keeps_the_melody_of_an_example_clip(shipped, clips):
    clip = clips["flute"].trim(1.5)
    out = timbre_transfer(shipped, clip, "trumpet")
    assert out.n_samples == clip.n_samples and out.sample_rate == shipped.sample_rate
    f_in, f_out = median_f0(clip), median_f0(out)
    assert abs(1200 * math.log2(f_out / f_in)) <= 50
    with pytest.raises(ParameterError, match="not one of this model's instruments"):
        timbre_transfer(shipped, clip, "kazoo")


def test_dense_f0_and_loudness_curves_drive_the_synthesiser(shipped):
    frames = 126  # half a second at 250 Hz
    f0 = torch.full((frames,), 300.0)
    audio = shipped.generate(1, cond={"f0_hz": f0, "instrument": "flute"}, generator=0)
    assert audio.n_samples == (frames - 1) * shipped.config.hop_length + 1
    assert abs(1200 * math.log2(median_f0(audio, fmin=150, fmax=600) / 300.0)) <= 50
    quiet = shipped.generate(1, cond={"f0_hz": f0, "loudness_db": torch.full((frames,), -60.0)}, generator=0)
    loud = shipped.generate(1, cond={"f0_hz": f0, "loudness_db": torch.full((frames,), -25.0)}, generator=0)
    assert float(loud.samples.pow(2).mean()) > 10 * float(quiet.samples.pow(2).mean())
    with pytest.raises(ParameterError, match="different frame counts"):
        shipped.generate(1, cond={"f0_hz": f0, "loudness_db": torch.zeros(10)})
