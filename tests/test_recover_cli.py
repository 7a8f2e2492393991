"""`python -m models.recover select|train` end to end on the tiny zoo model, and its one-line errors."""

import json

import pytest
from transformers import AutoModelForCausalLM

from models.recover.__main__ import main
from tests.cli import exit_code

pytestmark = pytest.mark.usefixtures("one_thread")

POOL = ["--preset", "tiny", "--pool-size", "8", "--drop", "1"]


def test_select_then_train(tiny_zoo, tmp_path, capsys):
    base = str(tiny_zoo["base"])
    sel = tmp_path / "sel"
    assert main(["select", base, "--pruned", base, "--budget", "0.3", "-o", str(sel), "--json", *POOL]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sel"]  # no staging folder left beside it
    doc = json.loads((sel / "selection.json").read_text())
    printed = json.loads(capsys.readouterr().out)
    assert printed["selected"] == doc["selected"] == len(doc["samples"]) > 0
    assert doc["method"] == "paser" and doc["selected_tokens"] <= doc["budget_tokens"]
    assert doc["budget_tokens"] == int(0.3 * doc["pool_tokens"])
    assert sum(c["budget_tokens"] for c in doc["details"]["clusters"]) == doc["budget_tokens"]
    assert doc["details"]["selection_seconds"] > 0
    out = tmp_path / "recovered"
    args = ["train", base, "--drop", "1", "--selection", str(sel), "-o", str(out), "--epochs", "1", "--preset", "tiny"]
    assert main([*args, "--json"]) == 0
    result = json.loads((out / "recover.json").read_text())
    assert result["train"]["steps"] == -(-doc["selected"] // 8)
    assert set(result["quality"]) == {"pruned", "recovered"}
    model = AutoModelForCausalLM.from_pretrained(out)
    assert type(model).__name__ == "LlamaForCausalLM" and model.config.num_hidden_layers == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["select", "base", "--pruned", "base", "--budget", "0", "-o", "{tmp}/s", *POOL], "--budget: 0 is"),
        (["select", "base", "--pruned", "base", "--budget", "0.1", "--method", "best", "-o", "{tmp}/s"], "method"),
        (["select", "base", "--pruned", "base", "--budget", "0.1", "-o", "{tmp}/bad.json"], "is a file: name a new"),
        (
            [
                "select",
                "base",
                "--pruned",
                "base",
                "--budget",
                "0.1",
                "--pool",
                "{tmp}/bad.json",
                "-o",
                "{tmp}/s",
                *POOL,
            ],
            "not valid JSON",
        ),
        (
            [
                "select",
                "base",
                "--pruned",
                "base",
                "--budget",
                "0.1",
                "--drop",
                "7",
                "-o",
                "{tmp}/s",
                "--preset",
                "tiny",
            ],
            "out of range",
        ),
        (
            ["train", "base", "--selection", "{tmp}/missing.json", "-o", "{tmp}/out", "--preset", "tiny"],
            "does not exist",
        ),
        (["train", "base", "--selection", "{tmp}/bad.json", "-o", "{tmp}/out", "--preset", "tiny"], "not valid JSON"),
        (
            ["train", "base", "--selection", "{tmp}/other.json", "-o", "{tmp}/out", "--preset", "tiny"],
            "not a selection file",
        ),
        (["train", "base", "--selection", "{tmp}/other.json", "-o", "{tmp}/out", "--epochs", "0"], "--epochs: 0"),
        (["compare", "base", "--pruned", "base", "--budgets", "0.1,2", "-o", "{tmp}/c"], "fractions"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tiny_zoo, tmp_path, capsys, args, message):
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "other.json").write_text('{"format": 9}')
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    code = exit_code(main, args)
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert not (tmp_path / "s").exists() and not (tmp_path / "out").exists() and not (tmp_path / "c").exists()
