"""Run the testbench of any hardware configuration against the Numba cycle model.

    python -m tb --pe mixpe --wbits 4 --act int8 --group 8 --rows 2 --cols 2 --sim icarus --cycles 400
    python -m tb --pe dequant --act fp16 --group 4 --pe-only --sim verilator --waves pe.fst

Takes the configuration flags of `python -m hw.build`, drives constrained-random operands with
corner values (and stalls or idle cycles) into the RTL on the chosen simulator, records out_valid
and out_y every cycle and compares them with sim/'s cycle model: one PASS/FAIL line per check (per
output lane for an array, plus the GEMM result against numpy), and for a failure the first
mismatching cycle, signal, expected and actual value.

Exit status: 0 every check passed, 1 a mismatch, 2 a bad configuration, flag or waves path (one
line on stderr, nothing written), or a simulator that is missing or failed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hw.build import design_name, emit, parse_config
from hw.cli import add_pe_arguments, array_dim
from hw.config import ArrayConfig, ConfigError, PEConfig
from sim.cli import OneLineParser, add_quiet_argument, fail, int_in, seed_int
from tb import runner
from tb.runner import WAVE_FORMATS

if TYPE_CHECKING:  # tb.checks loads the Numba models: imported only once the flags are valid
    from tb.checks import Case, Check

SIMULATORS = ("icarus", "verilator", "amaranth")
WAVES_BY_SIM = {"icarus": ("vcd", "fst"), "verilator": ("vcd", "fst"), "amaranth": ("vcd",)}
MAX_CYCLES = 10_000_000
PROG = "python -m tb"


class UsageError(ValueError):
    """A bad flag combination or path; the message is one line naming the fix."""


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_pe_arguments(p)
    p.add_argument("--rows", type=array_dim, default=4, help="array rows R")
    p.add_argument("--cols", type=array_dim, default=4, help="array columns C")
    p.add_argument("--pe-only", action="store_true", help="test a single PE instead of an array")
    p.add_argument("--sim", choices=SIMULATORS, default="icarus", help="simulator (default icarus)")
    p.add_argument("--seed", type=seed_int, default=0, help="seed of the random stimulus (default 0)")
    p.add_argument(
        "--cycles",
        type=int_in(1, MAX_CYCLES),
        default=1000,
        help="stimulus length in clock cycles, at least (whole dot products/tiles; default 1000)",
    )
    p.add_argument("--waves", type=Path, help="write signal traces to this new .vcd or .fst file")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    add_quiet_argument(p)
    # Test hook: the model runs a configuration with these fields changed (KEY=VALUE, e.g. acc_bits=16),
    # so a test can show the comparison fails against real simulator output. Not for users.
    p.add_argument("--model-override", action="append", default=[], help=argparse.SUPPRESS)
    return p


def check_waves(path: Path | None, sim: str) -> None:
    """Refuse a waves file the simulator cannot write, or one that would overwrite something."""
    if path is None:
        return
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in WAVE_FORMATS:
        raise UsageError(f"--waves {path}: name a .vcd or .fst file")
    if fmt not in WAVES_BY_SIM[sim]:
        raise UsageError(f"--waves {path}: --sim {sim} writes only {', '.join(WAVES_BY_SIM[sim])}; use a .vcd name")
    if (sim, fmt) == ("verilator", "fst") and not runner.verilator_writes_fst():
        raise UsageError(
            f"--waves {path}: Verilator writes FST only with lz4.h: apt-get install liblz4-dev, or use .vcd"
        )
    if path.exists():
        raise UsageError(f"--waves {path} already exists: remove it or choose a new file name")
    if not path.parent.is_dir():
        raise UsageError(f"--waves {path}: folder {path.parent} does not exist; create it first")


def model_config(cfg: PEConfig | ArrayConfig, overrides: list[str]) -> PEConfig | ArrayConfig:
    """The configuration the cycle model runs: cfg with the PE's fields KEY=VALUE replaced (test hook)."""
    pe = cfg.pe if isinstance(cfg, ArrayConfig) else cfg
    changes = {}
    for item in overrides:
        key, _, value = item.partition("=")
        current = getattr(pe, key, None)
        if current is None or not value:
            raise UsageError(f"--model-override {item}: use FIELD=VALUE with a PE field")
        changes[key] = type(current)(value)
    pe = dataclasses.replace(pe, **changes)
    return dataclasses.replace(cfg, pe=pe) if isinstance(cfg, ArrayConfig) else pe


def lane_bits(cfg: PEConfig | ArrayConfig) -> dict[str, int]:
    """Bits per lane of each vector input port, from the design's manifest."""
    _, manifest = emit(cfg)
    return {p["name"]: p["lane_bits"] for p in manifest["ports"] if "lanes" in p and p["dir"] == "input"}


def _progress_bar(total: int, sim: str, quiet: bool = False):
    from tqdm import tqdm

    return tqdm(total=total, desc=f"{sim}", unit="cycle", disable=True if quiet else None, leave=False)


def run_cocotb(cfg: PEConfig | ArrayConfig, case: Case, sim: str, seed: int, waves: Path | None, quiet: bool = False):
    """(out_valid, out_y) recorded by tb/tb_record.py on Icarus or Verilator."""
    lanes = case.want_valid.shape[1]
    with tempfile.TemporaryDirectory(prefix="mixkit-tb-") as tmp:
        files = {name: Path(tmp) / f"{name}" for name in ("case.npz", "record.npz", "progress")}
        np.savez(files["case.npz"], **case.inputs)
        bar, done = _progress_bar(case.cycles, sim, quiet), threading.Event()

        def poll() -> None:  # the simulator runs in a child process; follow its progress file
            while not done.wait(0.5):
                try:
                    bar.n = int(files["progress"].read_text())
                    bar.refresh()
                except (OSError, ValueError):
                    pass

        watcher = threading.Thread(target=poll, daemon=True)
        watcher.start()
        try:
            tests, failed = runner.run(
                cfg,
                "tb_record",
                seed,
                simulator=sim,
                waves=waves,
                case=str(files["case.npz"]),
                record=str(files["record.npz"]),
                progress=str(files["progress"]),
                lane_bits=lane_bits(cfg),
                lanes=lanes,
                acc_bits=(cfg.pe if isinstance(cfg, ArrayConfig) else cfg).acc_bits,
                cycles=case.cycles,
            )
        finally:
            done.set()
            watcher.join()
            bar.close()
        if (tests, failed) != (1, 0) or not files["record.npz"].exists():
            raise RuntimeError(f"the {sim} simulation did not finish: see its sim.log under the tb cache")
        with np.load(files["record.npz"]) as record:
            return record["valid"], record["y"]


def run_amaranth(cfg: PEConfig | ArrayConfig, case: Case, waves: Path | None, quiet: bool = False):
    from tb.amaranth_sim import trace_amaranth

    bar = _progress_bar(case.cycles, "amaranth", quiet)
    try:
        return trace_amaranth(cfg, case.inputs, case.cycles, waves, progress=lambda t: bar.update(1))
    finally:
        bar.close()


def simulate(cfg: PEConfig | ArrayConfig, case: Case, sim: str, seed: int, waves: Path | None, quiet: bool = False):
    """Run the case on a simulator, writing waves (if asked) only once the run has finished."""
    staged = None
    if waves is not None:
        staged = waves.with_name(f".{waves.stem}.partial{waves.suffix}")  # the suffix names the format
        staged.unlink(missing_ok=True)
    try:
        if sim == "amaranth":
            got = run_amaranth(cfg, case, staged, quiet)
        else:
            got = run_cocotb(cfg, case, sim, seed, staged, quiet)
        if staged is not None:
            staged.rename(waves)
        return got
    finally:
        if staged is not None:
            staged.unlink(missing_ok=True)


def report(checks: list[Check], cfg, sim: str, seed: int, cycles: int, as_json: bool) -> None:
    from tb.checks import first_mismatch

    first = first_mismatch(checks)
    if as_json:
        out = {
            "config": cfg.as_dict(),
            "sim": sim,
            "seed": seed,
            "cycles": cycles,
            "passed": first is None,
            "checks": [dataclasses.asdict(c) for c in checks],
            "first_mismatch": None if first is None else dataclasses.asdict(first),
        }
        print(json.dumps(out, indent=2))
        return
    for c in checks:
        print(c.line())
    passed = sum(c.passed for c in checks)
    print(f"{passed}/{len(checks)} checks passed over {cycles} cycles ({sim}, seed {seed})")
    if first is not None:
        where = first.where() if first.cycle is not None else first.detail.get("reason", "")
        print(f"first mismatch: {first.name}: {where}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg = parse_config(args)
        check_waves(args.waves, args.sim)
        model_cfg = model_config(cfg, args.model_override)
    except (ConfigError, UsageError, ValueError, TypeError) as e:
        return fail(PROG, e)
    from tb.checks import compare, make_case

    case = make_case(model_cfg, args.seed, args.cycles)
    if not args.json:
        print(f"{design_name(cfg)} on {args.sim}: {case.cycles} cycles, seed {args.seed}")
    try:
        got_valid, got_y = simulate(cfg, case, args.sim, args.seed, args.waves, args.quiet)
    except Exception as e:  # a missing or failing simulator: one line, not a traceback
        if not isinstance(e, (RuntimeError, OSError)):
            raise
        return fail(PROG, e)
    checks = compare(cfg, case, got_valid, got_y)
    report(checks, cfg, args.sim, args.seed, case.cycles, args.json)
    return 0 if all(c.passed for c in checks) else 1
