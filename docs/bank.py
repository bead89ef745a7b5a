"""The interview bank as data for the drills page: `minimind.quiz.export_bank_json`, flattened.

The exporter nests what a kind needs (`numeric: {answer, unit, rel_tol, abs_tol, computed_by, kwargs}`,
`code: {function, starter, solution}`); drills.js reads flat fields, so they are lifted onto the item here.
"""
import json


def flatten(item: dict) -> dict:
    "Lift the kind-specific table of an exported item onto the item (drills.js reads flat fields)."
    out = dict(item)
    if num := item.get("numeric"):
        out.update(answer=num["answer"], unit=num.get("unit", ""), rel_tol=num.get("rel_tol", 0.0),
                   abs_tol=num.get("abs_tol", 0.0), function=num.get("computed_by"), kwargs=num.get("kwargs", {}))
    if code := item.get("code"):
        out.update(grader=code.get("function"), starter=code.get("starter", ""), solution=code.get("solution", ""))
    return out


def bank_data() -> dict:
    "The whole bank (topics, items with computed numeric answers, claims, errata) as JSON-ready data."
    from minimind.quiz import bank_records, load_bank
    data = json.loads(json.dumps(bank_records(load_bank()), ensure_ascii=False))   # exactly what export_bank_json writes
    data["items"] = [flatten(i) for i in data["items"]]
    return data
