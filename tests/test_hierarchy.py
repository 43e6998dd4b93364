"""ADA, hierarchical WaveNets and the small Jukebox: bottlenecks, levels, priors, and what training shows.

The vector quantiser's nearest codeword, straight-through gradient and dead-code restarts are
tested in tests/test_vqvae.py; here: the argmax bottleneck, the EMA update's arithmetic, codes
computed without an update, a model's restarts, and the levels built on them.
"""

import math

import pytest
import torch

from workbench import Audio
from workbench.errors import ParameterError
from workbench.layers import ArgmaxQuantiser, VectorQuantiser
from workbench.models import create_model
from workbench.models._levels import CodePrior, quantiser_codes
from workbench.scores import Scores
from workbench.structure import consistency_of, music_clips, prior_bits_of, unigram_bits

MODELS = ("ada", "hierarchical_wavenet", "jukebox_mini")


@pytest.fixture(scope="module")
def music():
    """Eight half-second clips of real music (rendered folk tunes at 8 kHz), each from another piece."""
    scores = Scores("folk", split="all", max_pieces=12, segment_seconds=0.5, sample_rate=8000, hop_length=64)
    return music_clips(None, n_clips=8, dataset=scores, seed=1)  # (8, 1, 4000)


def _model(name, **overrides):
    torch.manual_seed(0)
    return create_model(name, "tiny", **overrides)


# ---- bottlenecks --------------------------------------------------------------------------------------
def test_argmax_bottleneck_is_one_hot_forward_and_the_identity_backward():
    vq = ArgmaxQuantiser(n_codes=5, dim=5)
    with torch.no_grad():
        vq.embedding.copy_(torch.eye(5))  # z_q is then the straight-through one-hot itself
    q = torch.randn(2, 5, 7, requires_grad=True)
    z_q, codes, _ = vq(q)
    assert torch.equal(codes, vq.normalise(q).argmax(1))
    assert torch.equal(z_q, torch.nn.functional.one_hot(codes, 5).transpose(1, 2).float())
    upstream = torch.randn_like(z_q)
    (grad_st,) = torch.autograd.grad((z_q * upstream).sum(), q)
    (grad_p,) = torch.autograd.grad((vq.normalise(q) * upstream).sum(), q)
    assert torch.allclose(grad_st, grad_p)  # d(one-hot)/dp is taken as the identity


def test_argmax_scores_are_relu_divisively_normalised():
    p = ArgmaxQuantiser(4, 2).normalise(torch.tensor([[[1.0], [-2.0], [3.0], [0.0]]]))
    assert torch.allclose(p[0, :, 0], torch.tensor([0.25, 0.0, 0.75, 0.0]), atol=1e-5)


def test_diversity_loss_is_zero_for_uniform_use_and_largest_for_one_code():
    vq = ArgmaxQuantiser(n_codes=4, dim=2)
    _, _, uniform = vq(torch.eye(4)[None].repeat(2, 1, 1))  # each frame its own code
    _, _, single = vq(torch.tensor([1.0, 0, 0, 0])[None, :, None].repeat(2, 1, 6))
    assert float(uniform) == pytest.approx(0.0, abs=1e-9)
    assert float(single) == pytest.approx(3.0, rel=1e-4)  # n_codes - 1


def test_ema_update_is_the_usage_weighted_mean_of_assigned_vectors():
    torch.manual_seed(0)
    decay = 0.75
    vq = VectorQuantiser(n_codes=3, dim=2, decay=decay, dead_threshold=0.0).train()
    vq.initialised.fill_(1.0)
    vq.codebook.copy_(torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]]))
    count0, sum0 = torch.tensor([2.0, 3.0, 4.0]), torch.tensor([[0.0, 0.0], [30.0, 0.0], [0.0, 40.0]])
    vq.ema_count.copy_(count0)
    vq.ema_sum.copy_(sum0)
    z = torch.tensor([[0.5, 0.1], [9.0, 0.3], [11.0, 0.0], [0.2, 9.5], [1.0, -0.5]]).T[None]  # (1, 2, 5)
    vq(z)
    assigned = {0: [[0.5, 0.1], [1.0, -0.5]], 1: [[9.0, 0.3], [11.0, 0.0]], 2: [[0.2, 9.5]]}
    for k, vectors in assigned.items():
        v = torch.tensor(vectors)
        count = decay * count0[k] + (1 - decay) * len(v)
        mean = (decay * sum0[k] + (1 - decay) * v.sum(0)) / count
        assert torch.allclose(vq.codebook[k], mean, atol=1e-5)
        assert float(vq.ema_count[k]) == pytest.approx(float(count))


def test_codes_without_an_update_are_the_brute_force_nearest_and_leave_the_codebook_alone():
    vq = VectorQuantiser(n_codes=7, dim=3).train()
    vq.initialised.fill_(1.0)
    before = vq.codebook.clone()
    z = torch.randn(2, 3, 9)
    codes = quantiser_codes(vq, z)
    flat = z.transpose(1, 2).reshape(-1, 3)
    brute = torch.tensor([min(range(7), key=lambda k: float(((v - before[k]) ** 2).sum())) for v in flat])
    assert torch.equal(codes, brute.view(2, 9))
    assert torch.equal(vq.codebook, before)


def test_a_code_unused_below_the_threshold_is_restarted_on_an_encoder_output():
    model = _model("jukebox_mini", train_stage="autoencoder").train()
    x = 0.3 * torch.randn(2, 1, 2048, generator=torch.Generator().manual_seed(0))
    model.training_step((x, {}), generator=torch.Generator().manual_seed(0))  # seeds the codebooks
    vq = model.quantisers[0]
    unused = int(torch.argmin(vq.ema_count))
    vq.ema_count[unused] = 0.0  # far below the usage threshold
    restarts = int(vq.restarts)
    model.training_step((x, {}), generator=torch.Generator().manual_seed(1))
    assert int(vq.restarts) > restarts
    assert float(vq.ema_count[unused]) >= 1.0  # restarted with a count of one, on a batch vector


# ---- levels ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
def test_codes_of_every_level_have_length_time_over_hop(name):
    model = _model(name).eval()
    hops = model.level_hops()
    n = 3 * hops[-1]
    enc = model.encode(Audio(0.1 * torch.randn(2, 1, n), model.sample_rate))
    for level in range(1, len(hops)):
        assert enc.data[f"codes_{level}"].shape == (2, n // hops[level])


@pytest.mark.parametrize("upper", [False, True])
def test_cached_prior_sampling_draws_what_teacher_forced_scoring_scores_across_windows(upper):
    torch.manual_seed(0)
    prior = CodePrior(6, d_model=16, n_layers=2, n_heads=2, context=8, upper_codes=5 if upper else 0,
                      ratio=2).eval()
    length = 21  # three windows of 8 sliding by 4
    above = torch.randint(0, 5, (2, 11)) if upper else None
    codes, logits = prior.sample(2, length, above, generator=torch.Generator().manual_seed(0), return_logits=True)
    assert torch.allclose(logits, prior.logits(codes, above), atol=1e-4)
    assert [prior.window_start(t) for t in (7, 8, 11, 12, 20)] == [0, 4, 4, 8, 16]


def test_the_bottom_level_samples_with_the_fast_queues_as_with_the_cached_ones():
    model = _model("hierarchical_wavenet").eval()
    a = model.generate(1, seconds=0.06, generator=4, method="fast")
    b = model.generate(1, seconds=0.06, generator=4, method="cached")
    assert torch.equal(a.samples, b.samples)


@pytest.mark.parametrize("name", ["hierarchical_wavenet", "jukebox_mini"])
def test_generation_runs_top_down_and_reports_progress(name):
    model = _model(name).eval()
    calls = []
    audio = model.generate(1, seconds=0.1, generator=0, progress=lambda done, total: calls.append((done, total)))
    assert audio.n_samples == 800
    done, totals = [d for d, _ in calls], {t for _, t in calls}
    assert len(totals) == 1 and done == sorted(done) and done[-1] == totals.pop()


@pytest.mark.parametrize("name", ["ada", "hierarchical_wavenet"])
def test_log_prob_is_the_sum_of_every_stage_share(name):
    model = _model(name).eval()
    x = Audio(0.2 * torch.randn(2, 1, 1000, generator=torch.Generator().manual_seed(0)), model.sample_rate)
    shares = model.bits_by_stage(x)
    assert len(shares) == len(model.stages) and all(bool((s > 0).all()) for s in shares.values())
    assert torch.allclose(model.log_prob(x), sum(shares.values()), atol=1e-5)


def test_decode_samples_the_waveform_given_the_codes():
    model = _model("ada").eval()
    enc = model.encode(Audio(0.2 * torch.randn(1, 1, 640), model.sample_rate))
    a, b, again = (model.decode(enc, generator=g).samples for g in (0, 1, 0))
    assert not torch.equal(a, b) and torch.equal(a, again)


def test_training_one_level_leaves_the_others_untouched():
    model = _model("hierarchical_wavenet", train_stage="level2").train()
    x = 0.3 * torch.randn(2, 1, 4000, generator=torch.Generator().manual_seed(0))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    model.train_step((x, {}), model.configure_optimizers(), generator=torch.Generator().manual_seed(0))
    changed = {k.split(".")[0] + ("." + k.split(".")[1] if k.startswith("levels") else "")
               for k, v in model.state_dict().items() if not torch.equal(v, state[k])}
    assert changed == {"levels.1"}


def test_unknown_training_stage_or_bottleneck_is_refused():
    with pytest.raises(ParameterError, match="train_stage"):
        create_model("hierarchical_wavenet", "tiny", train_stage="level3")
    with pytest.raises(ParameterError, match="bottleneck"):
        create_model("ada", "tiny", bottleneck="kmeans")
    with pytest.raises(ParameterError, match="power of two"):
        create_model("hierarchical_wavenet", "tiny", n_codes=12)


# ---- what brief training shows --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_ada(music):
    """A tiny argmax ADA trained briefly on four clips (autoencoder and prior), then its prior alone."""
    model = _model("ada", bottleneck="amae", n_layers=3, learning_rate=3e-3, prior_dim=32, prior_layers=2)
    gen = torch.Generator().manual_seed(0)
    x = music[:4]
    opt = model.configure_optimizers()
    for _ in range(150):
        model.train().train_step((x, {}), opt, generator=gen)
    model = model.with_config(train_stage="prior", learning_rate=1e-2)
    opt = model.configure_optimizers()
    for _ in range(100):
        model.train().train_step((x, {}), opt, generator=gen)
    return model.eval()


@pytest.mark.slow
def test_the_decoder_uses_its_codes_after_brief_training(trained_ada, music):
    """Teacher-forced level consistency: real audio costs fewer bits under its own codes than under the
    same codes shuffled in time or under another piece's codes."""
    result = consistency_of(trained_ada, music[:4])
    (bits,) = result.values()
    assert bits["own"] < bits["shuffled_in_time"]
    assert bits["own"] < bits["other_piece"]


def test_the_prior_beats_a_unigram_model_of_the_codes_on_held_out_pieces(trained_ada, music):
    (bits,) = prior_bits_of(trained_ada, music[:4], music[4:]).values()
    assert bits["model"] < bits["unigram"] < bits["uniform"] + 1e-9


def test_unigram_bits_is_the_cross_entropy_of_smoothed_counts():
    train = torch.tensor([0, 0, 0, 1])  # add-one over three codes: counts 4, 2, 1 of 7
    bits = unigram_bits(train, torch.tensor([0, 2]), 3, alpha=1.0)
    assert bits == pytest.approx(-(math.log2(4 / 7) + math.log2(1 / 7)) / 2)
