"""Chapter 07's FusedCausalLM: trains like the plain model, saves under the plain names, refuses what it does not implement;
`minimind bench --threads`."""
import pytest
import torch

from minimind.model import MiniMindConfig, MiniMindForCausalLM, FusedCausalLM, from_pretrained
from minimind.bench import run_bench, add_bench_args


@pytest.fixture(autouse=True)
def one_thread():
    "Tiny matrices: a second thread only waits (and on a shared 2-core machine waits long); restored after each test."
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _pair(**kw):
    torch.manual_seed(0)
    plain = MiniMindForCausalLM(MiniMindConfig.from_preset("tiny", **kw))
    return plain, FusedCausalLM(plain)


def test_five_adamw_steps_match_the_plain_model():
    plain, fused = _pair()
    x = torch.randint(3, 6400, (2, 24), generator=torch.Generator().manual_seed(1))
    losses = {}
    for name, m in (("plain", plain), ("fused", fused)):
        opt = torch.optim.AdamW(m.parameters(), lr=1e-2)
        losses[name] = []
        for _ in range(5):
            loss = m(x, labels=x).loss
            loss.backward(); opt.step(); opt.zero_grad()
            losses[name].append(loss.item())
    assert losses["fused"][-1] < losses["fused"][0] - 0.1                      # it trains
    assert max(abs(a - b) for a, b in zip(losses["plain"], losses["fused"])) < 1e-4
    trained = fused.plain_state_dict()
    for k, v in plain.state_dict().items():                                     # the same weights after 5 updates
        assert (trained[k] - v).abs().max() < 1e-3 * v.abs().max() + 1e-6, k


def test_saved_under_plain_names(tmp_path):
    plain, fused = _pair(qk_norm=True, tie_word_embeddings=False)
    with torch.no_grad(): fused.layers[1].up.mul_(1.5)                      # a change only the fused copy has
    fused.unfuse().save_pretrained(tmp_path)
    loaded = from_pretrained(tmp_path)                                          # strict: every plain name present
    x = torch.randint(3, 6400, (1, 16))
    with torch.no_grad():
        assert torch.allclose(loaded(x).logits, fused(x).logits, atol=1e-5)
        assert not torch.allclose(loaded(x).logits, plain(x).logits, atol=1e-3)


def test_refuses_moe_and_dropout():
    with pytest.raises(NotImplementedError, match="dense models only"):
        FusedCausalLM(MiniMindForCausalLM(MiniMindConfig.from_preset("tiny-moe")))
    with pytest.raises(NotImplementedError, match="dropout"):
        FusedCausalLM(MiniMindForCausalLM(MiniMindConfig.from_preset("tiny", dropout=0.1)))


def test_bench_threads_option():
    import argparse
    args = add_bench_args(argparse.ArgumentParser()).parse_args(["--quick", "--threads", "1"])
    assert args.threads == 1
    with pytest.raises(ValueError, match="--threads 0"):
        run_bench(True, ["flash"], "cpu", threads=0)


def test_chapter09_loss_and_padding():
    from minimind.train import lm_loss
    plain, fused = _pair()
    x = torch.randint(3, 6400, (2, 16))
    batch = {"input_ids": x, "labels": x, "attention_mask": torch.ones_like(x)}
    assert abs(lm_loss(plain, batch)[0].item() - lm_loss(fused, batch)[0].item()) < 1e-5   # chapter 09's loss takes either
    batch["attention_mask"][0, -3:] = 0
    with pytest.raises(NotImplementedError, match="padding masks"):
        lm_loss(fused, batch)
