"""Fill the README's model table from the checkpoints' cards and benchmarks/results.json.

Usage: python scripts/update_readme.py
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from workbench.evaluate import zoo_rows

ROOT = Path(__file__).resolve().parent.parent


def _fmt(value, spec="{}"):
    return "—" if value is None else spec.format(value)


def table() -> str:
    bench_file = ROOT / "benchmarks" / "results.json"
    bench = json.loads(bench_file.read_text()) if bench_file.exists() else {"rows": [], "ratios": {}}
    fastest = {}
    for r in bench["rows"]:
        if r["batch"] == 1:
            fastest[r["model"]] = max(fastest.get(r["model"], 0), r["samples_per_second"])
    lines = ["| model | family | likelihood | parameters | held-out bits/sample | pitch accuracy | "
             "samples/s (1 voice) | x real time | training steps | wall time |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in zoo_rows():
        speed = fastest.get(row["name"], row["samples_per_second"])
        from workbench.models import load_card

        card = load_card(row["name"])
        rate = card.get("data", {}).get("train", {}).get("sample_rate")
        rtf = speed / rate if speed and rate else row["real_time_factor"]
        devices = {r.get("device", "cpu") for r in card.get("runs", [])} - {"cpu"}
        where = f" (partly on {', '.join(sorted(devices))})" if devices else ""
        lines.append(
            f"| {row['name']} | {row['family']} | {row['likelihood']} | {_fmt(row['parameters'], '{:,}')} | "
            f"{_fmt(row['bits_per_sample'], '{:.2f}')} | {_fmt(row['pitch_accuracy'], '{:.0%}')} | "
            f"{_fmt(speed, '{:,.0f}')} | {_fmt(rtf, '{:.1f}')} | {_fmt(row['steps'])} | "
            f"{_fmt(row['wall_time_s'] and row['wall_time_s'] / 60, '{:.0f} min')}{where} |")
    if bench.get("ratios"):
        lines.append("")
        lines.append(f"Generation benchmark ({bench.get('measured_at', '')}, {bench.get('threads')} thread):")
        lines.extend(f"- {k}: {v}x" for k, v in bench["ratios"].items())
    return "\n".join(lines)


def main() -> int:
    readme = ROOT / "README.md"
    text = readme.read_text()
    new = re.sub(r"<!-- models:begin -->.*<!-- models:end -->",
                 f"<!-- models:begin -->\n{table()}\n<!-- models:end -->", text, flags=re.S)
    readme.write_text(new)
    print(table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
