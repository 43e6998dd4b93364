"""VAE: the analytic KL, the bound, the blurriness of a factorised decoder."""

import math

import pytest
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


def test_with_a_posterior_equal_to_the_prior_the_bound_is_the_decoders_likelihood():
    """KL(q || p) = 0 when the encoder outputs N(0, I): the bound is then exactly the factorised
    decoder's negative log-likelihood at the posterior draw, and nothing else."""
    import torch.nn.functional as F

    from workbench.dsp.quantise import mu_law_encode

    model = create_model("vae", "tiny").eval()
    last = model.encoder.net[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()  # mean 0, log-variance 0: the posterior is the prior
    x = Audio(torch.randn(1, 1, 8 * model.hop, generator=torch.Generator().manual_seed(3)) * 0.1,
              model.sample_rate)
    with torch.no_grad():
        mean, logvar = model.posterior(x.samples)
    assert float(mean.abs().max()) == 0 and float(logvar.abs().max()) == 0
    # log_prob's one posterior draw comes from seed 0
    eps = torch.randn(model.config.latent_dim, 8, generator=torch.Generator().manual_seed(0))[None]
    cond = model.check_cond(None, 1)
    with torch.no_grad():
        logits = model.decoder_logits(eps, cond)[..., : x.n_samples]
    nll = F.cross_entropy(logits, mu_law_encode(x.samples[:, 0], 8), reduction="sum")
    assert torch.allclose(model.log_prob(x)[0], nll / x.n_samples / math.log(2), rtol=1e-5)


def test_the_bound_grows_by_the_kl_when_the_posterior_leaves_the_prior():
    model = create_model("vae", "tiny").eval()
    x = Audio(torch.randn(1, 1, 8 * model.hop, generator=torch.Generator().manual_seed(3)) * 0.1,
              model.sample_rate)
    eps = torch.randn(model.config.latent_dim, 8, generator=torch.Generator().manual_seed(0))[None]
    with torch.no_grad():
        recon, kl = model.elbo_terms(x.samples, model.check_cond(None, 1), eps)
    assert float(kl) > 0
    expected = (recon + kl) / x.n_samples / math.log(2)
    assert torch.allclose(model.log_prob(x), expected, rtol=1e-5)


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


@pytest.mark.slow
@pytest.mark.skipif(not has_checkpoint("vae"), reason="no shipped vae checkpoint")
def test_shipped_checkpoint_loads_and_generates():
    model = load_model("vae")
    audio = model.generate(1, seconds=0.2, cond={"pitch": 60}, generator=0)
    assert bool(torch.isfinite(audio.samples).all()) and float(audio.samples.abs().max()) > 1e-4


@pytest.mark.slow
@pytest.mark.skipif(not has_checkpoint("vae"), reason="no shipped vae checkpoint")
def test_shipped_checkpoint_rebuilds_held_out_notes_at_their_pitch_from_the_posterior():
    from workbench.evaluate import reconstruction_pitch

    model = load_model("vae")
    assert reconstruction_pitch(model, max_notes=3)["reconstruction_pitch_accuracy"] == 1.0


def test_generate_samples_p_x_given_z_and_the_mean_is_an_option():
    model = create_model("vae", "tiny").eval()
    latent = model.sample_latent(1, seconds=0.1, generator=4)
    mean = model.generate(1, seconds=0.1, generator=4, decoder="mean")
    assert torch.equal(mean.samples, model.decode(latent).samples)  # the mean of p(x | z) at the same z
    drawn = model.generate(1, seconds=0.1, generator=4)
    assert drawn.n_samples == mean.n_samples and not torch.equal(drawn.samples, mean.samples)
    assert float(drawn.samples.diff().abs().mean()) > float(mean.samples.diff().abs().mean())  # a draw is rough
