"""`minimind serve` over real HTTP: a tiny random model on 127.0.0.1, an ephemeral port, short timeouts.

Unknown request fields are rejected with 400 naming the field (OpenAI's own API does the same); an oversize prompt is
400 `context_length_exceeded` naming `max_prompt_tokens`, an oversize body 413 naming `max_body_bytes`.
"""
import http.client, json, socket, threading, time

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


def test_cli_entry_point_serves_a_checkpoint(tmp_path):
    "serve_from_args in a subprocess: a saved tiny checkpoint with its tokenizer, int8, port 0; then SIGINT stops it."
    import os, re, select, signal, subprocess, sys, urllib.request
    tok = book_tokenizer()
    torch.manual_seed(0)
    MiniMindForCausalLM(MiniMindConfig.from_preset("tiny", vocab_size=len(tok))).save_pretrained(tmp_path)
    tok.save(tmp_path)
    code = ("import argparse, sys; from minimind.serve import add_serve_args, serve_from_args; "
            "serve_from_args(add_serve_args(argparse.ArgumentParser()).parse_args(sys.argv[1:]))")
    proc = subprocess.Popen([sys.executable, "-c", code, "--model", str(tmp_path), "--port", "0", "--int8", "--name", "tiny-int8"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 60)   # the server prints its address once listening (or dies)
        line = proc.stdout.readline() if ready else ""
        m = re.search(r"http://127\.0\.0\.1:(\d+)/v1", line)
        assert m, f"no address printed: {line!r} {proc.stderr.read() if proc.poll() is not None else ''}"
        base = f"http://127.0.0.1:{m.group(1)}/v1"
        with urllib.request.urlopen(base + "/models", timeout=10) as r: assert json.loads(r.read())["data"][0]["id"] == "tiny-int8"
        req = urllib.request.Request(base + "/chat/completions", json.dumps(
            {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3, "temperature": 0}).encode())
        with urllib.request.urlopen(req, timeout=10) as r: assert json.loads(r.read())["object"] == "chat.completion"
    finally:
        proc.send_signal(signal.SIGINT)
        try: proc.wait(60)
        except subprocess.TimeoutExpired: proc.kill(); proc.wait(5)
    assert proc.returncode == 0
