"""One verdict per seed claim: the bank's.

Chapters do not type a verdict on a seed claim in their own prose; they call `show_claim("sNN.cM")`, which renders the
bank's quote, verdict and note. (a) No markdown cell uses a verdict label, except in the notebooks that explain the
scheme (21_quiz, 21a_... to 21e_..., and the front page index.ipynb); (b) every `show_claim` call in a notebook names
a claim that exists. Failures name the notebook, the cell and the words found.
"""
import json, re
from pathlib import Path

import pytest

from minimind.bank import load_bank

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "nbs").glob("*.ipynb"))
CLAIMS = {c.id for c in load_bank().claims}

# the labels chapters used before the bank rendered its verdict; emphasis (*, _) is removed before matching,
# so "*how* the mask is found, not *why*" is caught as well as "how, not why"
# A sentence that merely mentions "the bank's verdict" is fine; a verdict typed as one ("Verdict: wrong", "the
# verdict is right") is not.
VERDICT_WORDS = re.compile(r"wrong as stated|half[- ]right|half[- ]true|oversells?|misleading"
                           r"|\bverdicts?\s*[:：]|\bverdicts?\s+(?:is|are|was|stays?)\s+(?:right|wrong)"
                           r"|\bhow\b[^.?!\n]{0,40}\bnot\s+why\b", re.I)
CLAIM_CALL = re.compile(r"""\bshow_claim\(\s*(['"])(.*?)\1""")


def explains_the_scheme(nb: Path) -> bool:
    "Chapter 21 and its companion notebooks (21a_..., 21b_...) explain the verdict scheme itself; so does the front page."
    return re.match(r"21[a-z]?_", nb.name) is not None or nb.name == "index.ipynb"


def cells(nb: Path) -> list:
    return json.loads(nb.read_text(encoding="utf-8"))["cells"]


def verdict_words(text: str) -> list:
    "Verdict labels used in a markdown cell's text (emphasis markers dropped)."
    return [m.group(0) for m in VERDICT_WORDS.finditer(re.sub(r"[*_]", "", text))]


def test_the_patterns_catch_what_chapters_wrote():
    assert verdict_words("Item 2 is wrong as stated.") == ["wrong as stated"]
    assert verdict_words("Point 3 is *how* the mask is found, not *why* it exists.")
    assert verdict_words("**Half right.** Autocast works per op") and verdict_words("\"stable\" oversells it")
    assert verdict_words("- *No manual ρ*: half true") and verdict_words("is misleading.")
    assert not verdict_words("How does the cache grow? Not with the batch, with the length.")
    assert verdict_words("Verdict: wrong.") and verdict_words("The verdict is right, with a caveat.")
    assert not verdict_words("The bank's verdict on the seed's line, which this answer argues:")
    assert CLAIM_CALL.findall('show_claim("s08.c2"); show_claim( \'s03.c6\')') == [('"', "s08.c2"), ("'", "s03.c6")]


@pytest.mark.parametrize("nb", [n for n in NOTEBOOKS if not explains_the_scheme(n)], ids=lambda p: p.name)
def test_no_verdict_labels_in_chapter_prose(nb):
    bad = [f"  cell {i}: {words}" for i, c in enumerate(cells(nb))
           if c["cell_type"] == "markdown" and (words := verdict_words("".join(c["source"])))]
    assert not bad, (f"{nb.name}: markdown types a verdict; render the bank's with show_claim('sNN.cM') instead:\n"
                     + "\n".join(bad))


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_show_claim_names_an_existing_claim(nb):
    bad = [f"  cell {i}: {cid!r}" for i, c in enumerate(cells(nb)) if c["cell_type"] == "code"
           for _, cid in CLAIM_CALL.findall("".join(c["source"])) if cid not in CLAIMS]
    assert not bad, f"{nb.name}: show_claim names claims the bank does not have:\n" + "\n".join(bad)
