"""Measuring a checkpoint: the numbers a card holds, at the temperature the model samples at."""

import json

import pytest
import torch

from workbench.audio import Audio
from workbench.evaluate import (
    evaluate_checkpoint,
    measure_pitch,
    pitch_grid,
    reconstruction_pitch,
    reproduce_card,
    score_note,
)
from workbench.models import create_model
from workbench.train import train


def test_a_flow_is_measured_at_its_default_temperature_and_also_as_trained(tmp_path):
    out = tmp_path / "flowavenet"
    train("flowavenet", preset="tiny", steps=2, out=out, eval_every=0, checkpoint_every=2, progress=False,
          command="test")
    report = evaluate_checkpoint(out, write_card=True)
    assert report["temperature"] == create_model("flowavenet", "tiny").default_temperature == 0.6
    assert 0.0 <= report["pitch_accuracy_at_temperature_1"] <= 1.0
    assert report["bits_per_sample"] > 0
    card = json.loads((out / "card.json").read_text())
    assert card["metrics"]["temperature"] == 0.6 and card["command"] == "test"


def test_measure_pitch_counts_hits_within_the_tolerance():
    model = create_model("griffinlim", "tiny")  # plays the dataset note itself: every note at its pitch
    grid = pitch_grid(model, 2)
    report = measure_pitch(model, grid, seeds=(0,))
    assert report["temperature"] == 1.0 and len(report["notes"]) == len(grid)
    assert report["pitch_accuracy"] == 1.0 and all(abs(n["cents"]) <= 50 for n in report["notes"])


def test_each_note_of_a_measurement_can_be_drawn_again_alone():
    torch.manual_seed(0)
    model = create_model("wavenet", "tiny")  # untrained: its notes are noise, drawn from the seed
    grid = pitch_grid(model, 3)
    report = measure_pitch(model, grid, seeds=(0, 1), seconds=0.1)
    assert len(report["notes"]) == 2 * len(grid)
    last = report["notes"][-1]
    again = score_note(model, last, last["seed"], 0.1, report["temperature"])
    assert again == last
    other_seed = score_note(model, last, 0, 0.1, report["temperature"])
    assert other_seed["harmonic_share"] != last["harmonic_share"]


def test_a_card_with_a_typed_number_is_caught_on_a_few_notes(tmp_path):
    out = tmp_path / "vae"
    train("vae", preset="tiny", steps=2, out=out, eval_every=0, checkpoint_every=2, progress=False, command="test")
    evaluate_checkpoint(out, write_card=True)
    measured = reproduce_card(out, max_notes=2)
    assert all(abs(card - now) <= tol for card, now, tol in measured.values()), measured
    card_file = out / "card.json"
    card = json.loads(card_file.read_text())
    card["metrics"]["harmonic_share"] = round(card["metrics"]["harmonic_share"] + 0.1, 4)  # typed
    card["metrics"]["bits_per_item"][0] += 0.5  # and a per-item number changed
    card_file.write_text(json.dumps(card))
    measured = reproduce_card(out, max_notes=2)
    wrong = {k for k, (card, now, tol) in measured.items() if abs(card - now) > tol}
    assert wrong == {"card harmonic_share = mean of its notes", "card bits_per_sample = mean of its items",
                     "bits_per_sample"}, measured


def test_reconstruction_pitch_hears_what_the_decoder_rebuilds():
    model = create_model("vae", "tiny")

    class Perfect:  # an autoencoder that gives the note back: every note at its pitch
        family, sample_rate, config = "latent", model.sample_rate, model.config

        def dataset(self, split, data="notes"):
            return model.dataset(split, data)

        def encode(self, audio, cond):
            return audio

        def decode(self, encoding):
            return encoding

    class Silent(Perfect):  # a decoder that has learned nothing
        def decode(self, encoding):
            return Audio(torch.zeros_like(encoding.samples), encoding.sample_rate)

    perfect = reconstruction_pitch(Perfect(), max_notes=3)  # the tiny preset holds out fewer notes
    assert perfect["reconstruction_pitch_accuracy"] == 1.0 and 1 <= perfect["reconstruction_notes"] <= 3
    assert reconstruction_pitch(Silent(), max_notes=3)["reconstruction_pitch_accuracy"] == 0.0
    # and the real model runs through it (an untrained one may rebuild nothing)
    assert 0.0 <= reconstruction_pitch(model, max_notes=2)["reconstruction_pitch_accuracy"] <= 1.0


def test_cards_are_measured_on_the_test_notes_and_checkpoints_chosen_on_the_validation_notes():
    from workbench.evaluate import evaluation_notes

    model = create_model("wavenet", "small")
    test, where = evaluation_notes(model, "test")
    valid, _ = evaluation_notes(model, "validation")
    assert "test split" in where and test and valid
    assert not {tuple(sorted(c.items())) for c in test} & {tuple(sorted(c.items())) for c in valid}
    assert {"pitch", "instrument", "velocity"} == set(test[0])


@pytest.mark.slow
def test_validation_selection_keeps_the_best_checkpoint_and_says_how_it_was_chosen(tmp_path):
    out = tmp_path / "griffinlim"
    # Griffin-Lim re-renders the real note: every validation note is at its pitch, at every step
    train("griffinlim", preset="small", steps=2, out=out, eval_every=0, checkpoint_every=1, progress=False,
          command="test", select="validation-pitch", overrides={"n_iter": 2, "note_seconds": 0.25})
    card = json.loads((out / "best" / "card.json").read_text())
    selection = card["selection"]
    assert [c["step"] for c in selection["candidates"]] == [1, 2]
    assert selection["chosen_step"] == 2 and selection["chosen"]["pitch_accuracy"] == 1.0  # ties: the later step
    assert "validation" in selection["rule"] and card["steps_selected"] == 2


@pytest.mark.slow
def test_the_score_loop_scores_a_synthesiser_and_fluidsynth_the_same_way():
    from workbench.evaluate import score_loop

    torch.manual_seed(0)
    synth = create_model("midi2wave", "tiny").eval()  # its 12 folk tunes hold 2 test pieces
    ear = create_model("transcriber", "tiny").eval()
    report = score_loop(synth, transcriber=ear, max_pieces=1, seconds=1.0)
    assert len(report["loop_pieces"]) == 1 and report["loop_seconds"] == 1.0
    for who in ("model", "fluidsynth"):
        for key in ("onset_f1", "onset_offset_f1"):
            assert 0.0 <= report[f"loop_{who}_{key}"] <= 1.0
