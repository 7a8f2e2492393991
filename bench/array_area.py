"""Whole-array area: the replay's model (per-PE area x count + register bits) against synthesis.

Synthesizes each PE and each whole array (flattened) with hw.synth's yosys/abc script on osu018,
and compares the array's cell area with sim.energy.array_area_um2 fed the synthesized PE area.
Target: the model within 10% of synthesis. Also compares flip-flop counts: the model's register
bits plus the PEs' flops against the netlist's.

    python -m bench.array_area [--sizes 2 4 8] [--pes mixpe dequant] [--group 128] [--cached-only]

Prints the table and writes bench/results/array_area.json. Results are cached (hw.synth), so a
second run is instant; an 8x8 MixPE array takes tens of minutes of yosys/abc on one core.
"""

from __future__ import annotations

import json
import math
import platform
import sys
from pathlib import Path

from tqdm import tqdm

from hw.config import ArrayConfig, ConfigError, PEConfig
from hw.synth import SynthError, synthesize
from sim.cli import OneLineParser
from sim.energy import PECost, array_area_um2, array_register_bits
from sim.files import atomic_write

RESULTS = Path(__file__).resolve().parent / "results" / "array_area.json"
TOLERANCE = 0.10  # |model / synthesized - 1| allowed


def compare(cfg: ArrayConfig, cached_only: bool = False) -> dict | None:
    """Model vs synthesis for one array: areas (µm²), their ratio, and flip-flop counts.

    cached_only: None unless both the PE and the array are already synthesized (cached).
    """
    pe = synthesize(cfg.pe, cached_only=cached_only)
    array = synthesize(cfg, cached_only=cached_only)
    if pe is None or array is None:
        return None
    cost = PECost(pe.area_um2, pe.fmax_mhz, math.nan, math.nan, source=f"hw.synth {pe.design}")
    model = array_area_um2(cfg, cost)
    bits = array_register_bits(cfg)
    total = model["pes"] + model["registers"]
    ratio = total / array.area_um2
    pes = cfg.rows * cfg.cols
    return {
        "design": array.design,
        "rows": cfg.rows,
        "cols": cfg.cols,
        "pe": cfg.pe.as_dict(),
        "pe_area_um2": pe.area_um2,
        "synthesized_um2": array.area_um2,
        "model_um2": total,
        "model_parts_um2": model,
        "model_over_synthesized": ratio,
        "met": abs(ratio - 1) <= TOLERANCE,
        "synthesized_minus_pes_um2": array.area_um2 - model["pes"],
        "flops_synthesized": array.flops,
        "flops_model": pes * pe.flops + sum(bits.values()),
        "register_bits": bits,
        "synth_seconds": array.seconds,
        "fmax_mhz": array.fmax_mhz,
        "pe_fmax_mhz": pe.fmax_mhz,
    }


def format_rows(rows: list[dict]) -> str:
    head = ("array", "PE µm²", "synth µm²", "model µm²", "model/synth", "flops synth", "flops model", "met")
    lines = [head]
    for r in rows:
        lines.append(
            (
                r["design"],
                f"{r['pe_area_um2']:,.0f}",
                f"{r['synthesized_um2']:,.0f}",
                f"{r['model_um2']:,.0f}",
                f"{r['model_over_synthesized']:.3f}",
                str(r["flops_synthesized"]),
                str(r["flops_model"]),
                "yes" if r["met"] else "NO",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    return "\n".join(
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True)))
        for line in lines
    )


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="python -m bench.array_area", description=__doc__)
    p.add_argument("--sizes", type=int, nargs="+", default=[2, 4, 8], help="square array sizes R = C")
    p.add_argument("--pes", nargs="+", default=["mixpe", "dequant"], help="PE types (W4A8, unsigned weights)")
    p.add_argument("--group", type=int, default=128, help="quantization group size G")
    p.add_argument(
        "--cached-only", action="store_true", help="report only arrays already synthesized; list the rest as missing"
    )
    args = p.parse_args(argv)
    try:
        cfgs = [
            ArrayConfig(PEConfig(kind, 4, "unsigned", "int8", args.group), n, n)
            for kind in args.pes
            for n in args.sizes
        ]
    except ConfigError as e:
        p.error(str(e))
    rows, missing = [], []
    with tqdm(cfgs, desc="array_area", unit="array") as bar:
        for cfg in bar:
            bar.set_postfix_str(cfg.name())
            try:
                row = compare(cfg, args.cached_only)
            except SynthError as e:
                print(f"python -m bench.array_area: {e}", file=sys.stderr)
                return 1
            if row is None:
                missing.append(cfg.name())
            else:
                rows.append(row)
    print(format_rows(rows))
    if missing:
        print(f"not synthesized yet (--cached-only): {', '.join(missing)}")
    met = all(r["met"] for r in rows)
    print(f"target: model within {TOLERANCE:.0%} of synthesis on every array: {'met' if met else 'NOT met'}")
    result = {
        "benchmark": "array_area",
        "unit": "µm² (osu018 cell area, yosys stat -liberty, no wiring)",
        "target": f"|model / synthesized - 1| <= {TOLERANCE}",
        "met": met,
        "model": "sim.energy.array_area_um2: rows*cols*PE area + array_register_bits * REGISTER_BIT_AREA_UM2",
        "cases": rows,
        "not_synthesized": missing,
        "settings": vars(args),
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
    }
    RESULTS.parent.mkdir(exist_ok=True)
    atomic_write(RESULTS, json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
