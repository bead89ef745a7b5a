"""DistributedDataParallel on CPU: `torchrun --nproc_per_node 2` (gloo) gives the same losses and weights as one
process that sees the same global batch. Rows have different numbers of target tokens, so this also checks that the
trainer weights each rank's micro-batch by its share of the global target tokens (a plain average over ranks would not match)."""
import json, os, subprocess, sys, textwrap
from pathlib import Path

import pytest

WORKER = textwrap.dedent("""
    import json, sys, torch
    from minimind.model import MiniMindConfig, MiniMindForCausalLM
    from minimind.train import TrainConfig, setup_distributed, train
    torch.set_num_threads(1)
    rank, world = setup_distributed()
    ROWS, L, V = 4, 24, 97                       # global micro-batch: 4 rows, split across the ranks

    def global_micro_batch(i):
        g = torch.Generator().manual_seed(1000 + i)
        x = 3 + (torch.randint(0, V - 3, (ROWS, 1), generator=g) + torch.arange(L)) % (V - 3)   # learnable: +1 each step
        mask = torch.ones_like(x)
        labels = x.clone()
        for r in range(ROWS):                   # ragged: a prompt prefix without loss, padding at the end
            labels[r, : int(torch.randint(0, L // 2, (1,), generator=g))] = -100
            pad = int(torch.randint(0, L // 3, (1,), generator=g))
            if pad: mask[r, -pad:] = 0; labels[r, -pad:] = -100; x[r, -pad:] = 0
        return {"input_ids": x, "labels": labels, "attention_mask": mask}

    def batches(start):
        per = ROWS // world
        i = start
        while True:
            b = global_micro_batch(i)
            yield {k: v[rank * per:(rank + 1) * per] for k, v in b.items()}
            i += 1

    torch.manual_seed(0)
    model = MiniMindForCausalLM(MiniMindConfig.from_preset("tiny", vocab_size=V, hidden_size=32, intermediate_size=64))
    cfg = TrainConfig(lr=1e-2, warmup_steps=1, max_steps=4, grad_accum_steps=2, amp="off", device="cpu", progress=False)
    hist = train(model, batches, cfg)
    if rank == 0:
        json.dump({"world": world, "loss": [h["loss"] for h in hist], "grad_norm": [h["grad_norm"] for h in hist],
                   "weights": {k: v.double().flatten()[:64].tolist() for k, v in model.state_dict().items()}},
                  open(sys.argv[1], "w"))
    import torch.distributed as dist
    if dist.is_initialized():          # tear gloo down explicitly: an implicit teardown at exit can abort ("terminate called ...")
        dist.barrier(); dist.destroy_process_group()
""")


def run(cmd, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, f"{cmd} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"


def test_ddp_two_processes_match_one(tmp_path):
    (tmp_path / "worker.py").write_text(WORKER)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    run(torchrun + ["worker.py", "ddp.json"], tmp_path)
    run([sys.executable, "worker.py", "single.json"], tmp_path)
    ddp, one = (json.loads((tmp_path / f).read_text()) for f in ("ddp.json", "single.json"))
    assert (ddp["world"], one["world"]) == (2, 1)
    assert len(ddp["loss"]) == len(one["loss"]) == 4
    assert one["loss"][-1] < one["loss"][0]                      # it trained
    # float32 sums in a different order: agreement to ~1e-6 relative; tolerance 1e-5
    for a, b in zip(ddp["loss"] + ddp["grad_norm"], one["loss"] + one["grad_norm"]):
        assert abs(a - b) <= 1e-5 * max(1.0, abs(b)), (ddp["loss"], one["loss"])
    for k in one["weights"]:
        diff = max(abs(a - b) for a, b in zip(ddp["weights"][k], one["weights"][k]))
        assert diff <= 1e-5, (k, diff)
