"""Bad input through every CLI's main(): exit 2, one stderr line `PROG: error: ...` naming the input and the fix, no
traceback, and nothing written or deleted. Each case fails validation before any model loads or tool runs.

The corpus is data: (tool, arguments, expected fragment of the message). In the arguments, USER is an existing
folder holding a user's file, FILE an existing file, NEW a path that must stay absent, BADCONFIG a checkpoint
folder whose config.json is corrupted, TRUNCATED one whose model.safetensors is cut short, BADJSON a truncated
JSON file, MERGE_* merge configs naming those folders.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from safetensors.numpy import save_file

from tests.cli import exit_code

ROOT = Path(__file__).resolve().parents[1]

MOE = ["--experts", "4", "--top-k", "2", "--shared", "0"]
PLACEHOLDERS = ("USER", "FILE", "NEW", "BADCONFIG", "TRUNCATED", "BADJSON", "UNDERFILE", "UNWRITABLE")

CASES = [
    # data loss: an existing folder or file at -o is refused, never deleted
    ("models.merge", ["MERGE_OK", "-o", "USER"], "USER already exists: choose a new path or pass --force"),
    ("models.merge", ["MERGE_OK", "-o", "FILE"], "FILE is a file: name a new folder"),
    ("models.merge", ["MERGE_OK", "-o", "UNDERFILE"], "lies under the file"),
    ("models.merge", ["MERGE_OK", "-o", "UNWRITABLE"], "is not writable"),
    ("models.moe", ["carve", "base", *MOE, "-o", "USER"], "USER already exists"),
    ("models.prune", ["remove", "base", "--remove", "1", "-o", "USER"], "USER already exists"),
    ("models.prune", ["compare", "base", "--max-remove", "1", "-o", "FILE"], "FILE is a file"),
    ("models.recover", ["train", "base", "--selection", "BADJSON", "-o", "USER"], "USER already exists"),
    ("models.recover", ["select", "base", "--pruned", "base", "--budget", "0.1", "-o", "FILE"], "FILE is a file"),
    ("models.robust", ["attack", "--out", "USER"], "--out USER already exists"),
    ("models.robust", ["attack", "--out", "FILE"], "--out FILE is a file"),
    # broken checkpoints and JSON inputs name the file
    ("models.merge", ["MERGE_BADCONFIG", "-o", "NEW"], "BADCONFIG/config.json is not valid JSON (line 3)"),
    ("models.merge", ["MERGE_TRUNCATED", "-o", "NEW"], "TRUNCATED/model.safetensors is truncated"),
    ("models.moe", ["carve", "BADCONFIG", *MOE, "-o", "NEW"], "BADCONFIG/config.json is not valid JSON (line 3)"),
    ("models.moe", ["eval", "TRUNCATED"], "TRUNCATED/model.safetensors is truncated"),
    ("models.prune", ["rank", "TRUNCATED"], "model.safetensors is truncated"),
    ("models.prune", ["fuse", "BADCONFIG", "--remove", "1", "-o", "NEW"], "config.json is not valid JSON"),
    ("models.recover", ["select", "base", "--pruned", "TRUNCATED", "--budget", "0.1", "-o", "NEW"], "truncated"),
    ("models.recover", ["train", "base", "--selection", "BADJSON", "-o", "NEW"], "BADJSON is not valid JSON (line 2)"),
    # numbers: negative, NaN, infinite, out of range
    ("models.robust", ["certify", "--sigma", "-1"], "argument --sigma: -1 is out of range"),
    ("models.robust", ["certify", "--sigma", "nan"], "argument --sigma: nan is not a finite number"),
    ("models.robust", ["attack", "--omega", "inf"], "argument --omega: inf is not a finite number"),
    ("models.robust", ["attack", "--alpha", "0.7"], "argument --alpha: 0.7 is out of range"),
    ("models.robust", ["train-backdoor", "--rate", "-0.5"], "argument --rate"),
    ("models.robust", ["train-backdoor", "--target", "9"], "argument --target: 9 is out of range"),
    ("models.robust", ["train-backdoor", "--layers", "0"], "argument --layers"),
    ("models.robust", ["certify", "--quant", "x"], "--quant x: weight bits must be among 2, 3, 4, 8"),
    ("models.moe", ["carve", "base", "--experts", "-1", "--top-k", "2", "--shared", "0", "-o", "NEW"], "--experts"),
    ("models.moe", ["carve", "base", *MOE, "-o", "NEW", "--seq-len", "1e12"], "--seq-len: '1e12' is not an integer"),
    ("models.moe", ["carve", "base", *MOE, "-o", "NEW", "--seq-len", "1000000000000"], "--seq-len: 1000000000000 is"),
    ("models.moe", ["eval", "base", "--threads", "0"], "argument --threads: 0 is out of range"),
    ("models.prune", ["fuse", "base", "--remove", "1", "-o", "NEW", "--lr", "nan"], "argument --lr: nan is not"),
    ("models.prune", ["fuse", "base", "--remove", "1", "-o", "NEW", "--coef-lr", "-1"], "argument --coef-lr"),
    ("models.prune", ["remove", "base", "--remove", "0", "-o", "NEW"], "argument --remove: 0 is out of range"),
    ("models.recover", ["select", "base", "--pruned", "base", "--budget", "nan", "-o", "NEW"], "--budget: nan is"),
    ("models.recover", ["select", "base", "--pruned", "base", "--budget", "-1", "-o", "NEW"], "--budget: -1 is out"),
    ("models.recover", ["compare", "base", "--pruned", "base", "--budgets", "0.1,inf", "-o", "NEW"], "--budgets"),
    ("models.recover", ["train", "base", "--selection", "FILE", "-o", "NEW", "--lr", "-1"], "argument --lr"),
    ("models.recover", ["compare", "base", "--pruned", "base", "--methods", "best", "-o", "NEW"], "'best'"),
    # hardware and EDA: an infinite clock used to leave OpenSTA spinning; argparse's usage dump is one line now
    ("hw.synth", ["--clock-ns", "inf"], "argument --clock-ns: inf is not a finite number"),
    ("hw.synth", ["--clock-ns", "nan"], "argument --clock-ns: nan is not a finite number"),
    ("hw.synth", ["--clock-ns", "-1"], "argument --clock-ns: -1 is out of range"),
    ("hw.synth", ["--clock-ns", "1e300"], "argument --clock-ns: 1e300 is out of range"),
    ("hw.synth", ["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    ("hw.synth", ["--group", "1000000000000"], "group size 1000000000000 out of range"),
    ("hw.synth", ["-o", "USER"], "-o USER already exists: choose a new path or pass --force"),
    ("hw.power", ["-o", "FILE"], "-o FILE is a file: name a new folder"),
    ("eda.flow", ["--design", "add8", "-o", "UNDERFILE"], "lies under the file"),
    ("hw.power", ["--clock-ns", "inf"], "argument --clock-ns: inf is not a finite number"),
    ("hw.power", ["--cycles", "1000000000000"], "argument --cycles: 1000000000000 is out of range"),
    ("hw.power", ["--cycles", "0"], "argument --cycles: 0 is out of range"),
    ("hw.power", ["--pe", "systolic"], "argument --pe: invalid choice: 'systolic'"),
    ("eda.flow", ["--design", "add8", "--clock", "inf"], "argument --clock: inf is not a finite number"),
    ("eda.flow", ["--design", "add8", "--clock-ns", "nan"], "argument --clock-ns: nan is not a finite number"),
    ("eda.flow", ["--design", "add8", "--layers", "0"], "argument --layers: 0 is out of range"),
    ("eda.flow", ["--design", "nope"], "argument --design: invalid choice: 'nope'"),
    ("eda.flow", [], "no design given: pass a Verilog file or --design NAME"),
    ("eda.flow", ["NEW"], "NEW not found: pass an existing Verilog file"),
    ("eda.slack", ["predict", "FILE", "--clock", "inf"], "argument --clock: inf is not a finite number"),
    ("eda.slack", ["predict", "FILE"], "one of the arguments --clock-ns is required"),
    ("hw.build", ["-o", "FILE"], "-o FILE is a file: name a new folder"),
    ("hw.build", ["-o", "UNDERFILE"], "lies under the file"),
    ("hw.build", ["-o", "UNWRITABLE"], "is not writable"),
    ("hw.build", ["--rows", "1000000000000"], "array rows=1000000000000 out of range"),
    ("hw.build", ["--cols", "1e12"], "argument --cols: invalid int value: '1e12'"),
    ("hw.cache", ["clean", "--older-than", "-1"], "argument --older-than: -1 is out of range"),
    # the other models tools and the workload writers
    ("models.export", ["base", "-o", "FILE"], "-o FILE is a file: name a new folder"),
    ("models.export", ["base", "-o", "USER"], "-o USER already exists: choose a new path or pass --force"),
    ("models.export", ["base", "-o", "UNDERFILE"], "lies under the file"),
    ("models.export", ["base", "-o", "UNWRITABLE"], "is not writable"),
    ("models.export", ["TRUNCATED", "-o", "NEW"], "TRUNCATED/model.safetensors is truncated"),
    ("models.export", ["BADCONFIG", "-o", "NEW"], "BADCONFIG/config.json is not valid JSON (line 3)"),
    ("models.export", ["base"], "the following arguments are required: -o/--out"),
    ("models.zoo", ["eval", "BADCONFIG"], "BADCONFIG/config.json is not valid JSON (line 3)"),
    ("models.zoo", ["eval", "TRUNCATED"], "TRUNCATED/model.safetensors is truncated"),
    ("models.kv", ["eval", "TRUNCATED", "--config", "KV4", "-o", "NEW"], "model.safetensors is truncated"),
    ("models.kv", ["eval", "base", "--config", "KV4", "-o", "USER"], "-o USER already exists"),
    ("models.kv", ["tune", "BADCONFIG", "-o", "NEW"], "config.json is not valid JSON"),
    ("models.kv", ["tune", "base", "--max-bits", "nan", "-o", "NEW"], "--max-bits nan is below 2"),
    ("models.kv", ["workload", "llama-2-7b", "--config", "KV4", "--ratio", "nan", "-o", "NEW"], "--ratio: nan"),
    ("models.kv", ["workload", "llama-2-7b", "--config", "KV4", "-o", "FILE"], "-o FILE already exists"),
    ("models.anomaly", ["train", "--dataset", "BADJSON", "--out", "NEW"], "BADJSON is JSON text, not a graph file"),
    ("models.anomaly", ["train", "--dataset", "BADJSON", "--out", "FILE"], "--out FILE is a file"),
    ("models.anomaly", ["eval", "--dataset", "BADJSON", "--out", "UNDERFILE"], "lies under the file"),
    ("models.anomaly", ["train", "--dataset", "BADJSON", "--lr", "inf"], "argument --lr: inf is not a finite"),
    ("models.demo", ["--eval-windows", "0"], "argument --eval-windows: 0 is out of range"),
    ("sim.demo", ["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    ("sim.workload", ["builtin", "llama-2-7b", "-o", "FILE"], "-o FILE is a file: name a new folder"),
    ("sim.workload", ["builtin", "llama-2-7b", "-o", "USER"], "-o USER already exists"),
    # 10^12 dimensions: a decode of 10^12 steps never finished, a 10^12 prefill wrote a 10^29-MAC workload
    ("sim.workload", ["builtin", "llama-2-7b", "--decode", "1000000000000", "-o", "NEW"], "--decode: 1000000000000"),
    ("sim.workload", ["builtin", "llama-2-7b", "--prefill", "1000000000000", "-o", "NEW"], "--prefill: 10000000"),
    ("sim.workload", ["builtin", "llama-2-7b", "--batch", "0", "-o", "NEW"], "argument --batch: 0 is out of range"),
    ("models.export", ["base", "--decode", "1000000000000", "-o", "NEW"], "argument --decode: 1000000000000 is"),
    ("models.kv", ["workload", "llama-2-7b", "--config", "KV4", "--decode", "1e12", "-o", "NEW"], "--decode"),
    ("models.kv", ["workload", "llama-2-7b", "--config", "KV4", "--batch", "-1", "-o", "NEW"], "--batch: -1 is"),
]


@pytest.fixture
def world(tmp_path: Path) -> dict[str, str]:
    """The paths the placeholders stand for."""
    paths = {name: tmp_path / name.lower() for name in PLACEHOLDERS}
    paths["USER"].mkdir()
    (paths["USER"] / "thesis.txt").write_text("years of work\n")
    paths["FILE"].write_text("a user's file\n")
    paths["UNDERFILE"] = paths["FILE"] / "out"
    paths["UNWRITABLE"] = Path("/proc/self/mixkit-out")
    tensors = {"w": np.zeros((4, 4), np.float32)}
    for name in ("BADCONFIG", "TRUNCATED"):
        paths[name].mkdir()
        save_file(tensors, str(paths[name] / "model.safetensors"))
    (paths["BADCONFIG"] / "config.json").write_text('{\n  "model_type": "llama",\n  "hidden_size": "64\n}\n')
    (paths["TRUNCATED"] / "config.json").write_text('{"model_type": "llama"}\n')
    data = (paths["TRUNCATED"] / "model.safetensors").read_bytes()
    (paths["TRUNCATED"] / "model.safetensors").write_bytes(data[:-20])
    paths["BADJSON"].write_text('{"samples": [\n  {"instruction": "a", "resp')
    for name, model in (("OK", "base"), ("BADCONFIG", paths["BADCONFIG"]), ("TRUNCATED", paths["TRUNCATED"])):
        config = {"merge_method": "ties", "base_model": "base", "models": [str(model), "code"]}
        (tmp_path / f"merge_{name.lower()}.yml").write_text(yaml.safe_dump(config))
        paths[f"MERGE_{name}"] = tmp_path / f"merge_{name.lower()}.yml"
    return {k: str(v) for k, v in paths.items()}


def _substitute(argv: list[str], world: dict[str, str]) -> list[str]:
    return [world.get(a, a) for a in argv]


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


def run_main(module: str, argv: list[str], capsys) -> tuple[int, str]:
    """(exit code, stderr) of `module`'s main(argv), argparse's SystemExit included; stdout must stay empty."""
    found = importlib.import_module(module)
    main = found.main if hasattr(found, "main") else importlib.import_module(f"{module}.__main__").main
    code = exit_code(main, argv)
    out, err = capsys.readouterr()
    assert out == "", out
    return code, err


def expect_one_line(module: str, code: int, err: str, fragment: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert err.startswith(f"python -m {module}") and ": error: " in err, err
    assert fragment in err, err


@pytest.mark.parametrize(("module", "argv", "fragment"), CASES, ids=[f"{m} {' '.join(a)}" for m, a, _ in CASES])
def test_bad_input_is_one_line_and_touches_nothing(world, tmp_path, capsys, module, argv, fragment):
    before = _tree(tmp_path)
    code, err = run_main(module, _substitute(argv, world), capsys)
    for name in sorted(world, key=len, reverse=True):
        fragment = re.sub(rf"\b{name}\b", world[name], fragment)
    expect_one_line(module, code, err, fragment)
    assert _tree(tmp_path) == before
    assert not Path(world["NEW"]).exists()


def test_a_bad_flag_is_rejected_before_torch_is_imported():
    """These CLIs check their arguments before any heavy import (`import torch` alone takes seconds)."""
    tools = ["models.merge", "models.moe", "models.prune", "models.recover", "models.robust", "models.anomaly"]
    tools += ["models.export", "hw.build", "hw.synth", "hw.power", "eda.flow", "hw.cache"]
    code = (
        "import importlib, sys\n"
        f"for tool in {tools!r}:\n"
        "    module = importlib.import_module(tool)\n"
        "    main = getattr(module, 'main', None) or importlib.import_module(tool + '.__main__').main\n"
        "    try:\n"
        "        main(['--no-such-flag'])\n"
        "    except SystemExit as e:\n"
        "        assert e.code == 2, tool\n"
        "    assert 'torch' not in sys.modules, tool\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("\n") == len(tools) and "Traceback" not in proc.stderr


def test_force_replaces_an_existing_output_and_old_spellings_still_work(world, capsys):
    """--force is the one way to replace a user's folder; an earlier run's folder is replaced without it; -o/--out
    is the flag, --output a hidden old alias; no staging folder stays beside the output."""
    from sim.workload import WORKLOAD_FILE, load_workload, main

    small = ["builtin", "llama-2-7b", "--prefill", "8", "--decode", "1"]
    assert main([*small, "-o", world["USER"], "--force"]) == 0
    assert load_workload(world["USER"]).model == "llama-2-7b"
    assert sorted(p.name for p in Path(world["USER"]).iterdir()) == [WORKLOAD_FILE]
    assert main([*small, "--batch", "2", "--output", world["USER"]]) == 0  # an earlier workload folder: replaced
    assert load_workload(world["USER"]).meta["batch"] == 2
    assert not any(p.name.startswith(".") for p in Path(world["USER"]).parent.iterdir())
    assert "--output" not in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["builtin", "--help"])
    assert "--output" not in capsys.readouterr().out
