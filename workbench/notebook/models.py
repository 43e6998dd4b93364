"""The notebooks' way to a model: the shipped checkpoint, or an untrained tiny one and a note saying so."""

from __future__ import annotations


def load_or_create(name: str, preset: str = "tiny", **overrides):
    """The shipped checkpoint of ``name`` if there is one, else a fresh ``preset`` model.

    Returns
    -------
    (model, note)
        The model in eval mode and one sentence saying which it is (print it).
    """
    from ..models import create_model, has_checkpoint, load_card, load_model

    if has_checkpoint(name):
        model = load_model(name)
        card = load_card(name)
        steps = card.get("steps")
        wall = card.get("wall_time_s")
        trained = f" (trained {steps} steps in {wall / 60:.0f} min)" if steps and wall else ""
        return model.eval(), f"loaded the shipped {name} checkpoint{trained}"
    model = create_model(name, preset, **overrides).eval()
    return model, (f"note: assets/checkpoints/{name}/ holds no checkpoint yet, so this is an UNTRAINED "
                   f"{name} ({preset!r} preset): it will make noise, not notes. Train one with "
                   f"'workbench train {name}'.")
