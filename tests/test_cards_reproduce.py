"""Every number in a shipped card is what ``workbench evaluate`` measures now, within the card's tolerance.

Cards are written by ``workbench evaluate NAME --write-card`` and never by hand; this test measures
each card's pitch accuracy, harmonic share and held-out bits per sample again, the way the card says
they were measured (its notes, seeds, seconds and temperature), and compares. A card whose
numbers were typed, or left behind by an older checkpoint or an older metric, fails here.
"""

from __future__ import annotations

import json

import pytest

from workbench.evaluate import reproduce_card
from workbench.models import checkpoint_dir, list_checkpoints, load_card

pytestmark = pytest.mark.slow  # generates every shipped model's evaluation notes

MEASURED = [name for name in list_checkpoints()
            if {"pitch_accuracy", "bits_per_sample"} & load_card(name).get("metrics", {}).keys()]


def test_cards_carry_no_hand_written_fields():
    for name in list_checkpoints():
        card = json.loads((checkpoint_dir(name) / "card.json").read_text())
        for key in ("selection_note", "pitch_misses"):
            assert key not in card and key not in card.get("metrics", {}), (name, key)
        metrics = card.get("metrics", {})
        if "pitch_accuracy" in metrics:  # written by evaluate: it records how it measured
            assert {"temperature", "seeds", "seconds", "reproduce_tolerance"} <= metrics.keys(), name
            assert "evaluate_command" in card, name


@pytest.mark.parametrize("name", MEASURED)
def test_card_metrics_are_reproduced_by_evaluate(name):
    measured = reproduce_card(name)
    assert measured, f"{name}: nothing to reproduce"
    for metric, (card_value, now, tolerance) in measured.items():
        assert abs(card_value - now) <= tolerance, (
            f"{name}: card says {metric} = {card_value}, evaluate measures {now:.4f} (tolerance {tolerance}); "
            f"run `workbench evaluate {name} --write-card`")
