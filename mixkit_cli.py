"""`mixkit`: the front door to every mixkit tool (the console script of `pip install -e .`).

    mixkit                       list the tools, one line each
    mixkit TOOL ARGS...          run TOOL as `python -m TOOL ARGS...` does, e.g. `mixkit hw.build --pe mixpe`

Each tool keeps its own `python -m TOOL` entry and its own --help; this module only lists and dispatches, importing
nothing of a tool until it runs (a bad flag is still rejected in well under a second). An unknown tool exits with
code 2 and one line, like every mixkit CLI.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable

PROG = "mixkit"

# Every tool, in the order of the data path (hardware, simulation, physical design, models), with what it does.
TOOLS: dict[str, str] = {
    "hw.build": "emit the Verilog and manifest of a PE or systolic array",
    "hw.synth": "synthesize a PE or array on osu018: area (µm²), clock (MHz), power",
    "hw.power": "PE power from gate-level toggle activity (pJ per cycle)",
    "hw.cache": "clean the cache's stale staging folders",
    "tb": "cocotb testbench of the RTL against the cycle model (Icarus, Verilator, Amaranth)",
    "sim.workload": "show a workload, or write a built-in model's shape-only workload",
    "sim.replay": "replay a workload on the simulated array: cycles, traffic, energy, time",
    "sim.sweep": "design-space sweep on Dask: array sizes x PE types x bits x groups",
    "sim.demo": "the hardware demo: Verilog, cycle model against RTL and numpy, Llama-2-7B replay",
    "eda.flow": "synthesis, placement, routing and static timing of a Verilog design",
    "eda.slack": "predict endpoint slack of a placed design before routing (E2ESlack)",
    "models.zoo": "train or evaluate the model zoo (a small Llama and three variants)",
    "models.export": "the accelerator workload of serving a model (shapes or exact operands)",
    "models.kv": "KV-cache quantization (KVTuner) and eviction (AttentionPredictor)",
    "models.moe": "carve a dense model into a mixture of experts (CMoE)",
    "models.prune": "remove or fuse decoder blocks (ShortGPT, FuseGPT)",
    "models.recover": "choose recovery data for a pruned model and LoRA-recover it (PASER)",
    "models.merge": "merge fine-tuned models (TIES, task arithmetic, Sens-Merging)",
    "models.quant": "save a quantized model as a checkpoint of packed integers, and evaluate one",
    "models.robust": "backdoor attacks and certified robustness of a text classifier (FRS)",
    "models.anomaly": "graph anomaly detection (SpaceGNN) on netlist and paper datasets",
    "models.demo": "the model demo: a zoo model quantized, run exactly on the array, replayed",
}

# Tools whose `python -m` entry (a package's __main__ that exits at import) is not the module holding main().
MAIN_MODULE = {"tb": "tb.cli"}


def tool_main(tool: str) -> Callable[[list[str]], int]:
    """The main(argv) of `tool` (a TOOLS key): the module's own main, or its package's __main__.main."""
    module = importlib.import_module(MAIN_MODULE.get(tool, tool))
    found = getattr(module, "main", None)
    return found if callable(found) else importlib.import_module(f"{tool}.__main__").main


def listing() -> str:
    """The tools, one line each, as `mixkit` with no arguments prints them."""
    width = max(map(len, TOOLS))
    lines = [f"usage: {PROG} TOOL [ARGS...]   (the same as python -m TOOL ARGS...; TOOL --help for its flags)", ""]
    lines += [f"  {name:{width}s}  {text}" for name, text in TOOLS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Exit code of `mixkit ARGS`: the listing (0), an unknown tool (2, one line), or the tool's own."""
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] in ("-h", "--help"):
        print(listing())
        return 0
    tool, rest = args[0], args[1:]
    if tool not in TOOLS:
        print(f"{PROG}: error: unknown tool {tool!r}: run `{PROG}` for the list", file=sys.stderr)
        return 2
    try:
        code = tool_main(tool)(rest)
    except SystemExit as e:  # argparse's own errors and --help exit from inside main
        code = e.code
    return 0 if code is None else code


if __name__ == "__main__":
    sys.exit(main())
