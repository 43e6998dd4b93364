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
    if bench.get("rows"):
        lines += ["", f"Generation benchmark (`make bench`, {bench.get('measured_at', '')}, {bench.get('threads')} "
                      "thread, one process: the ratios compare numbers measured side by side):", ""]
        lines += bench_table(bench["rows"])
    if bench.get("ratios"):
        lines.append("")
        lines.extend(f"- {k}: {v}x" for k, v in bench["ratios"].items())
    return "\n".join(lines)


def bench_table(rows: list[dict]) -> list[str]:
    """One line per model and sampler: samples/s at batch 1 and 8, real time, and what batching buys."""
    by = {}
    for r in rows:
        by.setdefault((r["model"], r["method"]), {})[r["batch"]] = r
    out = ["| model | sampler | samples/s, batch 1 | x real time | samples/s, batch 8 (all voices) | batch 8 / batch 1 |",
           "|---|---|---|---|---|---|"]
    for (model, method), batches in by.items():
        one, eight = batches.get(1), batches.get(8)
        ratio = f"{eight['samples_per_second'] / one['samples_per_second']:.1f}x" if one and eight else "—"
        out.append("| " + " | ".join([
            model, method,
            f"{one['samples_per_second']:,.0f}" if one else "—",
            f"{one['real_time_factor']:.2f}" if one else "—",
            f"{eight['samples_per_second']:,.0f}" if eight else "—", ratio]) + " |")
    return out


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
