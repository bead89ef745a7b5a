"""Sphinx configuration of the docs site; docs/build.py stages the sources and runs Sphinx with it."""
import os, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import minimind

project = "minimind"
author = "minimind developers"
copyright = "minimind developers, Apache-2.0"
version = release = minimind.__version__

extensions = ["myst_nb", "sphinx.ext.autodoc", "sphinx.ext.mathjax"]
root_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
suppress_warnings = ["misc.highlighting_failure"]

# Notebooks arrive executed (by the test run or by build.py): Sphinx never runs them.
nb_execution_mode = "off"
nb_merge_streams = True
nb_ipywidgets_js = {}          # widget views would load require.js from a CDN; build.py keeps their text form
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "html_image"]
myst_dmath_double_inline = True   # `$$...$$` inside a paragraph is display maths, as in Pandoc/Quarto
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_inherit_docstrings = False   # not torch.nn.Module.forward's "Define the computation performed at every call"
default_role = "code"                # docstrings are Markdown-ish: `x` is code, not a title reference
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "show-inheritance": True}

# Maths: MathJax 3 served from this site (_static/mathjax), copied from the django-static-mathjax wheel by
# build.py; no CDN at view time.
mathjax_path = "mathjax/tex-svg-full.js"
mathjax3_config = {"svg": {"fontCache": "global"}}

html_theme = "sphinx_book_theme"
html_title = "minimind"
html_static_path = [os.environ.get("MINIMIND_DOCS_STATIC", "_static")]
html_css_files = ["minimind.css"]
html_js_files = ["site.js"]
html_favicon = "static/favicon.svg"     # without one, browsers request /favicon.ico and log a 404
html_context = {"default_mode": "auto"}  # pydata theme: an unset mode logs a console error
html_show_sourcelink = False
html_copy_source = False
html_theme_options = {
    "repository_url": "https://github.com/minimind-book/minimind",
    "use_repository_button": False,
    "use_download_button": False,
    "use_fullscreen_button": False,
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "home_page_in_toc": True,
    "navbar_persistent": [],      # the sidebar has the search field; pydata's header would show a second one
}


# The library's docstrings are nbdev-style Markdown one-liners ("`x`: ... <|im_end|> ..."), not reStructuredText:
# keep code spans as literals and escape everything else, so autodoc shows them as written.
_CODE_SPAN = __import__("re").compile(r"(`+)(.+?)\1")
_RST_SPECIAL = __import__("re").compile(r"([\\*|_`<>\[\]])")
_NOT_A_URI = __import__("re").compile(r"\b(\w+):(?=[^\s/])")     # `file:line` is text, `https://...` stays a link


def _text(s: str) -> str:
    return _NOT_A_URI.sub(r"\1\\ :", _RST_SPECIAL.sub(r"\\\1", s))


def _markdown_line_to_rst(line: str) -> str:
    out, at = [], 0
    for m in _CODE_SPAN.finditer(line):
        out.append(_text(line[at:m.start()]))
        code = m.group(2).strip()
        out.append(f"``{code}``" if "``" not in code and code else _RST_SPECIAL.sub(r"\\\1", m.group(0)))
        at = m.end()
    out.append(_text(line[at:]))
    return "".join(out)


def _docstring_as_text(app, what, name, obj, options, lines):
    lines[:] = [_markdown_line_to_rst(l) for l in lines]


def setup(app):
    app.connect("autodoc-process-docstring", _docstring_as_text)
