"""Chapter 17a's pool experiment: SFT facts, GRPO's large pool of RL facts, and held-out facts, split by fact.

`run_agent_pool_experiment` SFTs on `arith_tool_trace`s of split 'sft', runs GRPO on prompts drawn from split 'rl'
and reads splits 'heldout' (two-digit facts) and 'heldout1' (chapter 08's held-out one-digit facts) as facts never
trained on. These tests read the facts back from the texts with chapter 08's own `content_items` (not from the
split's tuples), and prove: the splits are disjoint by fact (an operation and an unordered operand pair, both
orders and both languages together), the texts each stage trains on mention only their own split's facts, the
pool is large enough that a run draws hardly any fact twice, and the generator reproduces chapter 08's suite.
"""
from collections import Counter
from minimind.agent import (AGENT_POOL_SWEEP, agent_tokenizer, arith_record, arith_tool_trace, fact_records, pool_fact_splits,
                            run_agent_pool_experiment, tool_trace)
from minimind.data import HELD_OUT_FACTS, book_arith_suite, content_items


def facts(records: list) -> set:
    "Chapter 08's fact keys (op, min, max) that the records' questions mention."
    return {f for r in records for f in content_items(r["conversations"][0]["content"])}


def test_splits_are_disjoint_by_fact():
    s = {k: fact_records(v) for k, v in pool_fact_splits(**_split_args()).items()}
    read = {k: facts(v) for k, v in s.items()}
    names = list(read)
    for i, a in enumerate(names):
        for b in names[i + 1:]: assert not (read[a] & read[b]), (a, b, sorted(read[a] & read[b])[:5])
    assert read["heldout1"] == set(HELD_OUT_FACTS)
    assert all(max(a, b) >= 10 for _, a, b in read["heldout"] | read["rl"])      # the pool and its held-out facts are two-digit
    assert len(read["heldout"]) == 300 and len(read["rl"]) > 9000                  # thousands of RL facts


def test_every_record_of_a_fact_stays_in_its_split():
    for name, recs in {k: fact_records(v) for k, v in pool_fact_splits().items()}.items():
        by_fact = {}
        for r in recs: by_fact.setdefault(r["fact"], set()).add((r["lang"], r["conversations"][0]["content"]))
        for fact, qs in by_fact.items():
            a, op, b = fact.split()
            assert {lang for lang, _ in qs} == {"en", "zh"}, (name, fact)
            assert len(qs) == (2 if a == b else 4), (name, fact, qs)


def test_generator_reproduces_chapter_08():
    key = lambda r: (r["conversations"][0]["content"], r["answer"], r["lang"], r["op"], r["fact"])
    one = pool_fact_splits()
    sft_one = [f for f in one["sft"] if max(f[1:]) < 10]
    assert sorted(map(key, fact_records(sft_one))) == sorted(map(key, book_arith_suite("train")))
    assert sorted(map(key, fact_records(one["heldout1"]))) == sorted(map(key, book_arith_suite("heldout")))
    for r in book_arith_suite("train")[:40]: assert arith_tool_trace(r) == tool_trace(r)   # the one-digit traces are chapter 17a's
    assert arith_record(37, 45, "×", "zh")["answer"] == "1665"


def test_sft_traces_mention_only_sft_facts():
    s = pool_fact_splits()
    tok, sft = agent_tokenizer(), set(s["sft"])
    for r in fact_records(s["sft"]):                # the whole rendered trace: question, call, tool result, answer
        text = tok.apply_chat_template(arith_tool_trace(r)["conversations"])
        assert {i for i in content_items(text) if len(i) == 3 and i[0] in "+×"} <= sft, text


def test_rl_draws_hardly_repeat_a_fact():
    cfg = AGENT_POOL_SWEEP.config
    draws, pool = cfg["rl_steps"] * cfg["prompts_per_step"], len(pool_fact_splits(cfg["n_sft"])["rl"])
    assert draws / pool < 0.05, (draws, pool)        # expected draws per RL fact in a whole run


def test_experiment_trains_each_stage_on_its_own_split(monkeypatch):
    import minimind.agent as agent
    seen = {"eval": []}
    def sft(records, steps, seed, hidden_size):      # record what SFT gets; an untrained model is enough for the wiring
        seen["sft"] = records
        return agent.MiniMindForCausalLM(agent.MiniMindConfig.from_preset("tiny", vocab_size=len(agent_tokenizer()), hidden_size=16,
                                                                       num_hidden_layers=1, intermediate_size=48)).eval()
    def rl(policy, ref, records, cfg, loss_fn):
        seen["rl"] = records
        return []
    real_metrics = agent.agent_metrics
    def metrics(model, records, *a, **k):
        seen["eval"].append(records)
        return real_metrics(model, records, *a, **k)
    monkeypatch.setattr(agent, "tiny_agent_policy", sft)
    monkeypatch.setattr(agent, "train_agent_rl", rl)
    monkeypatch.setattr(agent, "agent_metrics", metrics)
    agent.run_agent_pool_experiment(seed=0, sft_steps=1, rl_steps=1, n_eval=3, n_signal=1, group_size=2)
    s = pool_fact_splits()
    tok = agent_tokenizer()
    sft_facts = {i for r in seen["sft"] for i in content_items(tok.apply_chat_template(r["conversations"])) if i[0] in "+×"}
    assert sft_facts == set(s["sft"]) and len(seen["sft"]) == len(fact_records(s["sft"]))
    assert facts(seen["rl"]) == set(s["rl"])
    evaluated = facts([r for recs in seen["eval"] for r in recs])
    assert evaluated & set(s["heldout"]) and evaluated & set(s["heldout1"])        # both held-out sets are measured,
    assert not evaluated & set(s["sft"])                                              # and no SFT fact is


def _split_args() -> dict:
    return {"n_sft": AGENT_POOL_SWEEP.config["n_sft"]}
