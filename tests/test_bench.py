"""`minimind bench` as chapter 24 wires it: a subparser built by add_bench_args, run through set_defaults(run=...)."""
import argparse, json

from minimind.bench import add_bench_args, bench_from_args, BENCHMARKS


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minimind")
    sub = parser.add_subparsers(dest="command", required=True)
    add_bench_args(sub.add_parser("bench", help="benchmarks")).set_defaults(run=bench_from_args)
    return parser


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
        assert r["ratio"] > 0 and isinstance(r["met"], bool) and not r["note"].startswith("error")


def test_bench_help_lists_benchmarks(capsys):
    try: _parser().parse_args(["bench", "--help"])
    except SystemExit as e: assert e.code == 0
    text = capsys.readouterr().out
    assert "--quick" in text and "--only" in text and "--json" in text and "--device" in text
    assert all(name in text for name in BENCHMARKS)
