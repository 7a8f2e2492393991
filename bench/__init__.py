"""Benchmarks: `python -m bench.<name>` prints its figures and writes bench/results/<name>.json (and a PNG)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from sim.files import atomic_write

RESULTS = Path(__file__).resolve().parent / "results"
MODEL_PRESET = "deep"  # the zoo preset the model benches use unless told otherwise


def result_stem(bench: str, preset: str) -> Path:
    """bench/results/<bench> for the model benches' default preset, <bench>_<preset> for any other (no suffix:
    the caller adds .json or .png), so runs on different presets never overwrite each other."""
    return RESULTS / (bench if preset == MODEL_PRESET else f"{bench}_{preset}")


def save_results(name: str, result: dict, plot: Callable[[str], None] | None = None) -> Path:
    """bench/results/<name>.json holding `result`, and <name>.png beside it drawn by plot(path) if given, each
    written atomically; the JSON's path."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    atomic_write(path, json.dumps(result, indent=1) + "\n")
    if plot is not None:
        atomic_write(RESULTS / f"{name}.png", plot)
    return path
