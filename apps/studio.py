"""The studio: every tab in one page. ``workbench app`` (and ``make app``) calls :func:`launch`.

Safe by default: binds 127.0.0.1, no share link, an upload size limit, no extra served paths
(outputs go to Gradio's temp cache; the one folder served besides is ``docs/notebooks/``, the
read-only HTML copies of the notebooks, when ``make docs`` has built it), no monitoring,
analytics or MCP server, and a queue with a concurrency limit so one long generation never
starves the other tabs. A/B votes are written to a local SQLite file (:mod:`apps.votes`).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file (workbench app loads it by path): find `apps`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gradio as gr  # noqa: E402

from apps import common, compose, generate_tab, mulaw_lab, phase_lab, receptive_field, zoo  # noqa: E402

#: Events that run at once across all sessions (heavy ones also share a limit of 1).
CONCURRENCY_LIMIT = 2
#: Requests waiting in the queue before new ones are turned away.
MAX_QUEUE = 32


def build_demo(extra_checkpoints: dict | None = None) -> gr.Blocks:
    """All tabs in one ``gr.Blocks`` (built, not launched).

    Parameters
    ----------
    extra_checkpoints : dict label -> checkpoint folder, optional
        Offered beside the shipped checkpoints (tests, or your own training runs).
    """
    flags = common.CancelFlags()
    models, failures = common.available_models(extra_checkpoints)
    with gr.Blocks(title="workbench studio", analytics_enabled=False) as demo:
        gr.Markdown("# workbench studio\nGenerative models of raw audio, small enough to learn from. "
                    "Following S. Dieleman, *Generating music in the waveform domain*.")
        with gr.Tabs():
            with gr.Tab("Generate"):
                generate_tab.build(models, failures, flags)
            with gr.Tab("Compose"):
                compose.build(flags)
            with gr.Tab("Phase lab"):
                phase_lab.build(models, flags)
            with gr.Tab("Mu-law lab"):
                mulaw_lab.build()
            with gr.Tab("Receptive field"):
                receptive_field.build()
            with gr.Tab("Model zoo"):
                zoo.build(extra_checkpoints)
    demo.queue(default_concurrency_limit=CONCURRENCY_LIMIT, max_size=MAX_QUEUE)
    return demo


def launch_settings(port: int) -> dict:
    """The keyword arguments of ``Blocks.launch`` that keep the studio private and bounded."""
    return dict(
        server_name="127.0.0.1", server_port=port, share=False, max_file_size=common.MAX_FILE_SIZE,
        allowed_paths=[], enable_monitoring=False, mcp_server=False, ssr_mode=False,
        show_error=False, inbrowser=False, theme=gr.themes.Soft(), css=common.CSS,
    )


def launch(port: int = 7860, *, extra_checkpoints: dict | None = None,
           prevent_thread_lock: bool = False) -> gr.Blocks:
    """Build and serve the studio on 127.0.0.1:``port``; returns the running ``Blocks``.

    With ``prevent_thread_lock`` the call returns at once (tests); close with ``demo.close()``.
    """
    demo = build_demo(extra_checkpoints)
    demo.launch(prevent_thread_lock=prevent_thread_lock, **launch_settings(port))
    return demo


if __name__ == "__main__":
    launch()
