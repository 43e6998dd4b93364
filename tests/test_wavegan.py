"""WaveGAN: fixed output length, phase shuffle, the gradient penalty, inversion and the shipped checkpoint."""

from __future__ import annotations

import pytest
import torch

from workbench.layers import phase_shuffle
from workbench.losses import gradient_penalty
from workbench.models import create_model


@pytest.fixture()
def tiny():
    torch.manual_seed(0)
    return create_model("wavegan", "tiny").eval()


def test_output_has_the_fixed_length_whatever_seconds_asks(tiny):
    assert tiny.n_samples == 16 * 4 ** tiny.config.n_layers
    assert tiny.generate(1, seconds=5.0, generator=0).n_samples == tiny.n_samples
    assert tiny.generate(1, seconds=0.01, generator=0).n_samples == 160


def test_each_transposed_convolution_makes_the_signal_four_times_longer(tiny):
    h = torch.zeros(1, tiny._channels[0], 16)
    for layer in tiny.g_layers:
        n = h.shape[-1]
        assert layer.kernel_size == (25,) and layer.stride == (4,)
        h = layer(h)
        assert h.shape[-1] == 4 * n


def test_phase_shuffle_with_radius_zero_is_the_identity():
    x = torch.randn(3, 4, 50)
    assert torch.equal(phase_shuffle(x, 0, torch.Generator().manual_seed(0)), x)


def test_phase_shuffle_shifts_each_item_by_at_most_the_radius():
    x = torch.randn(8, 2, 40)
    y = phase_shuffle(x, 2, torch.Generator().manual_seed(1))
    assert y.shape == x.shape
    for a, b in zip(x, y):
        shifts = [k for k in range(-2, 3)
                  if torch.equal(b[:, max(k, 0): 40 + min(k, 0)], a[:, max(-k, 0): 40 - max(k, 0)])]
        assert shifts, "every item is its input shifted by -2..2 (edges reflected)"


def test_gradient_penalty_matches_a_finite_difference_check_on_a_toy_critic():
    w = torch.randn(1, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))

    def critic(x):
        return (w * x ** 3).sum(-1) + (x[..., :3] * x[..., 3:]).sum(-1)  # (batch,)

    real = torch.randn(4, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    fake = torch.randn(4, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    gp = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(3))
    # the same interpolates, gradients by central differences
    a = torch.rand(4, 1, generator=torch.Generator().manual_seed(3)).double()
    x_hat = a * real + (1 - a) * fake
    eps = 1e-6
    grads = torch.zeros_like(x_hat)
    for j in range(6):
        step = torch.zeros_like(x_hat)
        step[:, j] = eps
        grads[:, j] = (critic(x_hat + step) - critic(x_hat - step)) / (2 * eps)
    expected = ((grads.norm(dim=1) - 1) ** 2).mean()
    assert torch.allclose(gp, expected, rtol=1e-6)


def test_gradient_penalty_trains_the_critic():
    lin = torch.nn.Linear(5, 1)
    gp = gradient_penalty(lambda x: lin(x)[:, 0], torch.randn(3, 5), torch.randn(3, 5))
    gp.backward()
    assert lin.weight.grad is not None and float(lin.weight.grad.abs().sum()) > 0


def test_inversion_lowers_the_error_from_the_prior_mode(tiny):
    x = tiny.generate(1, seconds=1.0, generator=4).samples[:, 0]
    _, before = tiny.invert(x, steps=0)
    _, after = tiny.invert(x, steps=15)
    assert float(after[0]) < float(before[0])


def test_a_training_step_updates_both_generator_and_critic(tiny):
    from workbench.data import collate
    from workbench.train import make_datasets

    train_set, _ = make_datasets(tiny)
    batch = collate([train_set[i] for i in range(2)])
    g0 = [p.clone() for p in tiny._g_params()]
    d0 = [p.clone() for p in tiny._d_params()]
    tiny.train().train_step(batch, tiny.configure_optimizers(), generator=torch.Generator().manual_seed(0))
    assert any(not torch.equal(a, b) for a, b in zip(g0, tiny._g_params()))
    assert any(not torch.equal(a, b) for a, b in zip(d0, tiny._d_params()))


def test_the_source_path_plays_the_requested_period_and_the_critic_hears_it():
    torch.manual_seed(0)
    model = create_model("wavegan+source", "tiny").eval()
    assert model.config.source_harmonics == 2
    pitch = torch.tensor([0])  # MIDI 60
    src = model.source(pitch)[0]  # (4, n_samples): sin, sin 2nd, cos, cos 2nd
    period = model.sample_rate / 261.6256
    k = 13  # 13 periods of C4 at 16 kHz are 795.03 samples: compare shifts by the nearest whole sample
    shift = round(k * period)
    assert torch.allclose(src[:, :100], src[:, shift:shift + 100], atol=0.01)
    # with the free waveform and all but the first envelope silenced, the output is the fundamental
    last = model.g_layers[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor([0.0, 0.5, 0.0, 0.0, 0.0]))
        y = model.generator_forward(torch.zeros(1, model.config.latent_size), pitch, torch.tensor([0]))[0, 0]
    assert torch.allclose(y, torch.tanh(0.5 * src[0]), atol=1e-6)
    # the critic's score depends on the pitch through the source it hears
    x = torch.randn(1, 1, model.n_samples) * 0.1
    with torch.no_grad():
        model.d_pitch_embed.weight.zero_()  # leave only the source path
        assert not torch.allclose(model.critic(x, pitch, torch.tensor([0])), model.critic(x, pitch + 2, torch.tensor([0])))


def test_generation_samples_a_running_average_of_the_generator_and_training_keeps_the_raw_weights(tiny):
    from workbench.data import collate
    from workbench.train import make_datasets

    decay = tiny.config.ema_decay
    assert decay > 0
    train_set, _ = make_datasets(tiny)
    batch = collate([train_set[i] for i in range(2)])
    opt = tiny.configure_optimizers()
    gen = torch.Generator().manual_seed(0)
    names = [n for n, _ in tiny.named_parameters() if n.startswith("g_")]
    tiny.train()
    for _ in range(3):
        average = {n: getattr(tiny, "ema_" + n.replace(".", "__")).clone() for n in names}
        tiny.train_step(batch, opt, generator=gen)
        raw = dict(tiny.named_parameters())
        for n in names:  # average <- decay * average + (1 - decay) * weights
            expected = decay * average[n] + (1 - decay) * raw[n].detach()
            assert torch.allclose(getattr(tiny, "ema_" + n.replace(".", "__")), expected, atol=1e-6)
    tiny.eval()
    before = {n: p.detach().clone() for n, p in tiny.named_parameters()}
    sampled = tiny.generate(1, cond={"pitch": 60}, generator=0).samples
    # the same draw from a twin without averaging: with the raw weights it differs, with the averages it agrees
    twin = create_model("wavegan", "tiny", ema_decay=0.0).eval()
    twin.load_state_dict({k: v for k, v in tiny.state_dict().items() if not k.startswith("ema_")})
    from_raw = twin.generate(1, cond={"pitch": 60}, generator=0).samples
    with torch.no_grad():
        for n, p in twin.named_parameters():
            if n.startswith("g_"):
                p.copy_(getattr(tiny, "ema_" + n.replace(".", "__")))
    assert torch.allclose(sampled, twin.generate(1, cond={"pitch": 60}, generator=0).samples, atol=1e-6)
    assert not torch.allclose(sampled, from_raw)
    assert all(torch.equal(before[n], p) for n, p in tiny.named_parameters())  # raw weights put back
