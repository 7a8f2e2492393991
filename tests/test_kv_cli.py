"""python -m models.kv eval: the table and files on the tiny zoo, one-line errors with exit code 2."""

import csv
import json

import pytest

from models.kv.__main__ import main

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
        (["--config", "KV4", "--windows", "0"], "--windows must be at least 1"),
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
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2 and words in err and err.count("\n") == 1, err
    assert not out.exists()
