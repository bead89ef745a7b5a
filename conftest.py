"""pytest glue: notebooks run once, under nbval, honouring nbdev's cell directives.

nbdev-test and nbval both execute notebooks; running both would run every chapter twice, so the
suite uses nbval (one pytest item per code cell, pytest's `N passed` summary) and this hook gives
nbval the nbdev semantics it lacks: `#| eval: false` cells are skipped, and cells flagged with a
`tst_flags` flag (e.g. `#| slow`) are skipped unless the flag is listed in MINIMIND_TEST_FLAGS.
"""
import os, re

_DIRECTIVE = re.compile(r"^\s*#\|\s*(.+?)\s*$")

# Under pytest-xdist (`make test` runs two workers) each worker and the notebook kernels it starts use one thread,
# so two notebooks run side by side instead of fighting over the same two cores. A reader's own run keeps torch's default.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"): os.environ.setdefault(_var, "1")


def _directives(source: str) -> list[str]:
    return [m.group(1) for line in source.splitlines() if (m := _DIRECTIVE.match(line))]


def skip_reason(source: str) -> str | None:
    "Why the test run skips a code cell with this source (nbdev directives), or None; docs/build.py uses it too."
    enabled = set(os.environ.get("MINIMIND_TEST_FLAGS", "").split())
    for d in _directives(source):
        if d.replace(" ", "") in ("eval:false", "eval:False"): return "#| eval: false"
        if d == "slow" and d not in enabled: return f"#| {d} (set MINIMIND_TEST_FLAGS={d} to run)"
    return None


# The longest files start first: pytest-xdist (--dist loadfile) hands out files in collection order, and a long file
# started last keeps one worker busy while the other idles (measured from `make test`'s --durations on 2 cores).
SLOW_FIRST = ("nbs/11_sft.ipynb", "nbs/13_distill.ipynb", "tests/test_wheel.py", "tests/test_resume.py", "nbs/15_ppo.ipynb",
              "nbs/23_pipeline.ipynb", "nbs/12_lora.ipynb", "nbs/20_long_context.ipynb", "nbs/14_dpo.ipynb", "nbs/08_data.ipynb",
              "nbs/24_cli.ipynb", "nbs/09_train.ipynb", "nbs/19_serve.ipynb", "nbs/18_generate.ipynb", "tests/test_quiz_cli.py",
              "nbs/22_bench.ipynb")


def pytest_collection_modifyitems(config, items):
    import pytest                      # here, so docs/build.py can import skip_reason without pytest installed
    rank = {f: i for i, f in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))   # stable: files and cells keep their order
    for item in items:
        cell = getattr(item, "cell", None)
        if cell is not None and (reason := skip_reason(cell.source)):
            item.add_marker(pytest.mark.skip(reason=reason))

# --- executed notebooks for the docs site -------------------------------------------------------
# `MINIMIND_SAVE_EXECUTED=DIR pytest --nbval-lax nbs ...` writes each notebook that nbval ran to
# DIR/<name>.ipynb with the outputs nbval captured (nbval keeps them on `item.test_outputs`), so
# `make docs` renders the run the tests just did instead of executing every chapter a second time.
# Each saved notebook records the sha256 of its source file; the docs build uses it only if the
# source is unchanged and the run was not interrupted (every cell ran or was skipped).

_REPORTED = set()   # node ids that ran or were skipped (an interrupted run leaves some out)


def pytest_runtest_logreport(report):
    if report.when == "call" or report.skipped: _REPORTED.add(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    out = os.environ.get("MINIMIND_SAVE_EXECUTED")
    if not out: return
    import copy, hashlib, pathlib
    import nbformat
    runs = {}
    for item in getattr(session, "items", []):
        nb = getattr(getattr(item, "parent", None), "nb", None)
        if nb is None or getattr(item, "cell", None) is None: continue
        runs.setdefault(item.parent, []).append(item)
    for parent, items in runs.items():
        if not any(item.nodeid in _REPORTED for item in items): continue   # ran in another xdist worker, or not at all
        src = pathlib.Path(str(parent.fspath))
        nb = copy.deepcopy(parent.nb)
        code = [c for c in nb.cells if c.cell_type == "code"]
        complete = True
        for item in items:
            cell = code[item.cell_num]
            outs = getattr(item, "test_outputs", None)
            if item.nodeid not in _REPORTED: complete = False
            if outs is None: continue         # skipped (directive), or failed before it ran
            cell.outputs = [nbformat.from_dict(dict(o)) for o in outs]
            cell.execution_count = item.cell_num + 1
            for o in cell.outputs:
                if o.get("output_type") == "execute_result": o["execution_count"] = cell.execution_count
        nb.metadata["minimind_executed"] = {
            "source_sha256": hashlib.sha256(src.read_bytes()).hexdigest(), "complete": complete}
        dest = pathlib.Path(out) / src.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, str(dest))
