"""Every number in a shipped card is what ``workbench evaluate`` measures now, within the card's tolerance.

Cards are written by ``workbench evaluate NAME --write-card`` and never by hand; this test draws
some of each card's notes again (every note was drawn on its own, with its seed), the way the card
says they were measured (seconds, temperature), scores some of its held-out items again, and
compares; it also checks that the card's averages are the averages of its per-note lists. A card
whose numbers were typed, or left behind by an older checkpoint or an older metric, fails here.
``reproduce_card(name)`` without ``max_notes`` measures every note again (what this test did before
the suite had to fit in ten minutes on two cores).
"""

from __future__ import annotations

import json

import pytest

from workbench.evaluate import reproduce_card
from workbench.models import checkpoint_dir, list_checkpoints, load_card

pytestmark = pytest.mark.slow  # generates every shipped model's evaluation notes

def notes_for(name: str) -> int:
    """How many of a card's notes to draw again: 6, or 2 for a model slower than real time (its
    harmonic share must still match within 0.02, and the per-note lists are checked in full)."""
    return 6 if load_card(name)["metrics"].get("real_time_factor", 0) >= 1 else 2


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
        if "bits_per_sample" in metrics:
            assert len(metrics.get("bits_per_item", [])) > 1, name


@pytest.mark.parametrize("name", MEASURED)
def test_card_metrics_are_reproduced_by_evaluate(name):
    measured = reproduce_card(name, max_notes=notes_for(name))
    assert measured, f"{name}: nothing to reproduce"
    for metric, (card_value, now, tolerance) in measured.items():
        assert abs(card_value - now) <= tolerance, (
            f"{name}: card says {metric} = {card_value}, evaluate measures {now:.4f} (tolerance {tolerance}); "
            f"run `workbench evaluate {name} --write-card`")
