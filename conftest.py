"""pytest glue: notebooks run once, under nbval, honouring nbdev's cell directives.

nbdev-test and nbval both execute notebooks; running both would run every chapter twice, so the
suite uses nbval (one pytest item per code cell, pytest's `N passed` summary) and this hook gives
nbval the nbdev semantics it lacks: `#| eval: false` cells are skipped, and cells flagged with a
`tst_flags` flag (e.g. `#| slow`) are skipped unless the flag is listed in MINIMIND_TEST_FLAGS.
"""
import os, re
import pytest

_DIRECTIVE = re.compile(r"^\s*#\|\s*(.+?)\s*$")


def _directives(source: str) -> list[str]:
    return [m.group(1) for line in source.splitlines() if (m := _DIRECTIVE.match(line))]


def pytest_collection_modifyitems(config, items):
    enabled = set(os.environ.get("MINIMIND_TEST_FLAGS", "").split())
    for item in items:
        cell = getattr(item, "cell", None)
        if cell is None: continue
        for d in _directives(cell.source):
            key = d.replace(" ", "")
            if key in ("eval:false", "eval:False"):
                item.add_marker(pytest.mark.skip(reason="#| eval: false"))
            elif d in ("slow",) and d not in enabled:
                item.add_marker(pytest.mark.skip(reason=f"#| {d} (set MINIMIND_TEST_FLAGS={d} to run)"))
