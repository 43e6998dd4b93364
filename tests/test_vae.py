"""VAE: the analytic KL, the bound, the blurriness of a factorised decoder."""

import math

import torch

from workbench import Audio
from workbench.models import create_model, has_checkpoint, load_model
from workbench.models.vae import gaussian_kl


def test_analytic_kl_equals_a_monte_carlo_estimate():
    gen = torch.Generator().manual_seed(0)
    mean = torch.tensor([0.5, -1.0, 0.0, 2.0])
    logvar = torch.tensor([0.0, -1.0, 0.7, -2.0])
    std = (0.5 * logvar).exp()
    z = mean + std * torch.randn(200_000, 4, generator=gen)
    log_q = -0.5 * ((z - mean) / std) ** 2 - torch.log(std) - 0.5 * math.log(2 * math.pi)
    log_p = -0.5 * z**2 - 0.5 * math.log(2 * math.pi)
    monte_carlo = (log_q - log_p).mean(0)
    assert torch.allclose(gaussian_kl(mean, logvar), monte_carlo, atol=0.02)


def test_log_prob_is_a_bound_made_of_reconstruction_and_kl():
    model = create_model("vae", "tiny").eval()
    x = Audio(torch.randn(1, 1, 800) * 0.1, model.sample_rate)
    bits = model.log_prob(x)
    assert bits.shape == (1,) and float(bits) > 0
    assert torch.equal(bits, model.log_prob(x))  # a fixed posterior draw: repeatable


def test_encode_gives_the_posterior_at_the_latent_rate():
    model = create_model("vae", "tiny").eval()
    enc = model.encode(Audio(torch.zeros(2, 1, model.hop * 10), model.sample_rate))
    assert enc.kind == "posterior"
    assert enc.data["mean"].shape == (2, model.config.latent_dim, 10)
    assert bool((enc.data["variance"] > 0).all())


def test_factorised_decoder_samples_are_rougher_than_its_mean():
    model = create_model("vae", "tiny").eval()
    enc = model.encode(model.generate(1, seconds=0.1, generator=0))
    mean = model.decode(enc).samples
    draw = model.decode(enc, sample=True, generator=0).samples
    assert float(draw.diff().abs().mean()) > float(mean.diff().abs().mean())


def test_shipped_checkpoint_loads_and_generates():
    if not has_checkpoint("vae"):
        return
    model = load_model("vae")
    audio = model.generate(1, seconds=0.2, cond={"pitch": 60}, generator=0)
    assert bool(torch.isfinite(audio.samples).all()) and float(audio.samples.abs().max()) > 1e-4


def test_shipped_checkpoint_rebuilds_held_out_notes_at_their_pitch_from_the_posterior():
    from workbench.evaluate import reconstruction_pitch

    model = load_model("vae")
    assert reconstruction_pitch(model, max_notes=3)["reconstruction_pitch_accuracy"] == 1.0
