"""python -m models.moe carve / eval on the tiny zoo model, and its one-line errors (exit 2, nothing written)."""

import json

import pytest

from models.moe.__main__ import main

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = ["--preset", "tiny", "--seq-len", "48", "--eval-windows", "2"]


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        (["--experts", "7", "--top-k", "2", "--shared", "40"], "does not divide the 120 routed neurons"),
        (["--experts", "12", "--top-k", "13", "--shared", "40"], "--top-k 13 must be between 1 and --experts 12"),
    ],
)
def test_impossible_layout_exits_2(tiny_zoo, tmp_path, capsys, layout, message):
    out = tmp_path / "out"
    assert main(["carve", str(tiny_zoo["base"]), *layout, "-o", str(out), *SMALL]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_missing_model_exits_2(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["carve", str(tmp_path / "nope"), "--experts", "4", "--top-k", "2", "--shared", "0", "-o", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    assert "no checkpoint folder" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_eval_of_a_dense_folder_exits_2(tiny_zoo, capsys):
    assert main(["eval", str(tiny_zoo["base"]), *SMALL]) == 2
    assert "not a CMoE model" in capsys.readouterr().err


def test_carve_then_eval(tiny_zoo, tmp_path, capsys):
    out = tmp_path / "moe"
    args = ["carve", str(tiny_zoo["base"]), "--experts", "12", "--top-k", "4", "--shared", "40", "-o", str(out)]
    assert main([*args, "--calib-windows", "4", "--finetune-steps", "3", "--json", *SMALL]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["activated"]["ffn_ratio"] == pytest.approx(0.5)
    assert set(result["ppl"]) == {"dense", "carved", "finetuned"}
    assert json.loads((out / "cmoe.json").read_text())["ppl"] == result["ppl"]
    workload = tmp_path / "w.json"
    assert main(["eval", str(out), "--workload", str(workload), "--prefill", "32", "--json", *SMALL]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["ppl"]["carved"] == pytest.approx(result["ppl"]["finetuned"])
    assert [sum(c) for c in evaluated["workload"]["routed_counts"]] == [32 * 4, 32 * 4]
    assert workload.is_file()
