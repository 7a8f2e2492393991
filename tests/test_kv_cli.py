"""python -m models.kv eval: the table and files on the tiny zoo, one-line errors with exit code 2."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from models.kv.__main__ import main
from sim.workload import load_workload
from tests.cli import one_line_error

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.usefixtures("one_thread")
SMALL = ["--preset", "tiny", "--seq-len", "48", "--prefill", "16", "--windows", "1", "--recall-examples", "3"]


def test_eval_writes_table_json_csv_and_plot(tiny_zoo, tmp_path, capsys):
    config = tmp_path / "mixed.json"
    config.write_text(json.dumps({"name": "K8V4+K4V2", "pairs": [[8, 4], [4, 2]], "group_size": 16}))
    out = tmp_path / "out"
    assert main(["eval", str(tiny_zoo["base"]), "--config", str(config), "-o", str(out), *SMALL]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[1:]] == ["KV16", "KV8", "KV4", "KIVI-2", "K8V4+K4V2"]
    report = json.loads((out / "kv_eval.json").read_text())
    assert report["results"]["K8V4+K4V2"]["avg_bits"] == 4.5 and report["config"]["pairs"] == [[8, 4], [4, 2]]
    assert report["results"]["KV16"]["ppl_change_pct"] == 0 and report["results"]["KV4"]["kl"] > 0
    rows = list(csv.DictReader((out / "kv_eval.csv").open()))
    assert [r["config"] for r in rows] == list(report["results"])
    assert (out / "kv_eval.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--config", "KV3"], "no KV config file at KV3"),
        (["--config", "{missing}"], "no KV config file"),
        (["--config", "{bad}"], "not valid JSON"),
        (["--config", "{wrong_layers}"], "3 layer pairs but the model has 2 layers"),
        (["--config", "{bad_bits}"], "key bits 3 unsupported"),
        (["--config", "KV4", "--prefill", "48"], "--prefill 48"),
        (["--config", "KV4", "--preset", "huge"], "unknown zoo preset 'huge'"),
        (["--config", "KV4", "--windows", "0"], "--windows 0 must be at least 1"),
        (["--config"], "expected one argument"),
    ],
)
def test_bad_input_exits_2_with_one_line(tiny_zoo, tmp_path, capsys, args, words):
    files = {"missing": tmp_path / "none.json", "bad": tmp_path / "bad.json"}
    files["bad"].write_text("{")
    for name, pairs in (("wrong_layers", [[4, 4]] * 3), ("bad_bits", [[3, 4], [4, 4]])):
        files[name] = tmp_path / f"{name}.json"
        files[name].write_text(json.dumps({"pairs": pairs}))
    args = [a.format(**files) for a in args]
    out = tmp_path / "out"
    argv = ["eval", str(tiny_zoo["base"]), *SMALL, *args, "-o", str(out)]
    assert words in one_line_error(main, argv, capsys)
    assert not out.exists()


def test_bad_flags_are_rejected_before_torch_is_imported(tmp_path):
    """Every subcommand checks its arguments (and a KV config file) before `import torch`, which takes seconds."""
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    argvs = [
        ["--no-such-flag"],
        ["eval", "base", "--config", "KV4", "--windows", "0"],
        ["eval", "base", "--config", str(bad)],
        ["tune", "base", "--max-bits", "nan"],
        ["train-predictor", "base", "--sink", "-1"],
        ["evict", "base", "--policies", "h2o,lru"],
        ["evict", "base", "--policies", "attnpred"],
        ["workload", "base", "--config", "KV4", "--ratio", "0.5", "-o", str(tmp_path / "w")],
    ]
    code = (
        "import sys\n"
        "from models.kv.__main__ import main\n"
        f"for argv in {argvs!r}:\n"
        "    try:\n"
        "        code = main([*argv, '-o', sys.argv[1]] if '-o' not in argv and len(argv) > 1 else argv)\n"
        "    except SystemExit as e:\n"
        "        code = e.code\n"
        "    assert code == 2, argv\n"
        "    assert 'torch' not in sys.modules, argv\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("\n") == len(argvs) and "Traceback" not in proc.stderr
    assert "lru" in proc.stderr and "attnpred needs --predictor" in proc.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "w").exists()


def test_policy_names_match_the_policies():
    from models.kv.arguments import POLICY_NAMES
    from models.kv.selection import POLICIES

    assert POLICY_NAMES == tuple(POLICIES)


def test_workload_out_is_a_folder_refused_when_taken_unless_forced(tmp_path, capsys):
    """`workload -o` names a folder like every other -o: new, an earlier workload run's, or any with --force."""
    argv = ["workload", "llama-2-7b", "--config", "KV4", "--prefill", "16", "--decode", "1"]
    out = tmp_path / "w"
    assert main([*argv, "-o", str(out)]) == 0
    first = (out / "workload.json").read_text()
    assert load_workload(out / "workload.json").model == "llama-2-7b"
    assert main([*argv, "--ratio", "4", "-o", str(out)]) == 0  # an earlier run's folder: replaced in place
    assert (out / "workload.json").read_text() != first
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    a_file = tmp_path / "file.json"
    a_file.write_text("{}")
    capsys.readouterr()
    assert main([*argv, "-o", str(taken)]) == 2
    assert main([*argv, "-o", str(a_file)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "already exists" in err[0] and "--force" in err[0] and "is a file" in err[1]
    assert sorted(f.name for f in taken.iterdir()) == ["notes.txt"] and a_file.read_text() == "{}"
    assert main([*argv, "-o", str(taken), "--force"]) == 0  # --force replaces the folder whole
    assert sorted(f.name for f in taken.iterdir()) == ["workload.json"]
    # Nothing is left beside the folders (each staged, then renamed into place).
    assert sorted(f.name for f in tmp_path.iterdir()) == ["file.json", "taken", "w"]
