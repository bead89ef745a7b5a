"""Every sweep JSON next to the notebooks was made by today's code (its code hash matches), and every JSON
belongs to a sweep the library declares."""
import json
from pathlib import Path
import pytest
from minimind.sweeps import StaleSweep, find_sweeps, load_sweep, sweeps_dir

SWEEPS = find_sweeps()


@pytest.mark.parametrize("name", sorted(SWEEPS))
def test_sweep_json_matches_code(name):
    try: data = load_sweep(SWEEPS[name])
    except StaleSweep as e: pytest.fail(str(e))
    assert [r["seed"] for r in data["rows"]] == list(SWEEPS[name].seeds)


def test_no_orphan_sweep_json():
    orphans = [p.name for p in Path(sweeps_dir()).glob("*.json") if p.stem not in SWEEPS]
    assert not orphans, f"sweep JSONs with no Sweep in the library: {orphans}"
