"""The notebooks' way to a model: the shipped checkpoint, or an untrained tiny one and a note saying so."""

from __future__ import annotations

from ..errors import ParameterError


def aid_line(model_or_class) -> str:
    """One line saying what hands a model its pitch besides its own learning (``model.aid``).

    Examples
    --------
    >>> from workbench.models import model_class
    >>> aid_line(model_class("wavenet"))
    'wavenet: no aid (the published model: it learns the pitch from the data alone)'
    """
    aid = model_or_class.aid
    name = model_or_class.name
    if aid is None:
        return f"{name}: no aid (the published model: it learns the pitch from the data alone)"
    where = "part of the published model" if aid.in_paper else "not in the paper"
    return f"{name}: aid = {aid.kind} ({where}): {aid.description}"


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


def load_shipped(*names: str, preset: str = "tiny"):
    """The first of ``names`` that ships a checkpoint (else :func:`load_or_create` of the first).

    For a notebook that would rather show a trained model than an untrained one: ask for the
    published model first and its aided variant after, e.g. ``load_shipped("wavenet",
    "wavenet+source")``. The note says which was loaded, what aid it has, and which of the
    names ship nothing yet.

    Returns
    -------
    (model, note)

    Raises
    ------
    ParameterError
        No names.
    """
    from ..models import has_checkpoint

    if not names:
        raise ParameterError("load_shipped needs at least one model name, e.g. 'wavenet'")
    chosen = next((n for n in names if has_checkpoint(n)), names[0])
    model, note = load_or_create(chosen, preset)
    missing = [n for n in names if n != chosen and not has_checkpoint(n) and names.index(n) < names.index(chosen)]
    lines = [note, aid_line(model)]
    if missing:
        lines.append(f"({', '.join(missing)} ships no checkpoint yet, so this notebook uses {chosen})")
    return model, "\n".join(lines)
