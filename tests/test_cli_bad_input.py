"""Bad input through every CLI's main(): exit 2, one stderr line `PROG: error: ...` naming the input and the fix, no
traceback, and nothing written or deleted. Each case fails validation before any model loads or tool runs.

The corpus is data: (tool, arguments, expected fragment of the message). In the arguments, USER is an existing
folder holding a user's file, FILE an existing file, NEW a path that must stay absent, BADCONFIG a checkpoint
folder whose config.json is corrupted, TRUNCATED one whose model.safetensors is cut short, BADJSON a truncated
JSON file, MERGE_* merge configs naming those folders.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from safetensors.numpy import save_file

from mixkit_cli import tool_main
from sim.workload import Linear
from tests.cli import exit_code

ROOT = Path(__file__).resolve().parents[1]

MOE = ["--experts", "4", "--top-k", "2", "--shared", "0"]
PLACEHOLDERS = ("USER", "FILE", "NEW", "BADCONFIG", "TRUNCATED", "BADJSON", "UNDERFILE", "UNWRITABLE", "EMPTY")

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
    ("hw.synth", ["--group", "1000000000000"], "argument --group: 1000000000000 is out of range"),
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
    ("hw.build", ["--rows", "1000000000000"], "argument --rows: 1000000000000 is out of range"),
    ("hw.build", ["--cols", "1e12"], "argument --cols: '1e12' is not an integer"),
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
    ("models.kv", ["workload", "llama-2-7b", "--config", "KV4", "-o", "FILE"], "-o FILE is a file: name a new folder"),
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
    # ---- hw: the PE flags every hardware CLI shares (hw.build, hw.synth, hw.power, tb), then each tool's own
    *[
        (tool, argv, fragment)
        for tool in ("hw.build", "hw.synth", "hw.power", "tb")
        for argv, fragment in (
            (["--wbits", "5"], "weight bits 5"),
            (["--wbits", "nan"], "argument --wbits: 'nan' is not an integer"),
            (["--wbits", "-4"], "argument --wbits: -4 is out of range"),
            (["--group", "0"], "argument --group: 0 is out of range"),
            (["--group", "inf"], "argument --group: 'inf' is not an integer"),
            (["--acc-bits", "8"], "accumulator width 8 out of range"),
            (["--accumulate", "fp32"], "FP32 accumulation needs FP16 activations"),
            (["--pe", "int8", "--wbits", "4"], "int8"),
            (["--acc-bits", "-1"], "argument --acc-bits: -1 is out of range"),
            (["--acc-bits", "1000000"], "argument --acc-bits: 1000000 is out of range"),
            (["--serial-bits", "3"], "serial"),
            (["--pe", "systolic"], "argument --pe: invalid choice: 'systolic'"),
            (["--act", "fp8"], "argument --act: invalid choice: 'fp8'"),
            (["--wformat", "float"], "argument --wformat: invalid choice: 'float'"),
            (["--accumulate", "fp64"], "argument --accumulate: invalid choice: 'fp64'"),
            (["--group-dequant", "none"], "argument --group-dequant: invalid choice: 'none'"),
            (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
        )
    ],
    *[
        (tool, argv, fragment)
        for tool in ("hw.build", "hw.synth", "tb")
        for argv, fragment in (
            (["--rows", "0", "--cols", "4"], "argument --rows: 0 is out of range"),
            (["--rows", "4", "--cols", "-2"], "argument --cols: -2 is out of range"),
            (["--rows", "nan", "--cols", "4"], "argument --rows: 'nan' is not an integer"),
            (["--rows", "4", "--cols", "100000"], "argument --cols: 100000 is out of range"),
        )
    ],
    ("hw.build", ["--rows", "2.5"], "argument --rows: '2.5' is not an integer"),
    ("hw.build", ["-o", "NEW", "--json", "extra"], "unrecognized arguments: extra"),
    ("hw.synth", ["--clock-ns", "0"], "argument --clock-ns: 0 is out of range"),
    ("hw.synth", ["--clock-ns", "fast"], "argument --clock-ns: 'fast' is not a number"),
    ("hw.synth", ["--clock-ns", ""], "argument --clock-ns: '' is not a number"),
    ("hw.synth", ["-o", "FILE"], "-o FILE is a file: name a new folder"),
    ("hw.synth", ["-o", "UNDERFILE"], "lies under the file"),
    ("hw.synth", ["-o", "UNWRITABLE"], "is not writable"),
    ("hw.synth", ["--rows", "4"], "give both --rows and --cols for an array"),
    ("hw.power", ["--clock-ns", "nan"], "argument --clock-ns: nan is not a finite number"),
    ("hw.power", ["--clock-ns", "-5"], "argument --clock-ns: -5 is out of range"),
    ("hw.power", ["--cycles", "nan"], "argument --cycles: 'nan' is not an integer"),
    ("hw.power", ["--seed", "x"], "argument --seed: 'x' is not an integer"),
    ("hw.power", ["-o", "USER"], "-o USER already exists: choose a new path or pass --force"),
    ("hw.power", ["-o", "UNDERFILE"], "lies under the file"),
    ("hw.power", ["-o", "UNWRITABLE"], "is not writable"),
    ("hw.cache", [], "the following arguments are required: command"),
    ("hw.cache", ["purge"], "argument command: invalid choice: 'purge'"),
    ("hw.cache", ["clean", "--older-than", "nan"], "argument --older-than: nan is not a finite number"),
    ("hw.cache", ["clean", "--older-than", "inf"], "argument --older-than: inf is not a finite number"),
    ("hw.cache", ["clean", "--older-than", "soon"], "argument --older-than: 'soon' is not a number"),
    ("hw.cache", ["clean", "--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    # ---- tb
    ("tb", ["--sim", "modelsim"], "argument --sim: invalid choice: 'modelsim'"),
    ("tb", ["--cycles", "0"], "argument --cycles: 0 is out of range"),
    ("tb", ["--cycles", "-10"], "argument --cycles: -10 is out of range"),
    ("tb", ["--cycles", "1000000000000"], "argument --cycles: 1000000000000 is out of range"),
    ("tb", ["--cycles", "1e3"], "argument --cycles: '1e3' is not an integer"),
    ("tb", ["--seed", "-1"], "argument --seed: -1 is out of range"),
    ("tb", ["--seed", "abc"], "argument --seed: 'abc' is not an integer"),
    ("tb", ["--waves", "FILE"], "name a .vcd or .fst file"),
    ("tb", ["--waves", "EXISTING_VCD"], "already exists"),
    ("tb", ["--waves", "UNDERFILE/w.vcd"], "does not exist"),
    ("tb", ["--sim", "amaranth", "--waves", "NEW.fst"], "writes only vcd"),
    # ---- sim.replay
    ("sim.replay", ["NEW"], "is neither a workload file or folder nor a built-in model"),
    ("sim.replay", ["BADJSON"], "BADJSON: not valid JSON"),
    ("sim.replay", ["NANWORKLOAD"], "NANWORKLOAD: op 0 'a': field 'm' is NaN"),
    ("sim.replay", ["EMPTY"], "EMPTY: not valid JSON"),
    ("sim.replay", ["USER"], "is neither a workload file or folder nor a built-in model"),
    ("sim.replay", ["llama-2-7b", "--rows", "0"], "argument --rows: 0 is out of range"),
    ("sim.replay", ["llama-2-7b", "--rows", "-8"], "argument --rows: -8 is out of range"),
    ("sim.replay", ["llama-2-7b", "--cols", "1000000000000"], "argument --cols: 1000000000000 is out of range"),
    ("sim.replay", ["llama-2-7b", "--cols", "nan"], "argument --cols: 'nan' is not an integer"),
    ("sim.replay", ["llama-2-7b", "--act-buffer-kib", "0"], "argument --act-buffer-kib: 0 is out of range"),
    ("sim.replay", ["llama-2-7b", "--weight-buffer-kib", "-1"], "argument --weight-buffer-kib: -1 is out"),
    ("sim.replay", ["llama-2-7b", "--dram-bytes-per-cycle", "nan"], "--dram-bytes-per-cycle nan"),
    ("sim.replay", ["llama-2-7b", "--dram-bytes-per-cycle", "-1"], "--dram-bytes-per-cycle -1"),
    ("sim.replay", ["llama-2-7b", "--dram-bytes-per-cycle", "0"], "--dram-bytes-per-cycle 0"),
    (
        "sim.replay",
        ["llama-2-7b", "--dram-bytes-per-cycle", "fast"],
        "--dram-bytes-per-cycle: invalid float value: 'fast'",
    ),
    ("sim.replay", ["llama-2-7b", "--pe", "tpu"], "argument --pe: invalid choice: 'tpu'"),
    ("sim.replay", ["llama-2-7b", "--schedule", "eager"], "argument --schedule: invalid choice: 'eager'"),
    ("sim.replay", ["llama-2-7b", "--clock", "mixpe=inf"], "--clock 'mixpe=inf': expected PE=MHZ"),
    ("sim.replay", ["llama-2-7b", "--clock", "mixpe=0"], "--clock 'mixpe=0'"),
    ("sim.replay", ["llama-2-7b", "--clock", "mixpe=nan"], "--clock 'mixpe=nan'"),
    ("sim.replay", ["llama-2-7b", "--clock", "mixpe=-100"], "--clock 'mixpe=-100'"),
    ("sim.replay", ["llama-2-7b", "--clock", "tpu=100"], "--clock 'tpu=100'"),
    ("sim.replay", ["llama-2-7b", "--clock", "mixpe"], "--clock 'mixpe'"),
    ("sim.replay", ["llama-2-7b", "--clock-ns", "mixpe=inf"], "--clock-ns 'mixpe=inf': expected PE=NS"),
    ("sim.replay", ["llama-2-7b", "--clock-ns", "mixpe=0"], "--clock-ns 'mixpe=0': expected PE=NS"),
    ("sim.replay", ["llama-2-7b", "--clock-ns", "int4=5"], "--clock-ns 'int4=5': expected PE=NS"),
    ("sim.replay", ["llama-2-7b", "--clock-ns", "5"], "--clock-ns '5': expected PE=NS"),
    ("sim.replay", ["llama-2-7b", "--clock-from", "mixpe=NEW"], "--clock-from"),
    ("sim.replay", ["llama-2-7b", "--decode", "1000000000000"], "argument --decode: 1000000000000 is out of range"),
    ("sim.replay", ["llama-2-7b", "--prefill", "-1"], "argument --prefill: -1 is out of range"),
    ("sim.replay", ["llama-2-7b", "--batch", "nan"], "argument --batch: 'nan' is not an integer"),
    ("sim.replay", ["llama-2-7b", "--wbits", "5"], "5"),
    ("sim.replay", ["llama-2-7b", "--kv-bits", "3"], "3"),
    ("sim.replay", ["llama-2-7b", "--group", "0"], "field 'group' is 0, expected an integer >= 1"),
    ("sim.replay", ["llama-2-7b", "-o", "FILE"], "-o FILE is a file: name a new folder"),
    ("sim.replay", ["llama-2-7b", "-o", "USER"], "-o USER already exists: choose a new path or pass --force"),
    ("sim.replay", ["llama-2-7b", "-o", "UNDERFILE"], "lies under the file"),
    ("sim.replay", ["llama-2-7b", "-o", "UNWRITABLE"], "is not writable"),
    ("sim.replay", [], "the following arguments are required: workload"),
    # ---- sim.sweep: every argument is checked before the Dask cluster starts
    ("sim.sweep", ["--workers", "0"], "argument --workers: 0 is out of range"),
    ("sim.sweep", ["--workers", "-3"], "argument --workers: -3 is out of range"),
    ("sim.sweep", ["--workers", "100000"], "argument --workers: 100000 is out of range"),
    ("sim.sweep", ["--workers", "nan"], "argument --workers: 'nan' is not an integer"),
    ("sim.sweep", ["--arrays", "0x8"], "array rows=0 out of range"),
    ("sim.sweep", ["--arrays", "8by8"], "array sizes look like 8x8,16x16, not '8by8'"),
    ("sim.sweep", ["--arrays", ""], "array sizes look like 8x8,16x16"),
    ("sim.sweep", ["--arrays", "1000000000000x8"], "1000000000000"),
    ("sim.sweep", ["--pes", "tpu"], "'tpu' is not one of"),
    ("sim.sweep", ["--wbits", "5"], "5"),
    ("sim.sweep", ["--wbits", "4,x"], "expected whole numbers separated by commas, not '4,x'"),
    ("sim.sweep", ["--groups", "0"], "0"),
    ("sim.sweep", ["--acts", "fp8"], "fp8"),
    ("sim.sweep", ["--prefill", "-5"], "-5"),
    ("sim.sweep", ["--decode", "1000000000000"], "1000000000000"),
    ("sim.sweep", ["--workloads", "gpt-5"], "'gpt-5' is not one of"),
    ("sim.sweep", ["--scheduler", "not an address"], "--scheduler 'not an address'"),
    ("sim.sweep", ["-o", "FILE"], "-o FILE is a file: name a new folder"),
    ("sim.sweep", ["-o", "USER"], "-o USER already exists: choose a new path or pass --force"),
    ("sim.sweep", ["-o", "UNDERFILE"], "lies under the file"),
    ("sim.sweep", ["-o", "UNWRITABLE"], "is not writable"),
    # ---- sim.workload and sim.demo
    ("sim.workload", [], "the following arguments are required: command"),
    ("sim.workload", ["show", "NEW"], "NEW: cannot read"),
    ("sim.workload", ["show", "BADJSON"], "BADJSON: not valid JSON"),
    ("sim.workload", ["show", "NANWORKLOAD"], "NANWORKLOAD: op 0 'a': field 'm' is NaN"),
    ("sim.workload", ["show", "EMPTY"], "EMPTY: not valid JSON"),
    ("sim.workload", ["show", "USER"], "workload.json: cannot read"),
    ("sim.workload", ["builtin", "gpt-5", "-o", "NEW"], "gpt-5"),
    ("sim.workload", ["builtin", "llama-2-7b", "--wbits", "5", "-o", "NEW"], "5"),
    ("sim.workload", ["builtin", "llama-2-7b", "--act", "fp8", "-o", "NEW"], "fp8"),
    ("sim.workload", ["builtin", "llama-2-7b", "--kv-bits", "3", "-o", "NEW"], "3"),
    ("sim.workload", ["builtin", "llama-2-7b", "--wformat", "float", "-o", "NEW"], "float"),
    ("sim.workload", ["builtin", "llama-2-7b", "--prefill", "nan", "-o", "NEW"], "argument --prefill: 'nan'"),
    ("sim.workload", ["builtin", "llama-2-7b", "--group", "-128", "-o", "NEW"], "field 'group' is -128"),
    ("sim.workload", ["builtin", "llama-2-7b", "-o", "UNDERFILE"], "lies under the file"),
    ("sim.workload", ["builtin", "llama-2-7b", "-o", "UNWRITABLE"], "is not writable"),
    ("sim.workload", ["builtin", "llama-2-7b"], "the following arguments are required: -o/--out"),
    ("sim.demo", ["-o", "FILE"], "-o FILE is a file: name a new folder"),
    ("sim.demo", ["-o", "USER"], "-o USER already exists: choose a new path or pass --force"),
    ("sim.demo", ["--out", "UNDERFILE"], "lies under the file"),
    ("sim.demo", ["--seed", "-1"], "argument --seed: -1 is out of range"),
    ("sim.demo", ["--seed", "nan"], "argument --seed: 'nan' is not an integer"),
    # ---- eda
    ("eda.flow", ["--design", "add8", "--clock-ns", "0"], "argument --clock-ns: 0 is out of range"),
    ("eda.flow", ["--design", "add8", "--clock-ns=-inf"], "argument --clock-ns: -inf is not a finite number"),
    ("eda.flow", ["--design", "add8", "--clock", "1e7"], "argument --clock: 1e7 is out of range"),
    ("eda.flow", ["--design", "add8", "--layers", "nan"], "argument --layers: 'nan' is not an integer"),
    ("eda.flow", ["--design", "add8", "--layers", "99"], "argument --layers: 99 is out of range"),
    ("eda.flow", ["--design", "add8", "-o", "FILE"], "-o FILE is a file: name a new folder"),
    ("eda.flow", ["--design", "add8", "-o", "USER"], "-o USER already exists: choose a new path or pass --force"),
    ("eda.flow", ["--design", "add8", "-o", "UNWRITABLE"], "is not writable"),
    ("eda.flow", ["VERILOG", "--design", "add8"], "pass a Verilog file or --design NAME, not both"),
    ("eda.flow", ["USER"], "USER is a folder: pass a Verilog file"),
    ("eda.flow", ["EMPTY"], "the Verilog has no module 'empty': pass its top module with --top"),
    ("eda.flow", ["--design", "add8", "--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    ("eda.slack", [], "the following arguments are required: cmd"),
    ("eda.slack", ["train"], "argument cmd: invalid choice: 'train'"),
    ("eda.slack", ["predict", "NEW", "--clock-ns", "5"], "NEW not found"),
    ("eda.slack", ["predict", "FILE", "--clock-ns", "0"], "argument --clock-ns: 0 is out of range"),
    ("eda.slack", ["predict", "FILE", "--clock-ns", "nan"], "argument --clock-ns: nan is not a finite number"),
    ("eda.slack", ["predict", "FILE", "--clock-ns", "5", "--paths", "-1"], "argument --paths: -1 is out of range"),
    ("eda.slack", ["predict", "FILE", "--clock-ns", "5", "--model", "NEW"], "no trained model in NEW"),
    ("eda.slack", ["predict", "FILE", "--clock-ns", "5", "--plot", "FILE"], "--plot FILE already exists"),
    ("eda.slack", ["predict", "FILE", "--clock-ns", "5", "--plot", "UNDERFILE"], "lies under the file"),
    ("eda.slack", ["predict", "PLACED_DEF", "--clock-ns", "5", "--netlist", "NEW"], "netlist NEW not found"),
    # ---- models: the zoo, anomaly, demo and export
    ("models.zoo", [], "the following arguments are required: cmd"),
    ("models.zoo", ["train"], "argument cmd: invalid choice: 'train'"),
    ("models.zoo", ["build", "--preset", "huge"], "argument --preset: invalid choice: 'huge'"),
    ("models.zoo", ["build", "--seed", "-1"], "argument --seed: -1 is out of range"),
    ("models.zoo", ["build", "--seed", "nan"], "argument --seed: 'nan' is not an integer"),
    ("models.zoo", ["eval", "NEW"], "NEW"),
    ("models.zoo", ["eval", "USER"], "USER"),
    ("models.zoo", ["eval", "base", "--threads", "0"], "argument --threads: 0 is out of range"),
    ("models.zoo", ["eval", "base", "--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    ("models.anomaly", ["train"], "the following arguments are required: --dataset"),
    ("models.anomaly", ["train", "--dataset", "NEW", "--out", "NEW"], "NEW"),
    ("models.anomaly", ["train", "--dataset", "EMPTY", "--out", "NEW"], "EMPTY"),
    ("models.anomaly", ["train", "--dataset", "x", "--method", "best"], "best"),
    ("models.anomaly", ["train", "--dataset", "x", "--seeds", "0"], "argument --seeds: 0 is out of range"),
    ("models.anomaly", ["train", "--dataset", "x", "--epochs", "-1"], "argument --epochs: -1 is out of range"),
    ("models.anomaly", ["train", "--dataset", "x", "--eval-every", "0"], "argument --eval-every: 0 is out"),
    ("models.anomaly", ["train", "--dataset", "x", "--hidden", "1000000000000"], "argument --hidden"),
    ("models.anomaly", ["train", "--dataset", "x", "--lr", "nan"], "argument --lr: nan is not a finite number"),
    ("models.anomaly", ["train", "--dataset", "x", "--threads", "0"], "argument --threads: 0 is out of range"),
    ("models.anomaly", ["train", "--dataset", "x", "--out", "UNWRITABLE"], "is not writable"),
    ("models.anomaly", ["eval", "--dataset", "x", "--seeds", "nan"], "argument --seeds: 'nan' is not an integer"),
    ("models.demo", ["--eval-windows", "nan"], "argument --eval-windows: 'nan' is not an integer"),
    ("models.demo", ["--eval-windows", "1000000000000"], "argument --eval-windows: 1000000000000 is out"),
    ("models.demo", ["--preset", "huge"], "argument --preset: invalid choice: 'huge'"),
    ("models.demo", ["-o", "FILE"], "-o FILE is a file: name a new folder"),
    ("models.demo", ["--out", "USER"], "-o USER already exists: choose a new path or pass --force"),
    ("models.demo", ["-o", "UNDERFILE"], "lies under the file"),
    ("models.demo", ["--threads", "0"], "argument --threads: 0 is out of range"),
    ("models.export", ["base", "--wbits", "5", "-o", "NEW"], "5"),
    ("models.export", ["base", "--group", "0", "-o", "NEW"], "group size 0 out of range"),
    ("models.export", ["base", "--act", "fp8", "-o", "NEW"], "fp8"),
    ("models.export", ["base", "--kv-bits", "3", "-o", "NEW"], "3"),
    ("models.export", ["base", "--method", "awq", "-o", "NEW"], "awq"),
    ("models.export", ["base", "--uneven", "maybe", "-o", "NEW"], "maybe"),
    ("models.export", ["base", "--preset", "huge", "-o", "NEW"], "huge"),
    ("models.export", ["base", "--tensors", "--text", "NEW", "-o", "NEW"], "NEW"),
    ("models.export", ["base", "--prefill", "-1", "-o", "NEW"], "argument --prefill: -1 is out of range"),
    ("models.export", ["base", "--batch", "nan", "-o", "NEW"], "argument --batch: 'nan' is not an integer"),
    ("models.export", ["NEW", "-o", "NEW"], "NEW"),
    ("models.export", ["USER", "-o", "NEW"], "USER"),
    # ---- models: merge, moe, prune, recover, robust, kv
    ("models.merge", ["NEW", "-o", "NEW"], "NEW"),
    ("models.merge", ["BADYAML", "-o", "NEW"], "BADYAML"),
    ("models.merge", ["EMPTY", "-o", "NEW"], "EMPTY"),
    ("models.merge", ["MERGE_OK", "-o", "NEW", "--threads", "0"], "argument --threads: 0 is out of range"),
    ("models.merge", ["MERGE_OK", "-o", "NEW", "--sens", "--no-sens"], "not allowed with argument"),
    ("models.merge", ["MERGE_OK"], "the following arguments are required: -o/--out"),
    ("models.moe", ["carve", "base", "--experts", "4", "--top-k", "0", "--shared", "0", "-o", "NEW"], "--top-k"),
    ("models.moe", ["carve", "base", "--experts", "4", "--top-k", "2", "--shared", "-1", "-o", "NEW"], "--shared"),
    ("models.moe", ["carve", "base", "--experts", "nan", "--top-k", "2", "--shared", "0", "-o", "NEW"], "--experts"),
    ("models.moe", ["carve", "base", *MOE, "-o", "FILE"], "FILE is a file"),
    ("models.moe", ["carve", "base", *MOE, "-o", "UNDERFILE"], "lies under the file"),
    ("models.moe", ["carve", "NEW", *MOE, "-o", "NEW"], "NEW"),
    ("models.moe", ["eval", "NEW"], "NEW"),
    ("models.moe", ["eval", "BADCONFIG"], "BADCONFIG/config.json is not valid JSON (line 3)"),
    ("models.moe", ["eval", "base", "--prefill", "0"], "argument --prefill: 0 is out of range"),
    ("models.moe", ["eval", "base", "--seed", "x"], "argument --seed: invalid int value: 'x'"),
    ("models.moe", ["split", "base"], "argument command: invalid choice: 'split'"),
    ("models.prune", ["rank", "NEW"], "NEW"),
    ("models.prune", ["rank", "BADCONFIG"], "BADCONFIG/config.json is not valid JSON (line 3)"),
    ("models.prune", ["rank", "base", "--seq-len", "1"], "argument --seq-len: 1 is out of range"),
    ("models.prune", ["rank", "base", "--eval-windows", "0"], "argument --eval-windows: 0 is out of range"),
    ("models.prune", ["remove", "base", "--remove", "nan", "-o", "NEW"], "argument --remove"),
    ("models.prune", ["remove", "base", "--remove", "1", "-o", "UNWRITABLE"], "is not writable"),
    ("models.prune", ["remove", "base", "--remove", "1", "--metric", "random", "-o", "NEW"], "'random'"),
    ("models.prune", ["fuse", "base", "--remove", "1", "-o", "NEW", "--epochs", "0"], "argument --epochs: 0 is out"),
    ("models.prune", ["fuse", "TRUNCATED", "--remove", "1", "-o", "NEW"], "TRUNCATED/model.safetensors is truncated"),
    ("models.prune", ["compare", "base", "--max-remove", "0", "-o", "NEW"], "argument --max-remove: 0 is out"),
    ("models.recover", ["select", "BADCONFIG", "--pruned", "base", "--budget", "0.1", "-o", "NEW"], "config.json"),
    ("models.recover", ["select", "base", "--pruned", "base", "--budget", "1.5", "-o", "NEW"], "--budget: 1.5 is"),
    (
        "models.recover",
        ["select", "base", "--pruned", "base", "--budget", "0.1", "--pool", "BADJSON", "-o", "NEW"],
        "BADJSON is not valid JSON",
    ),
    (
        "models.recover",
        ["select", "base", "--pruned", "base", "--budget", "0.1", "--pool-size", "1", "-o", "NEW"],
        "--pool-size: 1 is",
    ),
    (
        "models.recover",
        ["select", "base", "--pruned", "base", "--budget", "0.1", "--clusters", "0", "-o", "NEW"],
        "--clusters: 0",
    ),
    (
        "models.recover",
        ["select", "base", "--pruned", "base", "--budget", "0.1", "--encoder", "bert", "-o", "NEW"],
        "'bert'",
    ),
    ("models.recover", ["select", "base", "--pruned", "base", "--budget", "0.1", "-o", "USER"], "USER already exists"),
    ("models.recover", ["select", "base", "--pruned", "base", "--budget", "0.1", "-o", "UNDERFILE"], "lies under"),
    ("models.recover", ["train", "base", "--selection", "NEW", "-o", "NEW"], "NEW does not exist"),
    ("models.recover", ["train", "base", "--selection", "EMPTY", "-o", "NEW"], "EMPTY is not valid JSON"),
    ("models.recover", ["train", "base", "--selection", "BADJSON", "-o", "NEW", "--rank", "0"], "--rank: 0 is"),
    ("models.recover", ["train", "base", "--selection", "BADJSON", "-o", "NEW", "--batch", "-8"], "--batch: -8"),
    ("models.recover", ["compare", "base", "--pruned", "base", "--budgets", "", "-o", "NEW"], "--budgets"),
    ("models.recover", ["compare", "base", "--pruned", "base", "-o", "FILE"], "FILE is a file"),
    ("models.robust", ["certify", "--copies", "0"], "argument --copies: 0 is out of range"),
    ("models.robust", ["certify", "--n", "2"], "argument --n: 2 is out of range"),
    ("models.robust", ["certify", "--words", "1000000000000"], "argument --words: 1000000000000 is out of range"),
    ("models.robust", ["certify", "--threads", "0"], "argument --threads: 0 is out of range"),
    ("models.robust", ["certify", "--attack", "virus"], "argument --attack: invalid choice: 'virus'"),
    ("models.robust", ["certify", "--alpha", "nan"], "argument --alpha: nan is not a finite number"),
    ("models.robust", ["certify", "--steps", "-1"], "argument --steps: -1 is out of range"),
    ("models.robust", ["certify", "--fuzz-budget", "0"], "argument --fuzz-budget: 0 is out of range"),
    ("models.robust", ["certify", "--out", "UNDERFILE"], "lies under the file"),
    ("models.robust", ["defend"], "argument command: invalid choice: 'defend'"),
    ("models.kv", ["eval", "NEW", "--config", "KV4", "-o", "NEW"], "NEW"),
    ("models.kv", ["eval", "BADCONFIG", "--config", "KV4", "-o", "NEW"], "config.json is not valid JSON"),
    ("models.kv", ["eval", "base", "--config", "KV5", "-o", "NEW"], "KV5"),
    ("models.kv", ["eval", "base", "--config", "BADJSON", "-o", "NEW"], "BADJSON"),
    ("models.kv", ["eval", "base", "--config", "KV4", "-o", "FILE"], "FILE is a file"),
    ("models.kv", ["eval", "base", "--config", "KV4", "-o", "UNDERFILE"], "lies under the file"),
    ("models.kv", ["tune", "TRUNCATED", "-o", "NEW"], "model.safetensors is truncated"),
    ("models.kv", ["workload", "gpt-5", "--config", "KV4", "-o", "NEW"], "gpt-5"),
    ("models.kv", ["workload", "llama-2-7b", "--config", "KV4", "--ratio", "-2", "-o", "NEW"], "--ratio"),
    ("models.kv", ["compress"], "argument command: invalid choice: 'compress'"),
    ("models.kv", ["tune", "base", "--seed", "-1", "-o", "NEW"], "--seed: -1 is out of range"),
    ("models.kv", ["tune", "base", "--seed", "4294967296", "-o", "NEW"], "--seed: 4294967296 is out of range"),
    ("hw.power", ["--seed", "-3"], "--seed: -3 is out of range"),
    ("models.quant", ["save", "base", "--wbits", "5", "-o", "NEW"], "weight bits 5 unsupported"),
    ("models.quant", ["save", "base", "--group", "0", "-o", "NEW"], "group size 0 out of range"),
    ("models.quant", ["save", "TRUNCATED", "-o", "NEW"], "model.safetensors is truncated"),
    ("models.quant", ["save", "base", "-o", "USER"], "-o USER already exists"),
    ("models.quant", ["eval", "NEW"], "has no quant.json"),
    ("models.quant", ["frob"], "argument command: invalid choice: 'frob'"),
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
    paths["CWD"] = tmp_path / "cwd"
    paths["CWD"].mkdir()
    tensors = {"w": np.zeros((4, 4), np.float32)}
    for name in ("BADCONFIG", "TRUNCATED"):
        paths[name].mkdir()
        save_file(tensors, str(paths[name] / "model.safetensors"))
    (paths["BADCONFIG"] / "config.json").write_text('{\n  "model_type": "llama",\n  "hidden_size": "64\n}\n')
    (paths["TRUNCATED"] / "config.json").write_text('{"model_type": "llama"}\n')
    data = (paths["TRUNCATED"] / "model.safetensors").read_bytes()
    (paths["TRUNCATED"] / "model.safetensors").write_bytes(data[:-20])
    paths["BADJSON"].write_text('{"samples": [\n  {"instruction": "a", "resp')
    paths["EMPTY"].write_text("")
    paths["NANWORKLOAD"] = tmp_path / "nan_workload.json"  # json.loads reads NaN; the loader must refuse it
    op = {**Linear(name="a", m=1, n=8, k=8, group=8).as_dict(), "m": math.nan}
    paths["NANWORKLOAD"].write_text(json.dumps({"format": 1, "model": "x", "meta": {}, "ops": [op]}))
    paths["EXISTING_VCD"] = tmp_path / "waves.vcd"
    paths["EXISTING_VCD"].write_text("$date a user's trace $end\n")
    paths["VERILOG"] = tmp_path / "add.v"
    paths["VERILOG"].write_text("module add(input [3:0] a, b, output [4:0] y); assign y = a + b; endmodule\n")
    paths["PLACED_DEF"] = tmp_path / "placed.def"  # no netlist.v beside it
    paths["PLACED_DEF"].write_text("VERSION 5.8 ;\nDESIGN add ;\nEND DESIGN\n")
    paths["BADYAML"] = tmp_path / "bad.yml"
    paths["BADYAML"].write_text("merge_method: ties\nmodels: [base, code\n")
    for name, model in (("OK", "base"), ("BADCONFIG", paths["BADCONFIG"]), ("TRUNCATED", paths["TRUNCATED"])):
        config = {"merge_method": "ties", "base_model": "base", "models": [str(model), "code"]}
        (tmp_path / f"merge_{name.lower()}.yml").write_text(yaml.safe_dump(config))
        paths[f"MERGE_{name}"] = tmp_path / f"merge_{name.lower()}.yml"
    return {k: str(v) for k, v in paths.items()}


def _substitute(text: str, world: dict[str, str]) -> str:
    """`text` with every placeholder word (USER, NEW, ...; also inside NEW.fst or FILE/x) replaced by its path."""
    return re.sub(r"\b[A-Z][A-Z_]*[A-Z]\b", lambda m: world.get(m.group(), m.group()), text)


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


def run_main(module: str, argv: list[str], capsys) -> tuple[int, str]:
    """(exit code, stderr) of `module`'s main(argv), argparse's SystemExit included; stdout must stay empty."""
    code = exit_code(tool_main(module), argv)
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
def test_bad_input_is_one_line_and_touches_nothing(world, tmp_path, capsys, monkeypatch, module, argv, fragment):
    monkeypatch.chdir(world["CWD"])  # a tool's default output folder (out/..., build/) would land here
    before = _tree(tmp_path)
    code, err = run_main(module, [_substitute(a, world) for a in argv], capsys)
    expect_one_line(module, code, err, _substitute(fragment, world))
    assert _tree(tmp_path) == before
    assert not Path(world["NEW"]).exists()


# Every CLI with a heavy dependency somewhere behind it.
LIGHT_REJECT_TOOLS = [
    "models.kv", "models.merge", "models.moe", "models.prune", "models.recover", "models.robust", "models.anomaly",
    "models.export", "models.zoo", "models.demo", "hw.build", "hw.synth", "hw.power", "hw.cache", "eda.flow",
    "eda.slack", "sim.replay", "sim.sweep", "sim.workload", "tb",
]  # fmt: skip
HEAVY_MODULES = ("torch", "transformers", "torch_geometric", "dask", "distributed", "sklearn")


def test_a_bad_flag_is_rejected_before_any_heavy_import():
    """Each CLI checks its arguments before importing torch, transformers, torch-geometric, Dask or scikit-learn
    (`import torch` alone takes seconds); bench.cli_reject times the rejections."""
    code = (
        "import sys\n"
        "from mixkit_cli import tool_main\n"
        f"for tool in {LIGHT_REJECT_TOOLS!r}:\n"
        "    try:\n"
        "        tool_main(tool)(['--no-such-flag'])\n"
        "    except SystemExit as e:\n"
        "        assert e.code == 2, tool\n"
        f"    heavy = [m for m in {HEAVY_MODULES!r} if m in sys.modules]\n"
        "    assert not heavy, (tool, heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("\n") == len(LIGHT_REJECT_TOOLS) and "Traceback" not in proc.stderr


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


# A sample also runs as real `python -m TOOL` processes: the shell sees the same one line and exit code 2.
SUBPROCESS_SAMPLE = [
    ("hw.build", ["-o", "FILE"], "-o FILE is a file: name a new folder"),
    ("hw.synth", ["--clock-ns", "inf"], "argument --clock-ns: inf is not a finite number"),
    ("tb", ["--cycles", "0"], "argument --cycles: 0 is out of range"),
    ("sim.replay", ["NANWORKLOAD"], "NANWORKLOAD: op 0 'a': field 'm' is NaN"),
    ("sim.sweep", ["--workers", "0"], "argument --workers: 0 is out of range"),
    ("sim.workload", ["builtin", "llama-2-7b", "-o", "USER"], "-o USER already exists"),
    ("eda.flow", ["--design", "add8", "--clock", "inf"], "argument --clock: inf is not a finite number"),
    ("models.merge", ["MERGE_OK", "-o", "USER"], "USER already exists: choose a new path or pass --force"),
    ("models.zoo", ["eval", "BADCONFIG"], "BADCONFIG/config.json is not valid JSON (line 3)"),
    ("models.export", ["base", "-o", "FILE"], "-o FILE is a file: name a new folder"),
]


@pytest.mark.parametrize(
    ("module", "argv", "fragment"), SUBPROCESS_SAMPLE, ids=[f"{m} {' '.join(a)}" for m, a, _ in SUBPROCESS_SAMPLE]
)
def test_bad_input_as_a_real_process(world, tmp_path, module, argv, fragment):
    before = _tree(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", module, *[_substitute(a, world) for a in argv]],
        cwd=world["CWD"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.stdout == ""
    expect_one_line(module, proc.returncode, proc.stderr, _substitute(fragment, world))
    assert _tree(tmp_path) == before
