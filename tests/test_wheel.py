"""The built wheel works on its own: fresh virtual environment, torch first, no repository around."""
import os, subprocess, sys, textwrap, venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TORCH = os.environ.get("MINIMIND_TORCH_SPEC", "torch==2.13.0")

SMOKE = textwrap.dedent("""
    import sys, torch, minimind
    from minimind.model import MiniMindConfig, MiniMindForCausalLM, PRESETS
    assert "site-packages" in minimind.__file__, minimind.__file__
    torch.manual_seed(0)
    ids = torch.randint(3, 6400, (1, 8))
    for name in PRESETS:
        model = MiniMindForCausalLM(MiniMindConfig.from_preset(name)).eval()
        with torch.no_grad(): out = model(ids, labels=ids)
        assert out.logits.shape == (1, 8, model.config.vocab_size), name
        assert torch.isfinite(out.loss), name
        print(f"{name} {model.num_parameters():,} loss={out.loss.item():.3f}")
    print("version", minimind.__version__)
""")


def run(cmd, **kw):
    "Run a command, failing the test with its output on error."
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert r.returncode == 0, f"{cmd} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout


def test_wheel_installs_and_runs_in_fresh_venv(tmp_path):
    dist = tmp_path / "dist"
    run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(ROOT)])
    wheels = list(dist.glob("minimind_book-*.whl"))
    assert len(wheels) == 1, wheels
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    run([str(py), "-m", "pip", "install", "-q", TORCH])
    run([str(py), "-m", "pip", "install", "-q", str(wheels[0])])
    out = run([str(py), "-c", SMOKE], cwd=tmp_path)      # cwd outside the repo: imports the installed wheel
    for name in ("minimind2-small", "minimind2", "minimind2-moe", "minimind3", "minimind3-moe", "tiny"):
        assert name in out
    assert "25,829,888" in out and "198,416,640" in out
