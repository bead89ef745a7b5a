"""Write README.md from nbs/index.ipynb without Quarto.

nbdev-readme renders through Quarto, which cannot be installed offline. The home notebook is
mostly markdown, so the README is its markdown cells verbatim and its visible code cells as
fenced blocks; `#| hide` cells are dropped and `#|` directives are stripped. A cell marked `#| readme: demo`
is replaced by the demo's tables, rendered by `minimind.pipeline.demo_markdown` from the generated
nbs/sweeps/ch23_demo.json (the same call the notebook cell makes), so the README's numbers are never typed.
Usage: python tools/readme.py [--check]
"""
import json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
HEADER = "<!-- Generated from nbs/index.ipynb by tools/readme.py: edit the notebook, not this file. -->\n\n"


def cell_text(cell: dict) -> str:
    "The source of a notebook cell as one string."
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def demo_section() -> str:
    "The demo's tables from nbs/sweeps/ch23_demo.json (read as is: tests/test_sweeps.py checks that it is current)."
    from minimind.pipeline import DEMO_SWEEP, demo_markdown
    from minimind.sweeps import sweep_path
    path = sweep_path(DEMO_SWEEP)
    if not path.is_file(): sys.exit(f"{path} is missing: run `python tools/sweeps.py {DEMO_SWEEP.name}`")
    return demo_markdown(json.loads(path.read_text(encoding="utf-8")))


def render(nb_path: Path) -> str:
    "Render a notebook's markdown and visible code cells as GitHub markdown."
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    parts = []
    for cell in nb["cells"]:
        text = cell_text(cell).strip("\n")
        if cell["cell_type"] == "markdown" and text:
            parts.append(text)
        elif cell["cell_type"] == "code":
            lines = text.splitlines()
            directives = [l.strip().lstrip("#|").strip() for l in lines if l.lstrip().startswith("#|")]
            if "readme: demo" in directives:
                parts.append(demo_section())
                continue
            if any(d in ("hide", "exporti") or d.startswith(("export", "eval")) or d.startswith("default_exp") for d in directives):
                continue
            code = "\n".join(l for l in lines if not l.lstrip().startswith("#|")).strip("\n")
            if code:
                parts.append(f"```python\n{code}\n```")
    return HEADER + "\n\n".join(parts) + "\n"


def main() -> int:
    out = ROOT / "README.md"
    text = render(ROOT / "nbs" / "index.ipynb")
    if "--check" in sys.argv:
        if not out.exists() or out.read_text(encoding="utf-8") != text:
            print("README.md is stale: run `make sync` (it is generated from nbs/index.ipynb)")
            return 1
        return 0
    out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
