"""Read-only HTML copies of the notebooks, executed, for readers without a kernel (``make docs``).

Each notebook is run top to bottom in a fresh kernel (nbclient) and rendered with nbconvert's HTML
exporter into ``docs/notebooks/NAME.html``, offline: figures and audio are embedded in the page,
every ``<script src="http...">`` and remote stylesheet the templates add (require.js, MathJax,
the widget manager, all from CDNs) is removed, so the page opens from disk or from the studio with
no network. Formulas stay as their TeX source; widgets show their default view, which the
notebooks draw as ordinary output (:class:`workbench.notebook.Explorer`). Links between
notebooks (``01_phase.ipynb``) are pointed at their HTML copies.

Usage::

    python -m workbench.notebook.docs [--fast] [--out docs/notebooks] [NOTEBOOK ...]

Notebook: all of notebooks/, in :data:`SEQUENCE` order.
"""

from __future__ import annotations

import argparse
import os
import queue
import re
import sys
import time
from pathlib import Path

from ..errors import ParameterError

#: The course, in order; each notebook links to its neighbours here.
SEQUENCE = (
    "00_tour", "01_phase", "02_mu_law", "03_receptive_fields", "04_mode_covering_vs_seeking",
    "05_autoregressive", "06_flows_and_latents", "07_adversarial", "08_spectrogram_and_dsp",
    "09_music_from_notes", "10_attention", "11_long_range_structure", "12_distillation",
)
#: Pages beside the sequence that every notebook links to.
GLOSSARY = "glossary"

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent.parent / "notebooks"
DOCS_DIR = Path(__file__).resolve().parent.parent.parent / "docs" / "notebooks"

_REMOTE_SCRIPT = re.compile(r"<script\b[^>]*\bsrc\s*=\s*(?:[\"']?(?:https?:)?//[^>]*|\"\"|'')[^>]*>.*?</script\s*>",
                            re.IGNORECASE | re.DOTALL)  # remote, or emptied (mathjax_url="")
_REMOTE_LINK = re.compile(r"<link\b[^>]*\bhref\s*=\s*[\"']?(?:https?:)?//[^>]*>", re.IGNORECASE)
_NOTEBOOK_HREF = re.compile(r"(href\s*=\s*[\"'])([\w.-]+)\.ipynb([#\"'])", re.IGNORECASE)


def neighbours(stem: str) -> tuple[str | None, str | None]:
    """The notebooks before and after ``stem`` in :data:`SEQUENCE` (None at either end).

    Examples
    --------
    >>> neighbours("08_spectrogram_and_dsp")
    ('07_adversarial', '09_music_from_notes')
    """
    if stem not in SEQUENCE:
        raise ParameterError(f"{stem!r} is not in the course sequence: {', '.join(SEQUENCE)}")
    i = SEQUENCE.index(stem)
    return (SEQUENCE[i - 1] if i else None), (SEQUENCE[i + 1] if i + 1 < len(SEQUENCE) else None)


def remote_scripts(page: str) -> list[str]:
    """The ``<script>`` tags of an HTML page that load code from the network (should be none)."""
    return re.findall(r"<script\b[^>]*\bsrc\s*=\s*[\"']?(?:https?:)?//[^>]*>", page, re.IGNORECASE)


def offline(page: str) -> str:
    """``page`` without remote scripts and stylesheets, its notebook links pointed at ``.html``.

    Examples
    --------
    >>> offline('<script src="https://cdn.example/x.js"></script><script src=""> </script><a href="01_phase.ipynb#top">01</a>')
    '<a href="01_phase.html#top">01</a>'
    """
    page = _REMOTE_SCRIPT.sub("", page)
    page = _REMOTE_LINK.sub("", page)
    return _NOTEBOOK_HREF.sub(r"\1\2.html\3", page)


def _in_slices(wait):
    """``wait`` (a channel's ``get_msg``) polled in one-second slices up to the same deadline."""

    async def get_msg(timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = 1.0 if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                return await wait(timeout=min(1.0, left))
            except queue.Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    return get_msg


def _client_class():
    import nbclient

    class Client(nbclient.NotebookClient):
        """nbclient, waiting on the shell and IOPub channels in short slices.

        nbclient waits for a cell's reply with one ``poll`` as long as the cell timeout. While
        widget comm messages flow on IOPub that wake-up is sometimes lost (jupyter/nbclient#312)
        and the run stalls for the whole timeout although the reply has arrived. Polling in
        one-second slices picks the reply up at the next slice instead.
        """

        async def async_start_new_kernel_client(self):
            kc = await super().async_start_new_kernel_client()
            for channel in (kc.shell_channel, kc.iopub_channel):  # the reply, then the kernel's idle
                channel.get_msg = _in_slices(channel.get_msg)
            return kc

    return Client


def execute(nb, path: Path, fast: bool = False, timeout: int = 900, env: dict | None = None):
    """Run notebook ``nb`` (read from ``path``) in a fresh kernel in its own folder; returns it executed.

    ``fast`` sets ``WORKBENCH_FAST=1`` (the notebooks shorten their loops); otherwise it is unset.
    """
    from .display import FAST_ENV

    env = dict(os.environ if env is None else env)
    env.pop(FAST_ENV, None)
    if fast:
        env[FAST_ENV] = "1"
    client = _client_class()(nb, timeout=timeout, kernel_name="python3",
                             resources={"metadata": {"path": str(Path(path).parent)}})
    client.execute(env=env)
    return nb


def build_html(path, out_dir, fast: bool = False, run: bool = True, timeout: int = 900) -> Path:
    """Execute the notebook at ``path`` and write its offline HTML copy to ``out_dir/NAME.html``.

    Parameters
    ----------
    path : str or Path
        A ``.ipynb`` file.
    out_dir : str or Path
        Created when missing.
    fast : bool
        Run with ``WORKBENCH_FAST=1``.
    run : bool
        False: render the notebook as it is, without executing it.

    Returns
    -------
    Path of the page.

    Raises
    ------
    ParameterError
        ``path`` is not a notebook.
    CellExecutionError
        A cell failed (nbclient's error names the cell and carries the traceback).
    """
    import nbformat
    from nbconvert import HTMLExporter

    path = Path(path)
    if path.suffix != ".ipynb" or not path.is_file():
        raise ParameterError(f"{path} is not a notebook file (.ipynb)")
    nb = nbformat.read(path, as_version=4)
    if run and any(cell.cell_type == "code" for cell in nb.cells):
        nb = execute(nb, path, fast=fast, timeout=timeout)
    exporter = HTMLExporter(template_name="lab", embed_images=True)
    exporter.mathjax_url = ""  # no CDN; the formulas stay as TeX
    page, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": path.stem}})
    page = offline(page)
    leftover = remote_scripts(page)
    if leftover:  # pragma: no cover - a template change nbconvert might make
        raise RuntimeError(f"{path.name}: remote scripts survived: {leftover}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{path.stem}.html"
    target.write_text(page, encoding="utf-8")
    return target


def notebooks(names=None, notebook_dir: Path = NOTEBOOK_DIR) -> list[Path]:
    """The notebooks to build: ``names`` (stems or paths), else every notebook in ``notebook_dir``."""
    if names:
        paths = [Path(n) if str(n).endswith(".ipynb") else notebook_dir / f"{n}.ipynb" for n in names]
    else:
        paths = sorted(notebook_dir.glob("*.ipynb"))
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ParameterError(f"no such notebook: {', '.join(missing)}")
    return paths


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="stems or paths (default: every notebook)")
    parser.add_argument("--out", default=str(DOCS_DIR), help="where the pages go")
    parser.add_argument("--fast", action="store_true", help="run with WORKBENCH_FAST=1 (shorter loops)")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    args = parser.parse_args(argv)
    failed = []
    for path in notebooks(args.notebooks):
        began = time.perf_counter()
        try:
            page = build_html(path, args.out, fast=args.fast, timeout=args.timeout)
        except Exception as exc:  # keep building the others, report at the end
            failed.append(path.name)
            print(f"{path.name}: FAILED: {type(exc).__name__}: {str(exc)[:2000]}", file=sys.stderr, flush=True)
            continue
        print(f"{path.name} -> {page} ({time.perf_counter() - began:.0f} s)", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
