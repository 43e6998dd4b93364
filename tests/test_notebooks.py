"""The teaching notebooks: committed without outputs, each a course page that runs top to bottom.

Each notebook is executed as committed (plus extra cells at the end) by nbclient in a fresh
kernel, with ``WORKBENCH_FAST=1`` (notebooks may only shorten loops with it). The extra cells
check the notebook's claims against what it measured (:data:`CLAIMS`) and move every control of
every :class:`workbench.notebook.Explorer` the notebook made, as a user would, failing if a
widget callback raises. The notebook's wall time is printed (``-s``) and recorded as a test
property; speed is not asserted (see benchmarks/).

Without executing anything, the course pages 00-08 are checked for their scaffolding: exercises
with hidden solutions, references with arXiv links, previous / next links along
:data:`workbench.notebook.docs.SEQUENCE`, and a link to the glossary.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

from workbench.notebook import docs  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
TEACHING = ("00_tour", "01_phase", "02_mu_law", "03_receptive_fields", "04_mode_covering_vs_seeking")
#: The pages this suite holds to the course's scaffolding (the later ones have their own authors).
COURSE = docs.SEQUENCE[:9]
CELL_TIMEOUT_S = 240
NOTEBOOK_TIMEOUT_S = 420

EXERCISE_WIDGETS = """
from workbench.notebook import Explorer as _Explorer
_moved = {_name: _value.exercise() for _name, _value in list(globals().items()) if isinstance(_value, _Explorer)}
print("EXPLORERS", sorted(_moved), flush=True)
"""

#: What each notebook's text claims, checked against the values it measured, in its own kernel.
CLAIMS = {
    "00_tour": """
# "only the second [call] says how fast sampling is": the first one compiles
assert timings["second call"] < timings["first call"], timings
# "compare the two rates": the compiled kernel beats PyTorch steps
assert n_made / timings["second call"] > 2 * 0.05 * model.sample_rate / cached, (timings, cached)
# "a model that has learnt something needs fewer bits for real notes than for noise"
assert bits_real < bits_noise, (bits_real, bits_noise)
# the family table measured every shipped model and lists published models beside aided ones
assert all(r.get("real_time_factor", 1) > 0 for r in rows if r["shipped"])
assert any(r["aid"] != "none" for r in rows) and any(r["aid"] == "none" for r in rows)
""",
    "01_phase": """
# the IF / phase figures hide the quiet bins: most bins below 2 kHz are quiet, not all
assert 0.3 < nb.figures.masked_share(note) < 0.98
# "the quieter the bin, the closer its phase gets to that of white noise"
_jumps = list(band_jumps.values())
assert all(a < b for a, b in zip(_jumps, _jumps[1:])), band_jumps
# section 7: Griffin-Lim far closer than another instrument; random phase further, still closer
# than an instrument; zero phase further than random phase ("even the features notice")
assert distances["Griffin-Lim, 32 iterations"] < 0.2 * yardstick, distances
assert distances["Griffin-Lim, 32 iterations"] < distances["random phase"] < yardstick, distances
assert distances["zero phase"] > distances["random phase"], distances
""",
    "02_mu_law": """
import numpy as _np
_mu, _uniform = studies["mu-law"]["loss"], studies["uniform"]["loss"]
# "at 4 bits mu is only 15 and the curve is nearly straight": the quiet clip loses a lot there
assert _mu[bits == 4][0] > 10, _mu
# "the more bits, the less the level matters"
assert (_np.diff(_mu[bits >= 4]) <= 0.1).all() and _mu[bits == 12][0] < 1, _mu
# uniform "loses SNR one for one with level" (30 dB quieter)
assert (abs(_uniform[(bits >= 4) & (bits <= 12)] - 30) < 4).all(), _uniform
# mid-tread: "at 16 bits the loud clip comes back exactly" and "at low depths ... exactly 0 dB"
assert _np.isinf(studies["mid-tread"]["loud"][bits == 16][0]) and studies["mid-tread"]["quiet"][0] == 0
""",
    "03_receptive_fields": """
# the step times are medians of several runs; the plot's slope is measured
assert all(len(r["step_times"]) >= 3 for r in scan)
import statistics as _st
assert all(abs(r["step_seconds"] - _st.median(r["step_times"])) < 1e-12 for r in scan)
assert formula == measured
""",
    "04_mode_covering_vs_seeking": """
# the sentence printed under the temperature plot is the one the numbers give
assert nb.likelihood.describe_temperature(sweep) in _Out_text()
""",
    "05_autoregressive": """
# "bits follow loudness" / "tracks the note's loudness": the held-out note's bits correlate with it
assert all(p["correlation"] > 0.3 for p in profiles.values()), {k: p["correlation"] for k, p in profiles.items()}
# the quietest 10 ms visit fewer codes than the loudest
assert len(torch.unique(codes[quietest])) < len(torch.unique(codes[loudest]))
# "SampleRNN's is the faster"
assert speed["samplernn"] > speed["wavenet"], speed
""",
    "06_flows_and_latents": """
from workbench.models import has_checkpoint as _shipped
if _shipped(vq.name):  # a trained VQ-VAE's codes say when things happen
    assert codes_study["shuffled"] > codes_study["own"], codes_study
""",
    "07_adversarial": """
# diversity was measured for both models against real notes, and the verdict printed is the numbers'
assert all(0 < s["ratio"] < 3 for s in studies.values()), studies
assert ("vary more than the GAN's" in _Out_text()) == (lik > gan)
# the melgan card printed is the loaded model's
assert card == load_card(melgan.name).get("metrics", {})
""",
}

#: Put before the CLAIMS: ``_Out_text()`` is everything the notebook printed.
OUT_TEXT = """
def _Out_text():
    return {printed!r}
"""


def _cells_seconds(cells) -> float:
    """Wall time from the first code cell's start to the last one's reply (nbclient's timestamps)."""
    from datetime import datetime

    stamps = [cell.metadata.get("execution", {}) for cell in cells if cell.cell_type == "code"]
    first = datetime.fromisoformat(stamps[0]["iopub.execute_input"].replace("Z", "+00:00"))
    last = datetime.fromisoformat(stamps[-1]["shell.execute_reply"].replace("Z", "+00:00"))
    return (last - first).total_seconds()


def _markdown(path) -> str:
    nb = nbformat.read(path, as_version=4)
    return "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")


def _printed(cells) -> str:
    return "".join(o.get("text", "") for cell in cells if cell.cell_type == "code" for o in cell.outputs
                   if o.output_type == "stream")


def test_the_teaching_notebooks_are_there():
    names = {p.stem for p in NOTEBOOKS}
    missing = [name for name in (*TEACHING, *COURSE, docs.GLOSSARY) if name not in names]
    assert not missing, f"notebooks missing from {NOTEBOOK_DIR}: {missing}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, cell in enumerate(nb.cells)
             if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)]
    assert not dirty, (f"{path.name}: code cells {dirty} hold outputs or execution counts; clear them "
                       "before committing (JupyterLab: Edit > Clear Outputs of All Cells)")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_cells_are_valid(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.cells and nb.cells[0].cell_type == "markdown", f"{path.name} should open with a title cell"


# ---- the course's scaffolding ------------------------------------------------------------------
@pytest.mark.parametrize("stem", COURSE)
def test_course_page_ends_with_exercises_and_hidden_solutions(stem):
    text = _markdown(NOTEBOOK_DIR / f"{stem}.ipynb")
    assert "## Exercises" in text, f"{stem}: no '## Exercises' section"
    exercises = text[text.index("## Exercises"):].split("## References")[0]
    n_exercises = len(re.findall(r"^\*\*\d+\.\*\*", exercises, re.M))
    n_solutions = exercises.count("<details><summary>Solution</summary>")
    assert 2 <= n_exercises <= 3, f"{stem}: {n_exercises} exercises; the course asks for 2 or 3"
    assert n_solutions == n_exercises, f"{stem}: {n_exercises} exercises but {n_solutions} hidden solutions"
    assert exercises.count("</details>") == n_solutions, f"{stem}: a <details> block is not closed"


@pytest.mark.parametrize("stem", COURSE)
def test_course_page_cites_the_survey_and_papers_on_arxiv(stem):
    text = _markdown(NOTEBOOK_DIR / f"{stem}.ipynb")
    assert "## References" in text, f"{stem}: no '## References' section"
    references = text[text.index("## References"):]
    assert re.search(r"\(https://arxiv\.org/abs/\d{4}\.\d{4,5}\)", references), f"{stem}: no arXiv link"
    assert "https://sander.ai/2020/03/24/audio-generation.html#" in references, (
        f"{stem}: link the survey's section, e.g. https://sander.ai/2020/03/24/audio-generation.html#motivation")


@pytest.mark.parametrize("stem", COURSE)
def test_course_page_links_its_neighbours_and_the_glossary(stem):
    text = _markdown(NOTEBOOK_DIR / f"{stem}.ipynb")
    before, after = docs.neighbours(stem)
    links = dict(re.findall(r"(Previous|Next): \[[^\]]+\]\(([^)#]+)\)", text))
    if before is None:
        assert "Previous" not in links, f"{stem} is the first page: it has no previous one"
    else:
        assert links.get("Previous") == f"{before}.ipynb", f"{stem}: 'Previous:' should link {before}.ipynb"
    assert links.get("Next") == f"{after}.ipynb", f"{stem}: 'Next:' should link {after}.ipynb"
    assert "(glossary.ipynb" in text, f"{stem}: link the glossary"


@pytest.mark.parametrize("stem", (*COURSE, docs.GLOSSARY))
def test_links_between_notebooks_point_at_pages_of_the_course(stem):
    text = _markdown(NOTEBOOK_DIR / f"{stem}.ipynb")
    for target in re.findall(r"\]\(([\w.-]+)\.ipynb(?:#[^)]*)?\)", text):
        if target in (*COURSE, docs.GLOSSARY):
            assert (NOTEBOOK_DIR / f"{target}.ipynb").is_file(), f"{stem} links {target}.ipynb, which is missing"
        else:  # written by others, perhaps not yet: the name must follow the sequence
            assert target in docs.SEQUENCE, f"{stem} links {target}.ipynb, which is not in the course sequence"


def test_the_glossary_defines_every_term_the_course_uses():
    text = _markdown(NOTEBOOK_DIR / f"{docs.GLOSSARY}.ipynb")
    headings = {h.strip().lower() for h in re.findall(r"^### (.+)$", text, re.M)}
    for term in ("bits per sample", "nats", "elbo", "cents", "pyin", "spectral convergence", "mr-stft",
                 "harmonic share", "hinge loss", "wgan-gp", "medoid", "mu-law", "receptive field",
                 "mode covering / mode seeking", "teacher forcing"):
        assert any(h.startswith(term) for h in headings), f"the glossary has no entry for {term!r}"


# ---- running them ------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.timeout(NOTEBOOK_TIMEOUT_S)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom_and_its_widgets_respond(path, record_property):
    nb = nbformat.read(path, as_version=4)
    n_cells = len(nb.cells)
    if not any(cell.cell_type == "code" for cell in nb.cells):
        pytest.skip(f"{path.name} holds no code")
    env = {**os.environ, "WORKBENCH_FAST": "1"}
    client = docs._client_class()(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                                  resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    with client.setup_kernel(env=env):
        for index in range(n_cells):
            client.execute_cell(nb.cells[index], index)  # raises CellExecutionError with the traceback
        claims = CLAIMS.get(path.stem)
        if claims:  # checked in the notebook's own kernel, against what it measured and printed
            nb.cells.append(nbformat.v4.new_code_cell(OUT_TEXT.format(printed=_printed(nb.cells)) + claims))
            client.execute_cell(nb.cells[-1], len(nb.cells) - 1)
        nb.cells.append(nbformat.v4.new_code_cell(EXERCISE_WIDGETS))
        client.execute_cell(nb.cells[-1], len(nb.cells) - 1)
    elapsed = time.perf_counter() - start
    own = _cells_seconds(nb.cells[:n_cells])
    record_property("seconds", round(own, 1))
    print(f"{path.name}: its cells {own:.1f} s; {elapsed:.1f} s with kernel start-up and the checks")

    executed = nb.cells[:n_cells]
    streams = [o for cell in executed if cell.cell_type == "code" for o in cell.outputs
               if o.output_type == "stream" and o.name == "stderr"]
    assert not [o.text for o in streams if "Traceback" in o.text], "a cell printed a traceback to stderr"
    figures = [o for cell in executed if cell.cell_type == "code" for o in cell.outputs
               if "image/png" in o.get("data", {})]
    assert figures, f"{path.name} showed no figure: is nb.setup() called?"
    for i, cell in enumerate(executed):  # every explorer's default view is an ordinary output
        outputs = cell.get("outputs", [])
        widget = [k for k, o in enumerate(outputs) if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
        if widget:
            static = [o for o in outputs[: widget[0]] if set(o.get("data", {})) & {"image/png", "text/html"}]
            assert static, f"{path.name} cell {i}: controls without their default view drawn above them"
    report = "".join(o.text for o in nb.cells[-1].outputs if o.output_type == "stream")
    assert "EXPLORERS [" in report
    if path.stem in TEACHING:  # each of these has live controls, bound to a name
        assert "EXPLORERS []" not in report, f"{path.name} made no nb.Explorer the test could find"


# ---- make docs ---------------------------------------------------------------------------------
SMALL_NOTEBOOK = [
    ("markdown", "# A small page\n\n$$F(x) = \\ln(1 + \\mu |x|)$$\n\nNext: [01 · Phase](01_phase.ipynb)"),
    ("code", "import ipywidgets as widgets\nfrom workbench import notebook as nb\nimport workbench.viz as viz\n"
             "nb.setup()\nex = nb.Explorer(lambda n: viz.line_plot(range(n), {'n': list(range(n))}), "
             "n=widgets.IntSlider(value=3, min=2, max=5))\nex"),
]


@pytest.mark.slow
@pytest.mark.timeout(NOTEBOOK_TIMEOUT_S)
def test_make_docs_writes_an_offline_page(tmp_path):
    cells = [nbformat.v4.new_markdown_cell(s) if kind == "markdown" else nbformat.v4.new_code_cell(s)
             for kind, s in SMALL_NOTEBOOK]
    source = tmp_path / "small.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), source)
    page = docs.build_html(source, tmp_path / "out", fast=True)
    html = page.read_text()
    assert page == tmp_path / "out" / "small.html"
    assert not docs.remote_scripts(html), docs.remote_scripts(html)
    assert not re.search(r"<script[^>]+src=[\"']?https?:", html)
    assert "data:image/png;base64" in html or 'src="data:image/png' in html, "the explorer's figure is not in the page"
    assert 'href="01_phase.html"' in html and "01_phase.ipynb" not in html
