"""MelGAN: output length, discriminators, feature matching, random windows, and the shipped vocoder."""

from __future__ import annotations

import math

import pytest
import torch

from workbench.layers import MultiScaleDiscriminator, random_window_starts
from workbench.losses import feature_matching_loss
from workbench.models import create_model, has_checkpoint


@pytest.fixture()
def tiny():
    torch.manual_seed(0)
    return create_model("melgan", "tiny").eval()


@pytest.mark.parametrize("frames", [1, 5, 13])
def test_output_length_is_hop_times_frames(tiny, frames):
    mel = torch.randn(2, tiny.config.n_mels, frames)
    with torch.no_grad():
        y = tiny.vocode(mel, torch.Generator().manual_seed(0))
    assert y.shape == (2, 1, frames * tiny.config.hop_length)


def test_generator_uses_weight_norm_and_dilations_1_3_9(tiny):
    names = [n for n, _ in tiny.generator.named_parameters()]
    assert any("parametrizations.weight.original0" in n for n in names)
    dilations = [m.dilation[0] for m in tiny.generator.modules() if isinstance(m, torch.nn.Conv1d) and m.kernel_size[0] == 3]
    assert dilations[:3] == [1, 3, 9]


def test_three_discriminators_hear_successively_pooled_audio():
    d = MultiScaleDiscriminator(3, 4, 2, 16)
    outputs = d(torch.randn(1, 1, 2048))
    lengths = [f[-1].shape[-1] for f in outputs]
    assert len(outputs) == 3 and lengths[0] == 2 * lengths[1] == 4 * lengths[2]


def test_feature_matching_loss_is_zero_for_identical_inputs_and_positive_otherwise():
    d = MultiScaleDiscriminator(3, 4, 2, 16)
    x = torch.randn(2, 1, 1024)
    assert float(feature_matching_loss(d(x), d(x))) == 0.0
    assert float(feature_matching_loss(d(x), d(0.5 * x))) > 0.0


@pytest.mark.parametrize("n_samples,window,multiple", [(4096, 1024, 256), (1000, 1000, 1), (777, 64, 1)])
def test_random_windows_stay_within_bounds(n_samples, window, multiple):
    starts = random_window_starts(n_samples, window, 500, torch.Generator().manual_seed(0), multiple)
    assert int(starts.min()) >= 0 and int(starts.max()) + window <= n_samples
    assert bool((starts % multiple == 0).all())
    with pytest.raises(ValueError):
        random_window_starts(100, 101, 1)


def test_window_discriminators_judge_windows_of_each_size(tiny):
    real = torch.randn(2, 1, tiny.config.segment_frames * tiny.config.hop_length)
    mel = torch.randn(2, tiny.config.n_mels, tiny.config.segment_frames)
    real_scores, fake_scores = tiny._windows(real, real, mel, torch.Generator().manual_seed(0))
    assert len(real_scores) == 2 * len(tiny.config.window_sizes)  # unconditional + conditional per size
    assert [s.shape[-1] for s in real_scores[::2]] == list(tiny.config.window_sizes)


def test_mel_convention_matches_note2mel_so_it_can_vocode_its_frames():
    melgan, note2mel = create_model("melgan", "small"), create_model("note2mel", "small")
    assert note2mel._same_convention(melgan)


def test_a_training_step_updates_generator_and_discriminators(tiny):
    from workbench.data import collate
    from workbench.train import make_datasets

    train_set, _ = make_datasets(tiny)
    batch = collate([train_set[i] for i in range(2)])
    g0 = [p.clone() for p in tiny.generator.parameters()]
    d0 = [p.clone() for p in tiny.discriminator.parameters()]
    logs = tiny.train().train_step(batch, tiny.configure_optimizers(), generator=torch.Generator().manual_seed(0))
    assert {"d_loss", "feature_matching", "mel_error"} <= set(logs)
    assert any(not torch.equal(a, b) for a, b in zip(g0, tiny.generator.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d0, tiny.discriminator.parameters()))


def test_discriminators_join_after_adversarial_start():
    from workbench.data import collate
    from workbench.train import make_datasets

    torch.manual_seed(0)
    model = create_model("melgan", "tiny", adversarial_start=1).train()
    train_set, _ = make_datasets(model)
    batch = collate([train_set[i] for i in range(2)])
    optimizers, gen = model.configure_optimizers(), torch.Generator().manual_seed(0)
    d0 = [p.clone() for p in model.discriminator.parameters()]
    first = model.train_step(batch, optimizers, generator=gen)  # reconstruction losses only
    assert math.isnan(first["d_loss"]) and math.isnan(first["g_adv"])  # same log columns, not computed
    assert all(torch.equal(a, b) for a, b in zip(d0, model.discriminator.parameters()))
    second = model.train_step(batch, optimizers, generator=gen)
    assert {"d_loss", "g_adv", "feature_matching"} <= set(second)
    assert int(model.steps_done) == 2


# ---- the shipped checkpoint ---------------------------------------------------------------------------


@pytest.mark.skipif(not has_checkpoint("melgan"), reason="no shipped melgan checkpoint")
def test_shipped_vocoder_is_offered_to_note2mel_and_the_phase_lab():
    from workbench.models.note2mel import available_vocoders

    assert "melgan" in available_vocoders()


def test_harmonic_source_from_f0_runs_its_phase_glides_and_stays_silent_where_unvoiced():
    from workbench.models._note import harmonic_source_from_f0

    sr, hop = 16000, 64
    f0 = torch.tensor([[0.0, 0.0, 300.0, 300.0, 300.0, 450.0, 450.0, 450.0, 450.0, 450.0]])
    src = harmonic_source_from_f0(f0, hop, 9 * hop, sr, 40)  # (1, 80, time)
    assert src.shape == (1, 80, 9 * hop) and src.dtype == torch.float64
    assert float(src[..., : hop].abs().max()) == 0.0  # unvoiced: silent
    # where the f0 is steady, the fundamental's phase advances by 2 pi f0 / sr per sample
    phase = torch.atan2(src[0, 0], src[0, 40])
    step = torch.remainder(phase[3 * hop + 1: 4 * hop] - phase[3 * hop: 4 * hop - 1], 2 * math.pi)
    assert torch.allclose(step, torch.full_like(step, 2 * math.pi * 300 / sr), atol=1e-9)
    # no jump while gliding to 450 Hz: every step lies between the two
    glide = torch.remainder(phase[4 * hop + 1: 5 * hop] - phase[4 * hop: 5 * hop - 1], 2 * math.pi)
    assert float(glide.min()) >= 2 * math.pi * 300 / sr - 1e-9 and float(glide.max()) <= 2 * math.pi * 450 / sr + 1e-9
    # harmonics at or above Nyquist are silent: 450 Hz x 18 = 8100 Hz > 8000 Hz
    assert float(src[0, 17, 6 * hop:].abs().max()) == 0.0 and float(src[0, 16, 6 * hop:].abs().max()) > 0.5


def test_a_steady_mel_repeats_every_hop_unless_the_source_brings_the_phase():
    from workbench.metrics import hop_periodicity

    torch.manual_seed(0)
    plain = create_model("melgan", "tiny").eval()
    sourced = create_model("melgan+source", "tiny").eval()
    hop = plain.config.hop_length
    mel = torch.randn(1, plain.config.n_mels, 1).repeat(1, 1, 24)  # one frame held: a steady note
    f0 = torch.full((1, 24), 261.63)  # middle C: no multiple of the 250 Hz frame rate
    with torch.no_grad():
        y_plain = plain.vocode(mel, temperature=0.0)[0, 0, 8 * hop: 16 * hop]  # away from the edges
        y_sourced = sourced.vocode(mel, temperature=0.0, f0=f0)[0, 0, 8 * hop: 16 * hop]
    assert hop_periodicity(y_plain, hop) > 0.999
    assert hop_periodicity(y_sourced, hop) < 0.9


def test_the_source_f0_comes_from_the_mel_when_none_is_given(tiny):
    from workbench.metrics import cents_error

    note = tiny.griffin_lim().render_note(62, "flute", 100, 0.25)
    f0 = tiny.f0_of_mel(tiny.mel_of(note[None]))
    assert f0.shape == (1, note.shape[-1] // tiny.config.hop_length + 1)
    assert abs(cents_error(float(f0.median()), 62)) < 50


@pytest.mark.parametrize("f0,match", [(torch.full((1, 3), 300.0), "expected"),
                                      (torch.full((1, 5), float("nan")), "NaN"),
                                      (torch.full((1, 5), -1.0), "negative")])
def test_a_bad_f0_curve_is_refused_with_what_was_expected(f0, match):
    from workbench.errors import ParameterError

    sourced = create_model("melgan+source", "tiny").eval()
    with pytest.raises(ParameterError, match=match):
        sourced.generate(1, cond={"mel": torch.zeros(sourced.config.n_mels, 5), "f0_hz": f0[0]})
