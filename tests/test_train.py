"""The one training loop and the command line."""

import json
import math
import os
import subprocess
import sys

import pytest
import torch

from workbench.cli import main
from workbench.models import load_model
from workbench.train import read_log, train


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "wavenet"
    train("wavenet", preset="tiny", steps=6, out=out, eval_every=3, checkpoint_every=3, progress=False,
          command="test")
    return out


def test_training_writes_a_checkpoint_log_and_card(run):
    assert {p.name for p in run.iterdir()} >= {"config.json", "model.safetensors", "card.json", "log.csv",
                                               "train_state.pt"}
    card = json.loads((run / "card.json").read_text())
    assert card["steps"] == 6 and card["command"] == "test" and card["wall_time_s"] > 0
    assert card["data"]["train"]["source"] == "soundfont"
    assert "eval_loss" in card["final"]
    rows = read_log(run)
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert all("eval_loss" in r for r in rows if r["step"] in (3, 6))


def test_resume_continues_from_the_saved_step(run, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    before = load_model(copy).state_dict()
    train("wavenet", steps=8, out=copy, resume=True, eval_every=0, checkpoint_every=100, progress=False,
          command="test resumed")
    rows = read_log(copy)
    assert [r["step"] for r in rows][-2:] == [7, 8]
    after = load_model(copy).state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    card = json.loads((copy / "card.json").read_text())
    assert card["steps"] == 8
    # the card lists both commands that made this checkpoint, and the wall times add up
    assert [(r["command"], r["from_step"], r["to_step"]) for r in card["runs"]] == [
        ("test", 0, 6), ("test resumed", 6, 8)]
    assert sum(r["wall_time_s"] for r in card["runs"]) == pytest.approx(card["wall_time_s"], abs=0.2)


def test_resume_without_optimiser_state_carries_on_from_the_cards_step(run, tmp_path, caplog):
    import shutil

    copy = tmp_path / "fetched"
    shutil.copytree(run, copy)
    (copy / "train_state.pt").unlink()  # a checkpoint copied without its optimiser state
    before = load_model(copy).state_dict()
    train("wavenet", steps=8, out=copy, resume=True, eval_every=0, checkpoint_every=100, progress=False,
          command="test fetched")
    assert "fresh optimiser moments" in caplog.text
    assert [r["step"] for r in read_log(copy)][-2:] == [7, 8]
    after = load_model(copy).state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    card = json.loads((copy / "card.json").read_text())
    assert [(r["command"], r["from_step"], r["to_step"], r["device"]) for r in card["runs"]] == [
        ("test", 0, 6, "cpu"), ("test fetched", 6, 8, "cpu")]


def test_a_run_stopped_between_checkpoints_still_has_a_card_its_resume_extends(tmp_path, monkeypatch):
    from workbench.models.wavenet import WaveNet

    real_step = WaveNet.train_step
    calls = {"n": 0}

    def dies_at_step_5(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt  # stopped by hand
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(WaveNet, "train_step", dies_at_step_5)
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train("wavenet", preset="tiny", steps=100, out=out, eval_every=0, checkpoint_every=2, progress=False,
              command="first")
    card = json.loads((out / "card.json").read_text())
    assert card["steps"] == 4 and card["runs"][0]["command"] == "first"
    monkeypatch.setattr(WaveNet, "train_step", real_step)
    train("wavenet", steps=6, out=out, resume=True, eval_every=0, checkpoint_every=2, progress=False,
          command="second")
    card = json.loads((out / "card.json").read_text())
    assert [(r["command"], r["from_step"], r["to_step"]) for r in card["runs"]] == [("first", 0, 4), ("second", 4, 6)]


def test_training_is_reproducible_under_a_seed(tmp_path):
    a = train("wavenet", preset="tiny", steps=3, out=tmp_path / "a", eval_every=0, progress=False, seed=4)
    b = train("wavenet", preset="tiny", steps=3, out=tmp_path / "b", eval_every=0, progress=False, seed=4)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k


@pytest.mark.slow
def test_two_process_torchrun_training(tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "workbench", "train", "wavenet", "--preset", "tiny", "--steps", "3", "--eval-every", "0",
         "--out", str(out)],
        capture_output=True, text=True, timeout=240, env=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    card = json.loads((out / "card.json").read_text())
    assert card["processes"] == 2 and card["steps"] == 3


def test_cli_list_names_each_model_with_its_aid_in_columns_that_line_up(capsys):
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["wavenet"][3] == "none" and rows["sparse_transformer"][1] == "autoregressive"
    assert " ".join(rows["wavenet+source"][3:5]) == "oscillator source"
    assert rows["notes_lm"][3] == "n/a"
    starts = {line.index(line.split()[1], len(line.split()[0])) for line in lines}
    assert len(starts) == 1  # every family starts in the same column, however long the name


def test_cli_errors_are_one_line(capsys, run, tmp_path):
    code = main(["generate", "wavenet", "--checkpoint", str(run), "--pitch", "130", "--out",
                 str(tmp_path / "x.wav"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: pitch=130 is outside") and err.count("\n") == 1


def test_cli_generate_writes_a_wav(run, tmp_path):
    from workbench import Audio

    out = tmp_path / "note.wav"
    assert main(["generate", "wavenet", "--checkpoint", str(run), "--pitch", "62", "--seconds", "0.05",
                 "--out", str(out), "--quiet"]) == 0
    audio = Audio.load(out)
    assert audio.sample_rate == 8000 and audio.n_samples == 400


def test_log_gains_columns_that_appear_mid_run(tmp_path):
    from workbench.train import _append_log

    log = tmp_path / "log.csv"
    _append_log(log, [{"step": 1, "loss": 2.0}])
    _append_log(log, [{"step": 2, "loss": 1.5, "d_loss": 0.7}])
    _append_log(log, [{"step": 3, "loss": 1.0, "d_loss": 0.5}])
    rows = read_log(tmp_path)
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert "d_loss" not in rows[0] and rows[2]["d_loss"] == 0.5


def test_cli_render_notes_fills_a_cache_that_training_reads(tmp_path, monkeypatch, capsys):
    from workbench import data
    from workbench.models import create_model
    from workbench.train import make_dataset

    cache = tmp_path / "cache"
    assert main(["render-notes", "wavenet", "--preset", "tiny", "--cache", str(cache)]) == 0
    assert len(list(cache.glob("*.npy"))) == len(make_dataset(create_model("wavenet", "tiny"), "notes", "all"))
    assert str(cache) in capsys.readouterr().out
    assert "WORKBENCH_NOTES_CACHE" not in os.environ  # the command leaves the environment as it was

    def no_fluidsynth(*args, **kwargs):
        raise AssertionError("FluidSynth was asked for although every note is cached")

    monkeypatch.setattr(data, "_import_fluidsynth", no_fluidsynth)
    monkeypatch.setattr(data, "find_soundfont", no_fluidsynth)
    monkeypatch.setenv("WORKBENCH_NOTES_CACHE", str(cache))
    train("wavenet", preset="tiny", steps=2, out=tmp_path / "run", eval_every=2, progress=False, command="test")
    assert (tmp_path / "run" / "model.safetensors").exists()


def test_resume_with_set_changes_the_schedule_and_keeps_the_weights(tmp_path):
    from workbench.errors import ParameterError

    out = tmp_path / "melgan"
    train("melgan", preset="tiny", steps=2, out=out, eval_every=0, checkpoint_every=2, progress=False,
          command="first", overrides={"adversarial_start": 100})
    before = load_model(out)
    assert not before.adversarial
    # a later phase: the discriminators join now, at a new learning rate; the weights carry on
    model = train("melgan", steps=3, out=out, resume=True, eval_every=0, checkpoint_every=1, progress=False,
                  command="second", overrides={"adversarial_start": 0, "learning_rate": 5e-5})
    assert model.config.adversarial_start == 0 and model.adversarial
    assert json.loads((out / "config.json").read_text())["config"]["learning_rate"] == 5e-5
    state = torch.load(out / "train_state.pt", weights_only=True)
    assert all(g["lr"] == 5e-5 for opt in state["optimizers"] for g in opt["param_groups"])
    assert not all(torch.equal(v, model.state_dict()[k]) for k, v in before.state_dict().items())
    assert not math.isnan(read_log(out)[-1]["d_loss"])  # the discriminator stepped
    # a change that reshapes the weights is refused with the way out
    with pytest.raises(ParameterError, match="without --resume"):
        before.with_config(channels=32)
    with pytest.raises(ParameterError, match="no config field"):
        before.with_config(chanels=32)
