"""The docs site (`make docs`, in _build/docs) as a reader's browser sees it: headless Chromium over the
DevTools protocol (websocket-client, already a Jupyter dependency).

Checks: every page loads with no console error and requests nothing off this machine; every internal link
and anchor resolves; formulas are MathJax in the DOM; the offline search finds RMSNorm; a multiple-choice and
a numeric drill can be answered. Screenshots go to _build/screenshots/ (test artifacts).

Skips with a reason when the site or Chromium is missing, unless MINIMIND_DOCS_REQUIRED=1 (`make test`
sets it), where a missing site or browser fails.
"""
import base64, concurrent.futures, functools, http.server, json, os, re, shutil, socket, subprocess, tempfile, threading, time
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = Path(os.environ.get("MINIMIND_DOCS_SITE", ROOT / "_build" / "docs"))
SHOTS = ROOT / "_build" / "screenshots"
REQUIRED = os.environ.get("MINIMIND_DOCS_REQUIRED") == "1"


def _missing(reason: str):
    if REQUIRED: pytest.fail(reason + " (MINIMIND_DOCS_REQUIRED=1)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def site() -> Path:
    if not (SITE / "index.html").exists(): _missing(f"no docs site at {SITE}: run `make docs` first")
    return SITE


def html_pages(site: Path) -> list:
    return sorted(p for p in site.rglob("*.html") if "_static" not in p.parts)


# --- links: static check of every href/src in the built HTML ------------------------------------------

class _Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.refs = set(), []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for k in ("id", "name"):
            if a.get(k): self.ids.add(a[k])
        for k in ("href", "src"):
            if a.get(k) is not None and not (tag == "link" and a.get("rel") in ("preconnect", "dns-prefetch")):
                self.refs.append((tag, k, a[k]))


@functools.lru_cache(maxsize=None)
def _parse(path: Path) -> _Refs:
    p = _Refs()
    p.feed(path.read_text(encoding="utf-8", errors="replace"))
    return p


def _internal(ref: str) -> bool:
    s = urlsplit(ref)
    return not (s.scheme or ref.startswith("//") or ref.startswith("#") and ref == "#")


def test_internal_links_resolve(site):
    broken = []
    for page in html_pages(site):
        for tag, attr, ref in _parse(page).refs:
            if not _internal(ref) or ref.startswith(("javascript:", "data:", "mailto:")): continue
            s = urlsplit(ref)
            target = page if not s.path else (page.parent / unquote(s.path)).resolve()
            if target.is_dir(): target = target / "index.html"
            if not target.exists():
                broken.append(f"{page.relative_to(site)}: <{tag} {attr}={ref!r}> -> missing {s.path}"); continue
            if s.fragment and target.suffix == ".html" and unquote(s.fragment) not in _parse(target).ids:
                broken.append(f"{page.relative_to(site)}: <{tag} {attr}={ref!r}> -> no id {s.fragment!r}")
    assert not broken, f"{len(broken)} broken internal links:\n" + "\n".join(broken[:40])


def _bank(site: Path) -> dict:
    js = (site / "_static" / "bank.js").read_text(encoding="utf-8")
    return json.loads(js[js.index("=") + 1:].rstrip().rstrip(";"))


def test_drill_links_resolve(site):
    "Each question links to the chapter (and section, when found) that teaches it."
    bank = _bank(site)
    assert bank["items"], "the bank is empty"
    bad = []
    for it in bank["items"]:
        if not it.get("link"): bad.append(f"{it['id']}: no chapter page for chapter {it.get('chapter')}"); continue
        path, _, frag = it["link"].partition("#")
        if not (site / path).exists(): bad.append(f"{it['id']}: {path} missing")
        elif frag and frag not in _parse(site / path).ids: bad.append(f"{it['id']}: no #{frag} in {path}")
    assert not bad, "\n".join(bad)


def test_every_chapter_and_module_has_a_page(site):
    chapters = sorted(re.sub(r"^\d+[a-z]?_", "", p.stem) for p in (ROOT / "nbs").glob("*.ipynb"))
    missing = [c for c in chapters if not (site / f"{c}.html").exists()]
    modules = sorted(p.stem for p in (ROOT / "minimind").rglob("*.py") if not p.stem.startswith("_"))
    api = " ".join(p.name for p in (site / "api").glob("*.html"))
    missing += [f"api page for {m}" for m in modules if f".{m}.html" not in api]
    assert not missing, missing


# --- the browser -----------------------------------------------------------------------------------

def _chromium():
    for c in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if c and shutil.which(c): return shutil.which(c)
    return None


class Browser:
    "A headless Chromium page driven over the DevTools protocol; collects console errors and requests."

    def __init__(self, exe: str):
        import websocket
        self.profile = tempfile.mkdtemp(prefix="minimind-chromium-")
        self.proc = subprocess.Popen(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
             "--disable-extensions", "--disable-background-networking", "--remote-debugging-port=0",
             f"--user-data-dir={self.profile}", "--window-size=1280,900", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        port = self._port()
        # keep reading chromium's stderr: a full pipe would block the browser
        threading.Thread(target=lambda: [None for _ in self.proc.stderr], daemon=True).start()
        deadline = time.time() + 30
        while True:
            try:
                targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5))
                ws = next(t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page")
                break
            except Exception:
                if time.time() > deadline: raise
                time.sleep(0.2)
        self.ws = websocket.create_connection(ws, timeout=60, suppress_origin=True, enable_multithread=True)
        self.next_id, self.events = 0, []
        for domain in ("Page", "Runtime", "Log", "Network"): self.call(f"{domain}.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=1280, height=900, deviceScaleFactor=1, mobile=False)

    def _port(self) -> int:
        deadline = time.time() + 60
        while time.time() < deadline:
            line = self.proc.stderr.readline()
            if m := re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line): return int(m.group(1))
            if not line and self.proc.poll() is not None: break
        raise RuntimeError(f"chromium did not start (exit {self.proc.poll()})")

    def call(self, method: str, **params):
        self.next_id += 1
        mid = self.next_id
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == mid:
                if "error" in msg: raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg: self.events.append(msg)

    def js(self, expr: str):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r: raise RuntimeError(f"{expr}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait(self, expr: str, timeout: float = 20.0):
        end = time.time() + timeout
        while time.time() < end:
            if v := self.js(expr): return v
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {expr}")

    def open(self, url: str) -> None:
        self.events.clear()
        self.call("Page.navigate", url=url)
        self.wait("document.readyState === 'complete'", 30)

    def drain(self, quiet_s: float = 0.1) -> None:
        "Collect events that arrived after the last reply, until none comes for `quiet_s` seconds."
        self.ws.settimeout(quiet_s)
        try:
            while True:
                msg = json.loads(self.ws.recv())
                if "method" in msg: self.events.append(msg)
        except Exception: pass
        finally: self.ws.settimeout(60)

    def errors(self) -> list:
        out = []
        for e in self.events:
            m, p = e["method"], e.get("params", {})
            if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append("console: " + " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
            elif m == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                out.append("exception: " + str(d.get("exception", {}).get("description") or d.get("text")))
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                out.append("log: " + p["entry"].get("text", "") + " " + p["entry"].get("url", ""))
        return out

    def requests(self) -> list:
        return [e["params"]["request"]["url"] for e in self.events if e["method"] == "Network.requestWillBeSent"]

    def screenshot(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))

    def close(self) -> None:
        try: self.ws.close()
        except Exception: pass
        self.proc.terminate()
        try: self.proc.wait(10)
        except subprocess.TimeoutExpired: self.proc.kill(); self.proc.wait()
        self.proc.stderr.close()
        shutil.rmtree(self.profile, ignore_errors=True)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass


@pytest.fixture(scope="module")
def server(site):
    "The site served on 127.0.0.1 (an ephemeral port), as a static host would serve it."
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser(site):
    exe = _chromium()
    if not exe: _missing("no chromium on PATH: run tools/install_chromium.sh (or set CHROMIUM)")
    b = Browser(exe)
    yield b
    b.close()


def _local(url: str, base: str) -> bool:
    return url.startswith((base, "data:", "blob:", "about:"))


# text outside code, scripts and typeset maths that still holds TeX delimiters: maths the Markdown parser missed
_RAW_TEX = r"""(() => { const w = document.createTreeWalker(document.querySelector('main') || document.body, NodeFilter.SHOW_TEXT);
  const bad = []; let n;
  while ((n = w.nextNode())) {
    if (n.parentElement.closest('pre, code, script, style, mjx-container, textarea, .math')) continue;
    if (/\$\$|\\begin\{|\\frac\{/.test(n.nodeValue)) bad.push(n.nodeValue.trim().slice(0, 80));
  }
  return bad; })()"""


def _page_problems(browser: Browser, site: Path, server: str, pages: list) -> list:
    "Open each page in `browser`, wait for its maths, and list console errors, raw TeX and requests off the site."
    problems = []
    for page in pages:
        rel = page.relative_to(site).as_posix()
        browser.open(f"{server}/{rel}")
        if page.name != "search.html":
            browser.wait("!window.MathJax || !MathJax.startup || !MathJax.startup.promise || "
                         "MathJax.startup.promise.then(() => true)")
        browser.drain()
        problems += [f"{rel}: {e}" for e in browser.errors()]
        problems += [f"{rel}: raw TeX in the text: {t!r}" for t in browser.js(_RAW_TEX)]
        problems += [f"{rel}: requested {u} (off this site)" for u in browser.requests() if not _local(u, server)]
    return problems


def test_every_page_loads_without_errors_or_network(site, server, browser):
    "Every page, half in the module's browser and half in a second one, side by side (one per core)."
    pages = html_pages(site)
    second = Browser(_chromium())
    try:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            halves = [pool.submit(_page_problems, b, site, server, pages[i::2]) for i, b in enumerate((browser, second))]
            problems = [p for h in halves for p in h.result()]
    finally:
        second.close()
    assert len(pages) > 60, len(pages)
    assert not problems, "\n".join(problems[:40])


def _maths_chapter(site: Path) -> str:
    for nb in sorted((ROOT / "nbs").glob("[0-9]*.ipynb")):
        p = site / (re.sub(r"^\d+_", "", nb.stem) + ".html")
        if p.exists() and 'class="math' in p.read_text(encoding="utf-8"): return p.name
    pytest.fail("no chapter has maths")


def test_formulas_render_as_mathjax(site, server, browser):
    page = "layers.html" if (site / "layers.html").exists() else _maths_chapter(site)
    browser.open(f"{server}/{page}")
    n = browser.wait("MathJax.startup.promise.then(() => document.querySelectorAll('mjx-container svg').length)", 30)
    assert n >= 3, f"{page}: {n} formulas typeset"
    raw = browser.js("Array.from(document.querySelectorAll('span.math, div.math'))"
                     ".filter(e => !e.querySelector('mjx-container')).length")
    assert raw == 0, f"{page}: {raw} maths elements left as raw TeX"
    assert "mathjax/tex-svg-full.js" in browser.js(
        "Array.from(document.scripts).map(s => s.src).join(' ')"), "MathJax is not the site's own copy"
    browser.js("(document.querySelector('mjx-container[display=\"true\"]') || document.querySelector('mjx-container'))"
               ".scrollIntoView({block: 'center'})")
    time.sleep(0.3)
    browser.screenshot(SHOTS / "chapter.png")
    if browser.js("!!document.querySelector('.cell_output img')"):       # a plot, when the chapter was executed
        browser.js("document.querySelector('.cell_output img').scrollIntoView({block: 'center'})")
        browser.wait("(i => i.complete && i.naturalWidth > 0)(document.querySelector('.cell_output img'))")
        time.sleep(0.3)
        browser.screenshot(SHOTS / "chapter-plot.png")


def test_search_finds_rmsnorm(site, server, browser):
    browser.open(f"{server}/search.html?q=RMSNorm")
    hits = browser.wait("(() => { const a = Array.from(document.querySelectorAll('#search-results li a'))"
                        ".map(a => a.getAttribute('href')); return a.length ? a : null })()", 30)
    assert any(h.startswith("layers.html") for h in hits), hits
    browser.screenshot(SHOTS / "search.png")


def test_drills_choice_and_numeric(site, server, browser):
    bank = _bank(site)
    kinds = {i["kind"] for i in bank["items"]}
    browser.open(f"{server}/drills.html")
    n = browser.wait("document.querySelectorAll('.drill').length")
    assert n == len(bank["items"]), (n, len(bank["items"]))
    if "choice" in kinds:
        item = next(i for i in bank["items"] if i["kind"] == "choice")
        right = next(k for k, o in enumerate(item["options"]) if o["correct"])
        wrong = next(k for k, o in enumerate(item["options"]) if not o["correct"])
        sel = f"document.getElementById('item-{item['id']}')"
        browser.js(f"{sel}.querySelector('button[data-index=\"{wrong}\"]').click()")
        fb = browser.js(f"(e => [e.className, e.textContent])({sel}.querySelector('.drill-feedback'))")
        assert "wrong" in fb[0] and f"The answer is {right + 1}" in fb[1], fb
        browser.js(f"{sel}.querySelector('button[data-index=\"{right}\"]').click()")
        fb = browser.js(f"{sel}.querySelector('.drill-feedback').className")
        assert "right" in fb, fb
        browser.js(f"{sel}.scrollIntoView({{block: 'start'}})")
        time.sleep(0.2)
        browser.screenshot(SHOTS / "drills.png")
    if "numeric" in kinds:
        item = next(i for i in bank["items"] if i["kind"] == "numeric")
        sel = f"document.getElementById('item-{item['id']}')"
        for value, verdict in ((repr(item["answer"] * 2 + 1), "wrong"), (repr(item["answer"]), "right")):
            browser.js(f"{sel}.querySelector('input').value = {json.dumps(value)}; "
                       f"{sel}.querySelector('button.drill-check').click()")
            fb = browser.js(f"{sel}.querySelector('.drill-feedback').className")
            assert verdict in fb, (value, fb)
    if "open" in kinds:
        item = next(i for i in bank["items"] if i["kind"] == "open")
        sel = f"document.getElementById('item-{item['id']}')"
        browser.js(f"{sel}.querySelector('button.drill-reveal').click()")
        assert browser.js(f"{sel}.querySelector('.drill-answer').textContent.length") > 20
    score = browser.js("document.querySelector('.drills-score').textContent")
    assert re.search(r"[1-9]\d* answered", score), score
    browser.drain()
    assert not browser.errors(), browser.errors()
