"""Crash and resume: a CPU training run killed with SIGKILL (mid-training, and at three points inside a save) resumes
from its last complete checkpoint and ends with weights and optimizer state bitwise equal to an uninterrupted run.
A rerun into the same folder never dies on an existing checkpoint: with resume it continues, without it starts over."""
import itertools, multiprocessing, signal, time
from pathlib import Path

import pytest
import torch

STEPS, ACCUM, SAVE_EVERY = 12, 2, 4

# Each run is its own process, forked from a server process that imported torch and minimind once (a fresh interpreter
# per run would spend ~2 s of CPU importing torch, 17 times). The worker logs each micro-batch it takes to LOG;
# with PAUSE_AT it stops at that micro-batch until it is killed, so a kill lands at a known point, not a raced one.
WORKER = f"""
import os, time, traceback
try:
    import torch
    from minimind.model import MiniMindConfig, MiniMindForCausalLM
    from minimind.train import TrainConfig, train
    os.environ.update(ENV)                       # e.g. MINIMIND_CKPT_CRASH_AT: read by the checkpoint code at save time
    torch.set_num_threads(1)
    V, L, ROWS = 97, 24, 4

    def log(line):
        with open(LOG, "a") as f: f.write(line + "\\n")

    def batches(start):                          # micro-batch i depends only on i: the data position is one integer
        i = start
        while True:
            log(f"batch {{i}}")
            if i == PAUSE_AT: time.sleep(300)    # wait here for the test's SIGKILL
            g = torch.Generator().manual_seed(i)
            x = 3 + (torch.randint(0, V - 3, (ROWS, 1), generator=g) + torch.arange(L)) % (V - 3)
            yield {{"input_ids": x, "labels": x.clone(), "attention_mask": torch.ones_like(x)}}
            i += 1

    torch.manual_seed(0)
    model = MiniMindForCausalLM(MiniMindConfig.from_preset("tiny", vocab_size=V, hidden_size=32, intermediate_size=64,
                                                          dropout=0.1))           # dropout: the RNG state matters too
    cfg = TrainConfig(lr=1e-2, warmup_steps=2, max_steps=STEPS, grad_accum_steps={ACCUM}, save_every={SAVE_EVERY},
                      out_dir=OUT, resume=RESUME, amp="off", device="cpu", progress=False)
    hist = train(model, batches, cfg)
    log(f"done {{hist[-1]['step']}}")
except BaseException:
    log("error " + traceback.format_exc().replace("\\n", " | "))
    raise
"""
FORK = multiprocessing.get_context("forkserver")
FORK.set_forkserver_preload(["torch", "minimind.model", "minimind.train", "minimind.checkpoint"])
_runs = itertools.count()


def start(tmp_path, out, steps: int = STEPS, mode: str = "resume", pause_at: int | None = None, **env):
    "The worker training into `out` for `steps` steps ('resume' or 'fresh'), as a forked process; its log is `proc.log`."
    log = tmp_path / f"run{next(_runs)}.log"
    log.write_text("")
    proc = FORK.Process(daemon=True, target=exec, args=(WORKER, {"__name__": "__resume_worker__", "OUT": str(out), "STEPS": steps,
                                                    "RESUME": mode == "resume", "LOG": str(log), "ENV": env, "PAUSE_AT": pause_at}))
    proc.start()
    proc.log = log
    return proc


def log_lines(proc) -> list[str]:
    return proc.log.read_text().splitlines()


def finish(proc) -> list[str]:
    proc.join(120)
    assert proc.exitcode == 0, (proc.exitcode, log_lines(proc)[-3:])
    return log_lines(proc)


def killed(proc) -> None:
    "Wait for the worker to end by its own SIGKILL (a crash point)."
    proc.join(120)
    assert proc.exitcode == -signal.SIGKILL, (proc.exitcode, log_lines(proc)[-3:])


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
    proc = start(tmp_path, out, pause_at=11)     # killed during step 6 (micro-batches 10, 11), after the step-4 save
    end = time.time() + 60
    while "batch 11" not in log_lines(proc) and time.time() < end: time.sleep(0.02)
    proc.kill()
    killed(proc)
    assert (out / "latest").read_text() == "step_00000004"
    lines = finish(start(tmp_path, out))
    assert lines[0] == f"batch {4 * ACCUM}"      # resumed at the saved data position, not from scratch
    assert_bitwise_equal(final_state(out), reference)


@pytest.mark.parametrize("stage", ["weights", "files", "rename"])
def test_sigkill_mid_save_resumes_bitwise(tmp_path, reference, stage):
    out = tmp_path / "ckpt"
    killed(start(tmp_path, out, MINIMIND_CKPT_CRASH_AT=f"{stage}:8"))
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
    killed(start(tmp_path, out, STEPS, "fresh", MINIMIND_CKPT_CRASH_AT=f"swap:{SAVE_EVERY}"))
    assert not (out / f"step_{SAVE_EVERY:08d}").exists() and latest_checkpoint(out).name == f".old_step_{SAVE_EVERY:08d}"
    lines = finish(start(tmp_path, out, STEPS, "resume"))
    assert lines[0] == f"batch {SAVE_EVERY * ACCUM}" and lines[-1] == f"done {STEPS}"
    assert not list(out.glob(".old_*")) and (out / f"step_{SAVE_EVERY:08d}").is_dir()
