"""Datasets: SoundFont and synth notes, your own folders, the shipped example clips."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import soundfile as sf
import torch

from workbench import data
from workbench.audio import Audio
from workbench.data import EXAMPLE_NAMES, AudioFolder, Notes, collate, examples, find_soundfont
from workbench.errors import MissingDependencyError, ParameterError

SR = 16000


# ---- Notes: SoundFont ------------------------------------------------------------------------


def test_soundfont_notes_are_deterministic_across_datasets():
    a = Notes(source="soundfont", instruments=("piano",), pitches=(60,))
    b = Notes(source="soundfont", instruments=("flute", "piano"), pitches=(72, 60))
    first, cond = a[0]
    again, _ = a[0]
    other, other_cond = b[b.find(60, "piano")]
    assert torch.equal(first, again)
    assert torch.equal(first, other)  # rendered by another synth, after other notes
    assert cond == other_cond == {"pitch": 60, "instrument": "piano", "velocity": 100}


def test_soundfont_note_is_a_sounding_clip_of_the_asked_length():
    notes = Notes(source="soundfont", instruments=("strings",), pitches=(55,), seconds=0.5)
    samples, _ = notes[0]
    assert samples.shape == (1, 8000) and samples.dtype == torch.float32
    assert 0.01 < float(samples.abs().max()) <= 1.0


def test_items_are_copies_so_callers_cannot_corrupt_the_cache():
    notes = Notes(source="synth", instruments=("sine",), pitches=(60,))
    samples, _ = notes[0]
    samples.zero_()
    assert float(notes[0][0].abs().max()) > 0


def test_unknown_instrument_raises_listing_the_choices():
    with pytest.raises(ParameterError) as info:
        Notes(source="soundfont", instruments=("kazoo",))
    message = str(info.value)
    assert "instrument='kazoo'" in message and "piano" in message and "flute" in message
    with pytest.raises(
        ParameterError, match="instrument='piano' is not available for source='synth'.*bright"
    ):
        Notes(source="synth", instruments=("piano",))


@pytest.mark.parametrize("pitch", [-1, 128, 130])
def test_pitch_outside_midi_raises_with_the_value_and_range(pitch):
    with pytest.raises(ParameterError, match=rf"pitch={pitch} is outside MIDI 0\.\.127"):
        Notes(source="synth", pitches=(60, pitch))


def test_bad_velocity_seconds_split_and_source_raise():
    with pytest.raises(ParameterError, match=r"velocity=0 is outside MIDI 1\.\.127"):
        Notes(source="synth", velocities=(0,))
    with pytest.raises(ParameterError, match=r"seconds=0 must be in \(0, 30\]"):
        Notes(source="synth", seconds=0)
    with pytest.raises(ParameterError, match="split='valid' must be one of all, train, validation, test"):
        Notes(source="synth", split="valid")
    with pytest.raises(ParameterError, match="source='midi'.*'soundfont' or 'synth'"):
        Notes(source="midi")


def test_missing_soundfont_names_the_debian_package(monkeypatch):
    monkeypatch.delenv("WORKBENCH_SOUNDFONT", raising=False)
    monkeypatch.setattr(data, "SOUNDFONT_PATHS", ("/nonexistent/FluidR3_GM.sf2",))
    with pytest.raises(MissingDependencyError) as info:
        Notes(source="soundfont")
    message = str(info.value)
    assert "fluid-soundfont-gm" in message and "apt-get install" in message
    assert "Notes(source='synth')" in message  # the alternative that needs nothing
    Notes(source="synth")  # still works without a SoundFont


def test_cached_notes_need_no_fluidsynth_and_match_the_rendering(tmp_path, monkeypatch):
    monkeypatch.delenv("WORKBENCH_NOTES_CACHE", raising=False)
    kwargs = dict(source="soundfont", instruments=("flute",), pitches=(60, 67), seconds=0.25)
    rendered = Notes(cache_dir=tmp_path, **kwargs)
    first = [rendered[i][0] for i in range(len(rendered))]
    assert rendered.fully_cached and len(list(tmp_path.glob("*.npy"))) == 2

    def no_fluidsynth(*args, **kwargs):
        raise MissingDependencyError("FluidSynth is not usable (blocked by the test)")

    monkeypatch.setattr(data, "_import_fluidsynth", no_fluidsynth)
    monkeypatch.setattr(data, "find_soundfont", no_fluidsynth)
    monkeypatch.setenv("WORKBENCH_NOTES_CACHE", str(tmp_path))  # the environment works too
    cached = Notes(**kwargs)
    for i, x in enumerate(first):
        assert torch.equal(cached[i][0], x)
    # a note missing from the cache still needs FluidSynth, and says so
    with pytest.raises(MissingDependencyError, match="FluidSynth"):
        Notes(**{**kwargs, "pitches": (60, 62)})


def test_a_soundfont_path_that_does_not_exist_is_refused_not_replaced(tmp_path, monkeypatch):
    # before: a wrong explicit path silently fell back to the system SoundFont
    monkeypatch.delenv("WORKBENCH_SOUNDFONT", raising=False)
    missing = tmp_path / "mine.sf2"
    with pytest.raises(MissingDependencyError) as info:
        Notes(source="soundfont", soundfont=missing)
    message = str(info.value)
    assert str(missing) in message and "fluid-soundfont-gm" in message
    monkeypatch.setenv("WORKBENCH_SOUNDFONT", str(missing))
    with pytest.raises(
        MissingDependencyError, match=r"\$WORKBENCH_SOUNDFONT=.*mine\.sf2.*does not exist"
    ):
        find_soundfont()


def test_find_soundfont_prefers_the_given_path(tmp_path, monkeypatch):
    monkeypatch.delenv("WORKBENCH_SOUNDFONT", raising=False)
    mine = tmp_path / "mine.sf2"
    mine.write_bytes(b"RIFF")
    assert find_soundfont(mine) == mine


# ---- Notes: synth and splits ---------------------------------------------------------------


def test_synth_notes_are_deterministic_across_datasets():
    a = Notes(source="synth", instruments=("bright",), pitches=(60, 64))
    b = Notes(source="synth", instruments=("bright",), pitches=(60, 64))
    assert torch.equal(a[1][0], b[1][0])
    assert not torch.equal(a[0][0], a[1][0])


@pytest.mark.parametrize("instrument", ["sine", "bright", "hollow", "soft"])
@pytest.mark.parametrize("pitch", [45, 60, 81])
def test_synth_note_spectrum_peaks_at_its_f0(instrument, pitch):
    notes = Notes(source="synth", instruments=(instrument,), pitches=(pitch,))
    samples, _ = notes[0]
    f0_hz = notes.params(0).f0_hz
    assert f0_hz == pytest.approx(440 * 2 ** ((pitch - 69) / 12))
    spectrum = np.abs(np.fft.rfft(samples[0].numpy()))
    peak_hz = np.argmax(spectrum) * SR / samples.shape[-1]  # 1 Hz resolution for a 1 s clip
    assert peak_hz == pytest.approx(f0_hz, abs=1.0)


def test_synth_params_describe_the_note_and_are_refused_for_soundfont():
    notes = Notes(source="synth", instruments=("hollow",), pitches=(60,), seconds=0.5)
    p = notes.params(0)
    assert p.envelope.shape == (8000,)
    assert p.harmonic_amplitudes.sum() == pytest.approx(1.0)
    assert np.all(p.harmonic_amplitudes[1::2] == 0)  # hollow: odd harmonics only
    with pytest.raises(ParameterError, match="only for source='synth'"):
        Notes(source="soundfont", instruments=("piano",), pitches=(60,)).params(0)


def test_train_validation_and_test_splits_are_disjoint_and_cover_the_grid():
    kwargs = dict(source="synth", pitches=range(36, 85), velocities=(64, 100))
    every = Notes(**kwargs)
    parts = {split: set(Notes(split=split, **kwargs).items) for split in ("train", "validation", "test")}
    assert parts["train"].isdisjoint(parts["test"]) and parts["train"].isdisjoint(parts["validation"])
    assert parts["validation"].isdisjoint(parts["test"])
    assert parts["train"] | parts["validation"] | parts["test"] == set(every.items)
    assert sum(map(len, parts.values())) == len(every) == 4 * 49 * 2
    for held in ("validation", "test"):
        assert 0.05 < len(parts[held]) / len(every) < 0.2  # about 1 in 10 each
    # the split depends on the note, not on what else is in the dataset
    small = Notes(source="synth", pitches=range(36, 60), velocities=(64, 100), split="test")
    assert set(small.items) <= parts["test"]


def test_index_out_of_range_and_unknown_note():
    notes = Notes(source="synth", instruments=("sine",), pitches=(60, 62))
    assert torch.equal(notes[-1][0], notes[1][0])
    with pytest.raises(IndexError, match="index 2 is out of range for 2 notes"):
        notes[2]
    with pytest.raises(ParameterError, match=r"pitch=70.*pitches 60\.\.62"):
        notes.find(70, "sine")


def test_collate_stacks_samples_and_conditioning():
    notes = Notes(source="synth", instruments=("sine", "soft"), pitches=(60,), seconds=0.25)
    samples, cond = collate([notes[0], notes[1]])
    assert samples.shape == (2, 1, 4000)
    assert cond["pitch"].tolist() == [60, 60] and cond["instrument"] == ["sine", "soft"]


# ---- AudioFolder ---------------------------------------------------------------------------


def _write(path, seconds, sample_rate=SR):
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    sf.write(str(path), 0.5 * np.sin(2 * np.pi * 440 * t), sample_rate, subtype="PCM_16")


def test_audio_folder_chunks_files_and_skips_an_unreadable_one_with_a_warning(tmp_path, caplog):
    _write(tmp_path / "a.wav", 2.5)  # two whole segments, the rest dropped
    (tmp_path / "sub").mkdir()
    _write(tmp_path / "sub" / "b.flac", 1.0, sample_rate=8000)  # resampled to one segment
    _write(tmp_path / "c.wav", 0.3)  # shorter than a segment: zero-padded
    (tmp_path / "broken.wav").write_text("not audio at all")
    (tmp_path / "readme.txt").write_text("ignored: not an audio suffix")
    with caplog.at_level(logging.WARNING, logger="workbench.data"):
        folder = AudioFolder(tmp_path, segment_seconds=1.0, sample_rate=SR)
    assert len(folder) == 4
    assert all(folder[i][0].shape == (1, SR) for i in range(len(folder)))
    assert [p.name for p in folder.files] == ["a.wav", "c.wav", "b.flac"]
    assert [p.name for p, _ in folder.skipped] == ["broken.wav"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "broken.wav" in warnings[0].getMessage()
    padded, cond = folder[2]
    assert cond == {} and float(padded[0, 5000:].abs().max()) == 0.0


def test_audio_folder_refuses_a_file_path_and_a_folder_without_audio(tmp_path):
    _write(tmp_path / "a.wav", 0.5)
    with pytest.raises(ParameterError, match="is not a folder"):
        AudioFolder(tmp_path / "a.wav")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ParameterError, match="no readable audio under"):
        AudioFolder(empty)


# ---- examples ------------------------------------------------------------------------------


def test_examples_are_the_five_shipped_clips_at_16_khz(clips):
    assert tuple(clips) == EXAMPLE_NAMES == ("piano", "flute", "strings", "chord", "melody")
    for name, audio in clips.items():
        assert isinstance(audio, Audio)
        assert audio.sample_rate == SR and audio.n_channels == 1 and audio.batch_size == 1
        assert audio.seconds == pytest.approx(3.0 if name == "melody" else 2.0)
        assert float(audio.samples.abs().max()) == pytest.approx(0.8, abs=0.01)  # peak-normalised


def test_examples_can_be_resampled():
    assert examples(sample_rate=8000)["piano"].n_samples == 16000


def test_example_files_are_16_bit_mono_and_small():
    for name in EXAMPLE_NAMES:
        info = sf.info(str(data.ASSETS / "audio" / f"{name}.wav"))
        assert (info.samplerate, info.channels, info.subtype) == (SR, 1, "PCM_16")
        assert (data.ASSETS / "audio" / f"{name}.wav").stat().st_size < 200_000
