"""Fill the README's model table from the checkpoints' cards, and list benchmarks/results.json's ratios.

The table is :func:`workbench.evaluate.zoo_table`: the same cells, with the same rounding, as the
studio's model zoo.

Usage: python scripts/update_readme.py
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from workbench.evaluate import ZOO_NOTE, music_table, zoo_table

ROOT = Path(__file__).resolve().parent.parent


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|")


def table() -> str:
    headers, rows = zoo_table()
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    lines += ["", ZOO_NOTE]
    music_headers, music_cells = music_table()
    if music_cells:
        lines += ["", "Models of music (scores, notes and the loop between them), with their own numbers:", "",
                  "| " + " | ".join(music_headers) + " |", "|" + "---|" * len(music_headers)]
        lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in music_cells]
    bench_file = ROOT / "benchmarks" / "results.json"
    bench = json.loads(bench_file.read_text()) if bench_file.exists() else {}
    if bench.get("ratios"):
        lines.append("")
        lines.append(f"Generation benchmark (`make bench`, {bench.get('measured_at', '')}, "
                     f"{bench.get('threads')} thread):")
        lines.extend(f"- {k}: {v}x" for k, v in bench["ratios"].items())
    return "\n".join(lines)


def main() -> int:
    readme = ROOT / "README.md"
    text = readme.read_text()
    new = re.sub(r"<!-- models:begin -->.*<!-- models:end -->",
                 lambda _: f"<!-- models:begin -->\n{table()}\n<!-- models:end -->", text, flags=re.S)
    readme.write_text(new)
    print(table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
