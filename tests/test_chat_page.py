"""The chat page `minimind serve` serves at `/`, driven in headless Chromium (the docs test's DevTools driver).

A `ScriptedLM` (see tests/test_serve_tools.py) replies to the two prompts a reader's conversation produces: with
"thinking" ticked and the `add` tool pasted in, "What is 2 plus 3?" gets reasoning and a tool call; the tool's result
"5" gets reasoning and an answer. The second reply is held mid-stream (the model waits on an event) so the test sees
part of it on the page before the rest: the page streams, it does not wait for the whole reply. It also checks that
thinking is collapsed, the tool call is shown, the page requests nothing off the server and logs no error, and saves
_build/screenshots/chat.png. Skips without Chromium unless MINIMIND_DOCS_REQUIRED=1, as the docs test does.
"""
import json, threading, time

import pytest

from minimind.serve import ScriptedLM, make_server
from test_docs_site import REQUIRED, SHOTS, Browser, _chromium
from test_serve_tools import ADD, ASK, CALL_TEXT, m3_tokenizer, prompt

FIRST = "Adding is what the add tool does.\n</think>\n\n" + CALL_TEXT
SECOND = "The tool says 5.\n</think>\n\n2 plus 3 is 5."


class HeldLM(ScriptedLM):
    "ScriptedLM that, when the history is exactly `hold`, waits for `release` before its next token."
    def __init__(self, *args, hold: tuple, **kwargs):
        super().__init__(*args, **kwargs)
        self.hold, self.release = hold, threading.Event()

    def next_token(self, history):
        if tuple(history) == self.hold: self.release.wait(60)
        return super().next_token(history)


@pytest.fixture(scope="module")
def site():
    tok = m3_tokenizer()
    called = {"role": "assistant", "content": "", "tool_calls": [
        {"id": "any", "type": "function", "function": {"name": "add", "arguments": '{"a": 2, "b": 3}'}}]}
    first = prompt(tok, ASK, tools=ADD, open_thinking=True)
    second = prompt(tok, ASK + [called, {"role": "tool", "tool_call_id": "any", "content": "5"}], tools=ADD, open_thinking=True)
    second_ids = tok.encode(SECOND)
    model = HeldLM({first: tok.encode(FIRST), second: second_ids}, vocab_size=len(tok), hold=second + tuple(second_ids[:-3]))
    server = make_server(model, tok, "127.0.0.1", 0, max_prompt_tokens=800, max_tokens_limit=200, timeout_s=60)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", model
    model.release.set()
    server.shutdown(); server.server_close(); thread.join(5)


@pytest.fixture(scope="module")
def browser():
    exe = _chromium()
    if not exe:
        if REQUIRED: pytest.fail("no chromium on PATH (MINIMIND_DOCS_REQUIRED=1): run tools/install_chromium.sh", pytrace=False)
        pytest.skip("no chromium on PATH: run tools/install_chromium.sh (or set CHROMIUM)")
    b = Browser(exe)
    yield b
    b.close()


LAST = "Array.from(document.querySelectorAll('.msg.assistant')).pop()"


def say(browser, text: str):
    browser.js(f"document.getElementById('input').value = {json.dumps(text)}; document.getElementById('form').requestSubmit()")


def test_chat_page_streams_thinking_and_tool_calls(site, browser):
    base, model = site
    browser.open(base + "/")
    assert browser.wait("document.getElementById('model').textContent") == "minimind"
    browser.js(f"document.getElementById('think').checked = true; document.getElementById('tools').value = {json.dumps(json.dumps(ADD))}")

    say(browser, ASK[0]["content"])                                   # 1. thinking, then a tool call
    assert browser.wait(f"document.querySelectorAll('.msg.assistant').length === 1 && {LAST}.dataset.finish") == "tool_calls"
    first = browser.js(f"""(a => ({{thinking: a.querySelector('details.thinking .thinking-text').textContent,
        collapsed: !a.querySelector('details.thinking').open && !a.querySelector('details.thinking').hidden,
        name: a.querySelector('.tool-call .name').textContent, args: a.querySelector('.tool-call code').textContent,
        content: a.querySelector('.content').textContent}}))({LAST})""")
    assert first == {"thinking": "Adding is what the add tool does.", "collapsed": True, "name": "add",
                     "args": '{"a": 2, "b": 3}', "content": ""}, first

    say(browser, "5")                                                 # 2. the tool's result; the reply is held mid-stream
    partial = browser.wait(f"(a => a.classList.contains('streaming') && a.querySelector('.content').textContent)({LAST})")
    assert browser.js(f"{LAST}.classList.contains('streaming')") and partial != "2 plus 3 is 5." and "2 plus 3 is 5.".startswith(partial)
    assert browser.js("document.querySelector('.msg.tool').textContent").endswith("5")
    browser.screenshot(SHOTS / "chat-streaming.png")
    model.release.set()
    assert browser.wait(f"document.querySelectorAll('.msg.assistant').length === 2 && {LAST}.dataset.finish") == "stop"
    assert browser.js(f"{LAST}.querySelector('.content').textContent") == "2 plus 3 is 5."
    assert browser.js(f"{LAST}.querySelector('details.thinking .thinking-text').textContent") == "The tool says 5."
    time.sleep(0.2)
    browser.screenshot(SHOTS / "chat.png")
    browser.js(f"{LAST}.querySelector('details.thinking').open = true")
    browser.screenshot(SHOTS / "chat-thinking-open.png")

    browser.drain()
    assert not browser.errors(), browser.errors()
    assert [u for u in browser.requests() if not u.startswith(base)] == []
