"""No hand-typed table of measured numbers in the book: a markdown table whose cells hold measured-looking numbers
(decimals, percentages, ratios like 3.2×, ±, timings like 12 s) must be rendered by a code cell (from values the
notebook computes or from a generated JSON), never typed into a markdown cell, where it would go stale."""
import json, re
from pathlib import Path
import pytest

NBS = Path(__file__).resolve().parents[1] / "nbs"
MEASURED = re.compile(r"\d\.\d|\d\s*%|\d\s*×|±|\b\d+\s*(?:s|ms|µs|tok/s|MiB|GiB|MB|GB)\b|\b\d+(?:\.\d+)?\s*M\b")


def typed_tables(nb: dict) -> list:
    "(cell index, first offending row) for markdown table rows holding measured-looking numbers."
    bad = []
    for i, c in enumerate(nb["cells"]):
        if c["cell_type"] != "markdown": continue
        for line in "".join(c["source"]).splitlines():
            s = line.strip()
            if s.startswith("|") and s.count("|") >= 3 and not set(s) <= set("|-: ") and MEASURED.search(s):
                bad.append((i, s[:120])); break
    return bad


def test_detector_catches_a_typed_table_and_spares_prose():
    nb = {"cells": [{"cell_type": "markdown", "source": ["| seed | acc |\n", "|---|---|\n", "| 0 | 0.58 |\n"]},
                    {"cell_type": "markdown", "source": ["The loss fell to 0.58 (see the cell above).\n"]},
                    {"cell_type": "markdown", "source": ["| field | MiniMind2 |\n", "|---|---|\n", "| layers | 8 |\n"]},
                    {"cell_type": "code", "source": ["print('| 0 | 0.58 |')\n"]}]}
    assert [i for i, _ in typed_tables(nb)] == [0]


@pytest.mark.parametrize("path", sorted(NBS.glob("*.ipynb")), ids=lambda p: p.name)
def test_no_hand_typed_result_table(path):
    bad = typed_tables(json.loads(path.read_text(encoding="utf-8")))
    assert not bad, (f"{path.name}: markdown table(s) of measured numbers typed by hand; render them from a cell "
                     f"or a generated JSON (minimind.sweeps): {bad}")
