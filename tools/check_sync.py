"""Fail if the notebooks are not clean, or the library or README are not what the notebooks make.

Runs nbdev-clean, nbdev-export and tools/readme.py, and compares every file under nbs/,
minimind/ and README.md before and after. Anything that changed was out of sync: the files are
left regenerated so `git diff` shows what to commit.
"""
import hashlib, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def snapshot() -> dict:
    "Hash of every tracked-or-new file that the sync step may rewrite."
    files = [ROOT / "README.md", *(ROOT / "nbs").rglob("*.ipynb"), *(ROOT / "minimind").rglob("*.py")]
    return {str(p.relative_to(ROOT)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files
            if p.is_file() and ".ipynb_checkpoints" not in p.parts and "__pycache__" not in p.parts}


def main() -> int:
    before = snapshot()
    for cmd in ([str(BIN / "nbdev-clean")], [str(BIN / "nbdev-export")], [sys.executable, "tools/readme.py"]):
        subprocess.run(cmd, cwd=ROOT, check=True)
    after = snapshot()
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    if changed:
        print("Out of sync: these files change when the notebooks are cleaned/exported "
              "(run `make sync` and commit):")
        for name in changed: print("  ", name)
        return 1
    print(f"sync ok: {len(after)} files (notebooks clean, library and README match the notebooks)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
