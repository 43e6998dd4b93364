"""The structure score on audio of known structure, and notebook 11's helpers on tiny models."""

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from workbench import Audio
from workbench.errors import ParameterError
from workbench.models import create_model
from workbench.notebook import structure as hs
from workbench.structure import (
    chroma_frames,
    lag_similarity,
    pitch_class_kl,
    structure_score,
    structure_scores,
)

SR = 8000


def _tones(midis, seconds_each: float) -> np.ndarray:
    t = np.arange(int(SR * seconds_each)) / SR
    return np.concatenate([0.5 * np.sin(2 * np.pi * 440 * 2 ** ((m - 69) / 12) * t) for m in midis])


PHRASE = (60, 64, 67, 72, 67, 65, 62, 59)  # two seconds at a quarter second a note


def test_a_repeated_phrase_scores_higher_than_its_notes_shuffled_and_than_noise():
    rng = np.random.default_rng(0)
    repeated = np.tile(_tones(PHRASE, 0.25), 4)  # 8 s: the phrase four times
    notes = repeated.reshape(-1, SR // 4)
    shuffled = notes[rng.permutation(len(notes))].reshape(-1)  # the same notes, no order
    noise = rng.standard_normal(8 * SR)
    scores = {name: structure_score(x, SR)["repetition"] for name, x in
              (("repeated", repeated), ("shuffled", shuffled), ("noise", noise))}
    assert scores["repeated"] > scores["shuffled"] + 0.3
    assert scores["repeated"] > scores["noise"] + 0.3
    profile = structure_score(repeated, SR)["profile"]  # returns at 2 s and 4 s, not at 1 s and 3 s
    assert profile[1] > profile[0] and profile[3] > profile[2]


def test_pitch_class_kl_is_small_in_one_key_and_large_across_keys():
    c_major = _tones(PHRASE, 0.25)
    f_sharp = _tones([m + 6 for m in PHRASE], 0.25)
    same = structure_score(np.concatenate([c_major, c_major]), SR)["pitch_class_kl"]
    moved = structure_score(np.concatenate([c_major, f_sharp]), SR)["pitch_class_kl"]
    assert same < 0.05 < moved


@pytest.mark.slow  # librosa's STFT compiles itself on first use (about 15 s)
def test_chroma_frames_are_librosas_chroma_stft():
    import librosa

    x = _tones(PHRASE, 0.25) + 0.01 * np.random.default_rng(2).standard_normal(2 * SR)
    ours = chroma_frames(x, SR, hop_seconds=0.1)
    theirs = librosa.feature.chroma_stft(y=x.astype(np.float32), sr=SR, n_fft=2048, hop_length=800, tuning=0.0)
    assert ours.shape == theirs.shape and np.allclose(ours, theirs, atol=1e-4)


def test_chroma_measures_refuse_what_does_not_fit():
    chroma = np.ones((12, 10))
    assert lag_similarity(chroma, 3) == pytest.approx(1.0)
    with pytest.raises(ParameterError, match="does not fit"):
        lag_similarity(chroma, 10)
    with pytest.raises(ParameterError, match="too short"):
        pitch_class_kl(np.ones((12, 1)))
    with pytest.raises(ParameterError, match="no room"):
        structure_score(np.zeros(SR), SR, lags_seconds=[5.0])


def test_structure_scores_average_the_clips_of_an_audio():
    x = np.stack([np.tile(_tones(PHRASE[:4], 0.25), 4), np.random.default_rng(1).standard_normal(4 * SR)])
    scores = structure_scores(Audio(torch.tensor(x, dtype=torch.float32)[:, None], SR))
    each = [s["repetition"] for s in scores["per_clip"]]
    assert scores["repetition"] == pytest.approx(np.mean(each)) and each[0] > each[1]


# ---- notebook 11's helpers ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {name: create_model(name, "tiny").eval() for name in ("ada", "hierarchical_wavenet", "jukebox_mini")}


@pytest.fixture(scope="module")
def clip():
    return Audio(torch.tensor(np.tile(_tones(PHRASE, 0.0625), 2)[None, None], dtype=torch.float32), SR)  # 1 s


@pytest.mark.parametrize("name", ["hierarchical_wavenet", "jukebox_mini"])
def test_what_each_level_hears_rebuilds_the_clip_from_every_level(models, clip, name):
    heard = hs.what_each_level_hears(models[name], clip)
    assert list(heard)[0] == "original" and len(heard) == len(models[name].level_hops())
    assert all(a.n_samples == clip.n_samples and a.sample_rate == SR for a in heard.values())


def test_bits_by_level_adds_up_to_the_bound(models, clip):
    fig, text, shares = hs.bits_by_level(models["hierarchical_wavenet"], clip)
    assert isinstance(fig, Figure) and "level 2 decoder" in repr(text)
    assert sum(shares.values()) == pytest.approx(float(models["hierarchical_wavenet"].log_prob(clip)[0]), rel=1e-5)


def test_level_tradeoff_has_a_row_per_level_with_reach_growing_upwards(models, clip):
    fig, _, rows = hs.level_tradeoff(models["jukebox_mini"], clip)
    assert isinstance(fig, Figure) and [r["level"] for r in rows] == [1, 2, 3]
    assert rows[0]["codes_per_second"] > rows[1]["codes_per_second"] > rows[2]["codes_per_second"]
    assert all(r["distance"] > 0 for r in rows)


def test_generate_top_down_and_the_structure_table(models):
    audio = hs.generate_top_down(models["jukebox_mini"], seconds=0.5, progress=False)
    assert audio.n_samples == SR // 2
    fig, text, scores = hs.structure_table({"a": audio, "b": audio}, lags_seconds=[0.1, 0.2])
    assert isinstance(fig, Figure) and scores["a"]["repetition"] == scores["b"]["repetition"]


def test_stage_training_memory_counts_what_backward_keeps(models):
    level1 = hs.stage_training_memory(models["hierarchical_wavenet"], "level1")
    prior = hs.stage_training_memory(models["hierarchical_wavenet"], "prior")
    assert level1["activation_bytes"] > 0 and prior["activation_bytes"] > 0 and level1["step_seconds"] > 0


def test_helpers_refuse_models_without_code_levels(tmp_path):
    with pytest.raises(ParameterError, match="hierarchy of codes"):
        hs.what_each_level_hears(create_model("wavenet", "tiny"), Audio(torch.zeros(1, 1, 800), SR))
    assert hs.read_benchmark(tmp_path / "missing.json") is None
