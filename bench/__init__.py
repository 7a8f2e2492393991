"""Benchmarks: `python -m bench.<name>` prints figures and writes bench/results/<name>.json."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
MODEL_PRESET = "deep"  # the zoo preset the model benches use unless told otherwise


def result_stem(bench: str, preset: str) -> Path:
    """bench/results/<bench> for the model benches' default preset, <bench>_<preset> for any other (no suffix:
    the caller adds .json or .png), so runs on different presets never overwrite each other."""
    return RESULTS / (bench if preset == MODEL_PRESET else f"{bench}_{preset}")
