"""Scores: real music as note events, rendered audio and sample-aligned targets."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest
import torch

from workbench import data, scores
from workbench.cli import main
from workbench.errors import MissingDependencyError, ParameterError
from workbench.scores import (
    NoteEvent,
    PerformanceVocabulary,
    Piece,
    Scores,
    decode_performance,
    encode_performance,
    events_from_midi,
    events_from_score,
    events_to_midi,
    read_pieces,
    split_of,
    targets,
)

TICK = 60.0 / (120 * scores.MIDI_RESOLUTION)  # seconds per tick of the files events_to_midi writes


@pytest.fixture(autouse=True)
def _no_cache_from_the_environment(monkeypatch):
    monkeypatch.delenv("WORKBENCH_SCORES_CACHE", raising=False)


@pytest.fixture(scope="module")
def chorale():
    """One real Bach chorale (four voices, repeats) parsed by music21."""
    from music21 import corpus

    return corpus.parse("bach/bwv269")


@pytest.fixture(scope="module")
def corpus_cache(tmp_path_factory):
    """Two chorales and two folk tunes, parsed and rendered once into a cache folder."""
    cache = tmp_path_factory.mktemp("scores-cache")
    made = {}
    for collection in ("chorales", "folk"):
        ds = Scores(collection, max_pieces=2, cache_dir=cache)
        for v in range(len(ds.versions)):
            ds.render(v)
        made[collection] = ds
    return cache, made


def write_midi(path, events, programs=(73,)):
    events_to_midi(events, path, programs=programs)
    return path


def tune(n=4, pitch=60, part=0, start=0.0, seconds=0.25, velocity=90):
    return [NoteEvent(start + i * seconds, seconds, pitch + 2 * i, velocity, part) for i in range(n)]


# -- events ----------------------------------------------------------------------------------


def test_a_chorale_becomes_four_voices_of_events_that_survive_a_midi_file(chorale, tmp_path):
    events = events_from_score(chorale)
    assert {e.part for e in events} == {0, 1, 2, 3}
    assert all(a.onset_seconds <= b.onset_seconds for a, b in zip(events, events[1:], strict=False))
    back = events_from_midi(events_to_midi(events, tmp_path / "chorale.mid", programs=[19] * 4))
    assert len(back) == len(events)
    for a, b in zip(events, back, strict=True):
        assert (a.pitch, a.velocity, a.part) == (b.pitch, b.velocity, b.part)
        assert abs(a.onset_seconds - b.onset_seconds) <= TICK / 2 + 1e-9
        assert abs(a.offset_seconds - b.offset_seconds) <= TICK / 2 + 1e-9
    # once on the tick grid, a second trip through a file changes nothing
    assert events_from_midi(events_to_midi(back, tmp_path / "again.mid")) == back


def test_repeats_play_out_ties_merge_and_tempo_and_dynamics_are_read(tmp_path):
    from music21 import converter, dynamics, note, stream, tempo

    abc = "X:1\nT:Repeat\nM:4/4\nL:1/4\nQ:1/4=120\nK:C\n|: C D E F :| G4- | G4 |\n"
    events = events_from_score(converter.parse(abc, format="abc"))
    assert [e.pitch for e in events] == [60, 62, 64, 65] * 2 + [67]  # the repeat, played twice
    assert events[1].onset_seconds == pytest.approx(0.5)  # a quarter at 120 qpm
    assert events[-1].duration_seconds == pytest.approx(4.0)  # two tied whole notes: one note
    assert len(events_from_score(converter.parse(abc, format="abc"), expand_repeats=False)) == 5

    part = stream.Part()
    part.append(tempo.MetronomeMark(number=60))
    part.append(dynamics.Dynamic("pp"))
    part.append(note.Note("C4", quarterLength=1))
    part.append(dynamics.Dynamic("ff"))
    part.append(note.Note("D4", quarterLength=1))
    quiet, loud = events_from_score(part)
    assert quiet.velocity < loud.velocity and quiet.duration_seconds == pytest.approx(1.0)
    # no mark at all: the default tempo and velocity
    plain = events_from_score(stream.Part([note.Note("C4", quarterLength=1)]), default_bpm=120, default_velocity=33)
    assert plain[0].duration_seconds == pytest.approx(0.5) and plain[0].velocity == 33


def test_the_default_tempo_counts_the_beats_of_the_time_signature():
    from music21 import converter

    halves = converter.parse("X:1\nT:t\nM:4/2\nL:1/4\nK:C\nC2 D2 E2 F2|\n", format="abc")
    quarters = converter.parse("X:1\nT:t\nM:4/4\nL:1/4\nK:C\nC D E F|\n", format="abc")
    a, b = events_from_score(halves, default_bpm=100), events_from_score(quarters, default_bpm=100)
    assert [e.duration_seconds for e in a] == pytest.approx([e.duration_seconds for e in b])


def test_overlapping_same_pitch_notes_in_one_part_are_cut_but_other_parts_keep_theirs():
    events = scores.clean_events([NoteEvent(0.0, 1.0, 60), NoteEvent(0.5, 1.0, 60), NoteEvent(0.2, 1.0, 60, part=1)])
    mine = [e for e in events if e.part == 0]
    assert [(e.onset_seconds, e.duration_seconds) for e in mine] == [(0.0, 0.5), (0.5, 1.0)]
    assert len([e for e in events if e.part == 1]) == 1


def test_a_transposition_that_leaves_midi_is_refused():
    piece = Piece("p", "p", "files", tuple(tune(pitch=120)), (0,))
    assert piece.transposed(-12).pitch_range == (108, 114)
    with pytest.raises(ParameterError, match="0..127"):
        piece.transposed(3)


# -- performance tokens ----------------------------------------------------------------------


def assert_round_trip(events, vocab: PerformanceVocabulary):
    tokens = vocab.encode(events)
    assert all(0 <= t < len(vocab) for t in tokens)
    decoded = vocab.decode(tokens)
    step = vocab.step_seconds

    def key(e):  # the keyboard view: parts are not in the vocabulary
        return (round(e.onset_seconds / step), e.pitch, round(e.offset_seconds / step))

    assert len(decoded) == len(events)
    half_bin = math.ceil(127 / vocab.velocity_bins / 2)
    for a, b in zip(sorted(events, key=key), sorted(decoded, key=key), strict=True):
        assert a.pitch == b.pitch
        assert abs(a.onset_seconds - b.onset_seconds) <= step / 2 + 1e-9
        assert abs(a.offset_seconds - b.offset_seconds) <= step / 2 + 1e-9 or b.duration_seconds == pytest.approx(step)
        assert abs(a.velocity - b.velocity) <= half_bin
    assert vocab.encode(decoded) == tokens  # decoding lands on the grid exactly


def test_performance_tokens_round_trip_a_chorale_and_hard_polyphony(chorale):
    vocab = PerformanceVocabulary()
    assert len(vocab) == 128 + 128 + 100 + 32
    assert_round_trip(events_from_score(chorale), vocab)
    hard = [
        NoteEvent(0.0, 2.5, 60, 40, part=0), NoteEvent(0.0, 0.5, 60, 120, part=1),  # unison, one ends first
        NoteEvent(0.3, 1.0, 64, 90, part=2), NoteEvent(0.9, 1.0, 64, 10, part=3),  # crossing unison
        NoteEvent(0.0, 0.002, 72, 127), NoteEvent(3.7, 0.4, 48, 1),  # shorter than a step; a shift > 1 s
        NoteEvent(4.0, 0.1, 50, 64), NoteEvent(4.0, 0.1, 55, 64), NoteEvent(4.0, 0.1, 59, 64),  # a chord
    ]
    assert_round_trip(hard, vocab)
    assert_round_trip(hard, PerformanceVocabulary(step_seconds=0.02, max_shift_steps=7, velocity_bins=5))


def test_performance_tokens_have_names_and_unknown_tokens_are_refused():
    vocab = PerformanceVocabulary()
    tokens = encode_performance([NoteEvent(0.0, 0.03, 69, 100)])
    assert vocab.names(tokens)[1:] == ["NOTE_ON 69 (A4)", "TIME_SHIFT 3 (30 ms)", "NOTE_OFF 69 (A4)"]
    assert vocab.names(tokens)[0].startswith("SET_VELOCITY")
    with pytest.raises(ParameterError, match="outside this vocabulary"):
        decode_performance([len(vocab)])


def test_a_nested_unison_keeps_its_key_presses_but_pairs_them_first_in_first_out():
    nested = [NoteEvent(0.0, 1.0, 60, part=0), NoteEvent(0.2, 0.3, 60, part=1)]
    decoded = decode_performance(encode_performance(nested))
    assert sorted(e.onset_seconds for e in decoded) == [0.0, 0.2]
    assert sorted(round(e.offset_seconds, 6) for e in decoded) == [0.5, 1.0]


# -- targets ---------------------------------------------------------------------------------


@pytest.mark.parametrize("sample_rate,hop_length", [(16000, 256), (16000, 160), (22050, 512), (8000, 64), (44100, 441)])
def test_a_note_on_lands_within_one_hop_of_its_sample(sample_rate, hop_length):
    rng = np.random.default_rng(sample_rate + hop_length)
    events = [NoteEvent(float(rng.uniform(0, 3)), float(rng.uniform(0.001, 0.5)), int(p), int(v))
              for p, v in zip(rng.integers(21, 109, 200), rng.integers(1, 128, 200), strict=True)]
    events = scores.clean_events(events)
    n_frames = math.ceil(4 * sample_rate / hop_length)
    t = targets(events, n_frames, hop_length, sample_rate)
    for e in events:
        row = e.pitch - 21
        on = math.floor(e.onset_seconds * sample_rate / hop_length)
        assert t["onsets"][row, on] == 1
        assert abs(math.floor(e.onset_seconds * sample_rate) - on * hop_length) < hop_length
        assert t["roll"][row, on] == 1 and t["velocities"][row, on] >= e.velocity / 127 - 1e-6
        off = math.floor(e.offset_seconds * sample_rate / hop_length + 1e-6)
        assert t["offsets"][row, off] == 1
        assert bool(t["roll"][row, on:max(off, on + 1)].all())  # sounding from onset to offset
    # the roll is nothing but the notes: every active frame belongs to a note
    covered = torch.zeros_like(t["roll"])
    for e in events:
        on = math.floor(e.onset_seconds * sample_rate / hop_length + 1e-6)
        off = math.floor(e.offset_seconds * sample_rate / hop_length + 1e-6)
        covered[e.pitch - 21, on:max(off, on + 1)] = 1
    assert torch.equal(covered, t["roll"])
    assert torch.equal(t["velocities"] > 0, t["onsets"] > 0)


def test_targets_of_a_later_window_are_the_same_frames_shifted():
    events = tune(8, seconds=0.3)
    whole = targets(events, 160, 160, 16000)
    window = targets(events, 60, 160, 16000, start_seconds=0.5)  # 0.5 s is 50 frames
    for name in whole:
        assert torch.equal(window[name], whole[name][:, 50:110])


# -- the dataset -----------------------------------------------------------------------------


def test_splits_are_disjoint_by_piece_and_independent_of_the_other_pieces(tmp_path):
    folder = tmp_path / "tunes"
    folder.mkdir()
    for k in range(30):
        write_midi(folder / f"tune{k:02d}.mid", tune(2, pitch=50 + k, seconds=0.2))
    kwargs = dict(files=folder, segment_seconds=0.25)
    ids = {s: {p.id for p in Scores(split=s, **kwargs).pieces} for s in ("train", "validation", "test")}
    assert not ids["train"] & ids["validation"] and not ids["train"] & ids["test"] and not ids["validation"] & ids["test"]
    assert set().union(*ids.values()) == {p.id for p in Scores(**kwargs).pieces}
    assert ids["validation"] and ids["test"]  # 30 pieces fill every split
    # the same piece among fewer others keeps its split
    few = sorted(folder.glob("*.mid"))[::3]
    for split, names in ids.items():
        expected = names & {f.name for f in few}
        if expected:
            assert {p.id for p in Scores(files=few, split=split, segment_seconds=0.25).pieces} == expected
        else:
            with pytest.raises(ParameterError, match=f"no segment in split='{split}'"):
                Scores(files=few, split=split, segment_seconds=0.25)
    shares = [split_of(f"piece{k}") for k in range(3000)]
    assert 0.75 < shares.count("train") / 3000 < 0.85 and 0.07 < shares.count("test") / 3000 < 0.13


def test_transposed_versions_stay_in_their_pieces_split_and_inside_the_pitch_range(tmp_path):
    folder = tmp_path / "tunes"
    folder.mkdir()
    for k in range(12):
        write_midi(folder / f"t{k}.mid", tune(2, pitch=60 + k, seconds=0.2))
    ds = Scores(files=folder, transpose=range(-2, 3), pitch_range=(21, 73), segment_seconds=0.5)
    for v, (i, k) in enumerate(ds.versions):
        low, high = ds.version(v).pitch_range
        assert 21 <= low and high <= 73 and low == ds.pieces[i].pitch_range[0] + k
    for index in range(len(ds)):
        info = ds.segment_info(index)
        assert info["split"] == split_of(info["piece"])
    tops = {ds.pieces[i].id: max(k for j, k in ds.versions if j == i) for i in range(len(ds.pieces))}
    # t9 plays 69 and 71, t11 71 and 73: the highest shift that stays within 73
    assert (tops["t9.mid"], tops["t10.mid"], tops["t11.mid"], tops["t0.mid"]) == (2, 1, 0, 2)
    for split in ("train", "test"):
        part = Scores(files=folder, transpose=range(-2, 3), pitch_range=(21, 73), segment_seconds=0.5, split=split)
        assert {split_of(part.pieces[i].id) for i, _ in part.versions} <= {split}


def test_items_are_fixed_length_segments_whose_roll_matches_the_piece(tmp_path):
    f = write_midi(tmp_path / "a.mid", tune(5, seconds=0.3) + tune(2, pitch=40, part=1, seconds=0.6), programs=(73, 0))
    ds = Scores(files=[f], segment_seconds=0.4, hop_seconds=0.3, hop_length=160, tail_seconds=0.5)
    # 2.0 s = 32000 samples: segments of 6400 every 4800 -> 6 whole ones, and a 7th padded
    assert len(ds) == 7
    whole = targets(ds.pieces[0].events, 240, 160, 16000)["roll"]
    for i in range(len(ds)):
        x, cond = ds[i]
        assert x.shape == (1, 6400) and x.dtype == torch.float32
        start = i * 30  # frames
        assert torch.equal(cond["pianoroll"], whole[:, start:start + 40])
    assert not x[0, 32000 - 6 * 4800:].any()  # past the end: silence
    dropped = Scores(files=[f], segment_seconds=0.4, hop_seconds=0.3, hop_length=160, pad_last=False)
    assert len(dropped) == 6
    batch = data.collate([ds[0], ds[1]])
    assert batch[0].shape == (2, 1, 6400) and batch[1]["pianoroll"].shape == (2, 88, 40)


def test_rendering_is_deterministic_and_sounds_where_the_roll_says(tmp_path):
    notes = [NoteEvent(0.2, 0.5, 72, 100, part=0), NoteEvent(1.4, 0.5, 60, 100, part=1),
             NoteEvent(1.4, 0.5, 67, 100, part=1)]
    f = write_midi(tmp_path / "gaps.mid", notes, programs=(73, 0))  # flute, then piano
    ds = Scores(files=[f], segment_seconds=2.5, hop_length=256)
    x = ds[0][0][0].numpy()
    assert np.array_equal(x, Scores(files=[f], segment_seconds=2.5, hop_length=256)[0][0][0].numpy())
    roll = ds.targets(0)["roll"].any(0).numpy()
    rms = np.sqrt((x[: len(x) // 256 * 256].reshape(-1, 256) ** 2).mean(1))
    frames = np.arange(len(rms))
    on_frames = [math.floor(e.onset_seconds * 16000 / 256) for e in notes]
    sounding = roll[: len(rms)] & ~np.isin(frames, on_frames)  # the attack frame may still be rising
    assert rms[sounding].min() > 5e-3
    release = 0.4 * 16000 / 256  # FluidR3's flute and piano fade within 0.4 s of the key going up
    quiet = ~roll[: len(rms)] & ((frames < on_frames[0]) | ((frames > 0.7 * 62.5 + release) & (frames < on_frames[1])))
    assert quiet.sum() > 20 and rms[quiet].max() < 1e-3
    # and each onset frame is where the energy rises
    for on in on_frames[::2]:
        assert rms[on + 1] > 20 * rms[on - 1]


def test_a_piece_renders_one_channel_per_part_with_its_program(tmp_path):
    notes = [NoteEvent(0.0, 0.5, 60, 100, part=0)]
    alone = data.SoundFontRenderer().render_parts([e.as_tuple() for e in notes], 0.6, [73])
    as_piano = data.SoundFontRenderer().render_parts([e.as_tuple() for e in notes], 0.6, [0])
    assert not np.allclose(alone, as_piano)
    # the single-part render is exactly the old single-program one (shipped checkpoints rely on it)
    old = data.SoundFontRenderer().render_events([e.as_tuple()[:4] for e in notes], 0.6, 73)
    assert np.array_equal(alone, old)
    with pytest.raises(ParameterError, match="part 1"):
        data.SoundFontRenderer().render_parts([(0.0, 0.1, 60, 90, 1)], 0.2, [0])


def test_real_corpus_pieces_load_with_their_parts_and_programs(corpus_cache):
    _, made = corpus_cache
    chorales, folk = made["chorales"], made["folk"]
    assert [p.id for p in chorales.pieces] == ["bach/bwv269", "bach/bwv347"]
    assert all(p.n_parts == 4 and set(p.programs) == {19} for p in chorales.pieces)
    assert len({p.id.split("/")[0] for p in folk.pieces}) == 2  # the sources taken in turn
    assert all(p.n_parts == 1 and p.programs == (73,) for p in folk.pieces)
    card = chorales.describe()
    assert card["pieces"]["all"] == 2 == sum(card["pieces"][s] for s in ("train", "validation", "test"))
    hours = sum(chorales._n_samples(v) for v in range(len(chorales.versions))) / 16000 / 3600
    assert card["hours"]["all"] == pytest.approx(hours)
    assert card["parts"] == {"4": 2} and 30 < card["pitch_range"][0] < card["pitch_range"][1] < 90
    assert 1 < card["notes_per_second"] < 30
    flutes = Scores("folk", max_pieces=2, programs="violin", cache_dir=corpus_cache[0])
    assert all(p.programs == (40,) for p in flutes.pieces) and not flutes.fully_cached


def test_a_cached_dataset_needs_neither_fluidsynth_nor_music21(corpus_cache, monkeypatch):
    cache, made = corpus_cache
    first = made["chorales"][5][0]

    def blocked(*args, **kwargs):
        raise MissingDependencyError("FluidSynth is not usable (blocked by the test)")

    monkeypatch.setattr(data, "_import_fluidsynth", blocked)
    monkeypatch.setattr(data, "find_soundfont", blocked)
    for name in [m for m in sys.modules if m == "music21" or m.startswith("music21.")]:
        monkeypatch.setitem(sys.modules, name, None)  # 'import music21' now fails
    monkeypatch.setenv("WORKBENCH_SCORES_CACHE", str(cache))
    cached = Scores("chorales", max_pieces=2)
    assert cached.fully_cached and torch.equal(cached[5][0], first)
    assert len(Scores("folk", max_pieces=2)) == len(made["folk"])
    # a piece not in the cache needs them, and says so
    with pytest.raises(MissingDependencyError, match="music21"):
        Scores("chorales", max_pieces=3)


def test_cli_describes_a_collection(corpus_cache, monkeypatch, capsys):
    monkeypatch.setenv("WORKBENCH_SCORES_CACHE", str(corpus_cache[0]))
    assert main(["data", "describe", "scores", "--collection", "chorales", "--max-pieces", "2", "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["pieces"]["all"] == 2 and card["collection"] == "chorales"
    assert main(["data", "describe", "scores", "--collection", "folk", "--max-pieces", "2"]) == 0
    out = capsys.readouterr().out
    assert "validation" in out and "notes per second" in out
    assert main(["data", "describe", "scores", "--collection", "madrigals"]) == 2
    assert "chorales, folk" in capsys.readouterr().err


# -- errors ----------------------------------------------------------------------------------


def test_a_file_that_is_not_a_score_is_refused_by_name(tmp_path):
    fake = tmp_path / "notes.mid"
    fake.write_text("these are not notes")
    with pytest.raises(ParameterError, match="notes.mid.*not a readable MIDI file"):
        Scores(files=[fake])
    broken = tmp_path / "broken.musicxml"
    broken.write_text("<score-partwise><part id='P1'><measure")
    with pytest.raises(ParameterError, match="broken.musicxml"):
        read_pieces(broken)
    text = tmp_path / "readme.txt"
    text.write_text("hello")
    with pytest.raises(ParameterError, match="readme.txt.*not a score file"):
        Scores(files=[text])
    (tmp_path / "nothing-here").mkdir()
    with pytest.raises(ParameterError, match="no score files"):
        Scores(files=tmp_path / "nothing-here")


def test_a_score_without_notes_is_refused(tmp_path):
    from music21 import note, stream

    empty = write_midi(tmp_path / "empty.mid", [], programs=(0,))
    with pytest.raises(ParameterError, match="empty.mid.*holds no notes"):
        Scores(files=[empty])
    rests = stream.Score([stream.Part([note.Rest(quarterLength=4)])])
    rests.write("musicxml", fp=tmp_path / "rests.musicxml")
    with pytest.raises(ParameterError, match="rests.musicxml.*holds no notes"):
        read_pieces(tmp_path / "rests.musicxml")


def test_a_piece_longer_than_max_seconds_is_refused_or_cut_on_request(tmp_path):
    f = write_midi(tmp_path / "long.mid", tune(8, seconds=1.0))
    with pytest.raises(ParameterError, match="long.mid.*8.0 s.*max_seconds=5.*truncate=True"):
        Scores(files=[f], max_seconds=5)
    cut = Scores(files=[f], max_seconds=5, truncate=True)
    assert cut.pieces[0].seconds == pytest.approx(5.0) and len(cut.pieces[0].events) == 5


def test_bad_settings_are_refused_in_the_users_terms(tmp_path):
    f = write_midi(tmp_path / "a.mid", tune(2))
    for kwargs, words in [
        (dict(split="dev"), "split='dev'"), (dict(programs="kazoo"), "kazoo"), (dict(transpose=()), "transpose"),
        (dict(pitch_range=(60, 40)), "pitch_range"), (dict(segment_seconds=0), "segment_seconds=0"),
        (dict(programs=("flute",), files=[write_midi(tmp_path / "b.mid", tune(1) + tune(1, part=1))]), "2 parts"),
    ]:
        with pytest.raises(ParameterError, match=words):
            Scores(**{"files": [f], **kwargs})
    with pytest.raises(ParameterError, match="velocity=0"):
        NoteEvent(0.0, 1.0, 60, 0)
