"""The Gradio studio: Blocks build without launching; a launched studio answers through gradio_client.

The launched studio serves a tiny, untrained WaveNet (and a tiny WaveNet vocoder) from a
temporary checkpoint folder beside the shipped checkpoints; tests that need a trained model
(a vocoder given a clip, GANSynth's clipping, the octave test) use a shipped one and are
skipped while it does not exist. A/B votes go to a temporary data directory.
"""

from __future__ import annotations

import html
import math
import os
import re
import socket
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

gr = pytest.importorskip("gradio")
gradio_client = pytest.importorskip("gradio_client")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from apps import (  # noqa: E402
    common,
    compare,
    compose,
    generate_tab,
    mulaw_lab,
    phase_lab,
    receptive_field,
    studio,
    votes,
    zoo,
)
from workbench import dsp  # noqa: E402
from workbench.audio import Audio  # noqa: E402
from workbench.errors import WorkbenchError  # noqa: E402
from workbench.models import create_model, load_card, load_model  # noqa: E402
from workbench.models.base import CondSpec  # noqa: E402

AppError = gradio_client.exceptions.AppError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def tiny_checkpoints(tmp_path_factory) -> dict[str, str]:
    """Untrained tiny WaveNet and WaveNet vocoder, saved as checkpoint folders."""
    root = tmp_path_factory.mktemp("checkpoints")
    torch.manual_seed(0)
    create_model("wavenet", "tiny").save(root / "tiny")
    create_model("wavenet_vocoder", "tiny").save(root / "vocoder")
    return {"tiny-wavenet": str(root / "tiny"), "tiny-vocoder": str(root / "vocoder")}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """WORKBENCH_DATA_DIR for the module: votes go to a temporary folder."""
    folder = tmp_path_factory.mktemp("data")
    before = os.environ.get(votes.DATA_DIR_ENV)
    os.environ[votes.DATA_DIR_ENV] = str(folder)
    yield folder
    if before is None:
        os.environ.pop(votes.DATA_DIR_ENV, None)
    else:
        os.environ[votes.DATA_DIR_ENV] = before


@pytest.fixture(scope="module")
def client(tiny_checkpoints, data_dir):
    """The studio on a free localhost port, and a gradio_client connected to it."""
    demo = studio.launch(free_port(), extra_checkpoints=tiny_checkpoints, prevent_thread_lock=True)
    try:
        yield gradio_client.Client(demo.local_url, verbose=False)
    finally:
        demo.close()


def generate_args(model, seconds=0.05, view="none", measure=False, temperature=None, **cond) -> list:
    """Positional inputs of a model's Generate endpoint: its CondSpecs, its generate options (first
    choice), then the shared controls. Dense inputs default to the model's own (no clip)."""
    values = []
    for spec in model.conditioning:
        value = cond.get(spec.name, spec.default)
        if spec.kind == "frames" and value is None:
            value = generate_tab.NO_FRAMES
        values.append(value)
    options = [cond.get(name, choices[0]) for name, choices in model.generate_options.items()]
    temperature = model.default_temperature if temperature is None else temperature
    return [*values, *options, seconds, temperature, 0, view, measure]


def shipped(name: str):
    """A shipped checkpoint's model, or skip the test while it does not exist."""
    from workbench.models import list_checkpoints

    if name not in list_checkpoints():
        pytest.skip(f"no shipped {name} checkpoint")
    return common.load_cached(name)


def read(path) -> tuple[np.ndarray, int]:
    data, rate = sf.read(path, dtype="float32")
    return data, rate


def long_term_spectrum_db(x: np.ndarray, sample_rate: int) -> torch.Tensor:
    """Mel power averaged over time, normalised to sum 1, in dB (independent of level and phase)."""
    mel = torch.exp(dsp.log_mel(torch.from_numpy(x), sample_rate, n_mels=64))  # (mels, frames)
    power = (mel**2).mean(-1)
    return 10 * torch.log10((power / power.sum()).clamp_min(1e-12))


# ---- without launching ----------------------------------------------------------------------------
@pytest.mark.slow
def test_every_app_builds_without_launching(tiny_checkpoints):
    demos = [studio.build_demo(tiny_checkpoints), generate_tab.build_demo(tiny_checkpoints),
             phase_lab.build_demo(tiny_checkpoints), mulaw_lab.build_demo(), receptive_field.build_demo(),
             zoo.build_demo(tiny_checkpoints)]
    assert all(isinstance(d, gr.Blocks) for d in demos)
    names = {fn.api_name for fn in demos[0].fns.values()}
    assert {"generate_tiny_wavenet", "generate_tiny_vocoder", "phase_lab", "vocode_tiny_vocoder",
            "mu_law_lab", "receptive_field", "stop_generation"} <= names


def test_studio_builds_with_no_checkpoint_at_all(monkeypatch):
    monkeypatch.setattr(common, "model_sources", lambda extra=None: {})
    assert isinstance(studio.build_demo(), gr.Blocks)


def test_launch_settings_are_private_and_bounded():
    settings = studio.launch_settings(7860)
    assert settings["server_name"] == "127.0.0.1"
    assert settings["share"] is False
    assert settings["allowed_paths"] == []
    assert settings["mcp_server"] is False and settings["enable_monitoring"] is False
    assert settings["max_file_size"]


def test_controls_come_from_condspecs():
    assert isinstance(generate_tab.control_for(CondSpec("pitch", "int", 60, (48, 72), unit="MIDI")), gr.Slider)
    assert isinstance(generate_tab.control_for(CondSpec("instrument", "choice", "piano",
                                                        choices=("piano", "flute"))), gr.Dropdown)
    fixed = generate_tab.control_for(CondSpec("velocity", "int", 100, (100, 100)))
    assert isinstance(fixed, gr.Number) and not fixed.interactive
    # a clip's frames override the sliders, so by default none is chosen and the sliders decide
    mel = generate_tab.control_for(CondSpec("mel", "frames", help="log-mel frames"))
    assert isinstance(mel, gr.Dropdown) and mel.value == generate_tab.NO_FRAMES
    assert mel.info.startswith("log-mel frames")  # help text from the CondSpec
    f0 = generate_tab.control_for(CondSpec("f0_hz", "frames"))
    assert f0.value == generate_tab.NO_FRAMES
    pitch = generate_tab.control_for(CondSpec("pitch", "int", 60, (48, 72), help="the note to play"))
    assert pitch.info == "the note to play"
    assert generate_tab.pitch_text(60).startswith("**C4**")


def test_frames_come_from_a_clip_in_the_models_own_convention(tiny_checkpoints):
    vocoder = common.load_cached(tiny_checkpoints["tiny-vocoder"])
    clip = common.example_clip("flute", vocoder.sample_rate).trim(0.25)
    mel = common.frames_from_clip(vocoder, "mel", clip)
    assert mel.shape == (vocoder.config.n_mels, clip.n_samples // vocoder.config.hop_length + 1)
    with pytest.raises(WorkbenchError, match="pianoroll"):
        common.frames_from_clip(vocoder, "pianoroll", clip)


def test_audio_goes_to_gradio_as_int16_without_rescaling():
    rate, samples = common.to_gradio(Audio(torch.full((100,), 0.25), 8000))
    assert rate == 8000 and samples.dtype == np.int16
    assert samples.max() == round(0.25 * 32767)


def test_stop_ends_a_running_generation(tiny_checkpoints):
    model = common.load_cached(tiny_checkpoints["tiny-wavenet"])
    flags = common.CancelFlags()
    started, outcome = threading.Event(), {}

    def progress(*args, **kwargs):  # stands in for gr.Progress
        started.set()

    def run():
        try:
            generate_tab.generate("tiny", model, flags, generate_args(model, seconds=30.0), progress, None)
            outcome["finished"] = True
        except gr.Error as exc:
            outcome["error"] = exc.message

    worker = threading.Thread(target=run)
    worker.start()
    assert started.wait(timeout=30)
    flags.cancel(common.session_of(None))  # what the Stop button does for this session
    worker.join(timeout=30)
    assert not worker.is_alive()
    assert "cancelled" in outcome.get("error", ""), outcome


@pytest.mark.slow
def test_a_streaming_press_plays_chunks_then_shows_the_finished_clip(tiny_checkpoints):
    model = common.load_cached(tiny_checkpoints["tiny-wavenet"])
    calls = []
    outputs = list(generate_tab.generate_streaming(
        "tiny", model, common.CancelFlags(), generate_args(model, seconds=0.6, method="cached"),
        lambda *args, **kwargs: calls.append(args), None))
    live = [out[0] for out in outputs[:-1]]
    # the stream opens before sampling, then one chunk per quarter second, all at the live rate
    assert len(live) == 1 + 3 and {rate for rate, _ in live} == {common.LiveStream(model.sample_rate).sample_rate}
    assert all(isinstance(v, dict) for out in outputs[:-1] for v in out[1:])  # gr.skip(): nothing else yet
    final = outputs[-1]
    rate, samples = final[1]
    whole = model.generate(1, seconds=0.6, generator=0, method="cached",
                           cond={"pitch": 62, "instrument": "piano", "velocity": 100})
    assert rate == model.sample_rate and np.array_equal(samples, common.check_levels(whole)[0].to_int16(0))
    assert "the first 0.25 s was ready for the live player after" in final[-1] and calls


def test_stopping_a_streaming_press_stops_its_sampler(tiny_checkpoints):
    model = common.load_cached(tiny_checkpoints["tiny-wavenet"])
    press = generate_tab.generate_streaming("tiny", model, common.CancelFlags(),
                                            generate_args(model, seconds=30.0, method="cached"),
                                            lambda *args, **kwargs: None, None)
    next(press)  # the stream opens
    next(press)  # the first chunk arrives; the sampler is working on the next ones
    assert any(t.name == common.READ_AHEAD_THREAD for t in threading.enumerate())
    press.close()  # what Gradio does when Stop cancels the event
    deadline = time.monotonic() + 60
    while any(t.name == common.READ_AHEAD_THREAD for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(t.name == common.READ_AHEAD_THREAD for t in threading.enumerate())


def test_the_live_stream_raises_the_rate_chunk_by_chunk_as_of_the_whole_clip():
    clip = Audio(torch.sin(torch.linspace(0, 60, 1000))[None, None] * 0.5, 8000)
    whole = common.LiveStream(8000)
    joined = np.concatenate([common.LiveStream(8000).chunk(clip)[1]])
    parts = [whole.chunk(Audio(clip.samples[..., i: i + 300], 8000))[1] for i in range(0, 1000, 300)]
    assert whole.sample_rate == 48000 and len(joined) == 6 * 1000
    assert np.array_equal(np.concatenate(parts), joined)  # no seam where one chunk meets the next
    assert np.array_equal(joined[5::6], np.round(clip.samples[0, 0].double().numpy() * 32767).astype(np.int16))


# ---- a launched studio, driven by gradio_client ----------------------------------------------------
def test_phase_lab_on_an_example_clip(client):
    original_clip = common.example_clip("piano")
    outputs = client.predict("piano", None, 8, "phase", api_name="/phase_lab")
    assert len(outputs) == 10
    clips = {name: read(path) for name, path in zip(phase_lab.VERSIONS, outputs[:4])}
    for name, (x, rate) in clips.items():
        assert rate == 16000, name
        assert len(x) == original_clip.n_samples, name
    original, _ = clips["original"]
    # int16 with no rescaling: the example's own peak survives
    assert abs(np.abs(original).max() - float(original_clip.samples.abs().max())) < 1e-3
    # random phase keeps the magnitude: the long-term spectra agree within a dB or two
    # (different clips differ by 5 dB or more on this measure)
    reference = long_term_spectrum_db(original, 16000)
    random_phase = long_term_spectrum_db(clips["random phase"][0], 16000)
    assert float((random_phase - reference).abs().mean()) < 3.0
    assert "spectral convergence" in outputs[8]


def test_vocoder_returns_a_clip_of_the_input_length(client, monkeypatch):
    monkeypatch.setattr(phase_lab, "VOCODER_SECONDS", {True: 0.1, False: 0.1})
    path, _fig, text = client.predict("flute", None, "phase", api_name="/vocode_tiny_vocoder")
    x, rate = read(path)
    assert rate == 8000
    assert abs(len(x) - 800) <= 64  # whole mel frames (hop 64)
    assert "spectral convergence" in text


def test_generate_returns_the_note_and_the_real_one(client, tiny_checkpoints):
    model = common.load_cached(tiny_checkpoints["tiny-wavenet"])
    path, _fig, ref_path, _ref_fig, info = client.predict(
        *generate_args(model, seconds=0.05, pitch=62, instrument="flute"), api_name="/generate_tiny_wavenet")
    x, rate = read(path)
    assert rate == model.sample_rate and len(x) == 400
    assert "real-time factor" in info
    if ref_path is not None:  # needs FluidSynth and the SoundFont
        ref, ref_rate = read(ref_path)
        assert ref_rate == model.sample_rate and np.abs(ref).max() > 0


def test_stop_button_ends_the_sessions_generation(client, tiny_checkpoints, monkeypatch):
    # The generation waits at its first progress report until Stop has been pressed, so the test
    # does not race a fast model that could finish before the button reaches the server.
    started, stopped = threading.Event(), threading.Event()
    check = common.CancelFlags.check

    def recording_check(self, session):
        started.set()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with self._lock:
                if session in self._flags:
                    break
            time.sleep(0.01)
        try:
            check(self, session)
        except common.Cancelled:
            stopped.set()
            raise

    monkeypatch.setattr(common.CancelFlags, "check", recording_check)
    model = common.load_cached(tiny_checkpoints["tiny-wavenet"])
    job = client.submit(*generate_args(model, seconds=4.0), api_name="/generate_tiny_wavenet")
    assert started.wait(timeout=60), "the generation never reported progress"
    assert not job.done(), "the generation finished before it could be stopped"
    client.predict(api_name="/stop_generation")
    assert stopped.wait(timeout=30)


def test_generate_refuses_a_value_outside_the_spec(client, tiny_checkpoints):
    model = common.load_cached(tiny_checkpoints["tiny-wavenet"])
    with pytest.raises(AppError, match="banjo"):
        client.predict(*generate_args(model, instrument="banjo"), api_name="/generate_tiny_wavenet")


def bad_uploads(folder: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, a phrase the error message must hold)."""
    rng = np.random.default_rng(0)
    out = {}
    not_audio = folder / "notes.wav"
    not_audio.write_text("this is not audio")
    out["not audio"] = (not_audio, "not a readable audio file")
    empty = folder / "empty.wav"
    empty.write_bytes(b"")
    out["empty file"] = (empty, "not a readable audio file")
    no_samples = folder / "no_samples.wav"
    sf.write(no_samples, np.zeros((0, 1), np.float32), 16000)
    out["no samples"] = (no_samples, "holds no samples")
    silent = folder / "silent.wav"
    sf.write(silent, np.zeros(16000, np.float32), 16000)
    out["silent"] = (silent, "silent")
    nan = folder / "nan.wav"
    sf.write(nan, np.full(16000, np.nan, np.float32), 16000, subtype="FLOAT")
    out["NaN"] = (nan, r"'nan.wav' holds NaN or infinite samples.*Export it again")
    channels = folder / "eight_channels.wav"
    sf.write(channels, rng.uniform(-0.5, 0.5, (8000, 8)).astype(np.float32), 16000)
    out["8 channels"] = (channels, "8 channels")
    high_rate = folder / "high_rate.wav"
    sf.write(high_rate, rng.uniform(-0.5, 0.5, 19200).astype(np.float32), 192000)
    out["192 kHz"] = (high_rate, "192000 Hz")
    too_long = folder / "too_long.wav"
    seconds = common.MAX_INPUT_SECONDS + 1
    sf.write(too_long, rng.uniform(-0.5, 0.5, int(seconds * 8000)).astype(np.float32), 8000)
    out["too long"] = (too_long, "limit")
    return out


def test_bad_uploads_get_clear_errors_and_the_next_request_works(client, tmp_path):
    handle_file = gradio_client.handle_file
    for name, (path, phrase) in bad_uploads(tmp_path).items():
        with pytest.raises(AppError, match=phrase) as caught:
            client.predict("piano", handle_file(str(path)), 8, api_name="/mu_law_lab")
        assert "nan_to_num" not in str(caught.value)  # library advice means nothing in the studio
        # every tab reads uploads the same way; check one in the phase lab too
        if name == "8 channels":
            with pytest.raises(AppError, match=phrase):
                client.predict("piano", handle_file(str(path)), 4, "phase", api_name="/phase_lab")
    good = tmp_path / "good.wav"
    sf.write(good, 0.5 * np.sin(2 * math.pi * 440 * np.arange(16000) / 16000).astype(np.float32), 16000)
    outputs = client.predict("piano", handle_file(str(good)), 8, api_name="/mu_law_lab")
    assert "your clip (good.wav)" in outputs[4]
    x, rate = read(outputs[0])
    assert rate == 16000 and len(x) == 16000


def test_receptive_field_explorer_reports_the_formula(client):
    text, _fig = client.predict(10, 2, 2, 32, 8000, 8, 3000, api_name="/receptive_field")
    assert "2,047 samples" in text  # (2 - 1) * 2 * (1 + 2 + ... + 512) + 1
    assert "MiB" in text


def pitched_checkpoints() -> list[str]:
    """Shipped models whose card says at least 70% of their notes have the asked pitch.

    WaveNet joins as soon as its checkpoint measures that well (``workbench evaluate wavenet``).
    """
    from workbench.models import list_checkpoints, load_card

    return [n for n in list_checkpoints()
            if (load_card(n).get("metrics", {}).get("pitch_accuracy") or 0) >= 0.7]


def test_at_least_one_shipped_model_plays_the_asked_pitch():
    assert pitched_checkpoints(), "no shipped checkpoint reaches 70% pitch accuracy in its card"


def surest_octave(name: str) -> tuple[dict, int]:
    """The instrument (if any) and low pitch of the octave pair its card hits most often.

    A sampling model (WaveNet at 75%) misses some grid notes, usually by an octave; the app
    test asks for the pair the card measured as most reliable rather than one picked blind.
    """
    from workbench.models import load_card

    notes = load_card(name)["metrics"].get("notes")
    if not notes:  # a card without per-note results: the middle octave, default instrument
        low_pitch, high_pitch = next(s for s in load_model(name).conditioning if s.name == "pitch").range
        return {}, (low_pitch + high_pitch - 12) // 2
    score: dict = {}
    for n in notes:
        key = (n.get("instrument"), n["pitch"])
        score[key] = score.get(key, 0) + n["hit"]
    pairs = [(score[(inst, p)] + score.get((inst, p + 12), -1), inst, p) for inst, p in score
             if (inst, p + 12) in score]
    _, inst, low = max(pairs, key=lambda t: t[0])  # the first of the best, in grid order
    return ({} if inst is None else {"instrument": inst}), low


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in pitched_checkpoints() if load_card(n)["metrics"]["pitch_accuracy"] >= 0.95])
def test_notes_an_octave_apart_have_f0_ratio_two(client, name):
    """Through the studio, one draw per note: models whose card says 95% or more (a model at 93%
    misses some draws; tests/test_cards_reproduce.py checks every card's rate on its own notes)."""
    from workbench.dsp.synth import midi_to_hz
    from workbench.metrics import median_f0

    model = load_model(name)
    instrument, low = surest_octave(name)
    f0s = []
    # dense inputs left to the model, so a vocoder renders the asked note rather than a clip
    frames = {s.name: generate_tab.NO_FRAMES for s in model.conditioning if s.kind == "frames"}
    for pitch in (low, low + 12):
        path, *_ = client.predict(*generate_args(model, seconds=0.5, pitch=pitch, **instrument, **frames),
                                  api_name="/" + common.endpoint("generate", name))
        x, rate = read(path)
        # pYIN within an octave of the asked note either way, as the cards measure (a wider range lets
        # pYIN lock onto a noise band at its top); a high note played an octave low still fails
        f0s.append(median_f0(Audio(x, rate), fmin=float(midi_to_hz(pitch - 12)), fmax=float(midi_to_hz(pitch + 12))))
    assert all(math.isfinite(f) for f in f0s), f0s
    assert f0s[1] / f0s[0] == pytest.approx(2.0, rel=0.03)


# ---- controls that do what they say -----------------------------------------------------------------
def test_a_clip_for_a_vocoders_mel_takes_over_pitch_instrument_and_velocity():
    vocoder = create_model("griffinlim", "tiny")
    assert generate_tab.overrides(vocoder, {"mel": generate_tab.NO_FRAMES}) == {}
    taken = generate_tab.overrides(vocoder, {"mel": "piano"})
    assert set(taken) == {"pitch", "instrument", "velocity"}
    assert "the clip's mel frames decide the note" in generate_tab.override_reason("mel", "pitch")
    ddsp = create_model("ddsp", "tiny")  # an f0 curve takes only the pitch, a loudness curve the velocity
    assert generate_tab.overrides(ddsp, {"f0_hz": "flute", "loudness_db": generate_tab.NO_FRAMES}) == {"pitch": "f0_hz"}
    # a vocoder with a source draws its mel from the pitch until a mel clip is chosen
    flow = create_model("waveglow+source", "tiny")
    assert generate_tab.overrides(flow, {"mel": generate_tab.NO_FRAMES, "f0_hz": "flute"}) == {}
    assert generate_tab.overrides(flow, {"mel": "chord", "f0_hz": "flute"}) == {
        "pitch": "f0_hz", "instrument": "mel", "velocity": "mel"}


def test_fixed_length_models_show_their_length_instead_of_a_slider():
    for name in ("gansynth+comb", "wavegan+source"):
        model = create_model(name, "tiny")
        control = generate_tab.seconds_control(model)
        assert isinstance(control, gr.Number) and control.interactive is False
        assert control.value == pytest.approx(model.max_seconds, abs=1e-3)
        assert f"always makes {model.max_seconds:.3g} s" in control.info
    assert isinstance(generate_tab.seconds_control(create_model("wavenet", "tiny")), gr.Slider)


def test_temperature_is_hidden_where_unused_and_starts_at_the_models_default():
    for name in ("griffinlim", "note2mel"):
        assert generate_tab.temperature_control(create_model(name, "tiny")).visible is False
    flow = create_model("flowavenet+source", "tiny")
    slider = generate_tab.temperature_control(flow)
    assert slider.visible is not False and slider.value == flow.default_temperature == 0.6


def test_the_model_line_names_its_aid():
    aided = create_model("wavenet+source", "tiny")
    assert "oscillator source" in generate_tab.describe(aided) and "paper does not have" in generate_tab.describe(aided)
    assert "no aid: the network learns the pitch itself" in generate_tab.describe(create_model("wavenet", "tiny"))


# ---- levels ----------------------------------------------------------------------------------------------
def test_a_clipped_clip_is_normalised_and_the_page_says_by_how_much():
    t = torch.arange(8000) / 8000
    clipped = Audio((1.5 * torch.sin(2 * math.pi * 220 * t)).clamp(-1, 1), 8000)
    fixed, levels = common.check_levels(clipped)
    assert levels.n_clipped > 0 and levels.gain_db == pytest.approx(-1.0)
    assert float(fixed.samples.abs().max()) == pytest.approx(10 ** (-1 / 20), abs=1e-4)
    assert any("normalised by -1.0 dB" in n and "clipped" in n for n in levels.notes)
    offset, levels = common.check_levels(Audio(0.5 * torch.sin(2 * math.pi * 220 * t) + 0.2, 8000))
    assert abs(float(offset.samples.mean())) < 1e-4 and "DC offset of +0.200" in levels.notes[0]
    clean = Audio(0.5 * torch.sin(2 * math.pi * 220 * t), 8000)
    fixed, levels = common.check_levels(clean)
    assert levels.notes == () and levels.gain_db == 0.0 and torch.equal(fixed.samples, clean.samples)
    assert "silent" in common.check_levels(Audio(torch.zeros(100), 8000))[1].notes[0]
    assert "very quiet" in common.check_levels(Audio(1e-3 * torch.sin(2 * math.pi * 220 * t), 8000))[1].notes[0]


def test_a_model_that_clips_is_played_normalised_and_the_page_says_so(client, monkeypatch):
    """A GAN's output is not bounded: the studio's model made 100x louder clips, and the page plays it
    normalised with a note (the same model object serves the studio, so the patch reaches it)."""
    model = shipped("gansynth+comb")
    made = model._generate
    monkeypatch.setattr(model, "_generate", lambda *args, **kwargs: 100 * made(*args, **kwargs))
    path, _fig, _ref, _ref_fig, info = client.predict(*generate_args(model, seconds=0.5),
                                                      api_name="/generate_gansynth_comb")
    x, _ = read(path)
    assert "normalised by" in info and "clipped" in info
    assert np.abs(x).max() == pytest.approx(10 ** (common.TARGET_PEAK_DB / 20), abs=2e-3)


# ---- what was made is what the page says --------------------------------------------------------------
def test_a_vocoder_given_a_clip_reports_the_clips_note_not_the_slider(client):
    from workbench.metrics import median_f0

    model = shipped("griffinlim")
    path, _fig, ref_path, _ref_fig, info = client.predict(
        *generate_args(model, seconds=0.5, measure=True, pitch=67, mel="piano"), api_name="/generate_griffinlim")
    title = info.split("\n\n")[0]
    assert "mel from clip 'piano'" in title and "C4" in title
    assert "pitch 67" not in title and "G4" not in title  # the slider was ignored, so it is not claimed
    x, rate = read(path)
    f0 = median_f0(Audio(x, rate), fmin=100.0, fmax=1000.0)
    assert 1200 * abs(math.log2(f0 / generate_tab.clip_pitch("piano"))) < 50
    assert "from the clip's C4" in info and "harmonic share" in info
    assert ref_path is not None  # the clip itself plays beside the result


def test_generate_reports_pitch_and_harmonic_share(client):
    model = shipped("ddsp")
    *_, info = client.predict(*generate_args(model, seconds=0.5, measure=True, pitch=67, instrument="flute"),
                              api_name="/generate_ddsp")
    assert "pitch 67 (G4)" in info
    assert re.search(r"measured pitch \(pYIN\): \*\*39\d\.\d Hz = G4\*\*", info), info
    share = re.search(r"harmonic share at the harmonics of the asked G4: \*\*(\d+)%\*\*", info)
    assert share and 0 <= int(share.group(1)) <= 100


def test_a_missing_value_names_its_field(client, tiny_checkpoints):
    model = common.load_cached(tiny_checkpoints["tiny-wavenet"])
    with pytest.raises(AppError, match="instrument has no value"):
        client.predict(*generate_args(model, instrument=None), api_name="/generate_tiny_wavenet")
    args = generate_args(model)
    args[-3] = None  # the seed box emptied
    with pytest.raises(AppError, match="seed has no value"):
        client.predict(*args, api_name="/generate_tiny_wavenet")


# ---- the API ----------------------------------------------------------------------------------------------
def test_generate_endpoints_take_named_parameters(client, tiny_checkpoints):
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    names = [p["parameter_name"] for p in api["/generate_tiny_wavenet"]["parameters"]]
    assert names == ["pitch", "instrument", "velocity", "method", *generate_tab.SHARED_INPUTS]
    path, *_ = client.predict(pitch=64, instrument="piano", velocity=100, method="auto", seconds=0.05,
                              temperature=1.0, seed=3, extra_plot="none", measure_pitch=False,
                              api_name="/generate_tiny_wavenet")
    assert len(read(path)[0]) == 400
    assert [p["parameter_name"] for p in api["/compare"]["parameters"]][:4] == [
        "first_model", "first_temperature", "second_model", "second_temperature"]


def test_parameter_names_are_python_names():
    assert common.parameter_names(["pitch", "f0 hz", "pitch", "class", "2x"]) == [
        "pitch", "f0_hz", "pitch_2", "value_class", "value_2x"]


# ---- A/B votes and the zoo -----------------------------------------------------------------------------------
def test_the_vote_store_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv(votes.DATA_DIR_ENV, str(tmp_path / "here"))
    store = votes.VoteStore()
    assert store.path == tmp_path / "here" / votes.FILE_NAME
    assert store.summary() == [] and store.count() == 0
    wavenet, flow = votes.Setting("wavenet+source", 1.0), votes.Setting("waveglow+source", 0.6)
    cond = {"pitch": 60}
    store.record(wavenet, flow, "A", "A", cond, 0)     # wavenet heard as A and chosen
    store.record(wavenet, flow, "B", "A", cond, 1)     # wavenet heard as B, A (the flow) chosen
    store.record(flow, wavenet, "A", "B", cond, 2)     # flow first, heard as A; B (wavenet) chosen
    store.record(flow, wavenet, "B", "tie", cond, 3)
    (row,) = votes.VoteStore(tmp_path / "here" / votes.FILE_NAME).summary()
    assert (row["x"], row["y"]) == (str(flow), str(wavenet))
    assert (row["x_wins"], row["y_wins"], row["ties"], row["votes"]) == (1, 2, 1, 4)
    with pytest.raises(ValueError):
        store.record(wavenet, flow, "A", "C", cond, 0)
    assert "wavenet+source (temperature 1)" in zoo.votes_html(store)


def test_compare_is_blind_batches_two_draws_and_stores_the_vote(client, tiny_checkpoints, data_dir, monkeypatch):
    model = common.load_cached(tiny_checkpoints["tiny-wavenet"])
    batches = []
    generate = type(model).generate

    def recording(self, n=1, **kwargs):
        batches.append(n)
        return generate(self, n, **kwargs)

    monkeypatch.setattr(type(model), "generate", recording)
    outputs = client.predict("tiny-wavenet", 1.0, "tiny-wavenet", 1.0, 60, "piano", 100, 0.05, 0,
                             api_name="/compare")
    assert batches == [2]  # two draws of one setting: one batch
    a, b = (read(p)[0] for p in outputs[:2])
    assert len(a) == len(b) == 400 and not np.array_equal(a, b)
    assert "tiny-wavenet" not in " ".join(str(o) for o in outputs[4:7])  # nothing names the model before the vote
    reveal = client.predict(api_name="/vote_A")
    assert "A was **tiny-wavenet (temperature 1)**" in reveal
    with pytest.raises(AppError, match="nothing to vote on"):
        client.predict(api_name="/vote_B")  # one vote per pair
    summary = votes.VoteStore(data_dir / votes.FILE_NAME).summary()
    assert any(e["x"] == e["y"] == "tiny-wavenet (temperature 1)" for e in summary)
    assert "tiny-wavenet (temperature 1)" in client.predict(api_name="/vote_summary")


def test_compare_shares_the_vocabulary_over_models():
    shared = compare.shared_specs({"a": create_model("wavenet", "tiny"), "b": create_model("gansynth+comb", "tiny")})
    assert list(shared) == ["pitch", "instrument", "velocity"]


def load_script(name: str):
    """A module from scripts/ (not a package), loaded by path."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_zoo_table_is_readable_and_matches_the_readme():
    from workbench.evaluate import ZOO_NOTE, format_zoo_row, zoo_table

    update_readme = load_script("update_readme")

    headers, cells = zoo_table()
    page = zoo.table_html(zoo.shipped_rows(), docs_dir=None)
    for header in ("aid", "harmonic share", "pitch accuracy"):
        assert header in headers
    for row in cells:  # every cell on the page is the README's cell
        for cell in row:
            assert ">" + html.escape(cell) + "<" in page
    assert not re.search(r"\d\.\d{4,}", page), "raw floats in the zoo"
    readme = update_readme.table()
    for row in cells:
        assert "| " + " | ".join(row) + " |" in readme
    assert ZOO_NOTE in readme
    sample = {"name": "m", "family": "flow", "likelihood": "exact", "parameters": 1234567, "pitch_accuracy": 0.9722222,
              "harmonic_share": 0.5, "bits_per_sample": None, "temperature": 0.6, "uses_temperature": True,
              "samples_per_second": 25254.9, "real_time_factor": 3.157, "steps": 2727, "wall_time_s": 8714.3}
    assert format_zoo_row(sample) == ["m", "none", "flow", "exact", "1,234,567", "—", "97%", "50%", "0.6", "25,255",
                                      "3.2", "2,727", "145 min"]


def test_notebook_links_prefer_the_html_copy(tmp_path):
    text, url = zoo.notebook_link("notebooks/01_phase.ipynb", tmp_path)
    assert "make lab" in text and url == zoo.LAB_URL + "01_phase.ipynb"
    (tmp_path / "01_phase.html").write_text("<html></html>")
    text, url = zoo.notebook_link("notebooks/01_phase.ipynb", tmp_path)
    assert text == "01_phase" and url.endswith("01_phase.html") and url.startswith("/gradio_api/file=")


def test_figures_are_made_legible():
    from matplotlib.figure import Figure
    from matplotlib.text import Text

    fig = Figure(figsize=(8, 2))
    ax = fig.add_subplot()
    ax.set_title("tiny", fontsize=6)
    common.legible(fig, 360)
    assert fig.get_size_inches()[0] == pytest.approx(5.0)
    assert min(t.get_fontsize() for t in fig.findobj(Text) if t.get_text()) >= 10


def test_compare_uses_a_checkpoints_only_value_and_says_so():
    tiny = create_model("wavenet", "tiny")  # velocity range 100..100
    assert compare.cond_for(tiny, {"pitch": 60, "velocity": 112}) == {"pitch": 60, "velocity": 100}
    gansynth = create_model("gansynth+comb", "tiny")
    assert compare.departures("g", gansynth, {"pitch": 60, "velocity": 112}) == ["g has no velocity (it ignored 112)"]
    assert compare.departures("t", tiny, {"velocity": 112}) == ["t knows only velocity 100 (it used that, not 112)"]


# ---- Compose ------------------------------------------------------------------------------------
def test_compose_reads_a_score_file_plays_it_and_transcribes_it_back(client, tmp_path):
    from workbench.scores import NoteEvent, events_to_midi

    tune = [NoteEvent(0.3 * i, 0.28, pitch, 100) for i, pitch in enumerate((67, 69, 71, 72, 74))]
    events_to_midi(tune, tmp_path / "tune.mid", [73])
    _fig, about = client.predict(compose.SOURCES[1], None, gradio_client.handle_file(str(tmp_path / "tune.mid")),
                                        12, 1.0, 0, api_name="/compose_score")
    assert "5 notes" in about and "tune.mid" in about
    played, real, text = client.predict(4, 1.0, 0, api_name="/compose_play")
    x, rate = read(real)
    assert rate == 16000 and np.abs(x).max() > 0.01  # FluidSynth always plays
    assert ("midi2wave" in text) and (played is not None or "ships no checkpoint" in text)
    _fig, heard = client.predict(False, None, gradio_client.handle_file(real), api_name="/compose_transcribe")
    if load_model_or_none("transcriber") is not None:
        assert "note onset F1" in heard and "transcriber heard" in heard


def test_compose_refuses_a_file_that_is_not_a_score_and_keeps_serving(client, tmp_path):
    client = gradio_client.Client(client.src, verbose=False)  # a new session: no score yet
    (tmp_path / "bad.mid").write_text("not a MIDI file at all")
    with pytest.raises(Exception, match="bad.mid"):
        client.predict(compose.SOURCES[1], None, gradio_client.handle_file(str(tmp_path / "bad.mid")), 12, 1.0, 0,
                       api_name="/compose_score")
    with pytest.raises(Exception, match="no score yet"):
        client.predict(4, 1.0, 0, api_name="/compose_play")


def load_model_or_none(name):
    from workbench.models import has_checkpoint

    return load_model(name) if has_checkpoint(name) else None
