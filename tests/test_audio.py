"""The Audio container: shapes, I/O round trips, conversions, and refusing bad audio clearly."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf
import torch

from workbench.audio import Audio, as_batch, check_audio, check_sample_rate
from workbench.errors import AudioError, ParameterError

SR = 16000


def _tone(seconds=1.0, sample_rate=SR, f0_hz=440.0, amplitude=0.5) -> torch.Tensor:
    t = torch.arange(int(seconds * sample_rate)) / sample_rate
    return amplitude * torch.sin(2 * math.pi * f0_hz * t)


# ---- shape ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(100,), (2, 100), (3, 2, 100)])
def test_any_accepted_shape_becomes_batch_channels_time(shape):
    audio = Audio(torch.zeros(shape), SR)
    assert audio.samples.dim() == 3 and audio.samples.shape[-1] == 100
    assert audio.samples.dtype == torch.float32
    assert audio.n_samples == 100 and audio.seconds == pytest.approx(100 / SR)


def test_numpy_input_is_copied_and_float64_becomes_float32():
    array = np.zeros(50)
    audio = Audio(array, SR)
    array[0] = 1.0
    assert float(audio.samples[0, 0, 0]) == 0.0
    assert audio.samples.dtype == torch.float32


def test_four_dimensional_samples_raise_naming_the_shape_and_accepted_ones():
    with pytest.raises(AudioError) as info:
        Audio(torch.zeros(1, 1, 1, 10), SR)
    message = str(info.value)
    assert "(1, 1, 1, 10)" in message and "(batch, channels, time)" in message


def test_non_tensor_samples_raise_naming_the_type():
    with pytest.raises(AudioError, match="got list"):
        as_batch([0.0, 0.1])


def test_complex_samples_raise_pointing_to_istft():
    with pytest.raises(AudioError, match="istft"):
        Audio(torch.zeros(10, dtype=torch.complex64), SR)


def test_indexing_keeps_three_dimensions():
    audio = Audio(torch.zeros(4, 2, 10), SR)
    assert audio[1].samples.shape == (1, 2, 10)
    assert audio[1:3].samples.shape == (2, 2, 10)
    assert len(audio) == 4


# ---- sample rate ---------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [0, 16, 44.1, 10**7, -16000])
def test_absurd_sample_rates_raise_with_the_value_and_the_hz_hint(rate):
    with pytest.raises(ParameterError) as info:
        Audio(torch.zeros(10), rate)
    message = str(info.value)
    assert f"sample_rate={rate}" in message
    assert "16000" in message  # the example of what to pass


def test_kilohertz_confusion_is_named_in_the_message():
    with pytest.raises(
        ParameterError, match=r"sample_rate=16 Hz is outside 1000\.\.384000 Hz.*not kHz"
    ):
        check_sample_rate(16)


@pytest.mark.parametrize("rate", ["16000", None, True, float("nan")])
def test_sample_rates_that_are_not_numbers_raise(rate):
    with pytest.raises(ParameterError, match="sample_rate="):
        check_sample_rate(rate)


def test_whole_float_and_numpy_sample_rates_are_accepted_as_int():
    assert check_sample_rate(22050.0) == 22050
    assert check_sample_rate(np.int64(8000)) == 8000
    assert isinstance(Audio(torch.zeros(3), np.int32(16000)).sample_rate, int)


# ---- check_audio ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_check_audio_refuses_nan_and_inf_saying_how_many_and_how_to_fix(bad):
    x = torch.zeros(1, 1, 100)
    x[0, 0, [3, 50]] = bad
    with pytest.raises(AudioError) as info:
        check_audio(x)
    message = str(info.value)
    assert "2 NaN or infinite samples" in message and "nan_to_num" in message


def test_check_audio_refuses_empty_too_long_too_many_channels_and_silence():
    with pytest.raises(AudioError, match="empty.*0 samples"):
        check_audio(torch.zeros(1, 1, 0))
    with pytest.raises(AudioError, match=r"100 samples long.*limit here is 50.*trim"):
        check_audio(torch.zeros(1, 1, 100), max_samples=50)
    with pytest.raises(AudioError, match=r"3 channels.*to_mono"):
        check_audio(torch.zeros(1, 3, 100))
    with pytest.raises(AudioError, match="silent"):
        check_audio(torch.zeros(1, 1, 100), allow_silence=False)


def test_check_audio_returns_good_audio_unchanged():
    x = torch.rand(1, 2, 100) - 0.5
    assert check_audio(x) is x


# ---- I/O -----------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".wav", ".flac"])
def test_save_then_load_round_trips_within_one_16_bit_step(tmp_path, suffix):
    original = Audio(torch.stack([_tone(0.5), -0.8 * _tone(0.5, f0_hz=220.0)]), SR)  # stereo
    path = original.save(tmp_path / f"clip{suffix}")
    assert sf.info(str(path)).subtype == "PCM_16"
    loaded = Audio.load(path)
    assert loaded.sample_rate == SR and loaded.samples.shape == original.samples.shape
    assert float((loaded.samples - original.samples).abs().max()) <= 1 / 32767


def test_load_can_mix_down_and_resample(tmp_path):
    path = Audio(torch.stack([_tone(), torch.zeros(SR)]), SR).save(tmp_path / "stereo.wav")
    audio = Audio.load(path, mono=True, sample_rate=8000)
    assert audio.n_channels == 1 and audio.sample_rate == 8000 and audio.n_samples == 8000
    assert float(audio.samples.abs().max()) == pytest.approx(0.25, abs=0.01)  # mean of 0.5 and 0


def test_load_of_a_missing_file_names_the_path(tmp_path):
    missing = tmp_path / "nope.wav"
    with pytest.raises(AudioError) as info:
        Audio.load(missing)
    assert str(missing) in str(info.value) and "check the path" in str(info.value)


def test_load_of_a_folder_asks_for_a_file(tmp_path):
    with pytest.raises(AudioError, match="is a folder; pass an audio file"):
        Audio.load(tmp_path)


def test_load_of_a_text_file_says_it_is_not_audio(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is a shopping list, not a recording\n" * 20)
    with pytest.raises(AudioError) as info:
        Audio.load(path)
    message = str(info.value)
    assert "'notes.wav' is not a readable audio file" in message and "wav, flac or ogg" in message


def test_load_of_an_empty_wav_says_it_holds_no_samples(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(str(path), np.zeros((0, 1), np.float32), SR)
    with pytest.raises(
        AudioError, match="'empty.wav' holds no samples; pass a non-empty recording"
    ):
        Audio.load(path)


def test_load_of_a_file_with_nan_samples_refuses_it(tmp_path):
    path = tmp_path / "nan.wav"
    data = np.zeros((100, 1), np.float32)
    data[10] = np.nan
    sf.write(str(path), data, SR, subtype="FLOAT")
    with pytest.raises(AudioError, match="1 NaN or infinite samples"):
        Audio.load(path)


def test_load_of_a_file_longer_than_max_seconds_says_both_lengths(tmp_path):
    path = Audio(_tone(2.0), SR).save(tmp_path / "long.wav")
    with pytest.raises(AudioError) as info:
        Audio.load(path, max_seconds=1.5)
    message = str(info.value)
    assert "2.0 s long" in message and "limit is 1.5 s" in message and "trim" in message
    assert Audio.load(path, max_seconds=2.5).seconds == pytest.approx(2.0)


# ---- conversions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source_rate, target_rate", [(16000, 8000), (22050, 16000), (16000, 44100)]
)
def test_resample_scales_the_length_and_keeps_the_pitch(source_rate, target_rate):
    audio = Audio(_tone(1.0, source_rate, f0_hz=500.0), source_rate)
    out = audio.resample(target_rate)
    assert out.sample_rate == target_rate
    assert out.n_samples == pytest.approx(target_rate, abs=1)
    spectrum = np.abs(np.fft.rfft(out.samples[0, 0].numpy()))
    assert np.argmax(spectrum) * target_rate / out.n_samples == pytest.approx(500.0, abs=2)


def test_resample_to_the_same_rate_returns_a_copy():
    audio = Audio(_tone(0.1), SR)
    same = audio.resample(SR)
    assert torch.equal(same.samples, audio.samples) and same.samples is not audio.samples


def test_to_mono_averages_the_channels():
    left, right = _tone(0.1), _tone(0.1, f0_hz=300.0)
    mono = Audio(torch.stack([left, right]), SR).to_mono()
    assert mono.samples.shape == (1, 1, left.shape[0])
    assert torch.allclose(mono.samples[0, 0], (left + right) / 2)


def test_trim_and_normalise():
    audio = Audio(torch.stack([_tone(1.0, amplitude=0.2), torch.zeros(SR)])[:, None], SR)
    assert audio.trim(0.25).n_samples == 4000
    normalised = audio.normalise(0.9)
    assert float(normalised.samples[0].abs().max()) == pytest.approx(0.9, abs=1e-6)
    assert float(normalised.samples[1].abs().max()) == 0.0  # silence stays silence


def test_no_method_mutates_the_callers_tensor(tmp_path):
    x = torch.stack([_tone(0.25), 1.5 * _tone(0.25, f0_hz=300.0)])  # (2, time), peaks above 1
    before = x.clone()
    audio = Audio(x, SR)
    audio.to_mono()
    audio.resample(8000)
    audio.resample(SR)
    audio.trim(0.1)
    audio.normalise(0.5)
    audio.numpy()[...] = 0.0
    audio.to_int16()
    audio.save(tmp_path / "x.wav")
    audio.wav_bytes()
    audio._repr_html_()
    audio.with_samples(torch.zeros(3))
    assert torch.equal(x, before)
    assert torch.equal(audio.samples[0], before)


def test_repr_html_has_one_audio_player_per_item():
    html = Audio(torch.zeros(3, 1, 800), SR)._repr_html_()
    assert html.count("<audio") == 3
    assert "data:audio/wav;base64," in html


def test_to_int16_is_not_rescaled_to_the_peak():
    quiet = Audio(_tone(0.1, amplitude=0.1), SR)
    pcm = quiet.to_int16()
    assert pcm.dtype == np.int16 and pcm.shape == (1600,)
    assert int(np.abs(pcm).max()) == pytest.approx(0.1 * 32767, abs=2)  # not stretched to 32767
    stereo = Audio(torch.stack([_tone(0.1), 2 * _tone(0.1)]), SR).to_int16()
    assert stereo.shape == (1600, 2) and int(stereo.max()) == 32767  # clipped, not scaled


def test_wav_bytes_decode_back_to_the_same_samples():
    import io

    audio = Audio(_tone(0.2), SR)
    data, rate = sf.read(io.BytesIO(audio.wav_bytes()), dtype="float32")
    assert rate == SR
    assert np.abs(data - audio.samples[0, 0].numpy()).max() <= 1 / 32767
