"""Transcriber (Onsets and Frames): decoding, metrics against mir_eval, feature alignment, the
stopped gradient into the frame head, learning a small piece, checkpoints and input errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from workbench import Audio
from workbench.data import collate
from workbench.dsp.synth import midi_to_hz
from workbench.errors import ParameterError
from workbench.models import create_model, list_models, load_model
from workbench.models.base import GenerativeModel
from workbench.models.transcriber import (
    Transcriber,
    decode_notes,
    evaluate_split,
    frame_f1,
    note_f1,
    transcription_features,
)
from workbench.scores import NoteEvent, Scores, events_to_midi, split_of, targets

HOP, SR = 100, 1000  # decoding tests: 10 frames per second, frame k starts at k / 10 s


@pytest.fixture(autouse=True)
def _no_cache_from_the_environment(monkeypatch):
    monkeypatch.delenv("WORKBENCH_SCORES_CACHE", raising=False)


def _tiny(**overrides) -> Transcriber:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return create_model("transcriber", "tiny", **overrides)


def _decode(onsets, frames, velocities=None, **kwargs):
    notes = decode_notes(np.array(onsets, dtype=float)[None], np.array(frames, dtype=float)[None],
                         None if velocities is None else np.array(velocities, dtype=float)[None],
                         hop_length=HOP, sample_rate=SR, pitch_low=60, **kwargs)
    return [(round(n.onset_seconds * 10), round(n.offset_seconds * 10)) for n in notes]  # in frames


# ---- decoding ------------------------------------------------------------------------------------------
def test_an_onset_starts_a_note_and_frames_continue_it_until_they_stop():
    assert _decode([0, 0, .9, 0, 0, 0, 0, 0], [0, 0, .8, .8, .8, 0, 0, 0]) == [(2, 5)]


def test_frames_without_an_onset_start_no_note():
    assert _decode([0] * 6, [.9] * 6) == []
    # activity before the onset is not part of the note
    assert _decode([0, 0, 0, .9, 0, 0], [.9, .9, 0, .9, .9, 0]) == [(3, 5)]


def test_a_gap_in_the_frames_ends_the_note_and_a_late_restart_needs_its_own_onset():
    assert _decode([.9, 0, 0, 0, 0, 0, 0], [.9, .9, 0, .9, .9, 0, 0]) == [(0, 2)]
    assert _decode([.9, 0, 0, .9, 0, 0, 0], [.9, .9, 0, .9, .9, 0, 0]) == [(0, 2), (3, 5)]


def test_a_new_onset_on_a_held_pitch_splits_it_into_two_notes():
    assert _decode([.9, 0, 0, .9, 0, 0], [.9, .9, .9, .9, .9, 0]) == [(0, 3), (3, 5)]


def test_an_onset_firing_for_several_frames_is_one_note_that_lasts_while_it_fires():
    # onsets above threshold in frames 1..3, frames never: one note from the first rising edge
    assert _decode([0, .9, .9, .9, 0, 0], [0, 0, 0, 0, 0, 0]) == [(1, 4)]


def test_thresholds_are_strict_and_a_note_lasts_at_least_one_frame():
    assert _decode([0, .5, 0, 0], [0, .9, .9, 0]) == []  # 0.5 does not exceed 0.5
    assert _decode([0, .51, 0, 0], [0, .5, .5, 0]) == [(1, 2)]  # frames at 0.5 do not continue it
    assert _decode([0, .3, 0, 0], [0, .9, .9, 0], onset_threshold=0.2) == [(1, 3)]
    assert _decode([0, .9, 0, 0], [0, .3, .3, 0], frame_threshold=0.2) == [(1, 3)]


def test_velocity_is_read_at_the_onset_frame_and_pitch_from_the_row():
    notes = decode_notes(np.array([[0, .9, 0], [.9, 0, 0]]), np.array([[0, .9, 0], [.9, .9, 0]]),
                         np.array([[0, 100 / 127, 0], [0.5, 1.0, 0]]), hop_length=HOP, sample_rate=SR, pitch_low=40)
    assert [(n.pitch, n.velocity) for n in notes] == [(41, 64), (40, 100)]


def test_notes_on_the_frame_grid_come_back_from_their_own_targets():
    rng = np.random.default_rng(0)
    events = []
    for pitch in (60, 62, 67):
        t = 0
        while t < 60:
            t += int(rng.integers(0, 4))
            length = int(rng.integers(1, 6))
            events.append(NoteEvent(t / 10, length / 10, pitch, int(rng.integers(1, 128))))
            t += length  # back to back at times: repeated notes
    t = targets(events, 80, HOP, SR, pitch_range=(60, 67))
    decoded = decode_notes(t["onsets"], t["roll"], t["velocities"], hop_length=HOP, sample_rate=SR, pitch_low=60)
    key = sorted((round(e.onset_seconds * 10), round(e.offset_seconds * 10), e.pitch, e.velocity) for e in events)
    assert sorted((round(e.onset_seconds * 10), round(e.offset_seconds * 10), e.pitch, e.velocity)
                  for e in decoded) == key


def test_decoding_refuses_mismatched_shapes():
    with pytest.raises(ParameterError, match="pitches, n_frames"):
        decode_notes(np.zeros((2, 5)), np.zeros((2, 6)), hop_length=HOP, sample_rate=SR)


# ---- metrics ---------------------------------------------------------------------------------------
def _random_events(rng, n=40):
    return [NoteEvent(float(rng.uniform(0, 20)), float(rng.uniform(0.05, 1.0)), int(rng.integers(50, 80)))
            for _ in range(n)]


def test_note_f1_is_one_on_identical_notes_and_zero_when_every_onset_is_100_ms_late():
    events = _random_events(np.random.default_rng(1))
    same = note_f1(events, events)
    assert same["onset_f1"] == same["onset_offset_f1"] == 1.0
    late = [NoteEvent(e.onset_seconds + 0.1, e.duration_seconds, e.pitch) for e in events]
    assert note_f1(events, late)["onset_f1"] == 0.0
    slightly = [NoteEvent(e.onset_seconds + 0.03, e.duration_seconds, e.pitch) for e in events]
    assert note_f1(events, slightly)["onset_f1"] == 1.0  # within the 50 ms tolerance


def test_note_f1_agrees_with_mir_eval():
    from mir_eval.transcription import precision_recall_f1_overlap

    rng = np.random.default_rng(2)
    ref = _random_events(rng)
    est = [NoteEvent(e.onset_seconds + float(rng.normal(0, 0.04)) + 0.1, e.duration_seconds * float(rng.uniform(0.6, 1.4)),
                     e.pitch + int(rng.random() < 0.2)) for e in ref[:30]] + _random_events(rng, 5)
    est = [e for e in est if e.onset_seconds >= 0]

    def arrays(events):
        return (np.array([[e.onset_seconds, e.offset_seconds] for e in events]),
                np.array([float(midi_to_hz(e.pitch)) for e in events]))

    scores = note_f1(ref, est)
    p, r, f, _ = precision_recall_f1_overlap(*arrays(ref), *arrays(est), offset_ratio=None)
    assert (scores["onset_precision"], scores["onset_recall"], scores["onset_f1"]) == pytest.approx((p, r, f))
    p, r, f, _ = precision_recall_f1_overlap(*arrays(ref), *arrays(est))
    assert scores["onset_offset_f1"] == pytest.approx(f)
    assert 0 < scores["onset_offset_f1"] < scores["onset_f1"] < 1


def test_frame_f1_counts_cells():
    ref = np.zeros((3, 10))
    ref[0, :4] = 1
    est = np.zeros((3, 8))
    est[0, 2:6] = 1  # 2 of 4 right; the shorter roll is padded with silence
    scores = frame_f1(ref, est)
    assert scores["frame_precision"] == 0.5 and scores["frame_recall"] == 0.5 and scores["frame_f1"] == 0.5


# ---- features -------------------------------------------------------------------------------------
def test_features_match_librosa_shifted_by_half_a_hop():
    import librosa

    x = torch.randn(1, 5000, generator=torch.Generator().manual_seed(0)) * 0.1
    hop, n_fft = 256, 1024
    ours = transcription_features(x, 16000, hop, n_fft, n_mels=40, f_min=30.0, f_max=4000.0)
    y = np.pad(x[0].numpy(), (0, n_fft + hop))[hop // 2:]
    mel = librosa.feature.melspectrogram(y=y, sr=16000, n_fft=n_fft, hop_length=hop, power=1.0, n_mels=40,
                                         fmin=30.0, fmax=4000.0, center=True, pad_mode="reflect")
    ref = np.log(np.maximum(mel, 1e-5))[:, : math.ceil(5000 / hop)].T
    assert ours.shape == (1, math.ceil(5000 / hop), 40)
    np.testing.assert_allclose(ours[0].numpy(), ref, atol=1e-3)


def test_a_click_lands_in_the_roll_frame_that_holds_its_sample():
    hop = 256
    for frame in (3, 10):
        for where in (1, hop // 2, hop - 2):  # anywhere inside the frame, not only at its centre
            x = torch.zeros(1, 20 * hop)
            x[0, frame * hop + where] = 1.0
            energy = transcription_features(x, 16000, hop, n_fft=2 * hop, n_mels=16).exp().sum(-1)[0]
            assert int(energy.argmax()) == frame


def test_a_tone_at_8_khz_looks_like_the_same_tone_at_16_khz():
    model = _tiny(n_fft=1024, n_mels=64)

    def tone(sample_rate):
        t = torch.arange(sample_rate) / sample_rate
        return Audio(sum(0.2 / k * torch.sin(2 * math.pi * 330 * k * t) for k in (1, 2, 3, 5))[None], sample_rate)

    mel16 = model.predict(tone(16000))["mel"]
    mel8 = model.predict(tone(8000))["mel"]  # resampled to 16 kHz: nothing above 4 kHz, like the bands
    assert mel16.shape == mel8.shape
    loud = mel16 > mel16.max() - 6  # the bands holding the partials (within 6 nats of the peak)
    assert float((mel16 - mel8)[:, 4:-4][loud[:, 4:-4]].abs().mean()) < 0.1


# ---- the network -----------------------------------------------------------------------------------
def _batch(model, batch=2, seconds=1.0):
    c = model.config
    n = int(seconds * c.sample_rate)
    frames = math.ceil(n / c.hop_length)
    g = torch.Generator().manual_seed(0)
    roll = (torch.rand(batch, model.n_pitches, frames, generator=g) > 0.95).float()
    return torch.randn(batch, 1, n, generator=g) * 0.1, {"pianoroll": roll, "onsets": roll, "offsets": roll,
                                                          "velocities": roll * 0.5}


def test_every_head_gives_one_value_per_frame_and_pitch():
    model = _tiny().eval()
    samples, _ = _batch(model, batch=3)
    mel = model.features(samples)
    assert mel.shape == (3, math.ceil(samples.shape[-1] / model.config.hop_length), model.config.n_mels)
    out = model(mel)
    assert set(out) == {"onsets", "offsets", "frames", "velocities"}
    assert all(v.shape == (3, mel.shape[1], 88) for v in out.values())
    probs = model.predict(Audio(samples[0], model.sample_rate))
    assert probs["frames"].shape == (88, mel.shape[1]) and probs["mel"].shape == (model.config.n_mels, mel.shape[1])
    assert all(0 <= float(probs[k].min()) and float(probs[k].max()) <= 1 for k in ("onsets", "frames", "velocities"))


def test_the_frame_loss_does_not_reach_the_onset_or_offset_heads():
    model = _tiny().train()
    losses, _ = model.losses(_batch(model))
    losses["frame_loss"].backward()

    def grads(prefix):
        return [p.grad for n, p in model.named_parameters() if n.startswith(prefix)]

    for prefix in ("onset_stack", "onset_head", "offset_stack", "offset_head", "velocity"):
        assert all(g is None or float(g.abs().sum()) == 0 for g in grads(prefix)), prefix
    for prefix in ("frame_stack", "frame_activation", "frame_head"):
        assert all(g is not None and float(g.abs().sum()) > 0 for g in grads(prefix)), prefix
    # while the onset loss does train the onset head
    model.zero_grad()
    model.losses(_batch(model))[0]["onset_loss"].backward()
    assert all(float(g.abs().sum()) > 0 for g in grads("onset_head"))


def test_the_velocity_loss_counts_onset_frames_only():
    model = _tiny().eval()
    samples, cond = _batch(model)
    with torch.no_grad():
        base = model.losses((samples, cond))[0]["velocity_loss"]
    noisy = {**cond, "velocities": cond["velocities"] + (1 - cond["onsets"]) * 0.7}  # changed off the onsets
    with torch.no_grad():
        assert float(model.losses((samples, noisy))[0]["velocity_loss"]) == pytest.approx(float(base))


def test_onset_labels_are_widened_to_the_configured_length():
    model = _tiny(onset_seconds=0.05)  # 3.1 frames at 62.5 frames per second -> 3
    labels = torch.zeros(1, 10, 2)
    labels[0, 2, 0] = labels[0, 8, 1] = 1
    wide = model.widen(labels)
    assert wide[0, :, 0].tolist() == [0, 0, 1, 1, 1, 0, 0, 0, 0, 0]
    assert wide[0, :, 1].tolist() == [0, 0, 0, 0, 0, 0, 0, 0, 1, 1]  # cut at the segment's end
    assert torch.equal(_tiny(onset_seconds=0.001).widen(labels), labels)


def test_the_transcriber_is_a_model_but_not_a_generative_one():
    assert "transcriber" in list_models() and "transcriber" not in list_models(GenerativeModel)


# ---- data, learning, the training loop ----------------------------------------------------------------
MELODY = [(0.05, 0.3, 67), (0.4, 0.3, 72), (0.75, 0.2, 69), (1.0, 0.45, 64), (1.5, 0.3, 72), (1.85, 0.5, 60)]


def _names(split, n):
    """Score file names whose hash puts them in ``split`` (splits are by piece name)."""
    return [f"tune{k}.mid" for k in range(400) if split_of(f"tune{k}.mid") == split][:n]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Three short flute tunes in the training split, one in validation, one in test."""
    folder = tmp_path_factory.mktemp("tunes")
    for k, name in enumerate(_names("train", 3) + _names("validation", 1) + _names("test", 1)):
        events = [NoteEvent(t, d, p + (k % 3) * 2, 90) for t, d, p in MELODY]
        events_to_midi(events, folder / name, programs=[73])
    return folder


def test_the_dataset_holds_all_four_aligned_targets(folder):
    model = _tiny()
    ds = model.dataset("train", str(folder))
    samples, cond = ds[0]
    scores = ds.scores
    assert isinstance(scores, Scores) and len(scores.pieces) == 3
    assert samples.shape == (1, scores.segment)
    assert set(cond) == {"pianoroll", "onsets", "offsets", "velocities"}
    assert all(v.shape == (88, scores.n_frames) for v in cond.values())
    assert torch.equal(cond["pianoroll"], scores[0][1]["pianoroll"])
    assert float(cond["onsets"].sum()) >= 2 and float(cond["velocities"].max()) == pytest.approx(90 / 127)
    samples, cond = collate([ds[0], ds[1]])
    assert samples.shape == (2, 1, scores.segment) and cond["onsets"].shape == (2, 88, scores.n_frames)


@pytest.mark.slow
def test_a_tiny_transcriber_learns_a_short_tune(folder):
    # one 3 s segment holds the whole tune, so the clip transcribed is the clip learned from
    model = _tiny(learning_rate=5e-3, pitch_range=(58, 80), segment_seconds=3.0)
    ds = model.dataset("all", str(folder / _names("train", 1)[0]))
    batch = collate([ds[i] for i in range(len(ds))])
    (opt,) = model.configure_optimizers()
    first = model.eval_step(batch)
    model.train()
    for _ in range(150):  # seeds 0, 1 and 2 all reach onset F1 1.0 by here (0.67..1.0 at step 100)
        model.train_step(batch, [opt])
    last = model.eval_step(batch)
    assert last["loss"] < 0.1 * first["loss"], (first, last)
    notes = model.eval().transcribe(ds.scores.audio(0))
    assert note_f1(list(ds.scores.pieces[0].events), notes)["onset_f1"] > 0.8, notes


def test_the_training_loop_trains_and_evaluates_it(folder, tmp_path):
    from workbench.train import read_log, train

    model = train("transcriber", preset="tiny", data=str(folder), steps=3, eval_every=3, checkpoint_every=3,
                  out=tmp_path / "run", progress=False)
    row = read_log(tmp_path / "run")[-1]
    assert {"loss", "onset_loss", "eval_loss", "eval_onset_f1", "eval_frame_f1"} <= set(row)
    assert isinstance(model, Transcriber) and (tmp_path / "run" / "card.json").exists()
    scores = evaluate_split(model, "test", data=str(folder))
    assert scores["pieces"] == 1 and scores["n_reference"] == len(MELODY)
    assert 0 <= scores["onset_f1"] <= 1 and 0 <= scores["frame_f1"] <= 1


# ---- checkpoints, figure, errors ----------------------------------------------------------------------
def test_save_and_load_give_the_same_transcriber(tmp_path):
    model = _tiny().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    model.save(tmp_path / "ckpt")
    loaded = load_model(tmp_path / "ckpt")
    assert isinstance(loaded, Transcriber) and loaded.config == model.config
    audio = Audio(torch.randn(1, 8000, generator=torch.Generator().manual_seed(3)) * 0.1, 16000)
    a, b = model.predict(audio), loaded.predict(audio)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_visualise_draws_the_prediction_and_the_reference():
    model = _tiny()
    fig = model.visualise()
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    audio = Audio(torch.randn(1, 4000) * 0.1, 16000)
    assert len(model.visualise(audio).axes) == 2


def test_bad_audio_is_refused_with_a_clear_error():
    model = _tiny()
    with pytest.raises(ParameterError, match="expected an Audio"):
        model.transcribe(torch.zeros(1, 100))
    with pytest.raises(ParameterError, match="silent"):
        model.transcribe(Audio(torch.zeros(1, 16000), 16000))
    bad = torch.randn(1, 16000)
    bad[0, 5] = float("nan")
    with pytest.raises(ParameterError, match="NaN"):
        model.transcribe(Audio(bad, 16000))
    with pytest.raises(ParameterError, match="at most 600 s"):
        model.transcribe(Audio(torch.randn(1, 8000 * 601) * 0.1, 8000))
    with pytest.raises(ParameterError, match="one at a time"):
        model.transcribe(Audio(torch.randn(2, 1, 1000), 16000))
    with pytest.raises(ParameterError, match="lacks onsets"):
        samples, cond = _batch(model)
        model.training_step((samples, {"pianoroll": cond["pianoroll"]}))
    with pytest.raises(ParameterError, match="pitch_range"):
        _tiny(pitch_range=(60, 130))
