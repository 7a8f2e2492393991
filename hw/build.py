"""Emit Verilog for a PE or a systolic array, plus a JSON manifest of its parameters and ports.

    python -m hw.build --pe mixpe --wbits 4 --act fp16 --group 128 --rows 8 --cols 8 -o build/

writes build/<name>.v and build/<name>.json, where <name> says the configuration
(e.g. array8x8_mixpe_w4u_afp16_g128). An unsupported configuration exits with code 2 and a one-line
reason, and writes nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from hw.cli import add_pe_arguments, array_dim, pe_config_from
from hw.config import ArrayConfig, PEConfig
from sim.cli import OneLineParser, check_output, fail
from sim.schedule import cycle_formula

PROG = "python -m hw.build"


def design_name(cfg: PEConfig | ArrayConfig) -> str:
    return cfg.name() if isinstance(cfg, ArrayConfig) else f"pe_{cfg.name()}"


def elaborate(cfg: PEConfig | ArrayConfig):
    """The Amaranth component for a configuration (imports Amaranth only when needed)."""
    from hw.array import SystolicArray, make_pe

    return SystolicArray(cfg) if isinstance(cfg, ArrayConfig) else make_pe(cfg)


def port_list(component) -> list[dict]:
    """Ports as they appear in the Verilog: name, direction, total bits, and lanes for vector ports."""
    from amaranth.hdl import Shape
    from amaranth.lib import data

    ports = []
    for name, member in component.signature.members.items():
        shape = member.shape
        entry = {"name": name, "dir": "input" if member.flow.name == "In" else "output"}
        if isinstance(shape, data.ArrayLayout):
            elem = Shape.cast(shape.elem_shape)
            entry.update(bits=shape.size, lanes=shape.length, lane_bits=elem.width, signed=elem.signed)
        else:
            shape = Shape.cast(shape)
            entry.update(bits=shape.width, signed=shape.signed)
        ports.append(entry)
    ports[:0] = [
        {"name": "clk", "dir": "input", "bits": 1},
        {"name": "rst", "dir": "input", "bits": 1, "note": "synchronous, active high"},
    ]
    return ports


def emit(cfg: PEConfig | ArrayConfig) -> tuple[str, dict]:
    """(Verilog text, manifest) for a configuration."""
    from amaranth.back import verilog

    name = design_name(cfg)
    component = elaborate(cfg)
    manifest = {
        "format": 1,
        "top": name,
        "kind": "array" if isinstance(cfg, ArrayConfig) else "pe",
        "config": cfg.as_dict(),
        "ports": port_list(component),
    }
    if isinstance(cfg, PEConfig):
        manifest["latency_cycles"] = cfg.latency
    else:
        manifest["dataflow"] = "output-stationary"
        # The formula the tile and cycle models count with (sim/schedule.py), at this PE latency.
        manifest["cycle_formula"] = cycle_formula(cfg.pe.latency)
        manifest["cycle_formula_scope"] = "every PE used; a tile's drain ends with its last used (ungated) PE"
        manifest["latency_cycles"] = cfg.pe.latency
        manifest["packed_lanes"] = cfg.lanes  # weights per q port with in_packed high; row i takes lane i % lanes
        manifest["gating"] = "in_row_en / in_col_en low: the PE sees valid low, its operand inputs held at zero"
    text = verilog.convert(component, name=name, emit_src=False)
    return text, manifest


def write_design(cfg: PEConfig | ArrayConfig, outdir: Path) -> tuple[Path, Path]:
    """Write <name>.v and <name>.json into outdir atomically (all or nothing)."""
    text, manifest = emit(cfg)
    outdir.mkdir(parents=True, exist_ok=True)
    name = design_name(cfg)
    targets = (outdir / f"{name}.v", outdir / f"{name}.json")
    with tempfile.TemporaryDirectory(dir=outdir, prefix=".build-") as tmp:
        staged = (Path(tmp) / targets[0].name, Path(tmp) / targets[1].name)
        staged[0].write_text(text)
        staged[1].write_text(json.dumps(manifest, indent=2) + "\n")
        for src, dst in zip(staged, targets, strict=True):
            os.replace(src, dst)
    return targets


def parse_config(args: argparse.Namespace) -> PEConfig | ArrayConfig:
    pe = pe_config_from(args)
    return pe if args.pe_only else ArrayConfig(pe, args.rows, args.cols)


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_pe_arguments(p)
    p.add_argument("--rows", type=array_dim, default=4, help="array rows R")
    p.add_argument("--cols", type=array_dim, default=4, help="array columns C")
    p.add_argument("--pe-only", action="store_true", help="emit a single PE instead of an array")
    p.add_argument("-o", "--out", type=Path, default=Path("build"), help="output folder (default build/)")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON")
    args = p.parse_args(argv)
    try:
        cfg = parse_config(args)
        check_output(args.out, reuse=True)  # a folder of designs: each run adds (or refreshes) its own two files
        verilog_path, manifest_path = write_design(cfg, args.out)
    except (ValueError, OSError) as e:  # ConfigError, OutputError, or a failed write
        return fail(PROG, e)
    if args.json:
        print(manifest_path.read_text(), end="")
    else:
        print(f"wrote {verilog_path} and {manifest_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
