"""`minimind bench` through the real command-line parser (chapter 24), in quick mode."""
import json

from minimind.bench import BENCHMARKS
from minimind.cli import build_parser as _parser, main


def test_bench_subcommand_writes_json(tmp_path, capsys):
    path = tmp_path / "bench.json"
    args = _parser().parse_args(["bench", "--quick", "--only", "moe", "--only", "flash", "--json", str(path), "--device", "cpu"])
    assert args.run(args) == 0
    out = capsys.readouterr().out
    assert "benchmark" in out and "moe" in out and "flash" in out and f"wrote {path}" in out
    saved = json.loads(path.read_text())
    assert [r["name"] for r in saved["rows"]] == ["moe", "flash"]
    assert saved["device"] == "cpu" and saved["quick"] is True
    for r in saved["rows"]:
        assert set(r) == {"name", "ours", "theirs", "unit", "ratio", "note"}
        assert r["ours"] > 0 and r["theirs"] > 0 and r["ratio"] > 0 and not r["note"].startswith("error")


def test_bench_help_lists_benchmarks(capsys):
    try: _parser().parse_args(["bench", "--help"])
    except SystemExit as e: assert e.code == 0
    text = capsys.readouterr().out
    assert "--quick" in text and "--only" in text and "--json" in text and "--device" in text
    assert all(name in text for name in BENCHMARKS)


def test_bench_through_main(capsys):
    assert main(["bench", "--quick", "--only", "flash", "--device", "cpu"]) == 0
    assert "flash" in capsys.readouterr().out
