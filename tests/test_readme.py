"""The README's model table is made from the cards, never typed: it must match what they say now."""

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_model_table_is_the_one_the_cards_and_benchmark_make():
    spec = importlib.util.spec_from_file_location("update_readme", ROOT / "scripts" / "update_readme.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- models:begin -->\n(.*)\n<!-- models:end -->", readme, flags=re.S)
    assert block, "the README lost its <!-- models:begin/end --> markers"
    assert block.group(1) == script.table(), "the table is stale: run python scripts/update_readme.py"
