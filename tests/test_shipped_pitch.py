"""Every shipped model of notes carries its evaluated notes in its card, and every seed system ships.

The notes themselves are generated again and measured by tests/test_cards_reproduce.py.
"""


from workbench.models import list_checkpoints, load_card, model_class
from workbench.models.base import GenerativeModel, NoteDataConfig

WITH_NOTES = [name for name in list_checkpoints() if "notes" in load_card(name).get("metrics", {})]


def test_the_pitch_playing_checkpoints_ship_with_their_notes():
    seeds = {"wavenet", "samplernn", "gansynth", "wavegan", "melgan", "waveglow", "flowavenet", "vqvae"}
    shipped = set(list_checkpoints())
    for name in seeds:  # the published model, its aided variant, or both
        assert {name, name + "+source", name + "+comb"} & shipped, name
    of_notes = {n for n in shipped if issubclass(model_class(n), GenerativeModel)  # not the transcriber
                and issubclass(model_class(n).Config, NoteDataConfig)}  # not midi2wave, which plays scores
    assert set(WITH_NOTES) == of_notes  # every model of notes was evaluated on the test notes
