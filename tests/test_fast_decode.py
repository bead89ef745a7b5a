"The C decode step (chapter 18 §5) against the torch step it replaces: logits, cache, threads, bad input."
import pytest, torch
from minimind.model import MiniMindForCausalLM, MiniMindConfig
from minimind.generate import FastDecoder, decode_kernels

pytestmark = pytest.mark.skipif(decode_kernels()[0] is None, reason=f"no C decode kernels here: {decode_kernels()[1]}")

SHAPES = {"minimind2-small": dict(num_hidden_layers=2),                        # GQA 8/2, head_dim 64
          "minimind3": dict(num_hidden_layers=2),                              # q/k norms, head_dim 96 != 768/8, GQA 8/4
          "tiny": dict(head_dim=24, vocab_size=512)}                           # head_dim not a multiple of 16


@pytest.fixture(autouse=True)
def one_torch_thread():
    "The torch reference step on one thread: small ops on a busy 2-core machine are slower on two."
    n = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def model_of(preset: str) -> MiniMindForCausalLM:
    torch.manual_seed(0)
    return MiniMindForCausalLM(MiniMindConfig.from_preset(preset, **SHAPES[preset])).eval()


def run_steps(d: FastDecoder, ids: torch.Tensor, prompt_len: int) -> torch.Tensor:
    "Logits of a prefill and then one step per later token of ids (1, L), stacked (L - prompt_len, V)."
    out = [d.prefill(ids[:, :prompt_len])] + [d.step(int(t)) for t in ids[0, prompt_len:-1]]
    return torch.stack(out)


@pytest.mark.parametrize("preset", list(SHAPES))
def test_c_step_equals_torch_step(preset):
    "fp32: the C step's logits and the keys/values it writes into the cache equal the torch step's to float rounding."
    m = model_of(preset)
    ids = torch.randint(3, m.config.vocab_size, (1, 40), generator=torch.Generator().manual_seed(1))
    c, ref = FastDecoder(m, 48, threads=1), FastDecoder(m, 48, kernels="torch")
    assert c.c_step is not None and ref.c_step is None
    lc, lr = run_steps(c, ids, 8), run_steps(ref, ids, 8)
    assert (lc - lr).abs().max() <= 1e-5 * lr.abs().max(), float((lc - lr).abs().max())
    torch.testing.assert_close(c.k, ref.k, rtol=0, atol=1e-5)
    torch.testing.assert_close(c.v, ref.v, rtol=0, atol=1e-5)
    assert c.pos == ref.pos == 39


@pytest.mark.parametrize("weights", ["fp32", "int8"])
def test_threads_split_rows_not_sums(weights):
    """Threads split rows and heads, never a sum: the logits are bit-identical to one thread's, with each thread computing the Q/K/V
    rows of its own KV heads (2 threads, 2 KV heads) and with the team splitting that product (3 threads)."""
    m = model_of("minimind2-small")
    ids = torch.randint(3, 6400, (1, 24), generator=torch.Generator().manual_seed(2))
    one, two, three = (run_steps(FastDecoder(m, 32, weights, threads=t), ids, 4) for t in (1, 2, 3))
    assert torch.equal(one, two) and torch.equal(one, three)


def test_int8_c_step_agrees_with_per_matrix_kernels():
    "int8: the C step and the torch step over the same VNNI products agree on the top-1 token and closely in value."
    m = model_of("minimind2-small")
    ids = torch.randint(3, 6400, (1, 40), generator=torch.Generator().manual_seed(3))
    a, b = run_steps(FastDecoder(m, 48, "int8"), ids, 8), run_steps(FastDecoder(m, 48, "int8", whole_step=False), ids, 8)
    assert (a.argmax(-1) == b.argmax(-1)).float().mean() >= 0.9
    assert (a - b).abs().max() <= 0.05 * b.abs().max()


def test_bad_token_and_full_cache_are_refused():
    "A token id outside the vocabulary would read outside the embedding in C: refused with a clear error, as a full cache is."
    m = model_of("tiny")
    d = FastDecoder(m, 6)
    d.prefill(torch.tensor([[3, 4, 5]]))
    for bad in (-1, 512):
        with pytest.raises(ValueError, match="outside the vocabulary"): d.step(bad)
    for t in (6, 7, 8): d.step(t)
    with pytest.raises(ValueError, match="cache is full"): d.step(9)
