"""Regenerate the book's seed sweeps: `python tools/sweeps.py NAME [NAME ...]`, `--list`, `--stale`.

Each sweep is a module-level `minimind.sweeps.Sweep` in the library; its results go to nbs/sweeps/NAME.json
with the hash of the code that made them (tests/test_sweeps.py fails when the two drift apart).
"""
import argparse, sys
from minimind.sweeps import StaleSweep, find_sweeps, load_sweep, run_sweep, sweep_path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="*", help="sweeps to run (see --list)")
    p.add_argument("--list", action="store_true", help="list the sweeps and whether each JSON is current")
    p.add_argument("--stale", action="store_true", help="run every sweep whose JSON is missing or stale")
    a = p.parse_args(argv)
    sweeps = find_sweeps()
    def current(s):
        try: load_sweep(s); return True
        except StaleSweep: return False
    if a.list:
        for name, s in sweeps.items(): print(f"{name:28s} {'current' if current(s) else 'STALE'}  {sweep_path(s)}")
        return 0
    names = a.names or ([n for n, s in sweeps.items() if not current(s)] if a.stale else [])
    if not names: p.error("name a sweep, or use --list / --stale")
    unknown = [n for n in names if n not in sweeps]
    if unknown: p.error(f"unknown sweep(s) {unknown}; known: {sorted(sweeps)}")
    for n in names:
        data = run_sweep(sweeps[n])
        print(f"wrote {sweep_path(sweeps[n])} ({len(data['rows'])} seeds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
