"""The built wheel works on its own: fresh virtual environment, no repository around.

One wheel and one environment serve both tests (a module-scoped fixture): the model presets run, and `minimind quiz`
drills the question bank shipped inside the wheel, from a folder outside the repository.

torch is the one package not installed again: the fresh environment sees the project's own torch through a `.pth`
folder that holds only links to torch (a 700 MB unpack would be most of this test's time, and torch is pinned in
pyproject.toml anyway). Every other dependency the wheel declares, torch's own included, is resolved and installed
by pip into the fresh environment, so a dependency missing from pyproject.toml still fails here.
Set MINIMIND_TORCH_SPEC (e.g. `torch==2.13.0`) to install torch into it from the index instead.
"""
import json, os, subprocess, sys, textwrap, venv
from pathlib import Path

import pytest

from minimind.quiz import PROGRESS_FILE, load_bank

ROOT = Path(__file__).resolve().parents[1]
TORCH = os.environ.get("MINIMIND_TORCH_SPEC")

SMOKE = textwrap.dedent("""
    import sys, torch, minimind
    from minimind.model import MiniMindConfig, MiniMindForCausalLM, PRESETS
    assert "site-packages" in minimind.__file__, minimind.__file__
    torch.manual_seed(0)
    ids = torch.randint(3, 6400, (1, 8))
    for name in PRESETS:                       # every preset builds (on the meta device: shapes only, no 800 MB of init)
        with torch.device("meta"): print(f"{name} {MiniMindForCausalLM(MiniMindConfig.from_preset(name)).num_parameters():,}")
    for name in ("minimind2-small", "minimind3", "tiny-moe"):    # and runs: Llama layout, Qwen3 layout (q/k norms), MoE
        model = MiniMindForCausalLM(MiniMindConfig.from_preset(name)).eval()
        with torch.no_grad(): out = model(ids, labels=ids)
        assert out.logits.shape == (1, 8, model.config.vocab_size), name
        assert torch.isfinite(out.loss), name
        print(f"{name} runs, loss={out.loss.item():.3f}")
    print("version", minimind.__version__)
""")


def run(cmd, **kw):
    "Run a command, failing the test with its output on error."
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert r.returncode == 0, f"{cmd} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout


def link_torch(py: Path, folder: Path) -> None:
    "Make this interpreter's torch (and only torch) importable in the venv of `py`: links in `folder`, named by a .pth file."
    import torch
    site = Path(torch.__file__).resolve().parents[1]
    folder.mkdir()
    names = ["torch", "functorch", "torchgen", *(p.name for p in site.glob("torch-*.dist-info"))]
    for name in names:
        if (site / name).exists(): (folder / name).symlink_to(site / name)
    assert (folder / "torch").exists() and any(folder.glob("torch-*.dist-info")), names
    target = Path(run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).strip())
    (target / "torch_only.pth").write_text(str(folder) + "\n")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    "Build the wheel once and install it, after torch, into a fresh venv; returns the venv's bin folder."
    tmp = tmp_path_factory.mktemp("wheel")
    dist = tmp / "dist"
    run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(ROOT)])   # setuptools from this env (`make build` builds isolated)
    wheels = list(dist.glob("minimind_book-*.whl"))
    assert len(wheels) == 1, wheels
    env_dir = tmp / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    if TORCH: run([str(py), "-m", "pip", "install", "-q", "--no-compile", TORCH])
    else: link_torch(py, tmp / "torch_only")
    run([str(py), "-m", "pip", "install", "-q", "--no-compile", str(wheels[0])])   # bytecode on first import, as make setup does
    return env_dir / "bin"


def test_wheel_installs_and_runs_in_fresh_venv(installed, tmp_path):
    out = run([str(installed / "python"), "-c", SMOKE], cwd=tmp_path)   # cwd outside the repo: imports the installed wheel
    for name in ("minimind2-small", "minimind2", "minimind2-moe", "minimind3", "minimind3-moe", "tiny"):
        assert name in out
    for name in ("minimind2-small", "minimind3", "tiny-moe"): assert f"{name} runs" in out
    assert "25,829,888" in out and "198,416,640" in out


def test_quiz_from_the_wheel_without_the_repository(installed, tmp_path):
    """`minimind quiz` finds the bank inside site-packages, lists it, and runs a session fed on stdin."""
    work, data = tmp_path / "elsewhere", tmp_path / "data"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("MINIMIND_BANK_DIR", "PYTHONPATH")}
    env.update(MINIMIND_DATA_DIR=str(data), PYTHONIOENCODING="utf-8", PATH=f"{installed}{os.pathsep}{env['PATH']}")
    quiz = [str(installed / "minimind"), "quiz"]

    where = run([str(installed / "python"), "-c", "from minimind.quiz import bank_dir; print(bank_dir())"], cwd=work, env=env)
    assert "site-packages" in where and str(ROOT) not in where

    listing = run(quiz + ["--list"], cwd=work, env=env)
    bank = load_bank()                                   # the repository's bank: the wheel must carry all of it
    for topic in bank.topics: assert topic in listing, topic
    assert len(listing.strip().splitlines()) == len(bank.topics) + 1

    errata = run(quiz + ["--errata"], cwd=work, env=env)
    assert errata.startswith("# Errata") and "s02.c4" in errata

    # two open items (one right, one wrong), then the repeat_kv drill with our solution: graded by the installed library
    solution = bank.items["s02.code-repeat-kv"].solution.strip("\n")
    typed = "my answer\ny\n\nn\n"
    session = run(quiz + ["--topic", "s02", "--mode", "open", "--count", "2", "--seed", "1"], input=typed, cwd=work, env=env)
    assert "minimind quiz · 2 question(s)" in session and "Key points" in session
    assert "answered 2 · right 1 · wrong 1 · skipped 0" in session
    drill = run(quiz + ["--topic", "s02", "--mode", "code"], input=solution + "\n.\n", cwd=work, env=env)
    assert "All 6 randomized trials match the library's minimind.attention.repeat_kv" in drill
    assert "answered 1 · right 1 · wrong 0" in drill

    progress = json.loads((data / PROGRESS_FILE).read_text(encoding="utf-8"))
    assert len(progress["items"]) == 3 and len(progress["sessions"]) == 2
    assert progress["items"]["s02.code-repeat-kv"]["state"] == 2          # FSRS: Review after one right answer
