"""Crash and resume: a CPU training run killed with SIGKILL (mid-training, and at three points inside a save) resumes
from its last complete checkpoint and ends with weights and optimizer state bitwise equal to an uninterrupted run.
A rerun into the same folder never dies on an existing checkpoint: with resume it continues, without it starts over."""
import os, signal, subprocess, sys, textwrap
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
STEPS, ACCUM, SAVE_EVERY = 12, 2, 4

WORKER = textwrap.dedent(f"""
    import sys, torch
    from minimind.model import MiniMindConfig, MiniMindForCausalLM
    from minimind.train import TrainConfig, train
    torch.set_num_threads(1)
    V, L, ROWS = 97, 24, 4

    def batches(start):                          # micro-batch i depends only on i: the data position is one integer
        i = start
        while True:
            print(f"batch {{i}}", flush=True)
            g = torch.Generator().manual_seed(i)
            x = 3 + (torch.randint(0, V - 3, (ROWS, 1), generator=g) + torch.arange(L)) % (V - 3)
            yield {{"input_ids": x, "labels": x.clone(), "attention_mask": torch.ones_like(x)}}
            i += 1

    torch.manual_seed(0)
    model = MiniMindForCausalLM(MiniMindConfig.from_preset("tiny", vocab_size=V, hidden_size=32, intermediate_size=64,
                                                          dropout=0.1))           # dropout: the RNG state matters too
    steps, resume = (int(sys.argv[2]), sys.argv[3] == "resume") if len(sys.argv) > 2 else ({STEPS}, True)
    cfg = TrainConfig(lr=1e-2, warmup_steps=2, max_steps=steps, grad_accum_steps={ACCUM}, save_every={SAVE_EVERY},
                      out_dir=sys.argv[1], resume=resume, amp="off", device="cpu", progress=False)
    hist = train(model, batches, cfg)
    print("done", hist[-1]["step"], flush=True)
""")


def start(tmp_path, out, *args, **env):
    "The worker on `out`; args (steps, 'resume'|'fresh') default to STEPS and resume."
    (tmp_path / "worker.py").write_text(WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), **env}
    return subprocess.Popen([sys.executable, "worker.py", str(out), *map(str, args)], cwd=tmp_path, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(proc) -> list[str]:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    return out.splitlines()


def final_state(out: Path) -> dict:
    "Every tensor of the final checkpoint: weights (safetensors) and optimizer state (weights_only .pt)."
    from safetensors.torch import load_file
    d = out / (out / "latest").read_text()
    assert d.name == f"step_{STEPS:08d}"
    state = torch.load(d / "state.pt", weights_only=True)
    opt = {f"opt.{i}.{k}": v for i, s in state["optimizer"]["state"].items() for k, v in s.items()}
    return {**load_file(str(d / "model.safetensors")), **opt}


def assert_bitwise_equal(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a: assert torch.equal(a[k], b[k]), k


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ref")
    lines = finish(start(tmp, tmp / "ckpt"))
    assert lines[-1] == f"done {STEPS}" and lines[0] == "batch 0"
    return final_state(tmp / "ckpt")


def test_sigkill_mid_training_resumes_bitwise(tmp_path, reference):
    out = tmp_path / "ckpt"
    proc = start(tmp_path, out)
    for line in proc.stdout:                     # kill during step 6 (micro-batches 10, 11), after the step-4 save
        if line.strip() == "batch 11": proc.send_signal(signal.SIGKILL); break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert (out / "latest").read_text() == "step_00000004"
    lines = finish(start(tmp_path, out))
    assert lines[0] == f"batch {4 * ACCUM}"      # resumed at the saved data position, not from scratch
    assert_bitwise_equal(final_state(out), reference)


@pytest.mark.parametrize("stage", ["weights", "files", "rename"])
def test_sigkill_mid_save_resumes_bitwise(tmp_path, reference, stage):
    out = tmp_path / "ckpt"
    proc = start(tmp_path, out, MINIMIND_CKPT_CRASH_AT=f"{stage}:8")
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert (out / "latest").read_text() == "step_00000004"     # the interrupted save never became visible
    lines = finish(start(tmp_path, out))
    assert lines[0] == f"batch {4 * ACCUM}"
    assert not list(out.glob(".tmp_*"))
    assert_bitwise_equal(final_state(out), reference)


def test_rerun_with_more_steps_resumes(tmp_path):
    "A finished 8-step run, rerun with 12 steps: it resumes at step 8 and continues to 12."
    out = tmp_path / "ckpt"
    assert finish(start(tmp_path, out, 8, "resume"))[-1] == "done 8"
    lines = finish(start(tmp_path, out, STEPS, "resume"))
    assert lines[0] == f"batch {8 * ACCUM}" and lines[-1] == f"done {STEPS}"
    assert (out / "latest").read_text() == f"step_{STEPS:08d}"


def test_rerun_without_resume_replaces_the_latest(tmp_path, reference):
    "A 4-step run leaves step 4 as the latest; a 12-step rerun without resume starts over, replaces step 4 on its way, ends bitwise equal."
    out = tmp_path / "ckpt"
    assert finish(start(tmp_path, out, SAVE_EVERY, "resume"))[-1] == f"done {SAVE_EVERY}"
    assert (out / "latest").read_text() == f"step_{SAVE_EVERY:08d}"
    lines = finish(start(tmp_path, out, STEPS, "fresh"))
    assert lines[0] == "batch 0" and lines[-1] == f"done {STEPS}"
    assert not list(out.glob(".old_*")) and not list(out.glob(".tmp_*"))
    assert_bitwise_equal(final_state(out), reference)


def test_sigkill_mid_replace_keeps_the_old_checkpoint(tmp_path):
    "Killed between the two renames of a replacement: the old step 4 is still loadable, and the next run resumes from it."
    from minimind.checkpoint import latest_checkpoint
    out = tmp_path / "ckpt"
    finish(start(tmp_path, out, SAVE_EVERY, "resume"))
    proc = start(tmp_path, out, STEPS, "fresh", MINIMIND_CKPT_CRASH_AT=f"swap:{SAVE_EVERY}")
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert not (out / f"step_{SAVE_EVERY:08d}").exists() and latest_checkpoint(out).name == f".old_step_{SAVE_EVERY:08d}"
    lines = finish(start(tmp_path, out, STEPS, "resume"))
    assert lines[0] == f"batch {SAVE_EVERY * ACCUM}" and lines[-1] == f"done {STEPS}"
    assert not list(out.glob(".old_*")) and (out / f"step_{SAVE_EVERY:08d}").is_dir()
