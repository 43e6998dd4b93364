"""Gradio apps of the workbench: ``studio.py`` puts every tab in one page (``workbench app``).

Each tab file has ``build(...)`` (its layout and callbacks inside an open ``gr.Blocks``) and
``build_demo() -> gr.Blocks`` (the tab on its own page); shared pieces live in ``common.py``.
``compare.py`` is the Generate tab's blind A/B mode, ``votes.py`` keeps its votes (local SQLite).
"""
