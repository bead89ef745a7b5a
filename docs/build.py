"""Build the docs site: executed notebooks -> staged MyST sources -> Sphinx HTML (`make docs`).

1. Every chapter comes executed: from DIR (`--executed`, written by `make test` through the conftest
   hook MINIMIND_SAVE_EXECUTED) when that copy is of the current source and ran completely, otherwise
   executed here with nbclient (honouring `#| eval: false` and `#| slow` like the tests).
2. nbdev's display directives become myst-nb tags (`#| hide`, `#| echo: false`, ...), links to
   `nbs/X.ipynb` become links to the chapter page, and each chapter gets links to its API page
   and its interview drills.
3. Generated pages: the API reference (autodoc of every exported module), the interview drills
   (client-side, from the bank as JSON) and the errata (interview/errata.json).
4. Sphinx (myst-nb, sphinx-book-theme, MathJax served from the site) writes HTML to `--out`.
"""
import argparse, hashlib, json, os, re, shutil, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
NBS = ROOT / "nbs"
sys.path.insert(0, str(HERE))
import bank as bankmod  # noqa: E402
sys.path.insert(0, str(ROOT))
from conftest import skip_reason  # noqa: E402

_DIRECTIVE = re.compile(r"^\s*#\|\s*(.+?)\s*$")
_WIDGET_MIMES = ("application/vnd.jupyter.widget-view+json", "application/vnd.jupyter.widget-state+json")


def directives(source: str) -> dict:
    "nbdev cell directives: `#| key: value` or `#| key value` -> {key: value}, `#| flag` -> {flag: ''}."
    out = {}
    for line in source.splitlines():
        if m := _DIRECTIVE.match(line):
            key, val = re.match(r"([\w-]+)\s*:?\s*(.*)", m.group(1)).groups()
            out[key] = val.strip()
    return out


def skipped_in_tests(cell) -> bool:
    "The tests skip this cell: the rule is conftest.py's `skip_reason` (`#| eval: false`, a tst_flags flag not enabled)."
    return skip_reason(cell.source) is not None


def write_if_changed(path: Path, data) -> None:
    "Write text/bytes only when it differs (staged files keep their times when nothing changed)."
    data = data.encode() if isinstance(data, str) else data
    if path.exists() and path.read_bytes() == data: return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


# --- 1. executed notebooks ----------------------------------------------------------------------

def saved_run(src: Path, executed: Path):
    "The test run's executed copy of `src` if it is of this exact source and ran completely, else None."
    import nbformat
    p = executed / src.name
    if not p.exists(): return None
    nb = nbformat.read(str(p), as_version=4)
    meta = nb.metadata.get("minimind_executed", {})
    fresh = meta.get("source_sha256") == hashlib.sha256(src.read_bytes()).hexdigest()
    return nb if fresh and meta.get("complete") else None


def execute(src: Path):
    "Run a notebook top to bottom with nbclient in nbs/, skipping the cells the tests skip."
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(str(src), as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NBS)}})
    with client.setup_kernel():
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code" or skipped_in_tests(cell): continue
            try: client.execute_cell(cell, i)
            except Exception as e:
                raise SystemExit(f"docs: {src.relative_to(ROOT)} cell {i} failed while executing for the docs:\n{e}")
    return nb


def executed_notebooks(executed: Path, mode: str) -> list:
    "(name, notebook) for every chapter; mode: 'execute' stale ones, 'require' fresh ones, or 'raw' sources."
    import nbformat
    out = []
    for src in sorted(NBS.glob("*.ipynb")):
        nb = nbformat.read(str(src), as_version=4)
        if not any(c.cell_type == "code" and not skipped_in_tests(c) for c in nb.cells):
            out.append((src.stem, nb)); continue            # nothing to run
        if (saved := saved_run(src, executed)) is not None:
            out.append((src.stem, saved)); continue
        if mode == "require":
            raise SystemExit(f"docs: no complete executed copy of {src.relative_to(ROOT)} in {executed} "
                             "matching its current source (run the notebooks with MINIMIND_SAVE_EXECUTED set, "
                             "as `make test` does, or run `make docs`, which executes them)")
        if mode == "raw":
            print(f"docs: {src.name}: no fresh executed copy, rendered without outputs (--no-execute)")
            out.append((src.stem, nb)); continue
        t = time.time()
        print(f"docs: executing {src.name} ...", flush=True)
        out.append((src.stem, execute(src)))
        print(f"docs: executed {src.name} in {time.time() - t:.0f} s", flush=True)
    return out


# --- 2. notebooks -> pages ----------------------------------------------------------------------

def title_of(nb) -> str:
    "The chapter's title: its first markdown `# ` heading."
    for c in nb.cells:
        if c.cell_type == "markdown":
            for line in c.source.splitlines():
                if line.startswith("# "): return line[2:].strip()
    return ""


def module_of(nb):
    "`minimind.X` for a notebook with `#| default_exp X`, else None."
    for c in nb.cells:
        if c.cell_type == "code" and (m := directives(c.source).get("default_exp")):
            return f"minimind.{m.split()[0]}"
    return None


def page_name(stem: str) -> str:
    "The page of a notebook, named as nbdev/Quarto name it (and as `minimind.quiz.chapter_url` links): no number."
    return re.sub(r"^\d+[a-z]?_", "", stem)


def chapter_key(name: str):
    "(number, letter) of a chapter notebook: 21_quiz -> (21, ''), 21a_bank -> (21, 'a'); None for index."
    m = re.match(r"(\d+)([a-z]?)_", name)
    return (int(m.group(1)), m.group(2)) if m else None


def chapter_number(name: str):
    "The chapter number of a main chapter notebook (21_quiz -> 21); None for index and companions like 21a_bank."
    k = chapter_key(name)
    return k[0] if k and not k[1] else None


_FENCE = re.compile(r"(^[ \t]*```.*?^[ \t]*```[ \t]*$)", re.M | re.S)
_DISPLAY = re.compile(r"^([ \t]*)\$\$(.+?)\$\$[ \t]*$", re.M | re.S)


def display_maths_as_blocks(md: str) -> str:
    "A `$$...$$` that fills its lines inside a paragraph is display maths in Pandoc/Quarto; MyST wants it as a block."
    parts = _FENCE.split(md)
    for i in range(0, len(parts), 2):           # odd parts are fenced code
        parts[i] = _DISPLAY.sub(lambda m: f"\n\n{m.group(1)}$${m.group(2)}$$\n\n", parts[i])
    return "".join(parts)


def page_cells(nb, extra_md: str = "", tail_md: str = "") -> str:
    "nbdev directives -> myst-nb tags, repo-relative links -> site links, `extra_md` after the title, `tail_md` last."
    import nbformat
    cells = []
    for c in nb.cells:
        c = nbformat.from_dict(dict(c))
        if c.cell_type == "markdown":
            c.source = display_maths_as_blocks(re.sub(r"\]\((?:nbs/)?([\w.-]+)\.ipynb",
                                                      lambda m: f"]({page_name(m.group(1))}.ipynb", c.source))
            cells.append(c); continue
        if c.cell_type != "code": continue
        d = directives(c.source)
        if "hide" in d or d.get("include", "").lower() == "false": continue
        tags = set(c.metadata.get("tags", []))
        if d.get("echo", "").lower() == "false": tags.add("remove-input")
        if d.get("output", "").lower() == "false": tags.add("remove-output")
        c.source = "\n".join(l for l in c.source.splitlines() if not _DIRECTIVE.match(l)).strip("\n")
        if not c.source.strip() and not c.get("outputs"): continue       # only `#| default_exp`
        if not c.source.strip(): tags.add("remove-input")
        for o in c.get("outputs", []):
            if any(o.get("data", {}).pop(m, None) for m in _WIDGET_MIMES):     # a static page cannot run widgets
                o["data"] = {"text/plain": "(an interactive widget: run this notebook in JupyterLab to use it)"}
        c.metadata = {"tags": sorted(tags)} if tags else {}
        cells.append(c)
    if extra_md:
        at = next((i + 1 for i, c in enumerate(cells) if c.cell_type == "markdown" and "# " in c.source), 0)
        cells.insert(at, nbformat.v4.new_markdown_cell(extra_md))
    if tail_md: cells.append(nbformat.v4.new_markdown_cell(tail_md))
    out = nbformat.v4.new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"}})
    return nbformat.writes(out)


def api_page(module: str, page: str, title: str) -> str:
    return (f"# {module}\n\nThe library code of chapter [{title}](../{page}.ipynb), exported from the "
            f"notebook by nbdev.\n\n```{{eval-rst}}\n.. automodule:: {module}\n   :members:\n   :show-inheritance:\n```\n")


def api_index(rows: list) -> str:
    lines = ["# API reference", "",
             "Every module of the `minimind` library, generated from the notebooks by `nbdev-export`; "
             "each page documents the module's public names (its `__all__`) and links back to its chapter.", "",
             "| module | chapter |", "|---|---|"]
    lines += [f"| [`{m}`]({m}.md) | [{t}](../{n}.ipynb) |" for n, m, t in rows]
    lines += ["", "```{toctree}", ":hidden:", "", *[m for _, m, _ in rows], "```", ""]
    return "\n".join(lines)


DRILLS_MD = """# Interview drills

Every question of the book's interview bank (`interview/*.toml`), in English with the Chinese original.
Choose an answer, type a number, or reveal the reference answer; numeric answers are the values the library
computes. Everything runs in your browser; your progress stays in this browser's local storage.
The terminal version is `minimind quiz`; [chapter 21](quiz.ipynb) explains the bank, and the
[errata](errata.md) list the claims of the seed interview that are wrong.

<div id="drills-app" class="drills-app"><p>Loading the question bank&hellip; (this page needs JavaScript)</p></div>
<script src="_static/bank.js"></script>
<script src="_static/drills.js"></script>
"""


def errata_page(records: list, data: dict, chapters: dict) -> str:
    "interview/errata.json rendered by `minimind.quiz.errata_markdown`, each entry followed by its drill and chapter."
    from minimind.quiz import errata_markdown
    md = errata_markdown(records)
    items = {i["id"]: i for i in data["items"]}
    claims = {c["id"]: c for c in data.get("claims", [])}
    lines = md.splitlines()
    for r in records:
        item = items.get(claims.get(r["id"], {}).get("item", ""))
        if not item: continue
        links = [f'<a href="drills.html?item={item["id"]}">drill {item["id"]}</a>']
        if ch := chapters.get(item.get("chapter")): links.append(f'<a href="{ch[0]}.html">chapter {item["chapter"]}: {ch[1]}</a>')
        start = next(k for k, l in enumerate(lines) if l.startswith(f"**{r['id']} "))
        end = next(k for k in range(start, len(lines)) if lines[k].startswith("*Evidence:*"))
        lines.insert(end + 1, "\n<p class=\"errata-links\">" + " · ".join(links) + "</p>")
    return "\n".join(lines) + "\n"


def index_extra(chapters: list) -> str:
    return "\n".join([
        "```{toctree}", ":hidden:", ":caption: Chapters", "", *chapters, "```", "",
        "```{toctree}", ":hidden:", ":caption: Reference", "", "api/index", "drills", "errata", "```", ""])


# --- 3. static files ----------------------------------------------------------------------------

def stage_mathjax(static: Path) -> None:
    "MathJax 3 (SVG output, all TeX extensions) from the django-static-mathjax wheel into _static/mathjax."
    import mathjax
    es5 = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    dest = static / "mathjax"
    wanted = [es5 / "tex-svg-full.js"] + [p for d in ("a11y", "ui", "sre", "input", "adaptors")
                                          for p in (es5 / d).rglob("*") if p.is_file()]
    for p in wanted:
        q = dest / p.relative_to(es5)
        if not q.exists() or q.stat().st_size != p.stat().st_size:
            q.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, q)


def section_ids(html: str) -> dict:
    "normalised heading text -> section id, from a built page."
    out = {}
    for m in re.finditer(r'<section[^>]*\sid="([^"]+)"[^>]*>\s*(?:<span id="[^"]*"></span>\s*)*<h[1-6][^>]*>(.*?)'
                         r'<a class="headerlink"', html, re.S):
        out.setdefault(norm(re.sub(r"<[^>]+>", "", m.group(2))), m.group(1))
    return out


def norm(s: str) -> str:
    import html as _html
    return re.sub(r"[\W_]+", "", _html.unescape(s).replace("`", "")).lower()


def write_bank_js(out: Path, data: dict, chapters: dict) -> None:
    "The bank as a script (`window.MINIMIND_BANK`), with each item's chapter page and section anchor."
    ids = {}
    for n, (name, _) in chapters.items():
        page = out / f"{name}.html"
        ids[n] = section_ids(page.read_text(encoding="utf-8")) if page.exists() else {}
    for it in data["items"]:
        ch = chapters.get(it.get("chapter"))
        if not ch: it["link"] = None; continue
        anchor = ids[it["chapter"]].get(norm(it.get("section", "")))
        it["link"] = f"{ch[0]}.html" + (f"#{anchor}" if anchor else "")
        it["chapter_title"] = ch[1]
    data["chapters"] = {str(n): {"page": f"{name}.html", "title": t} for n, (name, t) in chapters.items()}
    js = "window.MINIMIND_BANK = " + json.dumps(data, ensure_ascii=False) + ";\n"
    write_if_changed(out / "_static" / "bank.js", js)


# --- main ---------------------------------------------------------------------------------------

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--executed", default="_build/executed", help="executed notebooks saved by the test run")
    ap.add_argument("--out", default="_build/docs", help="where the HTML goes")
    ap.add_argument("--stage", default="_build/docs_src", help="staged Sphinx sources")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--require-executed", action="store_true",
                   help="fail unless every chapter has a fresh executed copy (what `make test` uses)")
    g.add_argument("--no-execute", action="store_true",
                   help="render chapters without a fresh executed copy without outputs (quick preview)")
    a = ap.parse_args(argv)
    t0 = time.time()
    executed, out, stage = (ROOT / a.executed), (ROOT / a.out), (ROOT / a.stage)
    mode = "require" if a.require_executed else "raw" if a.no_execute else "execute"
    nbs = executed_notebooks(executed, mode)
    t_exec = time.time() - t0

    data = bankmod.bank_data()
    errata = json.loads((ROOT / "interview" / "errata.json").read_text(encoding="utf-8"))
    chapters, toc, api_rows, names = {}, {}, [], []
    for name, nb in nbs:
        if (n := chapter_number(name)) is not None: chapters[n] = (page_name(name), title_of(nb) or name)
        if (k := chapter_key(name)) is not None: toc[k] = page_name(name)
    drilled = {i.get("chapter") for i in data["items"]}
    for name, nb in nbs:
        n, module, extra = chapter_number(name), module_of(nb), []
        if module:
            extra.append(f"**Library:** [`{module}`](api/{module}.md) (API reference)")
            api_rows.append((page_name(name), module, title_of(nb) or name))
        if n in drilled:
            extra.append(f'**Drill:** <a href="drills.html?chapter={n}">this chapter\'s interview questions</a>')
        if name == "index":
            extra.append("**On this site:** [API reference](api/index.md) · [interview drills](drills.md) · "
                         "[errata](errata.md) · search (top left) works offline")
        tail = index_extra([toc[k] for k in sorted(toc)]) if name == "index" else ""
        nbtext = page_cells(nb, " · ".join(extra), tail)
        write_if_changed(stage / f"{page_name(name)}.ipynb", nbtext)
        names.append(f"{page_name(name)}.ipynb")
    for name, module, title in api_rows:
        write_if_changed(stage / "api" / f"{module}.md", api_page(module, name, title))
        names.append(f"api/{module}.md")
    write_if_changed(stage / "api" / "index.md", api_index(api_rows))
    write_if_changed(stage / "drills.md", DRILLS_MD)
    write_if_changed(stage / "errata.md", errata_page(errata, data, chapters))
    names += ["api/index.md", "drills.md", "errata.md"]
    for p in list(stage.rglob("*.ipynb")) + list(stage.rglob("*.md")):    # pages whose source went away
        if str(p.relative_to(stage)) not in names: p.unlink()
    static = stage / "_static"
    for p in (HERE / "static").iterdir(): write_if_changed(static / p.name, p.read_bytes())
    stage_mathjax(static)

    t1 = time.time()
    if (out / ".buildinfo").exists(): shutil.rmtree(out)      # a full build: no page of a removed chapter stays
    env = dict(os.environ, MINIMIND_DOCS_STATIC=str(static))
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-E", "-j", "auto", "-c", str(HERE), "-d", str(ROOT / "_build" / "doctrees"),
           str(stage), str(out)]
    r = subprocess.run(cmd, cwd=ROOT, env=env)
    if r.returncode: return r.returncode
    write_bank_js(out, data, chapters)
    pages = sum("_static" not in p.parts for p in out.rglob("*.html"))
    where = os.path.relpath(out)
    print(f"docs: {pages} pages in {where} (Sphinx {time.time() - t1:.0f} s, "
          f"notebooks {t_exec:.0f} s, total {time.time() - t0:.0f} s); open {where}/index.html")
    return 0


if __name__ == "__main__":
    sys.exit(main())
