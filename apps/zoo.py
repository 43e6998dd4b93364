"""Model zoo: every checkpoint's card in one table, with the notebook that explains its model."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from apps import common

COLUMNS = ("name", "family", "likelihood", "parameters", "bits_per_sample", "pitch_accuracy",
           "samples_per_second", "real_time_factor", "notebook")
#: Where ``make lab`` serves the notebooks (``jupyter lab notebooks/`` on its default port).
LAB_URL = "http://localhost:8888/lab/tree/"
HEADERS = ("model", "family", "likelihood", "parameters", "bits / sample", "pitch accuracy",
           "samples / s", "× real time", "notebook")


def shipped_rows() -> list[dict]:
    """Rows of the shipped checkpoints (``workbench.evaluate.zoo_rows``)."""
    from workbench.evaluate import zoo_rows

    return zoo_rows()


def extra_row(label: str, path) -> dict:
    """A row like :func:`workbench.evaluate.zoo_rows` for a checkpoint folder outside assets/."""
    from workbench.models import load_card

    model = common.load_cached(str(Path(path)))
    card = load_card(path)
    metrics = card.get("metrics", {})
    return {"name": label, "family": model.family, "likelihood": model.likelihood,
            "parameters": card.get("parameters", model.n_parameters),
            "bits_per_sample": metrics.get("bits_per_sample"),
            "pitch_accuracy": metrics.get("pitch_accuracy"),
            "samples_per_second": metrics.get("samples_per_second"),
            "real_time_factor": metrics.get("real_time_factor"),
            "notebook": model.notebook}


def notebook_link(path: str) -> str:
    """A Markdown link that opens ``notebooks/NAME.ipynb`` in the JupyterLab of ``make lab``."""
    name = Path(path).name
    return f"[{Path(name).stem}]({LAB_URL}{name})"


def rows(extra_checkpoints: dict | None = None) -> list[list]:
    """The table: one list per checkpoint, in :data:`COLUMNS` order (blank where unmeasured)."""
    found = shipped_rows() + [extra_row(label, path) for label, path in (extra_checkpoints or {}).items()]
    table = []
    for row in found:
        cells = ["" if row.get(key) is None else row[key] for key in COLUMNS]
        cells[-1] = notebook_link(row["notebook"]) if row.get("notebook") else ""
        table.append(cells)
    return table


def build(extra_checkpoints: dict | None = None) -> None:
    """The zoo's layout, inside an open ``gr.Blocks``."""
    table = rows(extra_checkpoints)
    if not table:
        gr.Markdown("No checkpoints yet. `workbench train NAME --out assets/checkpoints/NAME` makes one, "
                    "`workbench evaluate NAME --write-card` measures it for this table.")
        return
    gr.Markdown("Numbers come from each checkpoint's `card.json` (`workbench evaluate NAME --write-card`); "
                "blank cells were not measured yet. Speeds were measured on the machine that wrote the card. "
                "The notebook links open in the JupyterLab that `make lab` starts.")
    datatypes = ["str"] * (len(HEADERS) - 1) + ["markdown"]
    gr.Dataframe(value=table, headers=list(HEADERS), datatype=datatypes, interactive=False, wrap=True)


def build_demo(extra_checkpoints: dict | None = None) -> gr.Blocks:
    """The zoo on its own page."""
    with gr.Blocks(title="workbench · model zoo", analytics_enabled=False) as demo:
        build(extra_checkpoints)
    return demo
