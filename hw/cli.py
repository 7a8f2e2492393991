"""Command-line options that name a PE configuration, shared by hw.build, hw.synth and hw.power."""

from __future__ import annotations

import argparse

from hw.config import (
    ACCUMULATE_KINDS,
    ACT_KINDS,
    GROUP_DEQUANT,
    MAX_ARRAY_DIM,
    PE_KINDS,
    SERIAL_BITS,
    WEIGHT_BITS,
    WEIGHT_FORMATS,
    PEConfig,
)
from sim.cli import int_in

# An array's rows or columns, checked while argparse parses.
array_dim = int_in(1, MAX_ARRAY_DIM)


def add_pe_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pe", choices=PE_KINDS, default="mixpe", help="PE type (default mixpe)")
    p.add_argument(
        "--wbits", type=int_in(1, 64), default=None, help=f"weight bits, one of {WEIGHT_BITS} (default 4; int8 PE: 8)"
    )
    p.add_argument(
        "--wformat", choices=WEIGHT_FORMATS, default=None, help="unsigned with zero point (default) or signed"
    )
    p.add_argument("--act", choices=ACT_KINDS, default="int8", help="activation type")
    p.add_argument(
        "--group", type=int_in(1), default=128, help="quantization group size G (weights per scale/zero point)"
    )
    p.add_argument(
        "--acc-bits",
        type=int_in(0, 256),
        default=0,
        help="accumulator width in bits (default: 32 int8 PE, 48 INT8 act, 64 FP16 act, 32 FP32 accumulation)",
    )
    p.add_argument(
        "--accumulate",
        choices=ACCUMULATE_KINDS,
        default="int",
        help="int: exact integer result (default); fp32: FP16 activations, scale port read as FP16 bits,"
        " IEEE FP32 accumulation with round-to-nearest-even (mixpe and dequant)",
    )
    p.add_argument(
        "--group-dequant",
        choices=GROUP_DEQUANT,
        default="serial",
        help="MixPE's group multiplier: serial shift-add over S in each PE (default), or one-cycle parallel",
    )
    p.add_argument(
        "--serial-bits",
        type=int_in(0, 16),
        default=0,
        help=f"bits of S the serial group multiplier takes per cycle, one of {SERIAL_BITS}; it needs"
        " 16/bits cycles, so the group must be at least that long (default: 1, widened for short groups)",
    )


def pe_config_from(args: argparse.Namespace) -> PEConfig:
    """The PEConfig the options name; the int8 PE defaults to 8-bit signed weights. Raises ConfigError."""
    wformat = args.wformat or ("signed" if args.pe == "int8" else "unsigned")
    wbits = args.wbits if args.wbits is not None else (8 if args.pe == "int8" else 4)
    return PEConfig(
        args.pe,
        wbits,
        wformat,
        args.act,
        args.group,
        args.acc_bits,
        args.accumulate,
        args.group_dequant,
        args.serial_bits,
    )
