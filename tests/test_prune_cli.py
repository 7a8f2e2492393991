"""python -m models.prune rank / remove / fuse / compare on the tiny zoo model, its one-line errors (exit 2,
nothing written), and the pruned checkpoint exported as a quantized workload by python -m models.export."""

import json

import pytest
from transformers import AutoModelForCausalLM

from models.export import main as export_main
from models.prune.__main__ import main
from sim.workload import Linear, load_workload
from tests.cli import exit_code

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = ["--preset", "tiny", "--seq-len", "32", "--eval-windows", "2", "--importance-windows", "4"]
TUNE = ["--calib-windows", "8", "--epochs", "1", "--rank", "4"]


def test_rank_prints_both_metrics(tiny_zoo, capsys):
    assert main(["rank", str(tiny_zoo["base"]), "--json", *SMALL]) == 0
    importance = json.loads(capsys.readouterr().out)["importance"]
    assert set(importance) == {"macro", "cosine"} and all(len(s) == 2 for s in importance.values())
    assert importance["macro"][1] == pytest.approx(importance["cosine"][1])  # the last block: the same states


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["fuse", "BASE", "--remove", "2"], "cannot remove 2 of the model's 2 blocks"),
        (["remove", "BASE", "--remove", "1", "--metric", "l2"], "--metric: invalid choice: 'l2'"),
        (["fuse", "MISSING", "--remove", "1"], "no checkpoint folder"),
        (["fuse", "BASE", "--remove", "1", "--epochs", "0"], "--epochs: 0 is out of range"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(tiny_zoo, tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    model = {"BASE": str(tiny_zoo["base"]), "MISSING": str(tmp_path / "nope")}[extra[1]]
    code = exit_code(main, [extra[0], model, *extra[2:], "-o", str(out), *SMALL])
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_fuse_then_export_the_pruned_workload(tiny_zoo, tmp_path, capsys):
    out = tmp_path / "fused"
    assert main(["fuse", str(tiny_zoo["base"]), "--remove", "1", "-o", str(out), "--json", *SMALL, *TUNE]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["ppl"]) == {"dense", "pruned"} and result["blocks"] == 1 and len(result["removed"]) == 1
    assert json.loads((out / "prune.json").read_text())["ppl"] == result["ppl"]
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.num_hidden_layers == 1 and len(model.model.layers) == 1

    workload = tmp_path / "w"
    args = [str(out), "--preset", "tiny", "--wbits", "4", "--group", "32", "--prefill", "16", "--decode", "1"]
    assert export_main([*args, "--tensors", "-o", str(workload)]) == 0
    ops = [op.name for op in load_workload(workload).ops if isinstance(op, Linear)]
    assert any(".layers.0." in n for n in ops) and not any(".layers.1." in n for n in ops)
    assert len([n for n in ops if n.startswith("prefill.")]) == 7 + 1  # one block's 7 linears and lm_head


def test_remove_and_compare(tiny_zoo, tmp_path, capsys):
    out = tmp_path / "removed"
    assert main(["remove", str(tiny_zoo["base"]), "--remove", "1", "-o", str(out), "--json", *SMALL]) == 0
    assert json.loads(capsys.readouterr().out)["blocks"] == 1
    report = tmp_path / "report"
    assert main(["compare", str(tiny_zoo["base"]), "--max-remove", "1", "-o", str(report), *SMALL, *TUNE]) == 0
    table = capsys.readouterr().out
    result = json.loads((report / "compare.json").read_text())
    assert set(result["methods"]) == {"remove/cosine", "remove/macro", "tune/macro", "fuse/macro", "fuse/cosine"}
    assert all(r["1"]["scores"]["math"]["ppl"] > 0 for r in result["methods"].values())
    assert "fuse/macro" in table and (report / "compare.png").stat().st_size > 10_000
