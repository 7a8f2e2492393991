"""Writing a model folder atomically: a reader sees the old folder or the whole new one, never half of it."""

from __future__ import annotations

import json
from pathlib import Path

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from sim.files import staged_folder


def save_checkpoint(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, out: Path, results: dict) -> None:
    """`save_pretrained` of model and tokenizer plus one JSON file per `results` item ({file name: data}),
    written to a staging folder beside `out` and then swapped in for it."""
    with staged_folder(out) as stage:
        model.save_pretrained(stage)
        tokenizer.save_pretrained(stage)
        for name, data in results.items():
            (stage / name).write_text(json.dumps(data, indent=1) + "\n")
