"""notes_lm: causality, cached decoding, sliding windows, seeded generation, playable output,
n-gram baselines, learning, data splits and transposition, checkpoints, errors."""

import math

import pytest
import torch
from matplotlib.figure import Figure

from workbench.errors import ParameterError
from workbench.models import create_model, load_model
from workbench.models.notes_lm import (
    END,
    N_OUTPUTS,
    N_TOKENS,
    PAD,
    START,
    NotesLM,
    TokenWindows,
    events_to_tokens,
    ngram_nll,
    token_streams,
    tokens_to_events,
    window_start,
)
from workbench.scores import (
    NoteEvent,
    Piece,
    clean_events,
    events_from_midi,
    events_to_midi,
    split_of,
)

#: A little tune: (pitch, beats), a quarter note of 0.25 s per beat.
MELODY = [(60, 1), (62, 1), (64, 1), (65, 1), (67, 2), (67, 2), (69, 1), (67, 1), (65, 1), (64, 1), (62, 2), (60, 2)]


def melody(repeats: int = 1, transpose: int = 0) -> list[NoteEvent]:
    events, t = [], 0.0
    for _ in range(repeats):
        for pitch, beats in MELODY:
            events.append(NoteEvent(t, 0.2 * beats, pitch + transpose, 80))
            t += 0.25 * beats
    return events


def _tiny(**overrides) -> NotesLM:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return create_model("notes_lm", "tiny", **overrides).eval()


# ---- the network ------------------------------------------------------------------------------------------
def test_logits_at_t_do_not_depend_on_later_tokens():
    model = _tiny()
    tokens = torch.randint(0, N_TOKENS, (2, 48), generator=torch.Generator().manual_seed(1))
    t = 20
    changed = tokens.clone()
    changed[:, t + 1:] = torch.randint(0, N_TOKENS, (2, 48 - t - 1), generator=torch.Generator().manual_seed(2))
    a, b = model(tokens), model(changed)
    assert torch.allclose(a[:, : t + 1], b[:, : t + 1], atol=1e-6)
    assert not torch.allclose(a[:, t + 1:], b[:, t + 1:], atol=1e-3)  # the perturbation did reach later logits
    # by gradients: the output at t depends on inputs 0..t and nothing after
    x = model.token(tokens).detach().requires_grad_(True)
    h = x + model.position(torch.arange(48))
    for layer, block in enumerate(model.blocks):
        h = block(h, layer)
    model.head(model.ln_f(h))[0, t].sum().backward()
    touched = x.grad[0].abs().sum(-1) > 0
    assert touched[: t + 1].all() and not touched[t + 1:].any()


def test_cached_incremental_decoding_equals_the_full_forward_pass():
    model = _tiny()
    tokens = torch.randint(0, N_TOKENS, (3, 64), generator=torch.Generator().manual_seed(3))
    full = model(tokens)
    cache = model.new_cache(3)
    steps = torch.cat([model(tokens[:, i: i + 1], cache) for i in range(64)], dim=1)
    assert torch.allclose(steps, full, atol=1e-5)
    cache = model.new_cache(3)  # a prefill of several tokens, then one at a time
    mixed = torch.cat([model(tokens[:, :37], cache), *(model(tokens[:, i: i + 1], cache) for i in range(37, 64))], 1)
    assert torch.allclose(mixed, full, atol=1e-5)
    with pytest.raises(ParameterError, match="do not fit in one window"):
        model(tokens[:, :1], cache)


def test_long_streams_are_scored_with_the_windows_generation_samples_from():
    model = _tiny()  # context 64, windows move by 32
    stream = torch.tensor(events_to_tokens(melody(repeats=4)))
    assert len(stream) > 3 * model.config.context
    (log_p,) = model.token_log_probs([stream])
    assert log_p.shape == (len(stream) - 1,)
    for t in (1, 40, 64, 65, 96, 97, 130, len(stream) - 1):
        w = window_start(t, 64)
        assert t - 64 <= w < t and (t <= 64 or t - w > 32)  # at least half a context of history
        logits = model(stream[None, w:t])[0, -1]
        expected = torch.log_softmax(logits.double(), -1)[stream[t]]
        assert log_p[t - 1].item() == pytest.approx(expected.item(), abs=1e-5)
    assert model.log_prob_events(melody(repeats=4)) == pytest.approx(float(log_p.mean()), abs=1e-6)


# ---- generation -------------------------------------------------------------------------------------------
def test_the_same_seed_writes_the_same_piece_and_other_seeds_differ():
    model = _tiny()
    a = model.generate_events(2, seconds=3.0, generator=7)
    assert a == model.generate_events(2, seconds=3.0, generator=7)
    assert a == model.generate_events(2, seconds=3.0, generator=torch.Generator().manual_seed(7))
    assert a != model.generate_events(2, seconds=3.0, generator=8)
    assert a != model.generate_events(2, seconds=3.0, generator=7, temperature=0.5)


def test_generated_events_are_playable_stop_at_the_length_and_round_trip_through_midi(tmp_path):
    model = _tiny()
    calls = []
    pieces = model.generate_events(3, seconds=2.5, generator=0, progress=lambda d, t: calls.append((d, t)))
    assert len(pieces) == 3 and calls and calls[-1] == (250, 250)
    for events in pieces:
        assert events and clean_events(events) == events
        assert all(0 <= e.onset_seconds < 2.5 and e.offset_seconds <= 2.5 + 1e-9 for e in events)
        back = events_from_midi(events_to_midi(events, tmp_path / "piece.mid"))
        assert [(e.pitch, e.velocity) for e in back] == [(e.pitch, e.velocity) for e in events]
        assert all(abs(x.onset_seconds - y.onset_seconds) < 1e-3 and abs(x.offset_seconds - y.offset_seconds) < 1e-3
                   for x, y in zip(back, events, strict=True))


def test_a_prompt_is_continued_and_kept_and_max_tokens_bounds_the_piece():
    model = _tiny()
    prompt = melody()[:4]
    (events,) = model.generate_events(1, seconds=1.0, prompt=prompt, generator=0)
    assert [(e.pitch, round(e.onset_seconds, 6)) for e in events[:4]] == [(e.pitch, e.onset_seconds) for e in prompt]
    assert len(events) > 4 and all(e.offset_seconds <= 0.95 + 1.0 + 1e-9 for e in events)  # prompt ends at 0.95 s
    (short,) = model.generate_events(1, seconds=None, max_tokens=5, generator=0)
    assert len(short) <= 5  # five tokens hold at most five NOTE_ONs


# ---- tokens and baselines ----------------------------------------------------------------------------------
def test_events_round_trip_through_tokens_and_special_tokens_are_dropped():
    events = melody()
    tokens = events_to_tokens(events)
    assert tokens[0] == START and tokens[-1] == END and max(tokens[1:-1]) < END
    back = tokens_to_events(tokens + [PAD, 60])  # reading stops at END
    assert [(e.pitch, round(e.onset_seconds, 6), round(e.duration_seconds, 6)) for e in back] == \
           [(e.pitch, round(e.onset_seconds, 6), round(e.duration_seconds, 6)) for e in events]


def test_unigram_and_bigram_baselines_equal_hand_computed_values():
    S = 9  # START of this toy vocabulary of V = 3 classes (0, 1, 2 = END)
    train = [[S, 0, 1, 0, 2], [S, 1, 2]]
    test = [[S, 0, 0, 2]]
    # unigram: targets 0 x2, 1 x2, 2 x2 (N = 6); add-one -> p = 3/9 for each
    assert ngram_nll(train, test, 1, k=1.0, n_classes=3) == pytest.approx(-math.log(3 / 9))
    # add 0.5: counts (2, 2, 2) -> p = 2.5 / 7.5
    assert ngram_nll(train, test, 1, k=0.5, n_classes=3) == pytest.approx(-math.log(2.5 / 7.5))
    # bigram pairs: S->0, 0->1, 1->0, 0->2, S->1, 1->2; add-one
    p_s0 = (1 + 1) / (2 + 3)  # S -> 0: c(S,0)=1, c(S)=2
    p_00 = (0 + 1) / (2 + 3)  # 0 -> 0: c(0,0)=0, c(0)=2
    p_02 = (1 + 1) / (2 + 3)  # 0 -> 2: c(0,2)=1
    expected = -(math.log(p_s0) + math.log(p_00) + math.log(p_02)) / 3
    assert ngram_nll(train, test, 2, k=1.0, n_classes=3) == pytest.approx(expected)
    with pytest.raises(ParameterError, match="k=0"):
        ngram_nll(train, test, 1, k=0)


def test_a_tiny_model_learns_a_repeated_melody_better_than_the_unigram_baseline():
    model = _tiny(context=32, learning_rate=3e-3).train()
    streams = token_streams([Piece("tune", "tune", "files", tuple(melody(repeats=6)), (0,))])
    data = TokenWindows(streams, 32)
    (opt,) = model.configure_optimizers()
    batch = torch.stack([data[i][0] for i in range(len(data))])
    before = -float(torch.cat(model.token_log_probs(streams)).mean())
    for _ in range(100):  # about two seconds
        model.train_step((batch, {}), [opt])
    after = -float(torch.cat(model.token_log_probs(streams)).mean())
    unigram = ngram_nll(streams, streams, 1, k=0.01)
    bigram = ngram_nll(streams, streams, 2, k=0.01)
    assert after < unigram < before
    assert after < bigram


# ---- data --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tune_folder(tmp_path_factory):
    """40 MIDI files of the melody in different keys (every fifth up to MIDI 123); their names put
    them in all three splits."""
    folder = tmp_path_factory.mktemp("tunes")
    for i in range(40):
        events_to_midi(melody(transpose=i % 12 - 6 if i % 5 else 54), folder / f"tune{i:02d}.mid")
    return folder


def test_windows_come_from_the_split_and_only_the_training_split_is_transposed(tune_folder):
    model = _tiny(transpose_range=(-2, 2), max_pieces=None)
    sets = {s: model.dataset(s, str(tune_folder)) for s in ("train", "validation", "test")}
    names = {f"tune{i:02d}.mid" for i in range(40)}
    expected = {s: {n for n in names if split_of(n) == s} for s in sets}
    assert all(expected.values())  # every split has pieces
    for s, ds in sets.items():
        assert len(ds.streams) == len(expected[s])
        tokens, cond = ds[0]
        assert tokens.shape == (model.config.context + 1,) and tokens.dtype == torch.long and cond == {}
    assert sets["validation"].shifts == (0,) and sets["train"].shifts == (-2, -1, 0, 1, 2)
    # the tunes that reach MIDI 123 cannot move up by 5 or 6: those versions are left out
    high = _tiny(transpose_range=(0, 6), max_pieces=None).dataset("train", str(tune_folder))
    assert high.skipped > 0 and {k for _, _, k in high.items} == set(range(7))
    for index, (i, _, k) in enumerate(high.items):
        window, stream = high[index][0], high.streams[i]
        assert int(window[window < 128].max()) == int(stream[stream < 128].max()) + k <= 127


def test_transposed_windows_decode_to_the_transposed_melody():
    streams = token_streams([Piece("tune", "tune", "files", tuple(melody()), (0,))])
    data = TokenWindows(streams, 64, shifts=(-3, 0, 4))
    by_shift = {k: data[data.items.index((0, 0, k))][0] for k in (-3, 0, 4)}
    for k, window in by_shift.items():
        assert [e.pitch for e in tokens_to_events(window)] == [e.pitch + k for e in melody()]


def test_training_runs_through_the_one_loop_and_the_checkpoint_round_trips(tune_folder, tmp_path):
    from workbench.train import train

    model = train("notes_lm", data=str(tune_folder), preset="tiny", steps=3, out=tmp_path / "run", eval_every=3,
                  progress=False)
    loaded = load_model(tmp_path / "run")
    assert isinstance(loaded, NotesLM) and loaded.config == model.config
    tokens = torch.randint(0, N_TOKENS, (1, 30), generator=torch.Generator().manual_seed(0))
    assert torch.equal(loaded(tokens), model(tokens))
    assert loaded.generate_events(1, seconds=1.0, generator=3) == model.generate_events(1, seconds=1.0, generator=3)
    assert loaded.card["model"] == "notes_lm" and "eval_loss" in loaded.card["final"]


# ---- errors and the figure ------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [
    ({"n": 0}, "n=0"),
    ({"seconds": 0}, "seconds=0"),
    ({"seconds": 1e6}, "seconds=1000000"),
    ({"seconds": None}, "needs max_tokens"),
    ({"max_tokens": 0}, "max_tokens=0"),
    ({"temperature": 0}, "temperature=0"),
    ({"temperature": float("nan")}, "temperature=nan"),
    ({"prompt": [60, 62]}, "NoteEvent"),
    ({"prompt": NoteEvent(0.0, 1.0, 60)}, "list of NoteEvent"),
])
def test_bad_generation_arguments_raise_errors_that_name_the_value(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        _tiny().generate_events(**kwargs)


def test_bad_configs_tokens_and_events_raise_parameter_errors():
    with pytest.raises(ParameterError, match="not divisible by n_heads"):
        create_model("notes_lm", "tiny", d_model=30, n_heads=4)
    with pytest.raises(ParameterError, match="'jazz' is not one of"):
        create_model("notes_lm", "tiny", collection="folk+jazz")
    with pytest.raises(ParameterError, match="transpose_range"):
        create_model("notes_lm", "tiny", transpose_range=(2, 5))
    model = _tiny()
    with pytest.raises(ParameterError, match="tokens must be in"):
        model(torch.tensor([[N_TOKENS]]))
    with pytest.raises(ParameterError, match="do not fit"):
        model(torch.zeros(1, model.config.context + 1, dtype=torch.long))
    with pytest.raises(ParameterError, match="no note to score"):
        model.log_prob_events([])
    with pytest.raises(ParameterError, match="split="):
        model.dataset("everything")


def test_visualise_draws_a_piano_roll_of_given_or_generated_events():
    model = _tiny()
    fig = model.visualise(melody())
    assert isinstance(fig, Figure) and len(fig.axes[0].collections) == len(melody())
    assert isinstance(model.visualise(), Figure)


def test_the_softmax_offers_the_events_and_end_but_never_start_or_pad():
    model = _tiny()
    assert model(torch.tensor([[START, 60, PAD]])).shape == (1, 3, N_OUTPUTS)
    assert N_OUTPUTS == END + 1 and START >= N_OUTPUTS and PAD >= N_OUTPUTS


def test_the_cached_sampler_draws_what_recomputing_each_window_draws():
    from workbench.models.base import sample_categorical

    model = _tiny()  # context 64: 150 tokens slide the window three times
    (cached,) = model.generate_events(1, seconds=None, max_tokens=150, generator=5, prompt=melody()[:2])
    gen = torch.Generator().manual_seed(5)
    stream = events_to_tokens(melody()[:2], end=False)
    prompt_length = len(stream)
    while len(stream) < prompt_length + 150:
        t = len(stream)
        w = window_start(t, 64)
        logits = model(torch.tensor([stream[w:t]]))[:, -1]  # the window recomputed from scratch
        stream.append(int(sample_categorical(logits, 1.0, gen)))
        if stream[-1] == END:
            break
    assert len(stream) > prompt_length + 64
    assert cached == tokens_to_events(stream)
