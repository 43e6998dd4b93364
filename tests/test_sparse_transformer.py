"""Sparse Transformer: the patterns' masks, block-sparse attention against the dense reference,
causality, cached decoding, errors, learning; and the notebook's attention helpers."""

import math

import pytest
import torch

from workbench import Audio
from workbench.errors import ParameterError
from workbench.models import create_model
from workbench.models.sparse_transformer import (
    KINDS,
    PATTERNS,
    attention_mask,
    attention_masks,
    dense_attention,
    key_index,
    reachable,
    scores_computed,
    sparse_attention,
)

COND = {"pitch": [61, 63], "instrument": ["piano", "flute"], "velocity": [100, 100]}


def _tiny(**overrides):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return create_model("sparse_transformer", "tiny", **overrides).eval()


# ---- the patterns ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_every_mask_is_causal_and_lets_each_query_see_itself_or_nothing_later(kind):
    mask = attention_mask(kind, 96, 8, summary=3)
    assert mask.shape == (96, 96) and mask.dtype == torch.bool
    assert not mask.triu(1).any()  # no key after its query
    if kind != "summary":
        assert mask.diagonal().all()


def test_strided_queries_attend_to_about_l_plus_n_over_l_keys():
    n, stride = 256, 16
    masks = attention_masks("strided", n, stride)
    local, column = masks["local"], masks["column"]
    i = torch.arange(n)
    assert torch.equal(local.sum(-1), torch.clamp(i + 1, max=stride))  # the previous l, itself included
    assert torch.equal(column.sum(-1), i // stride + 1)  # every l-th earlier position, itself included
    union = (local | column).sum(-1)
    assert int(union.max()) <= stride + n // stride
    assert int(union[-1]) == stride + n // stride - 1  # the last query: its l local keys and n/l - 1 more
    dense = attention_mask("dense", n, stride).sum(-1)
    assert float(union.float().mean()) < float(dense.float().mean()) / 4


@pytest.mark.parametrize("pattern", ["strided", "fixed"])
def test_two_hops_of_the_factorised_pattern_reach_every_earlier_position(pattern):
    n, stride = 128, 16
    masks = attention_masks(pattern, n, stride, summary=2)
    one, two = masks.values()
    eye = torch.eye(n, dtype=torch.bool)
    two_hop = ((two | eye).float() @ (one | eye).float()) > 0  # i <- m (second head) <- j (first head)
    causal = attention_mask("dense", n, stride)
    assert torch.equal(two_hop, causal)
    assert torch.equal(reachable(masks), causal)
    assert not torch.equal(one | eye, causal) and not torch.equal(two | eye, causal)  # one hop is not enough


def test_the_fixed_pattern_needs_its_block_head_first():
    masks = attention_masks("fixed", 64, 8, summary=1)
    # summaries first, then blocks: a position that is no summary never reaches a later block
    assert not torch.equal(reachable([masks["summary"], masks["block"]]), attention_mask("dense", 64, 8))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("n,stride,summary", [(64, 8, 3), (96, 32, 1), (40, 4, 4)])
def test_block_sparse_attention_equals_the_dense_masked_reference(kind, n, stride, summary):
    gen = torch.Generator().manual_seed(n + stride)
    q, k, v = torch.randn(3, 2, 3, n, 8, generator=gen)
    reference = dense_attention(q, k, v, attention_mask(kind, n, stride, summary))
    out = sparse_attention(q, k, v, kind, stride, summary)
    assert out.shape == q.shape
    assert (out - reference).abs().max() < 1e-5


@pytest.mark.parametrize("kind", KINDS)
def test_key_index_reads_one_row_of_the_mask(kind):
    n, stride, c = 48, 8, 3
    mask = attention_mask(kind, n, stride, c)
    for slot in (0, 5, 8, 23, 47):
        row = torch.zeros(n, dtype=torch.bool)
        row[torch.arange(n)[key_index(kind, slot, stride, c)]] = True
        assert torch.equal(row, mask[slot])


def test_sparse_attention_scores_far_fewer_pairs_than_dense():
    n, stride = 4096, 64
    assert scores_computed("dense", n, stride) == n * n
    for kind in ("local", "column", "block"):
        assert scores_computed(kind, n, stride) <= 2 * n * stride  # n sqrt(n) at l = sqrt(n)
    assert scores_computed("summary", n, stride, 4) == n * (n // stride) * 4


# ---- the model --------------------------------------------------------------------------------------
@pytest.mark.parametrize("pattern", PATTERNS)
def test_logits_at_t_do_not_depend_on_later_inputs_but_on_every_earlier_one(pattern):
    model = _tiny(pattern=pattern).double()
    n, t = 100, 57
    codes = torch.randint(0, 256, (1, n), generator=torch.Generator().manual_seed(0))
    x = model.embed(codes, None, -1).detach().requires_grad_(True)  # (1, time, d_model)
    model.forward_features(x)[0, :, t].sum().backward()
    influence = x.grad[0].abs().sum(-1)  # (time,)
    assert torch.all(influence[t + 1:] == 0)
    assert torch.all(influence[: t + 1] > 0)  # two layers of a factorised pattern reach all the past


def test_cached_decoding_equals_the_teacher_forced_pass_across_sliding_windows():
    for pattern in PATTERNS:
        model = _tiny(pattern=pattern).double()
        n_samples = 2 * model.config.context + 50  # three windows
        codes, logits = model.sample_codes(2, n_samples, COND, 1.0, torch.Generator().manual_seed(1),
                                           method="cached", return_logits=True)
        teacher = model.note_logits(codes, COND)
        assert teacher.shape == logits.shape == (2, 256, n_samples)
        assert (teacher - logits).abs().max() < 1e-5, pattern


def test_window_starts_move_by_half_a_context_once_the_first_window_is_full():
    model = _tiny()
    context, hop = model.config.context, model.window_hop
    assert hop == context // 2
    starts = [model.window_start(t) for t in range(3 * context)]
    assert starts[: context] == [-1] * context
    assert starts[context] == hop - 1
    for t, start in enumerate(starts):
        assert 0 < t - start <= context  # every window holds at most `context` inputs
        assert t - start >= context - hop or start == -1


def test_cached_and_naive_sampling_draw_the_same_sound_under_a_seed():
    model = _tiny(pattern="fixed")
    cached = model.generate(1, seconds=0.045, cond={"pitch": 62}, generator=11, method="cached")
    naive = model.generate(1, seconds=0.045, cond={"pitch": 62}, generator=11, method="naive")
    assert cached.n_samples == 360 > model.config.context  # crosses into the second window
    assert torch.equal(cached.samples, naive.samples)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_the_compiled_decoder_draws_the_cached_samplers_codes_across_sliding_windows(pattern):
    from workbench.models import transformer_kernel

    if not transformer_kernel.available():
        pytest.fail("numba (which comes with librosa) is missing: the compiled decoder cannot run")
    model = _tiny(pattern=pattern, summary=2)
    n_samples = 2 * model.config.context + 70  # three windows
    cached, cached_logits = model.sample_codes(2, n_samples, COND, 0.9, torch.Generator().manual_seed(4),
                                               method="cached", return_logits=True)
    fast, fast_logits = model.sample_codes(2, n_samples, COND, 0.9, torch.Generator().manual_seed(4),
                                           method="fast", return_logits=True)
    assert torch.equal(fast, cached)
    assert fast_logits.shape == cached_logits.shape and (fast_logits - cached_logits).abs().max() < 1e-4
    assert model.resolve_method("auto") == "fast" and model.double().resolve_method("auto") == "cached"


def test_the_compiled_decoder_reports_progress_and_honours_a_stop():
    model = _tiny()
    seen = []

    def progress(done, total):
        seen.append((done, total))
        if done >= 512:
            raise InterruptedError("stop")

    with pytest.raises(InterruptedError):
        model.generate(1, seconds=0.2, cond={"pitch": 62}, generator=0, method="fast", progress=progress)
    assert seen[0] == (256, 1600) and seen[-1][0] == 512


def test_temperature_scales_the_logits():
    model = _tiny()
    cold = model.generate(1, seconds=0.02, generator=4, temperature=0.05)
    hot = model.generate(1, seconds=0.02, generator=4, temperature=5.0)
    codes = [torch.unique(x.samples).numel() for x in (cold, hot)]
    assert codes[0] < codes[1]


def test_log_prob_is_the_mean_surprise_of_encode_and_scores_long_notes_by_windows():
    model = _tiny()
    audio = Audio(0.5 * torch.sin(torch.arange(700) * 0.2), 8000)  # longer than the context of 256
    enc = model.encode(audio, {"pitch": 60})
    assert enc.data["codes"].shape == enc.data["log_likelihood_bits"].shape == (1, 700)
    bits = model.log_prob(audio, {"pitch": 60})
    assert torch.allclose(bits, -enc.data["log_likelihood_bits"].mean(-1))
    assert 0 < float(bits) < 10


def test_gradient_checkpointing_gives_the_same_loss_and_gradients():
    from workbench.data import Notes, collate

    ds = Notes(instruments=("piano",), pitches=(60,), velocities=(100,), seconds=0.25, sample_rate=8000)
    batch = collate([ds[0]])
    grads = []
    for flag in (False, True):
        model = _tiny(checkpoint=flag).train()
        loss = model.training_step(batch, generator=torch.Generator().manual_seed(3))["loss"]
        loss.backward()
        grads.append((loss.detach(), [p.grad.clone() for p in model.parameters()]))
    assert torch.allclose(grads[0][0], grads[1][0])
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(grads[0][1], grads[1][1]))


def test_output_projections_start_scaled_by_one_over_sqrt_two_n():
    model = create_model("sparse_transformer", "small")
    scale = 1 / math.sqrt(2 * model.config.n_layers)
    for block in model.blocks:
        assert abs(float(block.proj.weight.detach().std()) - 0.02 * scale) < 0.003
        assert abs(float(block.mlp[-1].weight.detach().std()) - 0.02 * scale) < 0.003
        assert abs(float(block.qkv.weight.detach().std()) - 0.02) < 0.003


def test_bad_inputs_raise_parameter_errors_naming_the_value():
    with pytest.raises(ParameterError, match="pattern='diagonal'"):
        _tiny(pattern="diagonal")
    with pytest.raises(ParameterError, match="stride=24 does not divide context=256"):
        _tiny(stride=24)
    with pytest.raises(ParameterError, match="summary=17"):
        _tiny(summary=17)
    with pytest.raises(ParameterError, match="d_model=30"):
        _tiny(d_model=30, n_heads=4)
    with pytest.raises(ParameterError, match="n_layers=1"):
        _tiny(n_layers=1)
    model = _tiny()
    with pytest.raises(ParameterError, match="300 inputs are more than this model's context=256"):
        model(torch.zeros(1, 300, dtype=torch.long))
    with pytest.raises(ParameterError, match="start=-5"):
        model(torch.zeros(1, 10, dtype=torch.long), start=-5)
    with pytest.raises(ParameterError, match="kind='diagonal'"):
        attention_mask("diagonal", 8, 2)
    with pytest.raises(ParameterError, match="50 positions .* stride=16"):
        sparse_attention(*torch.randn(3, 1, 1, 50, 4), "local", 16)
    with pytest.raises(ParameterError, match="method='magic'"):
        model.generate(1, seconds=0.01, method="magic")


def test_a_short_training_on_one_repeated_note_lowers_the_loss():
    from workbench.data import Notes, collate

    model = _tiny().train()
    ds = Notes(instruments=("piano",), pitches=(60,), velocities=(100,), seconds=0.25, sample_rate=8000)
    batch = collate([ds[0], ds[0]])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    first = model.eval_step(batch, generator=torch.Generator().manual_seed(5))["loss"]
    for _ in range(40):
        model.train_step(batch, [opt], generator=gen)
    last = model.eval_step(batch, generator=torch.Generator().manual_seed(5))["loss"]
    assert last < first - 0.5


def test_visualise_draws_each_head_and_the_reach_of_two_layers():
    fig = _tiny(pattern="fixed").visualise()
    titles = [ax.get_title() for ax in fig.axes]
    assert any(t.startswith("block") for t in titles) and any(t.startswith("summary") for t in titles)
    assert any(t.startswith("reach") for t in titles)


# ---- the notebook's helpers (workbench/notebook/attention.py) -----------------------------------------
def test_sqrt_stride_divides_and_is_near_the_square_root():
    from workbench.notebook.attention import sqrt_stride

    for n in (256, 1024, 2048, 4096, 65536, 96):
        stride = sqrt_stride(n)
        assert n % stride == 0 and math.sqrt(n) / 2 <= stride <= 2 * math.sqrt(n)


def test_pattern_stats_and_view_report_the_two_hop_reach():
    from matplotlib.figure import Figure

    from workbench.notebook.attention import pattern_stats, pattern_view

    stats = pattern_stats("strided", 64, 8)
    assert stats["two_hop"] and stats["max_keys"] == {"local": 8, "column": 8}
    assert stats["keys_per_query"]["local"] + stats["keys_per_query"]["column"] < stats["dense_keys"]
    assert pattern_stats("dense", 64, 8)["keys_per_query"]["dense"] == stats["dense_keys"] == 32.5
    fig, text = pattern_view("fixed", 64, 8, 2)
    assert isinstance(fig, Figure) and "True" in repr(text)
    with pytest.raises(ParameterError, match="stride=7"):
        pattern_view("strided", 64, 7)


def test_training_memory_grows_quadratically_for_dense_and_about_linearly_for_sparse_and_wavenet():
    from workbench.notebook.attention import growth_exponent, memory_scan, summarise

    rows = memory_scan([256, 512, 1024], families=("dense", "strided", "wavenet"), widths={"preset": "tiny"})
    assert all(r["skipped"] is None and r["saved_bytes"] > 0 for r in rows)
    by = {f: [r for r in rows if r["family"] == f] for f in ("dense", "strided", "wavenet")}
    contexts = [256, 512, 1024]
    dense_attention_growth = growth_exponent(contexts, [r["attention_bytes"] for r in by["dense"]])
    sparse_attention_growth = growth_exponent(contexts, [r["attention_bytes"] for r in by["strided"]])
    assert dense_attention_growth == pytest.approx(2.0, abs=0.01)
    assert 1.2 < sparse_attention_growth < 1.7
    assert all(r["attention_bytes"] == 0 for r in by["wavenet"])
    summary = summarise(rows, budget_bytes=5e6)
    assert summary["dense"]["exponent"] > summary["strided"]["exponent"]
    # the scan skips what its estimate puts over the limit instead of running it
    skipped = memory_scan([256, 512, 100_000], families=("dense",), widths={"preset": "tiny"}, max_bytes=1e8)
    assert skipped[-1]["skipped"] and "GB" in skipped[-1]["skipped"]
    with pytest.raises(ParameterError, match="family='lstm'"):
        memory_scan([256], families=("lstm",))


def test_card_comparison_names_the_lowest_bits_and_the_best_pitch(monkeypatch):
    import workbench.models as models
    from workbench.notebook.attention import card_comparison

    cards = {"a": {"metrics": {"parameters": 10, "bits_per_sample": 5.0, "pitch_accuracy": 0.1, "harmonic_share": 0.2,
                               "samples_per_second": 100.0}},
             "b": {"metrics": {"parameters": 12, "bits_per_sample": 5.5, "pitch_accuracy": 0.4, "harmonic_share": 0.3,
                               "samples_per_second": 900.0}}}
    monkeypatch.setattr(models, "has_checkpoint", lambda name: name in cards)
    monkeypatch.setattr(models, "load_card", lambda name: cards[name])
    table, sentence = card_comparison(("a", "b", "c"))
    text = repr(table)
    assert "no checkpoint yet" in text and "5.5" in text and "40%" in text
    assert sentence.startswith("lowest held-out bits: a (5.00); most notes at the asked pitch: b (40%)")
    assert "a predicts held-out notes better than b" in sentence
    _, alone = card_comparison(("a", "c"))
    assert alone.startswith("fewer than two")
