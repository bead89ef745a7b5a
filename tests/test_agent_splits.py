"""Chapter 17a's fact splits, split by fact and proven here (an operation and an unordered operand pair, in both
operand orders and both languages), read back from the texts with chapter 08's own `content_items`.

Three-way split (`agent_fact_splits`, `run_agent_rl_experiment`): the tool model's SFT facts, GRPO's RL facts and
chapter 08's held-out facts; the splits cover chapter 08's facts exactly. Pool split (`pool_fact_splits`,
`run_agent_pool_experiment`): SFT facts, GRPO's pool of thousands of RL facts and 300 held-out two-digit facts, plus
chapter 08's held-out one-digit facts ('heldout1'); the pool is large enough that a run draws hardly any fact twice, and
the generator reproduces chapter 08's suite. For both: the texts each stage trains on mention only their own split's
facts, and the experiment hands each stage its own split. The pool's seed screen (`pool_sft_start`) starts exactly where
the experiment does, and the screened sweep runs the seeds the rule picks from the screen's JSON.
"""
import pytest
from minimind.agent import (AGENT_POOL_SCREEN_SWEEP, AGENT_POOL_SCREENED_SWEEP, AGENT_POOL_SWEEP, AGENT_RL_SWEEP, POOL_MIN_SIGNAL,
                            agent_fact_splits, agent_tokenizer, arith_record, arith_tool_trace,
                            fact_records, pool_fact_splits, pool_sft_start, run_agent_pool_experiment, run_agent_rl_experiment,
                            screen_pool_seeds, tool_trace)
from minimind.data import HELD_OUT_FACTS, book_arith_suite, content_items, content_split


def facts(records: list) -> set:
    "Chapter 08's fact keys (op, min, max) that the records' questions mention."
    return {f for r in records for f in content_items(r["conversations"][0]["content"])}


def trace_facts(records: list) -> set:
    "The fact keys that the records' whole rendered conversations mention (question, call, tool result, answer)."
    tok = agent_tokenizer()
    return {i for r in records for i in content_items(tok.apply_chat_template(r["conversations"])) if len(i) == 3 and i[0] in "+×"}


def assert_facts_travel_together(splits: dict) -> None:
    "Every fact's records sit in one split with both languages and both operand orders (one order when a == b)."
    for name, recs in splits.items():
        by_fact = {}
        for r in recs: by_fact.setdefault(r["fact"], set()).add((r["lang"], r["conversations"][0]["content"]))
        for fact, qs in by_fact.items():
            a, op, b = fact.split()
            assert {lang for lang, _ in qs} == {"en", "zh"}, (name, fact)
            assert len(qs) == (2 if a == b else 4), (name, fact, qs)


def untrained_policy(*args, **kwargs):
    "A stand-in for `tiny_agent_policy`: an untrained one-layer model is enough to test the wiring."
    import minimind.agent as agent
    return agent.MiniMindForCausalLM(agent.MiniMindConfig.from_preset("tiny", vocab_size=len(agent_tokenizer()), hidden_size=16,
                                                                   num_hidden_layers=1, intermediate_size=48)).eval()


# --- the three-way split ----------------------------------------------------------------------------------------

def test_splits_are_disjoint_by_fact_and_cover_chapter_08():
    s = agent_fact_splits()
    sft, rl, held = facts(s["sft"]), facts(s["rl"]), facts(s["heldout"])
    assert not (sft & rl) and not (sft & held) and not (rl & held)
    assert held == set(HELD_OUT_FACTS)
    assert sft | rl == facts(book_arith_suite("train"))
    assert [sum(op == o for op, *_ in rl) for o in ("+", "×")] == [11, 11]          # 11 sums and 11 products go to RL
    assert len(s["sft"]) + len(s["rl"]) == len(book_arith_suite("train"))        # every training record lands in one split
    assert {content_split(r["conversations"][0]["content"]) for r in s["sft"] + s["rl"]} == {"train"}


def test_every_record_of_a_fact_stays_in_its_split():
    assert_facts_travel_together(agent_fact_splits())


def test_sft_traces_mention_only_sft_facts():
    s = agent_fact_splits()
    assert trace_facts([tool_trace(r) for r in s["sft"]]) <= facts(s["sft"])


def test_split_is_fixed():
    assert agent_fact_splits() == agent_fact_splits()
    assert facts(agent_fact_splits(seed=1)["rl"]) != facts(agent_fact_splits()["rl"])   # the seed matters, so the fixed one is a choice
    assert AGENT_RL_SWEEP.run is run_agent_rl_experiment


def test_rl_experiment_trains_each_stage_on_its_own_split(monkeypatch):
    import minimind.agent as agent
    seen = {}
    def sft(records, steps, seed):                  # record what SFT gets
        seen["sft"] = records
        return untrained_policy()
    def rl(policy, ref, records, cfg, loss_fn):
        seen["rl"] = records
        return []
    monkeypatch.setattr(agent, "tiny_agent_policy", sft)
    monkeypatch.setattr(agent, "train_agent_rl", rl)
    agent.run_agent_rl_experiment(seed=0, sft_steps=1, rl_steps=1, n_eval=2, n_signal=1, group_size=2)
    s = agent_fact_splits()
    assert trace_facts(seen["sft"]) == facts(s["sft"]) and len(seen["sft"]) == len(s["sft"])
    assert facts(seen["rl"]) == facts(s["rl"]) and seen["rl"] == s["rl"]


# --- the pool split --------------------------------------------------------------------------------------------

def test_pool_splits_are_disjoint_by_fact():
    s = {k: fact_records(v) for k, v in pool_fact_splits(**_split_args()).items()}
    read = {k: facts(v) for k, v in s.items()}
    names = list(read)
    for i, a in enumerate(names):
        for b in names[i + 1:]: assert not (read[a] & read[b]), (a, b, sorted(read[a] & read[b])[:5])
    assert read["heldout1"] == set(HELD_OUT_FACTS)
    assert all(max(a, b) >= 10 for _, a, b in read["heldout"] | read["rl"])      # the pool and its held-out facts are two-digit
    assert len(read["heldout"]) == 300 and len(read["rl"]) > 9000                  # thousands of RL facts


def test_every_record_of_a_pool_fact_stays_in_its_split():
    assert_facts_travel_together({k: fact_records(v) for k, v in pool_fact_splits().items()})


def test_pool_generator_reproduces_chapter_08():
    key = lambda r: (r["conversations"][0]["content"], r["answer"], r["lang"], r["op"], r["fact"])
    one = pool_fact_splits()
    sft_one = [f for f in one["sft"] if max(f[1:]) < 10]
    assert sorted(map(key, fact_records(sft_one))) == sorted(map(key, book_arith_suite("train")))
    assert sorted(map(key, fact_records(one["heldout1"]))) == sorted(map(key, book_arith_suite("heldout")))
    for r in book_arith_suite("train")[:40]: assert arith_tool_trace(r) == tool_trace(r)   # the one-digit traces are chapter 17a's
    assert arith_record(37, 45, "×", "zh")["answer"] == "1665"


def test_pool_sft_traces_mention_only_sft_facts():
    s = pool_fact_splits()
    assert trace_facts([arith_tool_trace(r) for r in fact_records(s["sft"])]) <= set(s["sft"])


def test_rl_draws_hardly_repeat_a_fact():
    cfg = AGENT_POOL_SWEEP.config
    draws, pool = cfg["rl_steps"] * cfg["prompts_per_step"], len(pool_fact_splits(cfg["n_sft"])["rl"])
    assert draws / pool < 0.05, (draws, pool)        # expected draws per RL fact in a whole run


def test_pool_experiment_trains_each_stage_on_its_own_split(monkeypatch):
    import minimind.agent as agent
    seen = {"eval": []}
    def sft(records, steps, seed, hidden_size):      # record what SFT gets
        seen["sft"] = records
        return untrained_policy()
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
    assert trace_facts(seen["sft"]) == set(s["sft"]) and len(seen["sft"]) == len(fact_records(s["sft"]))
    assert facts(seen["rl"]) == set(s["rl"])
    evaluated = facts([r for recs in seen["eval"] for r in recs])
    assert evaluated & set(s["heldout"]) and evaluated & set(s["heldout1"])        # both held-out sets are measured,
    assert not evaluated & set(s["sft"])                                              # and no SFT fact is


def test_screen_starts_where_the_pool_experiment_starts(monkeypatch):
    import minimind.agent as agent
    seen = {}
    def sft(records, steps, seed, hidden_size):       # record what SFT and the signal get, per caller
        seen.setdefault("sft", []).append((records, steps, seed, hidden_size))
        return untrained_policy()
    def signal(model, records, group_size, seed):
        seen.setdefault("signal", []).append((records, group_size, seed))
        return {"signal": 0.5, "reward": 0.25}
    monkeypatch.setattr(agent, "tiny_agent_policy", sft)
    monkeypatch.setattr(agent, "group_signal", signal)
    monkeypatch.setattr(agent, "train_agent_rl", lambda *a: [])
    kw = dict(seed=3, sft_steps=7, n_sft=40, n_eval=5, n_signal=2, group_size=2, hidden_size=16)
    start = pool_sft_start(**kw)
    run = run_agent_pool_experiment(**kw, rl_steps=1)
    assert seen["sft"][0] == seen["sft"][1]                 # the same SFT data, steps, seed and size
    assert seen["signal"][0] == seen["signal"][1]           # the same prompts, group size and seed for the signal
    assert start == {k: run[k] for k in start} == {"signal_rl": 0.5, "sampled_rl": 0.25}


def test_screened_sweep_runs_the_seeds_the_screen_picks():
    from minimind.sweeps import load_sweep
    rows = load_sweep(AGENT_POOL_SCREEN_SWEEP)["rows"]
    kept = [r["seed"] for r in rows if r["signal_rl"] >= POOL_MIN_SIGNAL][:8]      # the rule, read from the screen's JSON
    assert list(AGENT_POOL_SCREENED_SWEEP.seeds) == kept == screen_pool_seeds(rows)
    assert AGENT_POOL_SCREENED_SWEEP.config == AGENT_POOL_SWEEP.config             # the measurement itself is unchanged
    assert all(AGENT_POOL_SCREEN_SWEEP.config[k] == v for k, v in AGENT_POOL_SWEEP.config.items() if k in AGENT_POOL_SCREEN_SWEEP.config)
    with pytest.raises(ValueError, match="screen more seeds"): screen_pool_seeds(rows, n=len(rows))


def _split_args() -> dict:
    return {"n_sft": AGENT_POOL_SWEEP.config["n_sft"]}
