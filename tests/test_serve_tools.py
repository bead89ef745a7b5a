"""`minimind serve` with tools and thinking, through the official `openai` client (the `test` extra; skipped without it).

The model is `ScriptedLM`: it answers a prompt it was given with that prompt's fixed token sequence, and anything else
with <|im_end|> (an empty reply). So these tests prove the server's side of the protocol, not a model's skill:
(1) the request — tools, thinking switches, assistant tool_calls and role "tool" in the history, as the openai client
sends them — was rendered exactly as minimind-3's chat template renders those messages (otherwise the reply is empty);
(2) the generated text came back as OpenAI's `reasoning_content`, `content` and `tool_calls`, streamed or not, and the
openai client's own stream accumulator rebuilds the same message. Request-side refusals are checked without a client.
"""
import json, threading

import pytest

from minimind.agent import agent_tokenizer
from minimind.serve import APIError, ScriptedLM, make_server, parse_chat_request
from minimind.tokenizer import MiniMindTokenizer, book_tokenizer

HOST = "127.0.0.1"
ADD = [{"type": "function", "function": {"name": "add", "description": "Add two integers.", "parameters": {
    "type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"]}}}]
ASK = [{"role": "user", "content": "What is 2 plus 3?"}]
CALL_TEXT = '<tool_call>\n{"name": "add", "arguments": {"a": 2, "b": 3}}\n</tool_call>'
ARGS = '{"a": 2, "b": 3}'
CALLED = {"role": "assistant", "content": None,
          "tool_calls": [{"id": "any", "type": "function", "function": {"name": "add", "arguments": ARGS}}]}
RESULT = {"role": "tool", "tool_call_id": "any", "content": "5"}


def m3_tokenizer() -> MiniMindTokenizer:
    "The book's BPE with minimind-3's own chat template (chapter 17a checks it against MiniMind's file)."
    return agent_tokenizer()


def prompt(tok, messages, **kwargs) -> tuple:
    "What the template renders (generation prompt included): the key of a scripted reply."
    return tuple(tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, **kwargs))


@pytest.fixture(scope="module")
def srv():
    tok = m3_tokenizer()
    script = {
        prompt(tok, ASK, tools=ADD): CALL_TEXT,                                                  # decides to call
        prompt(tok, ASK + [CALLED, RESULT], tools=ADD): "2 plus 3 is 5.",                        # reads the result
        prompt(tok, ASK, open_thinking=True): "Two and three make five.\n</think>\n\nIt is 5.",  # thinks, answers
        prompt(tok, ASK, tools=ADD, open_thinking=True): "I should add.\n</think>\n\n" + CALL_TEXT,
        prompt(tok, ASK): "Plain: " + CALL_TEXT,                                                 # no tools offered
    }
    model = ScriptedLM({p: tok.encode(reply) for p, reply in script.items()}, vocab_size=len(tok))
    server = make_server(model, tok, HOST, 0, max_batch_size=4, max_prompt_tokens=800, max_tokens_limit=200, timeout_s=20)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown(); server.server_close(); thread.join(5)


@pytest.fixture(scope="module")
def client(srv):
    openai = pytest.importorskip("openai")
    return openai.OpenAI(base_url=f"http://{HOST}:{srv.server_port}/v1", api_key="unused", max_retries=0, timeout=30)


def test_tool_call_round_trip(client):
    "A call comes back as tool_calls (finish_reason tool_calls); the client appends it and the tool's result, the server renders both."
    r = client.chat.completions.create(model="minimind", messages=ASK, tools=ADD)
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.function.name == "add" and json.loads(call.function.arguments) == {"a": 2, "b": 3}
    assert call.id.startswith("call_")
    history = ASK + [choice.message, {"role": "tool", "tool_call_id": call.id, "content": "5"}]   # the message object, as the docs do
    r2 = client.chat.completions.create(model="minimind", messages=history, tools=ADD)
    assert (r2.choices[0].message.content, r2.choices[0].finish_reason, r2.choices[0].message.tool_calls) == ("2 plus 3 is 5.", "stop", None)


def test_reasoning_content_with_thinking_on(client):
    "enable_thinking (top level, via extra_body) and open_thinking in chat_template_kwargs are one switch."
    for extra in ({"enable_thinking": True}, {"chat_template_kwargs": {"open_thinking": True}}):
        msg = client.chat.completions.create(model="minimind", messages=ASK, extra_body=extra).choices[0].message
        assert (msg.reasoning_content, msg.content) == ("Two and three make five.", "It is 5."), extra
    msg = client.chat.completions.create(model="minimind", messages=ASK).choices[0].message      # thinking off: no reasoning
    assert getattr(msg, "reasoning_content", None) is None and msg.content == "Plain: " + CALL_TEXT


def test_tool_choice_none_neither_offers_nor_parses(client):
    "With tool_choice 'none' the prompt has no tools, and a <tool_call> in the text stays text."
    choice = client.chat.completions.create(model="minimind", messages=ASK, tools=ADD, tool_choice="none").choices[0]
    assert (choice.message.content, choice.message.tool_calls, choice.finish_reason) == ("Plain: " + CALL_TEXT, None, "stop")


def test_stream_reasoning_then_tool_call(client):
    "Deltas come as OpenAI streams them: reasoning_content, then the call (index, id, name, then arguments)."
    chunks = list(client.chat.completions.create(model="minimind", messages=ASK, tools=ADD, stream=True,
                                                 extra_body={"enable_thinking": True}))
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    kinds = [k for d in deltas for k in ("reasoning_content", "content", "tool_calls") if getattr(d, k, None)]
    assert kinds == sorted(kinds, key=["reasoning_content", "content", "tool_calls"].index) and "tool_calls" in kinds
    assert "".join(getattr(d, "reasoning_content", None) or "" for d in deltas) == "I should add."
    calls = [t for d in deltas for t in d.tool_calls or []]
    assert [t.index for t in calls] == [0, 0] and calls[0].id.startswith("call_") and calls[0].function.name == "add"
    assert "".join(t.function.arguments or "" for t in calls) == ARGS
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


def test_stream_accumulated_by_the_client_equals_the_reply(client):
    "openai's own stream helper rebuilds the same message as the non-streamed reply."
    kw = dict(model="minimind", messages=ASK, tools=ADD, extra_body={"enable_thinking": True})
    whole = client.chat.completions.create(**kw).choices[0]
    with client.chat.completions.stream(**kw) as stream:
        final = stream.get_final_completion().choices[0]
    assert final.finish_reason == whole.finish_reason == "tool_calls"
    assert [(t.function.name, t.function.arguments) for t in final.message.tool_calls] == \
           [(t.function.name, t.function.arguments) for t in whole.message.tool_calls] == [("add", ARGS)]
    assert whole.message.reasoning_content == "I should add."


def test_stream_content_after_tool_result(client):
    history = ASK + [CALLED, RESULT]
    chunks = list(client.chat.completions.create(model="minimind", messages=history, tools=ADD, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "2 plus 3 is 5."
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


def test_unsupported_tool_choice_is_a_named_400(client):
    import openai
    for choice in ("required", {"type": "function", "function": {"name": "add"}}):
        with pytest.raises(openai.BadRequestError) as e:
            client.chat.completions.create(model="minimind", messages=ASK, tools=ADD, tool_choice=choice)
        assert e.value.code == "unsupported_value" and e.value.param == "tool_choice"


def parse(payload, tok=None):
    return parse_chat_request(payload, tok or m3_tokenizer(), 800, 64, 1024)


@pytest.mark.parametrize("extra, param", [
    ({"tools": []}, "tools"),
    ({"tools": [{"type": "function", "function": {"name": "add two"}}]}, "tools[0].function.name"),
    ({"tools": [{"type": "retrieval"}]}, "tools[0]"),
    ({"enable_thinking": "yes"}, "enable_thinking"),
    ({"enable_thinking": True, "chat_template_kwargs": {"open_thinking": False}}, "enable_thinking"),
    ({"chat_template_kwargs": {"add_generation_prompt": False}}, "chat_template_kwargs"),
    ({"messages": ASK + [{"role": "assistant", "content": None, "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "add", "arguments": "{a: 2}"}}]}]}, "messages[1].tool_calls[0].function.arguments"),
    ({"messages": ASK + [{"role": "assistant", "content": None, "tool_calls": []}]}, "messages[1].tool_calls"),
    ({"messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role"),
])
def test_bad_tool_and_thinking_fields_name_the_field(extra, param):
    with pytest.raises(APIError) as e: parse({"messages": ASK, **extra})
    assert e.value.status == 400 and e.value.param == param, e.value.message


def test_template_without_tool_syntax_refuses_tools():
    "The book's ChatML has no place for tools: a request with tools is refused, not answered as if there were none."
    with pytest.raises(APIError) as e: parse({"messages": ASK, "tools": ADD}, book_tokenizer())
    assert e.value.param == "tools" and e.value.code == "unsupported_value"
    with pytest.raises(APIError) as e: parse({"messages": ASK + [CALLED, RESULT]}, book_tokenizer())
    assert e.value.param == "messages" and "tool" in e.value.message


def test_thinking_switch_reaches_the_template():
    "On, the prompt ends inside <think> (the reply starts with reasoning); off, with an empty think block; minimind-3's default is off."
    on, off, default = (parse({"messages": ASK, **kw}) for kw in ({"open_thinking": True}, {"enable_thinking": False}, {}))
    tok = m3_tokenizer()
    assert tok.decode(on.request.prompt_ids).endswith("<think>\n") and on.in_think
    assert tok.decode(off.request.prompt_ids).endswith("<think>\n\n</think>\n\n") and not off.in_think
    assert default.request.prompt_ids == off.request.prompt_ids
