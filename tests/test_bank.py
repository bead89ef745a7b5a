"""The interview bank's own guarantees, and proof that each check can fail.

Every code drill is graded against the library both ways (our solution passes; the starter and a planted,
plausible mistake fail, the mistake with a diff); every item's section is a heading of its chapter's notebook;
the JSON export for the static docs page is complete. The coverage, schema and numeric checks are run on a
damaged copy of the bank to show they catch what they claim to catch.
"""
import json, math, re, shutil
from pathlib import Path

import pytest

from minimind.quiz import (BankError, CHAPTERS, GRADERS, chapter_url, errata_records, export_bank_json, grade_code,
                           load_bank, numeric_value, section_anchor, seed_coverage)

ROOT = Path(__file__).resolve().parents[1]
BANK = load_bank()
QUIZ_MODULES = ("quiz", "bank", "grade", "schedule", "session", "widgets")   # graders must point outside the quiz


def numeric_mismatches(bank) -> list:
    "Numeric items whose stored answer no longer matches the library's value."
    return [i.id for i in bank.items.values() if i.kind == "numeric"
            and not math.isclose(numeric_value(i), i.answer, rel_tol=max(i.rel_tol, 1e-9), abs_tol=i.abs_tol)]


def chapter_headings(chapter: int) -> list:
    "Markdown headings (## to ####) of a chapter's notebook, without the hashes."
    nb = next(ROOT.glob(f"nbs/{chapter:02d}_*.ipynb"))
    cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
    text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    return [m[1].strip() for m in re.finditer(r"^#{2,4} (.+)$", text, re.M)]


# --- code drills, both ways ---------------------------------------------------------------------------------------

def test_every_grader_is_a_library_function_and_has_a_drill():
    for g in GRADERS.values():
        assert g.reference.startswith("minimind.") and g.reference.split(".")[1] not in QUIZ_MODULES, g.name
    assert {i.grader for i in BANK.items.values() if i.kind == "code"} == set(GRADERS)


@pytest.mark.parametrize("item_id", [i.id for i in BANK.items.values() if i.kind == "code"])
def test_code_drill_graded_both_ways(item_id):
    item = BANK.items[item_id]
    good = grade_code(item.grader, item.solution)
    assert good.correct and GRADERS[item.grader].reference in good.message, good.detail
    wrong = grade_code(item.grader, item.mistake)
    assert wrong.correct is False and "does not match" in wrong.message, (wrong.message, wrong.detail)
    assert wrong.detail.startswith("inputs: ") and re.search(r"values differ|shape|expected", wrong.detail), wrong.detail


def test_a_failing_drill_explains_itself():
    res = grade_code("gae", BANK.items["s08.code-gae"].mistake)
    inputs, diff = res.detail.splitlines()[:2]
    assert "rewards=Tensor(" in inputs and "mask=Tensor(" in inputs and "gamma=" in inputs
    assert diff.startswith("advantages: ") and "worst at" in diff and "got" in diff and "expected" in diff


# --- sections and links ------------------------------------------------------------------------------------------

@pytest.mark.skipif(not (ROOT / "nbs").is_dir(), reason="needs the book's notebooks")
def test_every_section_is_a_heading_of_its_chapter():
    bad = [(i.id, i.chapter, i.section) for i in BANK.items.values() if i.section not in chapter_headings(i.chapter)]
    assert bad == []


def test_section_anchors_follow_pandoc():
    assert section_anchor("8. KV-cache bytes of real models") == "kv-cache-bytes-of-real-models"
    assert section_anchor("5. Where MiniMind's `train_spo.py` departs from the paper") == \
        "where-miniminds-train_spo.py-departs-from-the-paper"
    assert chapter_url(20, "6. The attention temperature") == \
        "_build/docs/long_context.html#the-attention-temperature"


# --- the checks can fail ----------------------------------------------------------------------------------------

@pytest.fixture
def bank_copy(tmp_path):
    for f in BANK.root.iterdir():
        if f.is_file(): shutil.copy(f, tmp_path / f.name)
    return tmp_path


def test_coverage_check_catches_a_removed_seed_question(bank_copy):
    path = bank_copy / "s02-gqa.toml"
    text = path.read_text(encoding="utf-8")
    start = text.index('[[item]]\nid = "s02.q3"')
    end = text.index("[[item]]", start + 1)
    path.write_text(text[:start] + text[end:].replace('item = "s02.q3"', 'item = "s02.q4"'), encoding="utf-8")
    missing, unknown = seed_coverage(load_bank(bank_copy))
    assert [s for s, _ in missing] == [2] and unknown == []


def test_numeric_check_catches_a_stale_answer(bank_copy):
    assert numeric_mismatches(BANK) == []
    path = bank_copy / "s02-gqa.toml"
    path.write_text(path.read_text(encoding="utf-8").replace("answer = 16.0", "answer = 32.0", 1), encoding="utf-8")
    assert numeric_mismatches(load_bank(bank_copy)) == ["s02.n-kv-minimind2"]


def test_schema_catches_typos_and_missing_mistakes(bank_copy):
    path = bank_copy / "s08-ppo.toml"
    text = path.read_text(encoding="utf-8")
    text = text.replace("question_en = '''Write gae(", "questoin_en = '''Write gae(", 1)
    text = re.sub(r"(grader = \"ppo_policy_loss\"(?:.*\n)*?)mistake = '''", r"\1notes = '''", text, count=1)
    text = text.replace('tensors = ["logp", "ref_logp"]', 'tensors = ["logp", "ref"]', 1)
    path.write_text(text, encoding="utf-8")
    with pytest.raises(BankError) as err:
        load_bank(bank_copy)
    msg = str(err.value)
    assert "item s08.code-gae: missing 'question_en'" in msg and "unknown key 'questoin_en'" in msg
    assert "item s08.code-ppo: missing 'mistake'" in msg
    assert "item s08.n-k1-negative: every name in tensors must be a key of kwargs" in msg


# --- the JSON export for the static page ------------------------------------------------------------------------

def test_export_bank_json(tmp_path):
    path = export_bank_json(tmp_path / "sub" / "bank.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    items = {r["id"]: r for r in data["items"]}
    assert set(items) == set(BANK.items) and data["counts"]["items"] == len(BANK.items)
    assert len(data["claims"]) == len(BANK.claims) and data["errata"] == errata_records(BANK)
    assert {c["verdict"] for c in data["claims"]} == {"right", "wrong", "misleading"}
    for it in BANK.items.values():
        rec = items[it.id]
        assert rec["question_zh"] == it.question_zh and rec["answer_en"] == it.answer_en and rec["chapter"] == it.chapter
        assert rec["link"] == chapter_url(it.chapter, it.section) and rec["link"].startswith(data["docs_url"])
        assert rec["claims"] == [c.id for c in BANK.claims if c.item == it.id]
        if it.kind == "numeric": assert rec["numeric"]["answer"] == pytest.approx(numeric_value(it), rel=1e-12)
        if it.kind == "code":
            assert rec["code"]["read_only"] and rec["code"]["solution"] == it.solution.strip("\n")
            assert rec["code"]["graded_against"] == GRADERS[it.grader].reference
        if it.kind == "choice": assert sum(o["correct"] for o in rec["options"]) == 1
    assert set(data["chapters"]) == {str(n) for n in CHAPTERS}
