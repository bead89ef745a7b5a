"""`minimind serve` over real HTTP: a tiny random model on 127.0.0.1, an ephemeral port, short timeouts.

Unknown request fields are rejected with 400 naming the field (OpenAI's own API does the same); an oversize prompt is
400 `context_length_exceeded` naming `max_prompt_tokens`, an oversize body 413 naming `max_body_bytes`. The official
`openai` client (the `test` extra) talks to it, streaming, stop strings and usage included; `minimind serve` in a
subprocess stops gracefully and exits 0 on SIGTERM, and on SIGINT even when started with SIGINT ignored.
"""
import http.client, json, os, re, select, signal, socket, subprocess, sys, threading, time

import pytest
import torch

from minimind.model import MiniMindConfig, MiniMindForCausalLM
from minimind.serve import make_server
from minimind.tokenizer import book_tokenizer

HOST = "127.0.0.1"


@pytest.fixture(scope="module")
def srv():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    tok = book_tokenizer()
    model = MiniMindForCausalLM(MiniMindConfig.from_preset("tiny", vocab_size=len(tok))).eval()
    with torch.no_grad(): model.model.embed_tokens.weight[tok.eos_token_id] = 0   # tied head: <|im_end|> logit 0, never the argmax
    server = make_server(model, tok, HOST, 0, max_batch_size=4, max_prompt_tokens=64, max_tokens_limit=600,
                         max_body_bytes=4096, timeout_s=20)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    server.model, server.tok = model, tok
    yield server
    server.shutdown(); server.server_close(); thread.join(5)
    torch.set_num_threads(threads)


def call(srv, method, path, body=None, timeout=20):
    "One HTTP exchange; body may be a dict (sent as JSON) or raw bytes. Returns (status, headers, text)."
    conn = http.client.HTTPConnection(HOST, srv.server_port, timeout=timeout)
    try:
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"} if data is not None else {})
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read().decode()
    finally:
        conn.close()


def chat(srv, content, **kw):
    return call(srv, "POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": content}], **kw})


def error_of(status_body):
    status, _, text = status_body
    return status, json.loads(text)["error"]


@torch.no_grad()
def greedy_reference(srv, content, n):
    "The reply computed without the server: chat template, then greedy full recomputation."
    ids = srv.tok.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True, tokenize=True)
    out = []
    for _ in range(n):
        out.append(int(srv.model(torch.tensor([ids + out])).logits[0, -1].argmax()))
    return srv.tok.decode(out)


def sse_events(text):
    return [block[len("data: "):] for block in text.split("\n\n") if block.startswith("data: ")]


def test_models(srv):
    status, _, text = call(srv, "GET", "/v1/models")
    assert status == 200
    body = json.loads(text)
    assert body["object"] == "list" and body["data"][0]["id"] == "minimind"


def test_completion_matches_greedy_reference(srv):
    status, headers, text = chat(srv, "What is a KV cache?", max_tokens=8, temperature=0)
    assert status == 200 and headers["Content-Type"] == "application/json"
    body = json.loads(text)
    choice = body["choices"][0]
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert choice["message"]["role"] == "assistant" and choice["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 8
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + 8
    assert choice["message"]["content"] == greedy_reference(srv, "What is a KV cache?", 8)


def test_stream(srv):
    status, headers, text = chat(srv, "Tell me about Bob.", max_tokens=10, temperature=0, stream=True)
    assert status == 200 and headers["Content-Type"] == "text/event-stream"
    events = sse_events(text)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    streamed = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert streamed == greedy_reference(srv, "Tell me about Bob.", 10)


def test_malformed_json(srv):
    status, err = error_of(call(srv, "POST", "/v1/chat/completions", b'{"messages": [{"role": "user", "content": "hi"'))
    assert status == 400 and err["code"] == "invalid_json" and "JSON" in err["message"]


def test_unknown_field_rejected(srv):
    status, err = error_of(chat(srv, "hi", max_token=5))
    assert status == 400 and err["param"] == "max_token" and "max_token" in err["message"]


@pytest.mark.parametrize("body, param", [
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    ({"messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}, "temperature"),
    ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}, "max_tokens"),
    ({"messages": [{"role": "user", "content": "hi"}], "n": 2}, "n"),
    ({"messages": [{"role": "user", "content": "hi"}], "stream": "yes"}, "stream"),
])
def test_bad_values_name_the_field(srv, body, param):
    status, err = error_of(call(srv, "POST", "/v1/chat/completions", body))
    assert status == 400 and err["param"] == param


def test_oversize_prompt(srv):
    status, err = error_of(chat(srv, "attention " * 100, max_tokens=4))
    assert status == 400 and err["code"] == "context_length_exceeded" and "max_prompt_tokens=64" in err["message"]


def test_oversize_body(srv):
    status, err = error_of(chat(srv, "x" * 5000, max_tokens=4))
    assert status == 413 and "max_body_bytes=4096" in err["message"]


def test_unknown_route(srv):
    assert call(srv, "GET", "/v1/nothing")[0] == 404
    assert call(srv, "POST", "/v1/completions", {"prompt": "hi"})[0] == 404


def test_client_disconnect_mid_stream(srv):
    engine = srv.engine
    cancelled = engine.finish_counts["cancelled"]
    body = json.dumps({"messages": [{"role": "user", "content": "Tell me a long story."}], "max_tokens": 500,
                       "temperature": 0, "stream": True}).encode()
    with socket.create_connection((HOST, srv.server_port), timeout=10) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        got = b""
        while got.count(b"data: ") < 3: got += s.recv(4096)   # a few chunks in: the request is running
    deadline = time.monotonic() + 15
    while engine.finish_counts["cancelled"] == cancelled and time.monotonic() < deadline: time.sleep(0.02)
    assert engine.finish_counts["cancelled"] == cancelled + 1, "the server did not notice the client leaving"
    status, _, text = chat(srv, "Are you still there?", max_tokens=4, temperature=0)
    assert status == 200 and json.loads(text)["choices"][0]["finish_reason"] == "length"


def test_concurrent_requests_are_batched(srv):
    prompts = ["What is RoPE?", "What is GQA?", "Who is Bob?"]
    alone = {p: json.loads(chat(srv, p, max_tokens=12, temperature=0)[2])["choices"][0]["message"]["content"] for p in prompts}
    start = len(srv.engine.trace)
    results = {}
    def worker(p): results[p] = chat(srv, p, max_tokens=12, temperature=0)
    long = threading.Thread(target=lambda: results.setdefault("long", chat(srv, "Keep talking.", max_tokens=500, stream=True)))
    long.start()
    deadline = time.monotonic() + 10
    while not srv.engine.rows and time.monotonic() < deadline: time.sleep(0.01)      # the long request is decoding
    workers = [threading.Thread(target=worker, args=(p,)) for p in prompts]
    for w in workers: w.start()
    for w in workers + [long]: w.join(30)
    assert results["long"][0] == 200 and sse_events(results["long"][2])[-1] == "[DONE]"
    for p in prompts:
        status, _, text = results[p]
        assert status == 200 and json.loads(text)["choices"][0]["message"]["content"] == alone[p]
    assert max(b for b, _ in list(srv.engine.trace)[start:]) >= 2, "requests were never in one batch"


@pytest.mark.parametrize("body, param", [
    ({"messages": [{"role": "user", "content": "hi"}], "stop": ""}, "stop"),
    ({"messages": [{"role": "user", "content": "hi"}], "stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"messages": [{"role": "user", "content": "hi"}], "stop": 3}, "stop"),
    ({"messages": [{"role": "user", "content": "hi"}], "stream_options": {"include_usage": True}}, "stream_options"),
    ({"messages": [{"role": "user", "content": "hi"}], "stream": True, "stream_options": {"include_usage": "yes"}}, "stream_options"),
    ({"messages": [{"role": "user", "content": "hi"}], "presence_penalty": 2.5}, "presence_penalty"),
    ({"messages": [{"role": "user", "content": "hi"}], "frequency_penalty": "high"}, "frequency_penalty"),
])
def test_bad_openai_options_name_the_field(srv, body, param):
    status, err = error_of(call(srv, "POST", "/v1/chat/completions", body))
    assert status == 400 and err["param"] == param


def test_unknown_model_is_404_model_not_found(srv):
    status, err = error_of(chat(srv, "hi", model="gpt-4o", max_tokens=2))
    assert status == 404 and err["code"] == "model_not_found" and "gpt-4o" in err["message"]
    assert chat(srv, "hi", model="minimind", max_tokens=2)[0] == 200


def test_stop_string_cuts_the_reply(srv):
    full = json.loads(chat(srv, "Tell me about Bob.", max_tokens=12, temperature=0)[2])["choices"][0]["message"]["content"]
    stop = full[len(full) // 2:len(full) // 2 + 2]
    body = json.loads(chat(srv, "Tell me about Bob.", max_tokens=12, temperature=0, stop=[stop, "never-in-it"])[2])
    assert body["choices"][0]["message"]["content"] == full[:full.find(stop)]
    assert body["choices"][0]["finish_reason"] == "stop" and body["usage"]["completion_tokens"] <= 12


@pytest.fixture(scope="module")
def client(srv):
    openai = pytest.importorskip("openai")
    return openai.OpenAI(base_url=f"http://{HOST}:{srv.server_port}/v1", api_key="unused", max_retries=0, timeout=30)


def test_openai_client(srv, client):
    import openai
    assert [m.id for m in client.models.list()] == ["minimind"]
    msgs = [{"role": "user", "content": "What is a KV cache?"}]
    r = client.chat.completions.create(model="minimind", messages=msgs, max_tokens=8, temperature=0, top_p=1.0, seed=1,
                                       presence_penalty=0.0, frequency_penalty=0.0)
    assert r.choices[0].message.content == greedy_reference(srv, "What is a KV cache?", 8)
    assert r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 8
    with pytest.raises(openai.NotFoundError) as e: client.chat.completions.create(model="gpt-4o", messages=msgs, max_tokens=2)
    assert e.value.code == "model_not_found"


def test_openai_client_stream_with_stop_and_usage(srv, client):
    msgs = [{"role": "user", "content": "Tell me about Bob."}]
    full = greedy_reference(srv, "Tell me about Bob.", 10)
    stream = client.chat.completions.create(model="minimind", messages=msgs, max_tokens=10, temperature=0, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == full
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 10
    stop = full[len(full) // 2:len(full) // 2 + 2]
    chunks = list(client.chat.completions.create(model="minimind", messages=msgs, max_tokens=10, temperature=0, stream=True,
                                                 stop=stop, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == full[:full.find(stop)]
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.completion_tokens <= 10


def test_openai_client_sampling_options(srv, client):
    "seed makes sampling reproducible; a large frequency penalty changes a greedy reply (the penalties reach the sampler)."
    msgs = [{"role": "user", "content": "Tell me about Bob."}]
    ask = lambda **kw: client.chat.completions.create(model="minimind", messages=msgs, max_tokens=16, **kw).choices[0].message.content
    assert ask(temperature=1.0, top_p=0.9, seed=5) == ask(temperature=1.0, top_p=0.9, seed=5)
    assert ask(temperature=0, frequency_penalty=2.0) != ask(temperature=0)


# --- `minimind serve` as a process -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    "A saved tiny checkpoint with its tokenizer."
    path = tmp_path_factory.mktemp("ckpt")
    tok = book_tokenizer()
    torch.manual_seed(0)
    MiniMindForCausalLM(MiniMindConfig.from_preset("tiny", vocab_size=len(tok))).save_pretrained(path)
    tok.save(path)
    return path


def launch(checkpoint, *args, ignore_sigint=False):
    "`python -m minimind.cli serve` on port 0 (optionally started with SIGINT ignored, as `cmd &` in a script does); returns (proc, base URL)."
    proc = subprocess.Popen([sys.executable, "-m", "minimind.cli", "serve", "--model", str(checkpoint), "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                            preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None)
    ready, _, _ = select.select([proc.stdout], [], [], 60)   # the server prints its address once listening (or dies)
    line = proc.stdout.readline() if ready else ""
    m = re.search(r"http://127\.0\.0\.1:(\d+)/v1", line)
    if not m:
        proc.kill()
        pytest.fail(f"no address printed: {line!r} {proc.stderr.read()}")
    return proc, f"http://127.0.0.1:{m.group(1)}/v1"


def stop_and_wait(proc, sig) -> str:
    "Send `sig`; SIGKILL after 60 s (a hang guard, not a timing assertion); returns stderr."
    proc.send_signal(sig)
    try: proc.wait(60)
    except subprocess.TimeoutExpired: proc.kill(); proc.wait(5)
    return proc.stderr.read()


def test_cli_entry_point_serves_a_checkpoint(checkpoint):
    "The CLI with int8 and a model name; requests work, then SIGINT stops it with exit status 0."
    import urllib.request
    proc, base = launch(checkpoint, "--int8", "--name", "tiny-int8")
    try:
        with urllib.request.urlopen(base + "/models", timeout=10) as r: assert json.loads(r.read())["data"][0]["id"] == "tiny-int8"
        req = urllib.request.Request(base + "/chat/completions", json.dumps(
            {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3, "temperature": 0}).encode())
        with urllib.request.urlopen(req, timeout=10) as r: assert json.loads(r.read())["object"] == "chat.completion"
    finally:
        err = stop_and_wait(proc, signal.SIGINT)
    assert proc.returncode == 0 and "Traceback" not in err, err[-2000:]      # no handler raised, not even after replying


@pytest.mark.parametrize("sig, ignore_sigint", [(signal.SIGTERM, False), (signal.SIGINT, True)], ids=["SIGTERM", "SIGINT-while-ignored"])
def test_signal_mid_stream_shuts_down_gracefully(checkpoint, sig, ignore_sigint):
    "A stream is running when the signal comes: the client still gets a well-formed end ([DONE]) and the server exits 0."
    proc, base = launch(checkpoint, "--grace", "0.5", ignore_sigint=ignore_sigint)
    port = int(base.split(":")[2].split("/")[0])
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    try:
        body = json.dumps({"messages": [{"role": "user", "content": "Tell me a long story."}], "max_tokens": 500,
                           "temperature": 0, "stream": True})
        conn.request("POST", "/v1/chat/completions", body=body, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        assert r.status == 200
        first = r.fp.readline()                      # the role chunk: the request is in the engine
        assert first.startswith(b"data: ")
        err = stop_and_wait(proc, sig)
        rest = r.read().decode()
    finally:
        conn.close()
        if proc.poll() is None: proc.kill()
    assert proc.returncode == 0 and "Traceback" not in err, err[-2000:]
    events = sse_events(rest)
    assert events[-1] == "[DONE]"
    assert json.loads(events[-2])["choices"][0]["finish_reason"] in ("length", "error")
    assert "minimind: stopped" in err


def test_serve_help_shows_description_and_defaults():
    from minimind.cli import build_parser
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, __import__("argparse")._SubParsersAction)).choices["serve"]
    text = " ".join(sub.format_help().split())                  # argparse wraps lines at the terminal width
    assert "OpenAI" in sub.description and "default: 8000" in text and "default: 127.0.0.1" in text


@pytest.mark.parametrize("sig, ignore_sigint", [(signal.SIGTERM, False), (signal.SIGINT, True)], ids=["SIGTERM", "SIGINT-while-ignored"])
def test_chat_quits_on_signal(checkpoint, sig, ignore_sigint):
    "`minimind chat` waiting at its prompt: the signal ends it cleanly (exit status 0, no traceback)."
    proc = subprocess.Popen([sys.executable, "-m", "minimind.cli", "chat", "--model", str(checkpoint)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                            preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 60)   # the banner is flushed when input() waits at the prompt
        assert ready and proc.stdout.readline().startswith("minimind chat:")
        time.sleep(0.5)          # let input() start waiting (a signal just before its read() is seen only at the next key)
        err = stop_and_wait(proc, sig)
    finally:
        if proc.poll() is None: proc.kill()
    assert proc.returncode == 0 and "Traceback" not in err, err[-2000:]
