"""VQ-VAE: nearest codewords, straight-through gradients, code rate, dead-code restarts, the prior."""

import math

import pytest
import torch
import torch.nn.functional as F

from workbench import Audio
from workbench.data import collate
from workbench.dsp.quantise import mu_law_encode
from workbench.layers import VectorQuantiser
from workbench.models import create_model, has_checkpoint, load_model
from workbench.train import make_datasets


def test_quantiser_picks_the_nearest_codeword():
    vq = VectorQuantiser(n_codes=10, dim=3).eval()
    z = torch.randn(2, 3, 7)
    _, codes, _ = vq(z)
    distances = torch.cdist(z.transpose(1, 2).reshape(-1, 3), vq.codebook)  # (14, 10)
    assert torch.equal(codes.flatten(), distances.argmin(dim=1))


def test_straight_through_gradient_is_the_identity():
    vq = VectorQuantiser(n_codes=8, dim=4).eval()
    z = torch.randn(1, 4, 5, requires_grad=True)
    z_q, _, _ = vq(z)
    upstream = torch.randn_like(z_q)
    (z_q * upstream).sum().backward()
    assert torch.equal(z.grad, upstream)


def test_code_length_is_time_over_hop():
    model = create_model("vqvae", "tiny").eval()
    for n in (model.hop * 5, model.hop * 12):
        codes = model.encode(Audio(torch.zeros(1, 1, n), model.sample_rate)).data["codes"]
        assert codes.shape == (1, n // model.hop)


def test_first_batch_seeds_the_codebook_with_encoder_outputs():
    vq = VectorQuantiser(n_codes=4, dim=2).train()
    z = torch.randn(1, 2, 50) + 5.0
    vq(z, torch.Generator().manual_seed(0))
    assert float(vq.codebook.mean()) > 3.0


def test_dead_codes_are_restarted_onto_encoder_outputs():
    torch.manual_seed(1)  # the codebook's initial draw (independent of the tests run before)
    vq = VectorQuantiser(n_codes=6, dim=2, decay=0.5, dead_threshold=0.3).train()
    vq.initialised.fill_(1.0)  # skip the data seeding: the codebook stays where it was drawn
    z = torch.randn(1, 2, 40) * 0.5 + 5.0  # far from every initial codeword: one code takes all
    gen = torch.Generator().manual_seed(0)
    _, codes, _ = vq.eval()(z)
    assert codes.unique().numel() == 1
    vq.train()
    for _ in range(4):
        vq(z, gen)
    assert int(vq.restarts) > 0
    # restarted codewords sit on data points, so the data now spreads over several codes
    _, codes, _ = vq.eval()(z)
    assert codes.unique().numel() > 1


def _batch(model, n=4):
    train_set, _ = make_datasets(model, "notes")
    return collate([train_set[i] for i in range(n)])


def test_decoding_true_codes_beats_shuffled_codes():
    torch.manual_seed(0)
    model = create_model("vqvae", "tiny")
    batch = _batch(model)
    opt = model.configure_optimizers()
    gen = torch.Generator().manual_seed(0)
    for _ in range(60):
        model.train().train_step(batch, opt, generator=gen)
    model.eval()
    x, cond = batch
    with torch.no_grad():
        z_q, codes, _ = model.quantise(x)
        target = mu_law_encode(model._pad(x)[:, 0], 8)
        true = F.cross_entropy(model.decoder_logits(z_q, cond), target)
        perm = torch.randperm(codes.shape[1], generator=torch.Generator().manual_seed(1))
        shuffled = F.cross_entropy(model.decoder_logits(model.quantiser.lookup(codes[:, perm]), cond), target)
    assert true < shuffled


def test_the_bound_exceeds_the_exact_likelihood_by_the_posteriors_surprise():
    """With 2 codes of 16 values, log p(x) = logsumexp over all 256 code pairs of log p(x | z) + log p(z)
    is exact. The bound uses the encoder's z* alone, so it exceeds -log p(x) by -log p(z* | x) >= 0."""
    model = create_model("vqvae", "tiny").eval()
    x = Audio(0.3 * torch.randn(1, 1, 2 * model.hop, generator=torch.Generator().manual_seed(2)), model.sample_rate)
    cond = model.check_cond(None, 1)
    k = model.config.n_codes
    every = torch.cartesian_prod(torch.arange(k), torch.arange(k))  # (k * k, 2) all code sequences
    many = {name: values * len(every) for name, values in cond.items()}
    with torch.no_grad():
        logits = model.decoder_logits(model.quantiser.lookup(every), many)[..., : x.n_samples]
        target = mu_law_encode(x.samples[:, 0], 8).expand(len(every), -1)
        log_px_given_z = -F.cross_entropy(logits, target, reduction="none").sum(-1)
        log_pz = -F.cross_entropy(model.prior_logits(every, many), every, reduction="none").sum(-1)
        joint = log_px_given_z + log_pz  # (k * k,) nats
        exact_nats = -torch.logsumexp(joint, 0)
        _, z_star, _ = model.quantise(x.samples)
    star = int(z_star[0, 0]) * k + int(z_star[0, 1])
    bound_nats = model.log_prob(x)[0] * x.n_samples * math.log(2)
    assert float(bound_nats) >= float(exact_nats)
    posterior_surprise = -(joint[star] - torch.logsumexp(joint, 0))
    assert torch.allclose(bound_nats - exact_nats, posterior_surprise, rtol=1e-4, atol=1e-3)


@pytest.mark.slow
@pytest.mark.skipif(not has_checkpoint("vqvae"), reason="no shipped vqvae checkpoint")
def test_shipped_checkpoint_loads_and_generates():
    model = load_model("vqvae")
    audio = model.generate(1, seconds=0.2, cond={"pitch": 60}, generator=0)
    assert audio.n_samples == int(0.2 * model.sample_rate)
    assert bool(torch.isfinite(audio.samples).all()) and float(audio.samples.abs().max()) > 1e-4


def test_the_decoder_hears_the_source_at_sample_rate_and_the_offset_places_it():
    model = create_model("vqvae+source", "tiny").eval()
    assert model.config.source_harmonics == 2
    hop, n_frames = model.hop, 4
    # the source of a crop that starts `offset` samples into the note is that slice of the note's source
    offset = 3 * hop
    whole = model.source([61], n_frames * hop + offset)
    assert torch.equal(model.source([61], n_frames * hop, offset), whole[..., offset:])
    # nudging the source at one sample moves only the logits the last conv (kernel 7) can see from it
    z_q = model.quantiser.lookup(torch.tensor([[1, 5, 2, 7]]))
    note = model.decoder_note(torch.tensor([61]), torch.tensor([0]), torch.tensor([100]))
    src = whole[..., :n_frames * hop]
    t = 2 * hop + 5
    nudged = src.clone()
    nudged[:, :, t] += 1.0
    with torch.no_grad():
        moved = (model.decoder(z_q, note, nudged) - model.decoder(z_q, note, src)).abs().sum(1)[0]
    assert torch.equal(torch.nonzero(moved > 1e-6)[:, 0], torch.arange(t - 3, t + 4))
