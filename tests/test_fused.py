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


# Chapter 07's C kernels (AddRMSNorm, QKVRoPE, SwiGLU, CrossEntropy): each against the torch ops it replaces, on shapes with
# ragged tails (widths not a multiple of 16 lanes, an odd head size for RoPE's scalar path), bits equal on 1 and 2 threads,
# and the torch fallback without a compiler.
import os
import torch.nn.functional as F
from minimind.model import train_kernels, AddRMSNorm, QKVRoPE, SwiGLU, CrossEntropy, FUSED_KERNELS
from minimind.generate import _KERNELS

LIB, WHY = train_kernels()
needs_lib = pytest.mark.skipif(LIB is None, reason=f"no C training kernels here: {WHY}")


def _cases(D: int = 64, d: int = 72, V: int = 1003):
    "name -> (kernel fn, torch fn, inputs): the kernels and chapter 07's torch fallback, on leaves with tails."
    g = torch.Generator().manual_seed(3)
    leaf = lambda *s: torch.randn(*s, generator=g).requires_grad_()
    B, L, H, Hkv = 2, 7, 3, 1
    ang = torch.randn(L, 1, D, generator=g)
    cos, sin = ang.cos(), ang.sin()                                           # any table: the kernel must apply it as given
    def torch_rope(t):
        qk, v = t[:, :, :H + Hkv], t[:, :, H + Hkv:]
        qk = qk * cos + qk.roll(D // 2, -1) * sin
        return qk[:, :, :H], qk[:, :, H:], v
    y = torch.randint(0, V, (B * L,), generator=g)
    return {
        "norm": (lambda x, a, w: AddRMSNorm.apply(x, a, w, 1e-5, LIB), lambda x, a, w: (x + a, F.rms_norm(x + a, (d,), w, 1e-5)),
                 [leaf(B, L, d), leaf(B, L, d), leaf(d)]),
        "norm-only": (lambda x, w: AddRMSNorm.apply(x, None, w, 1e-5, LIB), lambda x, w: F.rms_norm(x, (d,), w, 1e-5), [leaf(B, L, d), leaf(d)]),
        "rope": (lambda t: QKVRoPE.apply(t, cos, sin, H, Hkv, LIB), torch_rope, [leaf(B, L, H + 2 * Hkv, D)]),
        "swiglu": (lambda a, b: SwiGLU.apply(a, b, LIB), lambda a, b: F.silu(a) * b, [leaf(B, L, 3 * d) * 4, leaf(B, L, 3 * d)]),
        "xent": (lambda z: CrossEntropy.apply(z, y, LIB), lambda z: F.cross_entropy(z, y), [leaf(B * L, V) * 5]),
    }


def _outs_and_grads(fn, inputs, weights):
    "fn's outputs, and the gradients of sum(weights[i] * outputs[i]) for every input: random output gradients, not ones."
    inputs = [t.detach().requires_grad_() for t in inputs]
    outs = fn(*inputs)
    outs = outs if isinstance(outs, tuple) else (outs,)
    grads = torch.autograd.grad(sum((o * w).sum() for o, w in zip(outs, weights)), inputs)
    return [o.detach() for o in outs] + list(grads)


@needs_lib
@pytest.mark.parametrize("D", [64, 12])                                       # 64: AVX-512 RoPE path; 12: its scalar path
@pytest.mark.parametrize("name", ["norm", "norm-only", "rope", "swiglu", "xent"])
def test_kernel_matches_torch_ops(name, D):
    fast, ref, inputs = _cases(D)[name]
    g = torch.Generator().manual_seed(4)
    weights = [torch.randn(o.shape, generator=g) for o in (ref(*inputs) if isinstance(ref(*inputs), tuple) else (ref(*inputs),))]
    a, b = _outs_and_grads(fast, inputs, weights), _outs_and_grads(ref, inputs, weights)
    assert len(a) == len(b)
    for u, v in zip(a, b):                                                     # outputs, then every input's gradient
        assert u.shape == v.shape
        assert (u - v).abs().max() <= 2e-6 * v.abs().max() + 1e-7, (name, (u - v).abs().max().item(), v.abs().max().item())


@needs_lib
@pytest.mark.parametrize("name", ["norm", "rope", "swiglu", "xent"])
def test_kernel_same_bits_on_one_and_two_threads(name):
    fast, _, inputs = _cases(d=520, V=6400)[name]                              # enough rows for 32-row blocks and both threads
    weights = [torch.ones(o.shape) for o in (fast(*inputs) if isinstance(fast(*inputs), tuple) else (fast(*inputs),))]
    runs = []
    for n in (1, 2):
        torch.set_num_threads(n)
        runs.append(_outs_and_grads(fast, inputs, weights))
    assert all(torch.equal(u, v) for u, v in zip(*runs)), name


@needs_lib
def test_kernels_in_the_model_and_bad_input():
    plain, fused = _pair(hidden_size=128, num_attention_heads=2, num_key_value_heads=1)   # head size 64
    assert fused.kernels == frozenset(FUSED_KERNELS) and "train_kernels" in fused.kernels_note
    torch_only = FusedCausalLM(plain, kernels=())
    x = torch.randint(3, 6400, (2, 33), generator=torch.Generator().manual_seed(2)); y = x.clone(); y[0, :9] = -100
    losses = []
    for m in (plain, fused, torch_only):
        out = m(x, labels=y); out.loss.backward()
        losses.append(out.loss.item())
    sd_grads = [{n: p.grad for n, p in m.named_parameters()} for m in (fused, torch_only)]
    assert abs(losses[0] - losses[1]) < 1e-5 and abs(losses[1] - losses[2]) < 1e-5
    for n, gp in sd_grads[1].items():
        assert (sd_grads[0][n] - gp).abs().max() <= 1e-5 * gp.abs().max(), n
    with pytest.raises(ValueError, match="unknown kernels"):
        FusedCausalLM(plain, kernels=("norm", "flash"))
    with pytest.raises(IndexError, match="targets must lie in"):
        CrossEntropy.apply(torch.randn(3, 10), torch.tensor([1, 10, 2]), LIB)


def test_torch_fallback_without_a_compiler(monkeypatch):
    plain, fused = _pair()
    saved = dict(_KERNELS)
    _KERNELS.clear()
    monkeypatch.setenv("CC", "no-such-compiler")
    try:
        lib, why = train_kernels()
        fallback = FusedCausalLM(plain)
    finally:
        _KERNELS.clear(); _KERNELS.update(saved)
    assert lib is None and "no C compiler" in why and fallback.kernels == frozenset() and "no C compiler" in fallback.kernels_note
    x = torch.randint(3, 6400, (2, 24))
    a, b = fallback(x, labels=x), plain(x, labels=x)
    a.loss.backward()
    assert abs(a.loss.item() - b.loss.item()) < 1e-5 and fallback.layers[0].qkv.grad is not None


@needs_lib
@pytest.mark.parametrize("shape", [(1, 67, 8, 2, 64), (2, 9, 4, 4, 16), (1, 1, 2, 1, 32)])   # ragged blocks, MHA, a single token
def test_prefill_attention_matches_sdpa(shape):
    from minimind.model import prefill_attention
    B, L, H, Hkv, D = shape
    g = torch.Generator().manual_seed(5)
    q = torch.randn(B, H, L, D, generator=g).transpose(1, 2)                   # strided, as a transposed view
    k, v = torch.randn(B, L, Hkv, D, generator=g), torch.randn(B, L, Hkv, D, generator=g)
    ref = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True, enable_gqa=H != Hkv).transpose(1, 2)
    outs = []
    for n in (1, 2):
        torch.set_num_threads(n)
        outs.append(prefill_attention(q, k, v, LIB))
    assert torch.equal(outs[0], outs[1])
    assert (outs[0] - ref).abs().max() <= 1e-6 * ref.abs().max(), (outs[0] - ref).abs().max()


@needs_lib
@pytest.mark.parametrize("shape", [(2, 67, 8, 2, 64), (2, 9, 4, 4, 16), (1, 1, 2, 1, 32), (1, 40, 6, 3, 48)])   # ragged tiles, MHA, one token, D % 32 == 16
def test_attention_backward_matches_sdpa(shape):
    from minimind.model import CausalAttention
    B, L, H, Hkv, D = shape
    g = torch.Generator().manual_seed(6)
    q0 = torch.randn(B, H, L, D, generator=g).transpose(1, 2)                  # strided, as a transposed view
    k0, v0 = torch.randn(B, L, Hkv, D, generator=g), torch.randn(B, L, Hkv, D, generator=g)
    go = torch.randn(B, L, H, D, generator=g)
    def run(f):
        q, k, v = (t.detach().clone().requires_grad_() for t in (q0, k0, v0))
        out = f(q, k, v); out.backward(go)
        return out.detach(), q.grad, k.grad, v.grad
    ref = run(lambda q, k, v: F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True,
                                                             enable_gqa=H != Hkv).transpose(1, 2))
    ours = []
    for n in (1, 2):
        torch.set_num_threads(n)
        ours.append(run(lambda q, k, v: CausalAttention.apply(q, k, v, LIB)))
    assert all(torch.equal(a, b) for a, b in zip(*ours))                        # same bits on one and two threads
    for name, a, b in zip(("out", "dq", "dk", "dv"), ours[0], ref):
        assert (a - b).abs().max() <= 2e-6 * b.abs().max() + 1e-6, (name, (a - b).abs().max().item())   # + 1e-6: one token's dq is 0 up to rounding


@needs_lib
def test_attention_kernel_in_prefill_and_training():
    plain, fused = _pair(hidden_size=128, num_attention_heads=2, num_key_value_heads=1)
    x = torch.randint(3, 6400, (1, 40))
    with torch.no_grad():
        a, b = fused(x, use_cache=True, logits_to_keep=1), plain(x, use_cache=True)
    assert (a.logits[:, -1] - b.logits[:, -1]).abs().max() < 1e-5
    assert all((u[1] - w[1]).abs().max() < 1e-5 for u, w in zip(a.past_key_values, b.past_key_values))   # values cached as plain's
    calls = []
    import minimind.model as mm
    real = mm.prefill_attention
    mm.prefill_attention = lambda q, k, v, lib, lse=None: calls.append(lse is not None) or real(q, k, v, lib, lse)
    try:
        with torch.no_grad(): fused(x)
        fused(x, labels=x).loss.backward()
    finally:
        mm.prefill_attention = real
    n = len(fused.layers)
    assert calls == [False] * n + [True] * n                                    # prefill without, training with the log-sum-exp
    assert all(l.qkv.grad is not None for l in fused.layers)


def test_torch_fallback_without_avx512(monkeypatch):
    import minimind.generate as gen
    plain, _ = _pair()
    saved = dict(_KERNELS)
    _KERNELS.clear()
    monkeypatch.setattr(gen, "cpu_flags", lambda: {"avx2", "fma"})               # a CPU without AVX-512
    try:
        lib, why = train_kernels()
        fallback = FusedCausalLM(plain)
    finally:
        _KERNELS.clear(); _KERNELS.update(saved)
    assert lib is None and "CPU lacks" in why and "avx512f" in why and fallback.kernels == frozenset()
    x = torch.randint(3, 6400, (1, 20))
    with torch.no_grad(): assert (fallback(x).logits - plain(x).logits).abs().max() < 1e-5
