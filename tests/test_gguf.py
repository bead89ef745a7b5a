"""GGUF export (chapter 19a): the file read back with gguf's own reader, and run by llama.cpp when the [llama] extra is there.

Without llama-cpp-python the file is still checked field by field against the model and tokenizer it came from, with
tensor names and row orders written out here rather than taken from minimind.export; with it, llama.cpp loads our
files and its logits and token ids are compared with ours.
"""
import json, warnings

import numpy as np
import pytest
import torch
import gguf

import minimind.export as export
from minimind.cli import main
from minimind.export import export_gguf, llama_cpp_decode_rate, llama_cpp_logits, llama_cpp_unavailable, load_gguf
from minimind.model import MiniMindConfig, MiniMindForCausalLM
from minimind.tokenizer import MiniMindTokenizer, book_tokenizer

LAYOUTS = {"llama": dict(), "qwen3": dict(qk_norm=True, head_dim=24, rms_norm_eps=1e-6)}
VOCAB = 1024 + 32                                   # the book tokenizer has 1024 tokens: 32 pad rows at the end
LLAMA = pytest.mark.skipif(llama_cpp_unavailable() is not None, reason=str(llama_cpp_unavailable()))


@pytest.fixture(scope="module")
def tok():
    return book_tokenizer()


def tiny(arch: str, seed: int = 0) -> MiniMindForCausalLM:
    "A random tiny model of the layout; initializer_range 0.1 so that the logits are far from flat."
    torch.manual_seed(seed)
    return MiniMindForCausalLM(MiniMindConfig.from_preset("tiny", vocab_size=VOCAB, initializer_range=0.1, **LAYOUTS[arch])).eval()


@pytest.fixture(scope="module")
def files(tmp_path_factory, tok):
    "{(arch, dtype): (model, path)} for both layouts and the three storage types."
    d = tmp_path_factory.mktemp("gguf")
    out = {}
    for arch in LAYOUTS:
        m = tiny(arch)
        for dt in ("f32", "f16", "q8_0"): out[arch, dt] = (m, export_gguf(m, d / f"{arch}-{dt}.gguf", dt, tokenizer=tok))
    return out


def fields(path) -> tuple[dict, dict]:
    "(metadata values, {tensor name: ReaderTensor}) of a GGUF file."
    r = gguf.GGUFReader(str(path))
    return {k: f.contents() for k, f in r.fields.items()}, {t.name: t for t in r.tensors}


def expected_tensors(m: MiniMindForCausalLM) -> dict:
    "GGUF tensor name -> our weight in llama.cpp's row order, spelled out (llama: q/k rows 2j+s <- s*D/2+j per head)."
    c, sd, arch = m.config, m.state_dict(), "qwen3" if m.config.qk_norm else "llama"
    def adjacent(w, heads):   # row h*D + 2j + s of the file is row h*D + s*D/2 + j of ours
        D, idx = c.head_dim, []
        for h in range(heads):
            for j in range(D // 2):
                for s in range(2): idx.append(h * D + s * D // 2 + j)
        return w[idx]
    out = {"token_embd.weight": sd["model.embed_tokens.weight"], "output_norm.weight": sd["model.norm.weight"]}
    for i in range(c.num_hidden_layers):
        p = f"model.layers.{i}."
        q, k = sd[p + "self_attn.q_proj.weight"], sd[p + "self_attn.k_proj.weight"]
        if arch == "llama": q, k = adjacent(q, c.num_attention_heads), adjacent(k, c.num_key_value_heads)
        out |= {f"blk.{i}.attn_q.weight": q, f"blk.{i}.attn_k.weight": k, f"blk.{i}.attn_v.weight": sd[p + "self_attn.v_proj.weight"],
                f"blk.{i}.attn_output.weight": sd[p + "self_attn.o_proj.weight"], f"blk.{i}.attn_norm.weight": sd[p + "input_layernorm.weight"],
                f"blk.{i}.ffn_norm.weight": sd[p + "post_attention_layernorm.weight"], f"blk.{i}.ffn_gate.weight": sd[p + "mlp.gate_proj.weight"],
                f"blk.{i}.ffn_up.weight": sd[p + "mlp.up_proj.weight"], f"blk.{i}.ffn_down.weight": sd[p + "mlp.down_proj.weight"]}
        if arch == "qwen3":
            out |= {f"blk.{i}.attn_q_norm.weight": sd[p + "self_attn.q_norm.weight"], f"blk.{i}.attn_k_norm.weight": sd[p + "self_attn.k_norm.weight"]}
    return out


@pytest.mark.parametrize("arch", list(LAYOUTS))
def test_metadata(files, tok, arch):
    m, path = files[arch, "q8_0"]
    c, (meta, _) = m.config, fields(path)
    assert meta["general.architecture"] == arch and meta["general.file_type"] == 7          # 7 = mostly q8_0
    for key, want in {"block_count": 2, "embedding_length": 64, "feed_forward_length": 192, "context_length": 1024,
                      "attention.head_count": 4, "attention.head_count_kv": 2, "attention.key_length": c.head_dim,
                      "attention.value_length": c.head_dim, "rope.dimension_count": c.head_dim}.items():
        assert meta[f"{arch}.{key}"] == want, key
    assert meta[f"{arch}.rope.freq_base"] == 1e6
    assert meta[f"{arch}.attention.layer_norm_rms_epsilon"] == pytest.approx(c.rms_norm_eps, rel=1e-6)
    j = json.loads(tok.tokenizer.to_str())
    tokens, types = meta["tokenizer.ggml.tokens"], meta["tokenizer.ggml.token_type"]
    assert meta["tokenizer.ggml.model"] == "gpt2" and meta["tokenizer.ggml.pre"] == "gpt-2"
    assert len(tokens) == VOCAB and len(types) == VOCAB
    assert tokens[:3] == ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] and list(types[:3]) == [3, 3, 3]
    assert all(tokens[i] == t for t, i in j["model"]["vocab"].items())
    assert set(types[3:1024]) == {1} and set(types[1024:]) == {5} and tokens[-1] == f"[PAD{VOCAB - 1}]"
    assert meta["tokenizer.ggml.merges"] == [" ".join(p) for p in j["model"]["merges"]]
    assert (meta["tokenizer.ggml.bos_token_id"], meta["tokenizer.ggml.eos_token_id"], meta["tokenizer.ggml.padding_token_id"]) == (1, 2, 0)
    assert meta["tokenizer.ggml.add_bos_token"] is False
    assert meta["tokenizer.chat_template"] == (tok.chat_template or export.CHATML_TEMPLATE)


@pytest.mark.parametrize("arch", list(LAYOUTS))
def test_tensors_f32_f16_q8_0(files, arch):
    m = files[arch, "f32"][0]
    want = expected_tensors(m)
    for dt in ("f32", "f16", "q8_0"):
        _, tensors = fields(files[arch, dt][1])
        assert set(tensors) == set(want), (dt, set(tensors) ^ set(want))                       # tied head: no output.weight
        for name, w in want.items():
            t = tensors[name]
            assert [int(n) for n in t.shape] == list(reversed(w.shape)), name                 # ne: innermost first
            got = torch.from_numpy(np.array(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32)).reshape(w.shape)
            if w.ndim == 1 or name.endswith("_norm.weight") or dt == "f32":
                assert t.tensor_type == gguf.GGMLQuantizationType.F32 and torch.equal(got, w), name
            elif dt == "f16":
                assert t.tensor_type == gguf.GGMLQuantizationType.F16 and torch.equal(got, w.half().float()), name
            else:
                assert t.tensor_type == gguf.GGMLQuantizationType.Q8_0, name
                blocks, err = w.reshape(-1, 32), (got - w).reshape(-1, 32).abs()
                step = blocks.abs().amax(1, keepdim=True) / 127
                assert (err <= step * (0.5 + 127 * 2**-11) + 1e-12).all(), name                # half a step (+ fp16 scale)
                assert err.max() > 0, name                                                     # it was quantized


@pytest.mark.parametrize("arch", list(LAYOUTS))
def test_f32_reads_back_exactly(files, arch):
    m, path = files[arch, "f32"]
    ids = torch.randint(0, VOCAB, (2, 17), generator=torch.Generator().manual_seed(1))
    back, _ = load_gguf(path)
    with torch.no_grad(): assert torch.equal(back(ids).logits, m(ids).logits)


def test_errors_name_the_problem(tmp_path, tok):
    with pytest.raises(NotImplementedError, match="use_moe=True"):
        export_gguf(MiniMindForCausalLM(MiniMindConfig.from_preset("tiny-moe", vocab_size=1024)), tmp_path / "moe.gguf", tokenizer=tok)
    with pytest.raises(ValueError, match="dtype='q4_0'"): export_gguf(tiny("llama"), tmp_path / "x.gguf", "q4_0", tokenizer=tok)
    with pytest.raises(FileNotFoundError, match="config.json"): export_gguf(tmp_path / "nowhere", tmp_path / "x.gguf")
    small = MiniMindForCausalLM(MiniMindConfig.from_preset("tiny", vocab_size=512))
    with pytest.raises(ValueError, match="vocab_size is 512"): export_gguf(small, tmp_path / "x.gguf", tokenizer=tok)
    from tokenizers import Tokenizer, pre_tokenizers
    other = Tokenizer.from_str(tok.tokenizer.to_str()); other.pre_tokenizer = pre_tokenizers.Whitespace()
    with pytest.raises(ValueError, match="pre_tokenizer"): export_gguf(tiny("llama"), tmp_path / "x.gguf", tokenizer=MiniMindTokenizer(other))
    assert not list(tmp_path.glob("*.gguf")) and not list(tmp_path.glob(".*.tmp"))            # nothing half-written left


def test_cli_exports_a_folder(tmp_path, tok, capsys):
    m = tiny("qwen3"); m.save_pretrained(tmp_path / "ckpt"); tok.save(tmp_path / "ckpt")
    assert main(["export", "gguf", "--model", str(tmp_path / "ckpt"), "--out", str(tmp_path / "m.gguf"), "--dtype", "f16"]) == 0
    assert "wrote" in capsys.readouterr().out
    meta, tensors = fields(tmp_path / "m.gguf")
    assert meta["general.architecture"] == "qwen3" and meta["general.file_type"] == 1
    assert tensors["blk.0.attn_q.weight"].tensor_type == gguf.GGMLQuantizationType.F16
    assert main(["export", "gguf", "--model", str(tmp_path / "none"), "--out", str(tmp_path / "n.gguf")]) == 1
    assert "config.json" in capsys.readouterr().err


def test_decode_rate_without_llama_cpp_says_why(monkeypatch, files):
    monkeypatch.setattr(export, "llama_cpp_unavailable", lambda: "llama-cpp-python is not installed (test)")
    with pytest.warns(UserWarning, match="not installed"):
        assert llama_cpp_decode_rate(files["llama", "f32"][1], [1, 2, 3], 8) is None


@LLAMA
@pytest.mark.parametrize("arch", list(LAYOUTS))
def test_llama_cpp_logits_match_ours(files, arch):
    ids = torch.randint(3, 1024, (40,), generator=torch.Generator().manual_seed(2)).tolist()
    m = files[arch, "f32"][0]
    with torch.no_grad(): ours = m(torch.tensor([ids])).logits[0].numpy()
    f32 = llama_cpp_logits(files[arch, "f32"][1], ids)
    assert f32.shape == ours.shape
    assert np.abs(f32 - ours).max() <= 1e-3 * ours.std(), (np.abs(f32 - ours).max(), ours.std())
    q8 = llama_cpp_logits(files[arch, "q8_0"][1], ids)          # q8_0 weights, and llama.cpp quantizes activations too
    top, ours_top = q8.argmax(-1), ours.argmax(-1)
    gap = ours.max(-1) - ours[np.arange(len(ids)), top]             # how much worse their pick is under our logits
    assert (top == ours_top).mean() >= 0.9 and gap.max() <= 0.25 * ours.std(), ((top == ours_top).mean(), gap.max() / ours.std())


@LLAMA
def test_llama_cpp_tokenizes_like_ours(files, tok):
    from llama_cpp import Llama
    llm = Llama(model_path=str(files["llama", "f32"][1]), vocab_only=True, verbose=False)
    texts = ["Alice found 3 apples   at noon!", "她说：“你好”，it's 12,345 tokens.\tDone  \n\n",
             tok.apply_chat_template([{"role": "user", "content": "What is 7 + 5?"}], add_generation_prompt=True)]
    for text in texts:
        assert llm.tokenize(text.encode(), add_bos=False, special=True) == tok.encode(text), text
        assert llm.detokenize(tok.encode(text), special=True).decode() == text


@LLAMA
def test_llama_cpp_decode_rate(files):
    rate = llama_cpp_decode_rate(files["llama", "q8_0"][1], list(range(3, 35)), 16, threads=1)
    assert isinstance(rate, float) and rate > 0


@LLAMA
def test_llama_cpp_yarn_matches_ours(tmp_path, tok):
    "A YaRN model (factor 4 over 256 positions) read past its original context: llama.cpp's rope settings agree with ours."
    torch.manual_seed(0)
    yarn = {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 256, "beta_fast": 32.0, "beta_slow": 1.0}
    m = MiniMindForCausalLM(MiniMindConfig.from_preset("tiny", vocab_size=VOCAB, initializer_range=0.1, rope_scaling=yarn)).eval()
    ids = torch.randint(3, 1024, (400,), generator=torch.Generator().manual_seed(3)).tolist()
    with torch.no_grad(): ours = m(torch.tensor([ids])).logits[0].numpy()
    theirs = llama_cpp_logits(export_gguf(m, tmp_path / "yarn.gguf", tokenizer=tok), ids)
    assert np.abs(theirs - ours).max() <= 1e-3 * ours.std(), (np.abs(theirs - ours).max(), ours.std())
