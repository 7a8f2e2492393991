"""-o folders are written atomically (sim.files.staged_folder): a run killed or interrupted while writing leaves
the earlier output as it was and no staging folder; runs writing the same output at once all finish with one
complete folder."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from sim.model_shapes import builtin_workload
from sim.workload import WORKLOAD_FILE, load_workload, save_workload_folder

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_killed_write_keeps_the_earlier_output_and_no_staging_folder(tmp_path, signum):
    out = tmp_path / "w"
    save_workload_folder(builtin_workload("llama-2-7b", prefill=8, decode=1), out)
    before = (out / WORKLOAD_FILE).read_bytes()
    code = (
        "import sys, time\n"
        "from sim.cli import sigterm_exits\n"
        "from sim.files import staged_folder\n"
        "with sigterm_exits(), staged_folder(sys.argv[1]) as work:\n"
        "    (work / 'workload.json').write_text('{\"half\": ')\n"
        "    print('ready', flush=True)\n"
        "    time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(out)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signum)
    assert proc.wait(timeout=60) != 0
    proc.stdout.close()
    proc.stderr.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w"]
    assert (out / WORKLOAD_FILE).read_bytes() == before


def test_concurrent_writers_of_one_output_leave_one_complete_folder(tmp_path):
    out = tmp_path / "w"
    errors: list[BaseException] = []

    def write(batch: int) -> None:
        try:
            for _ in range(5):
                save_workload_folder(builtin_workload("llama-2-7b", prefill=8, decode=1, batch=batch), out)
        except BaseException as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=write, args=(batch,)) for batch in (1, 2, 3, 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w"]
    assert sorted(p.name for p in out.iterdir()) == [WORKLOAD_FILE]
    assert load_workload(out).meta["batch"] in (1, 2, 3, 4)


def test_a_failed_run_leaves_the_earlier_output(tmp_path):
    from sim.files import staged_folder

    out = tmp_path / "sel"
    out.mkdir()
    (out / "selection.json").write_text("earlier\n")
    with pytest.raises(RuntimeError), staged_folder(out) as work:
        (work / "selection.json").write_text("half")
        raise RuntimeError("scoring failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sel"]
    assert (out / "selection.json").read_text() == "earlier\n"
