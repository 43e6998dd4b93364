"""Blind A/B votes from the Generate tab's compare mode, kept in a small SQLite file on this machine.

Each vote records the two settings that were compared (a model label and its temperature), which
one was heard as "A", the winner, and the conditioning and seed. Nothing leaves the machine. The
model zoo shows :meth:`VoteStore.summary`: wins per pair of settings.

The file lives in the user's data directory (:func:`data_dir`); set ``WORKBENCH_DATA_DIR`` to put
it elsewhere (the tests use a temporary folder).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

#: Overrides where votes (and anything else the studio keeps) are stored.
DATA_DIR_ENV = "WORKBENCH_DATA_DIR"
FILE_NAME = "votes.sqlite"
#: What a vote may say.
WINNERS = ("A", "B", "tie")

SCHEMA = """
CREATE TABLE IF NOT EXISTS votes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    voted_at TEXT NOT NULL,
    first TEXT NOT NULL,       -- the first setting chosen on the page
    second TEXT NOT NULL,      -- the second setting chosen on the page
    first_was TEXT NOT NULL,   -- "A" or "B": where the first setting was heard
    winner TEXT NOT NULL,      -- "first", "second" or "tie"
    cond TEXT NOT NULL,        -- JSON: pitch, instrument, velocity, seconds
    seed INTEGER NOT NULL
)
"""


def data_dir() -> Path:
    """Where the studio keeps its files: ``$WORKBENCH_DATA_DIR``, else the platform's user data
    directory (``platformdirs``), else ``~/.local/share/workbench``."""
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).expanduser()
    try:
        import platformdirs
    except ImportError:
        return Path.home() / ".local" / "share" / "workbench"
    return Path(platformdirs.user_data_dir("workbench", appauthor=False))


@dataclass(frozen=True)
class Setting:
    """One side of a comparison: a model label and the temperature it sampled at (None: it has none)."""

    label: str
    temperature: float | None = None

    def __str__(self) -> str:
        return self.label if self.temperature is None else f"{self.label} (temperature {self.temperature:g})"


class VoteStore:
    """The votes file; each call opens its own connection, so any thread may use one store."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else data_dir() / FILE_NAME

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=10)
        db.execute(SCHEMA)
        return db

    def record(self, first: Setting, second: Setting, first_was: str, vote: str, cond: dict, seed: int) -> None:
        """Store one vote. ``vote`` is what the listener pressed (``A``, ``B`` or ``tie``).

        Raises
        ------
        ValueError
            ``first_was`` or ``vote`` outside :data:`WINNERS`.
        """
        if first_was not in ("A", "B") or vote not in WINNERS:
            raise ValueError(f"first_was={first_was!r} must be 'A' or 'B' and vote={vote!r} one of {WINNERS}")
        winner = "tie" if vote == "tie" else ("first" if vote == first_was else "second")
        with contextlib.closing(self._connect()) as db, db:
            db.execute("INSERT INTO votes (voted_at, first, second, first_was, winner, cond, seed) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (time.strftime("%Y-%m-%dT%H:%M:%S"), str(first), str(second), first_was, winner,
                        json.dumps(cond, sort_keys=True, default=str), int(seed)))

    def count(self) -> int:
        if not self.path.exists():
            return 0
        with contextlib.closing(self._connect()) as db:
            return int(db.execute("SELECT COUNT(*) FROM votes").fetchone()[0])

    def summary(self) -> list[dict]:
        """Wins per pair of settings (the pair in name order, whichever was chosen first).

        Returns
        -------
        list of dict with ``x``, ``y`` (settings), ``x_wins``, ``y_wins``, ``ties``, ``votes``,
        most voted pair first.
        """
        if not self.path.exists():
            return []
        with contextlib.closing(self._connect()) as db:
            rows = db.execute("SELECT first, second, winner FROM votes").fetchall()
        pairs: dict[tuple[str, str], dict] = {}
        for first, second, winner in rows:
            x, y = sorted((first, second))
            entry = pairs.setdefault((x, y), {"x": x, "y": y, "x_wins": 0, "y_wins": 0, "ties": 0, "votes": 0})
            entry["votes"] += 1
            if winner == "tie":
                entry["ties"] += 1
            else:
                won = first if winner == "first" else second
                if x == y:  # two draws of one setting: the first draw's wins count as x's
                    won_x = winner == "first"
                else:
                    won_x = won == x
                entry["x_wins" if won_x else "y_wins"] += 1
        return sorted(pairs.values(), key=lambda e: (-e["votes"], e["x"], e["y"]))

