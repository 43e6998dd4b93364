"""Fixtures shared by every test module (generic ones only; model fixtures live with the models)."""

from __future__ import annotations

import pytest

from workbench.audio import Audio
from workbench.data import examples


@pytest.fixture(scope="session")
def clips() -> dict[str, Audio]:
    """The example clips shipped in ``assets/audio/`` (real SoundFont instruments, 16 kHz mono)."""
    return examples()
