"""The `mixkit` front door: lists every tool, dispatches to its main as `python -m TOOL` would, and answers an
unknown tool with one line and exit code 2. The console script is the one pyproject.toml declares."""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
import tomllib
from pathlib import Path

from mixkit_cli import MAIN_MODULE, TOOLS, main
from sim.workload import load_workload

ROOT = Path(__file__).resolve().parents[1]


def _entry_point():
    """The function pyproject.toml's [project.scripts] mixkit names."""
    target = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]["mixkit"]
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def _cli_modules() -> set[str]:
    """Every module under hw, sim, tb, eda and models runnable as `python -m` (a main and a __main__ guard)."""
    found = set()
    for package in ("hw", "sim", "tb", "eda", "models"):
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text()
            if "def main(" in text and '__name__ == "__main__"' in text:
                parts = path.relative_to(ROOT).with_suffix("").parts
                found.add(".".join(parts[:-1] if parts[-1] == "__main__" else parts))
    return found | {"tb"}


def test_no_arguments_list_every_tool_and_every_tool_is_listed(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert all(f"  {tool} " in out and text in out for tool, text in TOOLS.items())
    assert _cli_modules() - {"tb.cli"} == set(TOOLS)
    for tool in TOOLS:
        assert importlib.util.find_spec(MAIN_MODULE.get(tool, tool)) is not None, tool


def test_an_unknown_tool_is_one_line_and_exit_2(capsys):
    assert main(["hw.teleport", "--fast"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == "mixkit: error: unknown tool 'hw.teleport': run `mixkit` for the list\n"


def test_the_console_script_dispatches_to_the_tool(tmp_path, capsys):
    mixkit = _entry_point()
    assert mixkit is main
    assert mixkit(["hw.cache", "purge"]) == 2  # argparse's error inside the tool: its own one line
    assert capsys.readouterr().err.startswith("python -m hw.cache: error: argument command: invalid choice")
    out = tmp_path / "w"
    assert mixkit(["sim.workload", "builtin", "llama-2-7b", "--prefill", "8", "--decode", "1", "-o", str(out)]) == 0
    assert load_workload(out).model == "llama-2-7b"
    assert mixkit(["tb", "--cycles", "0"]) == 2  # tb's main lives in tb.cli
    assert "argument --cycles: 0 is out of range" in capsys.readouterr().err


def test_python_dash_m_runs_the_front_door():
    proc = subprocess.run(
        [sys.executable, "-m", "mixkit_cli", "models.zoo", "--no-such-flag"], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == "python -m models.zoo: error: the following arguments are required: cmd\n"
