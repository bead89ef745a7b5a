"""The README's demo numbers are the generated file's: the demo section of README.md is exactly what
`demo_markdown` renders from nbs/sweeps/ch23_demo.json, each number in it parses back to that file's value
(checked here cell by cell, not through the renderer), and the Quick start prose types no measured number."""
import json, re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
DATA = json.loads((ROOT / "nbs" / "sweeps" / "ch23_demo.json").read_text(encoding="utf-8"))
ROW = DATA["rows"][0]
STAGES = {"pretraining": ("pretrain", "loss"), "SFT": ("sft", "loss"), "DPO": ("dpo", "accuracy"), "GRPO": ("grpo", "reward")}


def table(title_cell: str) -> dict:
    "README table rows whose header starts with `title_cell`: {first cell: [cells]}."
    lines, out, on = README.splitlines(), {}, False
    for l in lines:
        cells = [c.strip() for c in l.strip().strip("|").split("|")] if l.startswith("|") else None
        if cells and cells[0] == title_cell: on = True; continue
        if on and not cells: break
        if on and not set(cells[0]) <= set("-:"): out[cells[0]] = cells
    return out


def close(text: str, value: float, digits: int) -> bool: return abs(float(text) - value) <= 0.5 * 10 ** -digits + 1e-12


def test_readme_holds_the_rendered_demo_section():
    from minimind.pipeline import demo_markdown
    assert demo_markdown(DATA) in README, "README.md's demo tables differ from nbs/sweeps/ch23_demo.json: run `make sync`"


def test_stage_table_matches_json():
    rows = table("stage")
    assert set(STAGES) <= set(rows), rows.keys()
    for name, (s, k) in STAGES.items():
        cells = rows[name]
        assert close(cells[1].removesuffix(" s"), ROW[f"{s}.seconds"], 0) and close(cells[2].removesuffix(" s"), ROW[f"{s}.cpu_seconds"], 0), cells
        for col, split in ((4, "train"), (5, "heldout")):
            before, after = cells[col].split("→")
            assert close(before, ROW[f"{s}.before.{split}_{k}"], 3) and close(after, ROW[f"{s}.after.{split}_{k}"], 3), (name, split, cells)


def test_suite_table_matches_json():
    rows = table("after stage")
    assert set(STAGES) <= set(rows), rows.keys()
    for name, (s, _) in STAGES.items():
        for col, key in ((1, "train"), (2, "heldout"), (3, "all")):
            assert close(rows[name][col], ROW[f"{s}.suite.{key}"], 3), (name, key, rows[name])


def test_quick_start_prose_types_no_measured_number():
    from minimind.pipeline import demo_markdown
    quick = README.split("## Quick start", 1)[1].split("\n## ", 1)[0].replace(demo_markdown(DATA), "")
    prose = [re.sub(r"`[^`]*`", "", l) for l in quick.splitlines() if l and not l.startswith(("|", "```"))]   # inline code: versions
    bad = [l for l in prose if re.search(r"\d+(\.\d+)?\s*(%|s\b|min|minutes)|\d\.\d\d", l)]
    assert not bad, f"measured numbers typed into the README's Quick start (render them from the JSON): {bad}"
