"""The Gradio studio: Blocks build without launching; a launched studio answers through gradio_client.

The launched studio serves a tiny, untrained WaveNet (and a tiny WaveNet vocoder) from a
temporary checkpoint folder, so these tests need no shipped checkpoint; the octave test uses
the shipped WaveNet checkpoint and is skipped until it exists.
"""

from __future__ import annotations

import math
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
    generate_tab,
    mulaw_lab,
    phase_lab,
    receptive_field,
    studio,
    zoo,
)
from workbench import dsp  # noqa: E402
from workbench.audio import Audio  # noqa: E402
from workbench.errors import WorkbenchError  # noqa: E402
from workbench.models import create_model, load_model  # noqa: E402
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
def client(tiny_checkpoints):
    """The studio on a free localhost port, and a gradio_client connected to it."""
    demo = studio.launch(free_port(), extra_checkpoints=tiny_checkpoints, prevent_thread_lock=True)
    try:
        yield gradio_client.Client(demo.local_url, verbose=False)
    finally:
        demo.close()


def generate_args(model, seconds=0.05, view="none", measure=False, **cond) -> list:
    """Positional inputs of a model's Generate endpoint: its CondSpecs, then the shared controls."""
    values = []
    for spec in model.conditioning:
        value = cond.get(spec.name, spec.default)
        if spec.kind == "frames" and value is None:  # a vocoder's mel from a clip; other curves left out
            value = common.example_names()[0] if spec.name == "mel" else generate_tab.NO_FRAMES
        values.append(value)
    return [*values, seconds, 1.0, 0, view, measure]


def read(path) -> tuple[np.ndarray, int]:
    data, rate = sf.read(path, dtype="float32")
    return data, rate


def long_term_spectrum_db(x: np.ndarray, sample_rate: int) -> torch.Tensor:
    """Mel power averaged over time, normalised to sum 1, in dB (independent of level and phase)."""
    mel = torch.exp(dsp.log_mel(torch.from_numpy(x), sample_rate, n_mels=64))  # (mels, frames)
    power = (mel**2).mean(-1)
    return 10 * torch.log10((power / power.sum()).clamp_min(1e-12))


# ---- without launching ----------------------------------------------------------------------------
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
    mel = generate_tab.control_for(CondSpec("mel", "frames"))
    assert isinstance(mel, gr.Dropdown) and mel.value == common.example_names()[0]
    f0 = generate_tab.control_for(CondSpec("f0_hz", "frames"))
    assert f0.value == generate_tab.NO_FRAMES
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
    stopped = threading.Event()
    check = common.CancelFlags.check

    def recording_check(self, session):
        try:
            check(self, session)
        except common.Cancelled:
            stopped.set()
            raise

    monkeypatch.setattr(common.CancelFlags, "check", recording_check)
    model = common.load_cached(tiny_checkpoints["tiny-wavenet"])
    job = client.submit(*generate_args(model, seconds=4.0), api_name="/generate_tiny_wavenet")
    deadline = time.monotonic() + 60
    while not job.status().progress_data and not job.done() and time.monotonic() < deadline:
        time.sleep(0.05)
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
    out["NaN"] = (nan, "NaN")
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
        with pytest.raises(AppError, match=phrase):
            client.predict("piano", handle_file(str(path)), 8, api_name="/mu_law_lab")
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
@pytest.mark.parametrize("name", pitched_checkpoints())
def test_notes_an_octave_apart_have_f0_ratio_two(client, name):
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
        f0s.append(median_f0(Audio(x, rate), fmin=60.0, fmax=2000.0))
    assert all(math.isfinite(f) for f in f0s), f0s
    assert f0s[1] / f0s[0] == pytest.approx(2.0, rel=0.03)
