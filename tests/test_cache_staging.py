"""The cache's staging folders: an interrupted run removes its own, a failed run keeps its logs until they are
stale, stale ones are swept when a new entry starts, `python -m hw.cache clean` removes them; tool runs print one
progress line each when a CLI asks for progress."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hw.cache import RESULT, main, run_logged, staged_entry, staging_folders
from sim.cli import progress_lines

ROOT = Path(__file__).resolve().parents[1]


def _staging(parent):
    return [p for p in parent.iterdir() if p.name.startswith(".")]


def test_an_interrupted_run_leaves_no_staging_folder(tmp_path):
    with pytest.raises(KeyboardInterrupt), staged_entry(tmp_path / "kind" / "entry-1") as work:
        (work / "half.v").write_text("module")
        raise KeyboardInterrupt
    assert _staging(tmp_path / "kind") == [] and not (tmp_path / "kind" / "entry-1").exists()


def test_a_failed_run_keeps_its_logs_until_stale_then_a_new_entry_sweeps_them(tmp_path):
    kind = tmp_path / "kind"
    with pytest.raises(RuntimeError), staged_entry(kind / "entry-1") as work:
        (work / "tool.log").write_text("error: boom\n")
        raise RuntimeError("tool failed: see tool.log")
    [kept] = _staging(kind)
    assert (kept / "tool.log").read_text() == "error: boom\n"
    with staged_entry(kind / "entry-2") as work:  # the failed run's folder is fresh: it stays
        (work / RESULT).write_text("{}")
    assert _staging(kind) == [kept]
    day_ago = time.time() - 25 * 3600
    os.utime(kept, (day_ago, day_ago))
    with staged_entry(kind / "entry-3") as work:
        (work / RESULT).write_text("{}")
    assert _staging(kind) == [] and (kind / "entry-2" / RESULT).is_file() and (kind / "entry-3" / RESULT).is_file()


def test_clean_removes_only_stale_staging_folders_by_default(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MIXKIT_CACHE", str(tmp_path))
    old, fresh, entry = tmp_path / "synth" / ".pe-abc-x1", tmp_path / "eda" / ".add8-def-x2", tmp_path / "eda" / "add8"
    for folder in (old, fresh, entry):
        folder.mkdir(parents=True)
    (entry / RESULT).write_text("{}")
    os.utime(old, (time.time() - 48 * 3600,) * 2)
    assert staging_folders(tmp_path) == sorted([old, fresh])
    assert main(["clean"]) == 0
    assert not old.exists() and fresh.exists() and entry.exists()
    assert "1 staging folders removed" in capsys.readouterr().out
    assert main(["clean", "--older-than", "0", "--quiet"]) == 0
    assert not fresh.exists() and entry.exists() and capsys.readouterr().out == ""


def test_each_tool_run_prints_one_progress_line_unless_quiet(tmp_path, capsys):
    with progress_lines("python -m hw.synth"):
        run_logged(["true", "--step", "one"], tmp_path / "one.log", tmp_path, RuntimeError)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("python -m hw.synth: [") and err.endswith("true --step one\n")
    with progress_lines("python -m hw.synth", quiet=True):
        run_logged(["true"], tmp_path / "two.log", tmp_path, RuntimeError)
    run_logged(["true"], tmp_path / "three.log", tmp_path, RuntimeError)  # after the block: silent again
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_killed_or_interrupted_run_removes_its_staging_folder(tmp_path, signum):
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from hw.cache import staged_entry\n"
        "from sim.cli import sigterm_exits\n"
        "with sigterm_exits(), staged_entry(Path(sys.argv[1]) / 'entry') as work:\n"
        "    (work / 'half.log').write_text('started')\n"
        "    print('ready', flush=True)\n"
        "    time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signum)
    assert proc.wait(timeout=60) != 0
    proc.stdout.close()
    proc.stderr.close()
    assert list(tmp_path.iterdir()) == []


def test_a_tool_past_its_timeout_is_stopped_and_named(tmp_path, monkeypatch):
    with pytest.raises(RuntimeError, match=r"sleep timed out after 0.2 s .*see .*slow.log"):
        run_logged(["sleep", "30"], tmp_path / "slow.log", tmp_path, RuntimeError, timeout_s=0.2)
    monkeypatch.setenv("MIXKIT_TOOL_TIMEOUT_S", "0.2")
    with pytest.raises(RuntimeError, match="timed out after 0.2 s"):
        run_logged(["sleep", "30"], tmp_path / "slow2.log", tmp_path, RuntimeError)


def test_the_default_timeout_grows_with_the_design_and_the_environment_overrides_it(monkeypatch):
    from hw.cache import TOOL_TIMEOUT_FLOOR_S, TOOL_TIMEOUT_S, tool_timeout_s

    monkeypatch.delenv("MIXKIT_TOOL_TIMEOUT_S", raising=False)
    assert tool_timeout_s() == TOOL_TIMEOUT_S and tool_timeout_s(10) == TOOL_TIMEOUT_FLOOR_S
    assert tool_timeout_s(40_000) == 2 * tool_timeout_s(20_000) > TOOL_TIMEOUT_FLOOR_S
    monkeypatch.setenv("MIXKIT_TOOL_TIMEOUT_S", "7")
    assert tool_timeout_s(40_000) == tool_timeout_s() == 7.0
