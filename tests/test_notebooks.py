"""The teaching notebooks: committed without outputs, and each runs top to bottom headless.

Each notebook is executed as committed (plus one extra cell at the end) by nbclient in a fresh
kernel, with ``WORKBENCH_FAST=1`` (notebooks may only shorten loops with it). The extra cell moves
every control of every :class:`workbench.notebook.Explorer` the notebook made, as a user would,
and fails if a widget callback raises. The notebook's wall time is printed (``-s``) and recorded
as a test property; speed is not asserted (see benchmarks/).
"""

from __future__ import annotations

import os
import queue
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
TEACHING = ("00_tour", "01_phase", "02_mu_law", "03_receptive_fields", "04_mode_covering_vs_seeking")
CELL_TIMEOUT_S = 240
NOTEBOOK_TIMEOUT_S = 420

EXERCISE_WIDGETS = """
from workbench.notebook import Explorer as _Explorer
_moved = {_name: _value.exercise() for _name, _value in list(globals().items()) if isinstance(_value, _Explorer)}
print("EXPLORERS", sorted(_moved), flush=True)
"""


class _Client(nbclient.NotebookClient):
    """nbclient, waiting on the shell channel in short slices.

    nbclient waits for a cell's reply with one ``poll`` as long as the cell timeout. While widget
    comm messages flow on IOPub that wake-up is sometimes lost (jupyter/nbclient#312) and the run
    stalls for the whole timeout although the reply has arrived. Polling in one-second slices
    picks the reply up at the next slice instead.
    """

    async def async_start_new_kernel_client(self):
        kc = await super().async_start_new_kernel_client()
        channel = kc.shell_channel
        wait = channel.get_msg

        async def get_msg(timeout=None):
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                left = 1.0 if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    return await wait(timeout=min(1.0, left))
                except queue.Empty:
                    if deadline is not None and time.monotonic() >= deadline:
                        raise

        channel.get_msg = get_msg
        return kc


def _cells_seconds(cells) -> float:
    """Wall time from the first code cell's start to the last one's reply (nbclient's timestamps)."""
    from datetime import datetime

    stamps = [cell.metadata.get("execution", {}) for cell in cells if cell.cell_type == "code"]
    first = datetime.fromisoformat(stamps[0]["iopub.execute_input"].replace("Z", "+00:00"))
    last = datetime.fromisoformat(stamps[-1]["shell.execute_reply"].replace("Z", "+00:00"))
    return (last - first).total_seconds()


def test_the_teaching_notebooks_are_there():
    names = {p.stem for p in NOTEBOOKS}
    missing = [name for name in TEACHING if name not in names]
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


@pytest.mark.slow
@pytest.mark.timeout(NOTEBOOK_TIMEOUT_S)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom_and_its_widgets_respond(path, record_property):
    nb = nbformat.read(path, as_version=4)
    n_cells = len(nb.cells)
    nb.cells.append(nbformat.v4.new_code_cell(EXERCISE_WIDGETS))
    env = {**os.environ, "WORKBENCH_FAST": "1"}
    client = _Client(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                     resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute(env=env)  # raises CellExecutionError with the traceback if any cell fails
    elapsed = time.perf_counter() - start
    own = _cells_seconds(nb.cells[:n_cells])
    record_property("seconds", round(own, 1))
    print(f"{path.name}: its cells {own:.1f} s; {elapsed:.1f} s with kernel start-up and the widget check")

    executed = nb.cells[:n_cells]
    streams = [o for cell in executed if cell.cell_type == "code" for o in cell.outputs
               if o.output_type == "stream" and o.name == "stderr"]
    assert not [o.text for o in streams if "Traceback" in o.text], "a cell printed a traceback to stderr"
    figures = [o for cell in executed if cell.cell_type == "code" for o in cell.outputs
               if "image/png" in o.get("data", {})]
    assert figures, f"{path.name} showed no figure: is nb.setup() called?"
    report = "".join(o.text for o in nb.cells[-1].outputs if o.output_type == "stream")
    assert "EXPLORERS [" in report
    if path.stem in TEACHING:  # each of these has live controls, bound to a name
        assert "EXPLORERS []" not in report, f"{path.name} made no nb.Explorer the test could find"
