"""Model zoo: every checkpoint's card in one table (the README's, cell for cell), the notebook that
explains each model, and the A/B votes cast in the Generate tab's compare mode."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from apps import common, votes

#: Where ``make lab`` serves the notebooks (``jupyter lab notebooks/`` on its default port).
LAB_URL = "http://localhost:8888/lab/tree/"
#: Read-only HTML copies of the notebooks (``make docs``); linked, and served, when present.
DOCS_DIR = Path(__file__).resolve().parent.parent / "docs" / "notebooks"
VOTE_HEADERS = ("setting X", "setting Y", "X preferred", "Y preferred", "no preference", "votes")


def shipped_rows() -> list[dict]:
    """Rows of the shipped checkpoints (``workbench.evaluate.zoo_rows``)."""
    from workbench.evaluate import zoo_rows

    return zoo_rows()


def extra_row(label: str, path) -> dict:
    """A row like :func:`workbench.evaluate.zoo_rows` for a checkpoint folder outside assets/."""
    from workbench.evaluate import zoo_row
    from workbench.models import load_card

    model = common.load_cached(str(Path(path)))
    card = {"parameters": model.n_parameters, **load_card(path)}
    return zoo_row(label, type(model), card)


def notebook_link(path: str, docs_dir: Path | None = DOCS_DIR) -> tuple[str, str] | str:
    """``(text, url)`` of the notebook ``path`` (``notebooks/NAME.ipynb``): its read-only HTML copy in
    ``docs_dir`` when that exists (served by the studio), else the notebook in the JupyterLab that
    ``make lab`` starts."""
    stem = Path(path).stem
    page = Path(docs_dir) / f"{stem}.html" if docs_dir is not None else None
    if page is not None and page.is_file():
        return stem, f"/gradio_api/file={page.resolve()}"
    return f"{stem} (needs make lab)", f"{LAB_URL}{Path(path).name}"


def rows(extra_checkpoints: dict | None = None) -> list[dict]:
    """The zoo's rows: shipped checkpoints, then ``extra_checkpoints`` (label -> folder)."""
    return shipped_rows() + [extra_row(label, path) for label, path in (extra_checkpoints or {}).items()]


def table_html(found: list[dict], docs_dir: Path | None = DOCS_DIR) -> str:
    """The zoo table as HTML: :func:`workbench.evaluate.zoo_table`'s cells plus a notebook link."""
    from workbench.evaluate import ZOO_COLUMNS, zoo_table

    headers, cells = zoo_table(found)
    body = [[*row, notebook_link(r["notebook"], docs_dir) if r.get("notebook") else ""]
            for row, r in zip(cells, found)]
    numeric = {i for i, (key, _) in enumerate(ZOO_COLUMNS)
               if key in ("parameters", "bits_per_sample", "pitch_accuracy", "harmonic_share", "temperature",
                          "samples_per_second", "real_time_factor", "steps")}
    return common.html_table([*headers, "notebook"], body, numeric=numeric, links={len(headers)}, nowrap=True)


def music_html() -> str:
    """The music table (:func:`workbench.evaluate.music_table`) as HTML, or "" when none ships."""
    from workbench.evaluate import music_table

    headers, cells = music_table()
    return common.html_table(headers, cells, numeric={2}) if cells else ""


def votes_html(store: votes.VoteStore | None = None) -> str:
    """The A/B vote summary: wins per pair of settings, or how to cast the first vote."""
    store = store or votes.VoteStore()
    summary = store.summary()
    if not summary:
        return ("<p>No A/B votes yet: the Generate tab's <b>Compare A/B</b> mode plays two settings blind, "
                "as A and B in random order, and stores your vote here.</p>")
    body = [[e["x"], e["y"], e["x_wins"], e["y_wins"], e["ties"], e["votes"]] for e in summary]
    return (common.html_table(list(VOTE_HEADERS), body, numeric={2, 3, 4, 5})
            + f"<p>Stored on this machine only, in <code>{store.path}</code>.</p>")


def build(extra_checkpoints: dict | None = None, docs_dir: Path | None = DOCS_DIR) -> None:
    """The zoo's layout, inside an open ``gr.Blocks``."""
    found = rows(extra_checkpoints)
    if not found:
        gr.Markdown("No checkpoints yet. `workbench train NAME --out assets/checkpoints/NAME` makes one, "
                    "`workbench evaluate NAME --write-card` measures it for this table.")
    else:
        from workbench.evaluate import ZOO_NOTE

        if docs_dir is not None and Path(docs_dir).is_dir():
            gr.set_static_paths([Path(docs_dir)])  # the read-only notebook pages, nothing else
        gr.Markdown("Numbers come from each checkpoint's `card.json` (`workbench evaluate NAME --write-card`), "
                    "formatted exactly as in the README's table. **aid**: what hands the model its pitch "
                    "besides its own learning (a `+` in the name marks an aid the paper does not have).")
        gr.HTML(table_html(found, docs_dir))
        lab = ("The notebook links open read-only HTML copies (`make docs`)."
               if docs_dir is not None and Path(docs_dir).is_dir() else
               "The notebook links open in the JupyterLab that `make lab` starts: run it first.")
        gr.Markdown(ZOO_NOTE + "\n\n" + lab)
    music = music_html()
    if music:
        gr.Markdown("### Models of music: scores, notes and the loop between them")
        gr.HTML(music)
    gr.Markdown("### A/B votes (Generate → Compare A/B)")
    summary = gr.HTML(votes_html())
    refresh = gr.Button("Refresh votes", size="sm")
    refresh.click(lambda: votes_html(), None, summary, api_name="vote_summary", queue=False)
    common.on_load(lambda: votes_html(), [summary], queue=False)


def build_demo(extra_checkpoints: dict | None = None) -> gr.Blocks:
    """The zoo on its own page."""
    with gr.Blocks(title="workbench · model zoo", analytics_enabled=False) as demo:
        build(extra_checkpoints)
    return demo
