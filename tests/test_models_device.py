"""--device and --dtype on every models CLI that loads a model: bfloat16 runs end to end on the CPU, and a device
this machine lacks is exit 2 with one line, before any model is loaded and with nothing written."""

import json

import pytest
import torch
import yaml
from safetensors.torch import load_file

from models.device import check_device, place
from models.export import main as export_main
from models.merge.__main__ import main as merge_main
from models.moe.__main__ import main as moe_main
from models.prune.__main__ import main as prune_main
from models.recover.__main__ import main as recover_main
from models.zoo import load
from tests.cli import exit_code

pytestmark = pytest.mark.usefixtures("one_thread")

MOE = ["--experts", "12", "--top-k", "4", "--shared", "40", "--preset", "tiny", "--seq-len", "32"]
PRUNE = ["--remove", "1", "--preset", "tiny", "--seq-len", "32", "--importance-windows", "4"]
TUNE = ["--calib-windows", "8", "--epochs", "1", "--rank", "4"]
EXPORT = ["--preset", "tiny", "--wbits", "4", "--group", "32", "--prefill", "16", "--decode", "1", "--tensors"]


def _merge_config(tmp_path, tiny_zoo) -> str:
    raw = {"merge_method": "task_arithmetic", "base_model": str(tiny_zoo["base"]), "models": [str(tiny_zoo["code"])]}
    path = tmp_path / "merge.yml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def _command(tool: str, tiny_zoo, tmp_path) -> tuple:
    base, out = str(tiny_zoo["base"]), str(tmp_path / "out")
    return {
        "moe": (moe_main, ["carve", base, *MOE, "-o", out]),
        "prune": (prune_main, ["fuse", base, *PRUNE, *TUNE, "-o", out]),
        "recover": (recover_main, ["select", base, "--pruned", base, "--budget", "0.3", "-o", out, "--drop", "1"]),
        "merge": (merge_main, [_merge_config(tmp_path, tiny_zoo), "-o", out]),
        "export": (export_main, [base, *EXPORT, "-o", out]),
    }[tool]


@pytest.mark.parametrize("device", ["cuda:99", "tpu"])
@pytest.mark.parametrize("tool", ["moe", "prune", "recover", "merge", "export"])
def test_a_device_this_machine_lacks_is_one_line_and_exit_2(tiny_zoo, tmp_path, capsys, tool, device):
    main, argv = _command(tool, tiny_zoo, tmp_path)
    assert exit_code(main, [*argv, "--device", device]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"--device {device}" in err.replace("--device: '", "--device ")
    assert not (tmp_path / "out").exists()


def test_check_device_names_the_fix():
    check_device("cpu")
    for device in ("cuda:99", "mps"):
        with pytest.raises(ValueError, match=f"--device {device}: .*"):
            check_device(device)


def test_place_casts_and_keeps_cpu_inputs_working(tiny_zoo):
    model, _ = load(tiny_zoo["base"])
    ids = torch.arange(1, 17)[None]
    reference = model(input_ids=ids).logits
    place(model, "cpu", "bfloat16")
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())
    logits = model(input_ids=ids).logits
    assert logits.dtype == torch.bfloat16 and torch.isfinite(logits).all()
    # bf16 keeps ~3 significant digits: the same model, not a different one
    assert (logits.float().argmax(-1) == reference.argmax(-1)).float().mean() > 0.8


def _saved_dtype(folder) -> set:
    return {t.dtype for t in load_file(folder / "model.safetensors").values() if t.is_floating_point()}


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_moe_and_prune_run_in_each_dtype(tiny_zoo, tmp_path, capsys, dtype):
    base = str(tiny_zoo["base"])
    moe, fused = tmp_path / "moe", tmp_path / "fused"
    small = ["--eval-windows", "2", "--dtype", dtype, "--device", "cpu", "--json"]
    assert moe_main(["carve", base, *MOE, "-o", str(moe), "--calib-windows", "4", "--finetune-steps", "2", *small]) == 0
    ppl = json.loads(capsys.readouterr().out)["ppl"]
    assert all(0 < v < float("inf") for run in ppl.values() for v in run.values())
    assert _saved_dtype(moe) == {getattr(torch, dtype)}
    assert moe_main(["eval", str(moe), "--preset", "tiny", "--seq-len", "32", *small]) == 0
    tolerance = 1e-6 if dtype == "float32" else 2e-2  # bf16 keeps ~3 significant digits (rotary tables too)
    assert json.loads(capsys.readouterr().out)["ppl"]["carved"] == pytest.approx(ppl["finetuned"], rel=tolerance)
    assert prune_main(["fuse", base, *PRUNE, *TUNE, "-o", str(fused), *small]) == 0
    assert json.loads(capsys.readouterr().out)["blocks"] == 1
    assert _saved_dtype(fused) == {getattr(torch, dtype)}


def test_recover_merge_and_export_in_bfloat16(tiny_zoo, tmp_path, capsys):
    base = str(tiny_zoo["base"])
    bf16 = ["--dtype", "bfloat16"]
    sel, out = tmp_path / "sel.json", tmp_path / "recovered"
    common = ["--preset", "tiny", "--drop", "1", *bf16]
    select = ["select", base, "--pruned", base, "--budget", "0.3", "--pool-size", "8", "-o", str(sel)]
    assert recover_main([*select, *common]) == 0
    assert recover_main(["train", base, "--selection", str(sel), "-o", str(out), "--epochs", "1", *common]) == 0
    assert _saved_dtype(out) == {torch.bfloat16}
    quality = json.loads((out / "recover.json").read_text())["quality"]["recovered"]
    assert all(0 < q["ppl"] < float("inf") for q in quality.values())

    merged = tmp_path / "merged"
    assert merge_main([_merge_config(tmp_path, tiny_zoo), "-o", str(merged), *bf16]) == 0
    assert _saved_dtype(merged) == {torch.bfloat16}
    assert yaml.safe_load((merged / "merge_config.yml").read_text())["dtype"] == "bfloat16"

    workload = tmp_path / "w.json"
    assert export_main([base, *EXPORT, "-o", str(workload), *bf16, "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["ops"] > 0
