"""GANSynth: the log-magnitude + IF representation, fixed length, inversion and the shipped checkpoint."""

from __future__ import annotations

import math

import pytest
import torch

from workbench.data import Notes
from workbench.dsp.synth import midi_to_hz
from workbench.errors import ParameterError
from workbench.models import create_model, load_model


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    return create_model("gansynth", "small").eval()


def test_representation_round_trips_a_real_note(small):
    c = small.config
    x = Notes(source="soundfont", instruments=("trumpet",), pitches=(60,), velocities=(100,),
              seconds=c.note_seconds, sample_rate=c.sample_rate)[0][0]  # (1, time)
    y = small.from_representation(small.to_representation(x), x.shape[-1])
    inner = slice(c.n_fft, -c.n_fft)
    assert float((y - x)[:, inner].pow(2).mean().sqrt()) <= 1e-5


def test_a_pure_tone_has_constant_instantaneous_frequency(small):
    c = small.config
    k = 20  # a bin-centred tone
    t = torch.arange(small.n_samples) / c.sample_rate
    tone = 0.5 * torch.sin(2 * math.pi * k * c.sample_rate / c.n_fft * t + 0.3)
    rep = small.to_representation(tone[None])[0]  # (2, freq, frames)
    inner = slice(c.n_fft // c.hop_length, -(c.n_fft // c.hop_length))  # frames the edge padding leaves alone
    inst_freq = rep[1, k, inner]
    assert inst_freq.numel() >= 8
    assert float(inst_freq.std()) < 1e-4
    assert float(rep[0, k, inner].mean()) > float(rep[0, k + 5, inner].mean())  # the tone's bin is the loud one


def test_generator_image_has_the_representation_shape_and_ranges(small):
    z = torch.randn(2, small.config.latent_size)
    rep = small.generator_image(z, small.one_hots([50, 60], ["piano", "flute"]))
    assert rep.shape == (2, 2, small.config.n_fft // 2 + 1, small.n_frames)
    assert float(rep[:, 1].detach().abs().max()) <= 1.0
    assert float(rep[:, 0, -1].max()) == -1.0  # the Nyquist bin is silent


def test_output_has_the_fixed_length(small):
    assert small.generate(1, seconds=5.0, generator=0).n_samples == small.n_samples
    assert small.generate(1, seconds=0.1, generator=0).n_samples == round(0.1 * small.sample_rate)


def test_critic_has_pitch_and_instrument_heads(small):
    rep = small.to_representation(torch.randn(3, small.n_samples) * 0.1)
    onehot = small.one_hots([50, 60, 70], ["piano", "flute", "piano"])
    score, pitch_logits, inst_logits = small.critic(rep, heads=True, onehot=onehot)
    assert score.shape == (3,)
    assert pitch_logits.shape == (3, small.n_pitches) and inst_logits.shape == (3, small.n_instruments)


def test_decode_inverts_the_encoded_representation():
    torch.manual_seed(0)
    tiny = create_model("gansynth", "tiny").eval()
    x = tiny.generate(1, seconds=1.0, generator=1)
    enc = tiny.encode(x)
    assert set(enc.data) == {"representation", "z", "inversion_error"}
    y = tiny.decode(enc)
    assert torch.allclose(y.samples, x.samples, atol=1e-4)


def test_the_fresh_critic_feels_its_input(small):
    # with PyTorch's default init the 7-stage critic's score was flat (input gradient ~1e-8): the
    # gradient penalty then sits at 1 and the auxiliary classifier at chance, and nothing trains
    torch.manual_seed(0)
    fresh = create_model("gansynth", "small")
    x = fresh.to_representation(torch.randn(2, fresh.n_samples) * 0.1).requires_grad_(True)
    (grad,) = torch.autograd.grad(fresh.critic(x, onehot=fresh.one_hots([50, 60], ["piano", "flute"])).sum(), x)
    assert float(grad.flatten(1).norm(dim=1).min()) > 1e-3


def test_equalised_learning_rate_computes_what_he_init_does_and_moves_every_layer_alike():
    from workbench.layers import equalise_lr_

    torch.manual_seed(0)
    net = equalise_lr_(torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.LeakyReLU(0.2),
                                           torch.nn.Linear(64, 1024), torch.nn.LeakyReLU(0.2)))
    for layer, fan_in in ((net[0], 16), (net[2], 64)):
        stored = layer.parametrizations.weight.original
        assert abs(float(stored.detach().std()) - 1) < 0.1  # stored as N(0, 1) draws
        scale = math.sqrt(2 / (1 + 0.2**2) / fan_in)  # He's constant, applied at run time
        assert torch.allclose(layer.weight, stored * scale)
        x = torch.randn(3, fan_in)
        assert torch.allclose(layer(x), x @ (stored * scale).T + layer.bias, atol=1e-6)
    # one Adam step moves each layer's weights by the same share of their scale (lr / 1)
    lr = 1e-3
    before = [net[i].weight.detach().clone() for i in (0, 2)]
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    net(torch.randn(8, 16)).pow(2).mean().backward()
    opt.step()
    shares = [float((net[i].weight.detach() - b).abs().mean() / b.std()) for i, b in zip((0, 2), before)]
    assert all(0.5 * lr < s < 1.5 * lr for s in shares), shares


def test_minibatch_stddev_adds_one_channel_that_sees_a_collapsed_batch():
    from workbench.layers import minibatch_stddev

    h = torch.randn(4, 3, 2, 2)
    out = minibatch_stddev(h)
    assert out.shape == (4, 4, 2, 2) and torch.equal(out[:, :3], h)
    assert torch.allclose(out[:, 3], h.std(dim=0, unbiased=False).mean().expand(4, 2, 2))
    assert float(minibatch_stddev(h[:1].expand(4, -1, -1, -1))[:, 3].abs().max()) == 0  # identical items


def test_equalised_critic_with_minibatch_stddev_saves_and_loads(tmp_path):
    torch.manual_seed(0)
    model = create_model("gansynth", "tiny", equalised_lr=True, minibatch_std=True).eval()
    model.save(tmp_path)
    again = load_model(tmp_path)
    z = torch.randn(2, model.config.latent_size)
    onehot = model.one_hots([60, 61], ["piano", "flute"])
    image = model.generator_image(z, onehot)
    assert torch.equal(again.generator_image(z, onehot), image)
    assert torch.equal(again.critic(image, onehot=onehot), model.critic(image, onehot=onehot))


def test_the_pitch_map_has_a_tooth_at_every_harmonic_below_nyquist():
    model = create_model("gansynth+comb", "small")
    c = model.config
    bin_hz = c.sample_rate / c.n_fft
    for pitch in (48, 60, 69, 72):
        onehot = model.one_hots([pitch], ["piano"])
        comb = model.pitch_comb(onehot)[0, 0, :, 0]  # (n_bins,)
        f0 = float(midi_to_hz(pitch))
        harmonics = [k * f0 for k in range(1, 100) if k * f0 < c.sample_rate / 2 - 2 * bin_hz]
        for f in harmonics:
            assert float(comb[round(f / bin_hz)]) > 0.6, (pitch, f)
        between = [(a + b) / 2 for a, b in zip(harmonics[:-1], harmonics[1:])]
        assert max(float(comb[round(f / bin_hz)]) for f in between) < 1e-3


def test_a_pitch_map_critic_is_conditional_and_the_generator_follows_the_map():
    torch.manual_seed(0)
    model = create_model("gansynth+comb", "tiny").eval()
    z = torch.randn(1, model.config.latent_size)
    onehot = model.one_hots([60], ["piano"])
    image = model.generator_image(z, onehot)
    with pytest.raises(Exception, match="onehot"):
        model.critic(image)
    assert model.critic(image, onehot=onehot).shape == (1,)
    # the same one-hot with another comb: only the map differs, and the image follows it
    model.combs = model.combs.flip(0)
    assert not torch.allclose(model.generator_image(z, onehot), image, atol=1e-5)


def test_the_if_gate_hides_the_phase_of_quiet_bins_from_the_critic():
    torch.manual_seed(0)
    model = create_model("gansynth+comb", "tiny").eval()
    assert model.config.if_mask
    onehot = model.one_hots([60], ["piano"])
    rep = model.to_representation(torch.randn(1, model.n_samples) * 0.1)
    rep[:, 0] = -1.0  # silence everywhere ...
    rep[:, 0, 10] = 1.0  # ... but one loud bin
    score = model.critic(rep, onehot=onehot)
    quiet, loud = rep.clone(), rep.clone()
    quiet[:, 1, 20] = -quiet[:, 1, 20]  # another IF in a silent bin: nothing to hear, nothing to see
    loud[:, 1, 10] = -loud[:, 1, 10]  # another IF in the loud bin: a different sound
    assert abs(float(model.critic(quiet, onehot=onehot) - score)) < 1e-4
    assert abs(float(model.critic(loud, onehot=onehot) - score)) > 1e-3


# ---- IF-Mel: the paper's best image, on a mel frequency axis with as many bands as rows ----------------------
@pytest.fixture(scope="module")
def small_mel():
    torch.manual_seed(0)
    return create_model("gansynth", "mel-small").eval()


def test_the_linear_image_is_what_it_always_was(small):
    # the default image, written out as it was before IF-Mel existed: the shipped checkpoint relies on it
    from workbench.dsp.spectral import if_to_phase, istft, phase_to_if, stft
    from workbench.models.gansynth import LOG_HIGH, LOG_LOW, MAG_EPS

    c = small.config
    assert c.freq_scale == "linear"
    x = 0.3 * torch.randn(2, small.n_samples, generator=torch.Generator().manual_seed(1))
    spec = stft(x.double(), c.n_fft, c.hop_length)
    scaled = 2 * (torch.log(spec.abs() + MAG_EPS) - LOG_LOW) / (LOG_HIGH - LOG_LOW) - 1
    expected = torch.stack([scaled, phase_to_if(spec.angle())], dim=1).float()
    rep = small.to_representation(x)
    assert torch.equal(rep, expected)
    r = rep.double()
    mag = (((r[:, 0] + 1) / 2 * (LOG_HIGH - LOG_LOW) + LOG_LOW).exp() - MAG_EPS).clamp_min(0)
    y = istft(torch.polar(mag, if_to_phase(r[:, 1])), c.n_fft, c.hop_length, length=x.shape[-1]).float()
    assert torch.equal(small.from_representation(rep, x.shape[-1]), y)


def test_an_unknown_frequency_scale_is_refused_by_name():
    with pytest.raises(ParameterError, match="freq_scale='bark'"):
        create_model("gansynth", "tiny", freq_scale="bark")


def test_the_mel_image_has_the_linear_images_shape_and_ranges(small_mel):
    c = small_mel.config
    x = 0.3 * torch.randn(2, small_mel.n_samples, generator=torch.Generator().manual_seed(1))
    rep = small_mel.to_representation(x)
    assert rep.shape == (2, 2, c.n_fft // 2 + 1, small_mel.n_frames)  # n_fft / 2 mel bands + a silent top row
    assert float(rep[:, 1].abs().max()) <= 1.0
    assert torch.equal(rep[:, 0, -1], torch.full_like(rep[:, 0, -1], -1.0)) and float(rep[:, 1, -1].abs().max()) == 0
    freqs = small_mel.row_frequencies()
    assert freqs.shape == (c.n_fft // 2 + 1,) and bool((freqs.diff() > 0).all())  # rows climb the mel axis


def test_a_real_note_survives_the_mel_image_approximately(small_mel):
    # IF-Mel is lossy: the inverse spreads a wide band's power evenly over its bins and averages unwrapped
    # phases. Trumpet C4 at the mel-small preset (8 kHz, n_fft 1024) measured: spectral convergence 0.365,
    # SNR 2.9 dB; the linear image gives 5e-8 and 142 dB; keeping the magnitude with random phase 0.60.
    from workbench.dsp.spectral import random_phase
    from workbench.metrics import snr, spectral_convergence

    c = small_mel.config
    x = Notes(source="soundfont", instruments=("trumpet",), pitches=(60,), velocities=(100,),
              seconds=c.note_seconds, sample_rate=c.sample_rate)[0][0]  # (1, time)
    mel = small_mel.from_representation(small_mel.to_representation(x), x.shape[-1])
    linear = create_model("gansynth", "small")
    exact = linear.from_representation(linear.to_representation(x), x.shape[-1])

    def convergence(y):
        return spectral_convergence(x, y, c.n_fft, c.hop_length)

    assert convergence(exact) < 1e-4 and snr(x, exact) > 100
    assert convergence(mel) < 0.45 and snr(x, mel) > 1.5
    assert convergence(mel) < 0.75 * convergence(random_phase(x, c.n_fft, c.hop_length, generator=0))


def test_a_steady_partial_has_a_constant_mel_if_equal_to_its_linear_if(small, small_mel):
    c = small_mel.config
    t = torch.arange(small_mel.n_samples) / c.sample_rate
    tone = 0.5 * torch.sin(2 * math.pi * 440.0 * t + 0.3)  # between two bins
    rep = small_mel.to_representation(tone[None])[0]  # (2, rows, frames)
    edge = c.n_fft // c.hop_length
    inner = slice(edge, -edge)  # frames the edge padding leaves alone
    level = rep[0, :, inner].mean(-1)
    loud = level > level.max() - 0.15  # the rows the partial lights up (within ~9 dB of its peak)
    assert int(loud.sum()) >= 2
    inst_freq = rep[1, loud][:, inner]  # (loud rows, frames)
    assert float(inst_freq.std(-1).max()) < 1e-4
    linear_if = small.to_representation(tone[None])[0, 1, round(440.0 * c.n_fft / c.sample_rate), inner]
    assert torch.allclose(inst_freq, linear_if.mean().expand_as(inst_freq), atol=1e-4)
    assert abs(float(small_mel.row_frequencies()[int(level.argmax())]) - 440.0) < 10  # and it sits at 440 Hz


def test_the_mel_pitch_map_has_its_teeth_on_the_rows_the_partials_light_up():
    model = create_model("gansynth+comb", "mel-small").eval()
    c = model.config
    rows_hz = model.row_frequencies()[:-1]
    t = torch.arange(model.n_samples) / c.sample_rate
    edge = c.n_fft // c.hop_length
    for pitch in (48, 60, 72):
        f0 = float(midi_to_hz(pitch))
        harmonics = [k * f0 for k in range(1, 100) if k * f0 < c.sample_rate / 2 - 100]
        tone = sum(0.05 * torch.sin(2 * math.pi * f * t) for f in harmonics)
        level = model.to_representation(tone[None])[0, 0, :-1, edge:-edge].mean(-1)  # (n_fft / 2,)
        comb = model.pitch_comb(model.one_hots([pitch], ["piano"]))[0, 0, :, 0]  # (n_fft / 2,)
        for f in harmonics:
            row = int((rows_hz - f).abs().argmin())
            assert float(comb[row]) > 0.6, (pitch, f)
            window = slice(max(0, row - 3), row + 4)
            assert abs(int(level[window].argmax()) - int(comb[window].argmax())) <= 1, (pitch, f)
        between = [(a + b) / 2 for a, b in zip(harmonics[:-1], harmonics[1:])]
        assert max(float(comb[int((rows_hz - f).abs().argmin())]) for f in between) < 1e-3


def test_a_mel_gansynth_generates_saves_and_loads(tmp_path):
    torch.manual_seed(0)
    model = create_model("gansynth", "mel-tiny").eval()
    z = torch.randn(2, model.config.latent_size)
    image = model.generator_image(z, model.one_hots([60, 61], ["piano", "flute"]))
    assert image.shape[1:] == model.to_representation(torch.zeros(1, model.n_samples)).shape[1:]
    audio = model.generate(2, generator=0)
    assert audio.n_samples == model.n_samples and bool(torch.isfinite(audio.samples).all())
    model.save(tmp_path)
    again = load_model(tmp_path)
    assert again.config.freq_scale == "mel"
    assert torch.equal(again.generate(2, generator=0).samples, audio.samples)
