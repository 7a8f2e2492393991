"""Hardware configurations shared by the RTL (hw/), the cycle model (sim/) and the testbenches (tb/).

This module imports nothing heavy, so the simulator and the CLIs can validate a configuration
without loading Amaranth. Every width the RTL and the cycle model use is derived here, once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

PE_KINDS = ("mixpe", "dequant", "int8")
ACT_KINDS = ("int8", "fp16")
WEIGHT_FORMATS = ("unsigned", "signed")
ACCUMULATE_KINDS = ("int", "fp32")
WEIGHT_BITS = (2, 3, 4, 8)
GROUP_DEQUANT = ("serial", "parallel")
SERIAL_BITS = (1, 2, 4, 8, 16)  # bits of S the serial group multiplier consumes per cycle
DEFAULT_SERIAL_BITS = 1  # the measured best area x clock trade-off (README, hardware section)
MAX_GROUP = 1024
MAX_ARRAY_DIM = 64

# Port widths of the shared PE interface (bits). Narrower operands sit in the low bits.
ACT_PORT_BITS = 16
Q_PORT_BITS = 8
SCALE_PORT_BITS = 16
ZERO_PORT_BITS = 8

# Width of an activation once decoded to the PE's integer domain (bits, two's complement).
# FP16 values are aligned to the smallest subnormal, 2**-24: |x| <= 2047 * 2**30 < 2**41.
ACT_FIXED_BITS = {"int8": 8, "fp16": 42}
FP16_LSB_EXP = -24


class ConfigError(ValueError):
    """An impossible or unsupported hardware configuration; the message is one line naming the fix."""


def clog2(n: int) -> int:
    """Bits needed to count 0..n-1 (at least 1)."""
    return max(1, (n - 1).bit_length())


def check_precision(wbits: int, wformat: str, act: str, error: type[Exception]) -> None:
    """`error` naming the choices unless act, wformat and wbits are ones the PEs (and so the workloads) support."""
    if act not in ACT_KINDS:
        raise error(f"unknown activation type '{act}': choose int8 or fp16")
    if wformat not in WEIGHT_FORMATS:
        raise error(f"unknown weight format '{wformat}': choose unsigned or signed")
    if wbits not in WEIGHT_BITS:
        raise error(f"weight bits {wbits} unsupported: choose 2, 3, 4 or 8")


@dataclass(frozen=True)
class PEConfig:
    """One processing element.

    pe: "mixpe" (shift-and-add, dequantize once per group), "dequant" (dequantize every weight,
        then multiply) or "int8" (plain INT8 x INT8 MAC, W8A8).
    wbits: weight bits (2, 3, 4, 8). wformat: "unsigned" (with a zero point) or "signed" (two's
        complement, zero point ignored). act: "int8" or "fp16" activations.
    group: weights per quantization group (G); MixPE applies scale and zero point once per G.
    acc_bits: width of the output accumulator (bits); it wraps modulo 2**acc_bits like the RTL.
        0 picks the default for the configuration.
    accumulate: "int" (exact integer result, the default) or "fp32" (FP16 activations only, dequant
        or mixpe): the scale port holds FP16 bits and out_y the FP32 bits of the result, accumulated
        with IEEE round-to-nearest-even (hw/float_arith.py states every rounding); acc_bits is 32.
    group_dequant (MixPE): how a finished group is multiplied by its scale. "serial": a shift-add
        multiplier over S's 16 bits, serial_bits per cycle, 16 / serial_bits cycles per group (it
        needs group >= that); "parallel": a full 16-bit multiplier in one cycle. (A third option,
        one multiplier per array column at the edge, was measured and left out: see the README.)
    serial_bits (MixPE, serial): 1, 2, 4, 8 or 16; 0 picks DEFAULT_SERIAL_BITS, or the fewest bits
        per cycle that still finish within one group when the group is shorter than 16.
    """

    pe: str = "mixpe"
    wbits: int = 4
    wformat: str = "unsigned"
    act: str = "int8"
    group: int = 128
    acc_bits: int = 0
    accumulate: str = "int"
    group_dequant: str = "serial"
    serial_bits: int = 0

    def __post_init__(self) -> None:
        if self.acc_bits == 0:
            object.__setattr__(self, "acc_bits", self.default_acc_bits())
        if self.serial_bits == 0:
            object.__setattr__(self, "serial_bits", self.default_serial_bits())
        self.validate()

    def default_serial_bits(self) -> int:
        """DEFAULT_SERIAL_BITS, widened until 16 / serial_bits cycles fit in one group."""
        return next((r for r in SERIAL_BITS if r >= DEFAULT_SERIAL_BITS and SCALE_PORT_BITS // r <= self.group), 16)

    def default_acc_bits(self) -> int:
        if self.pe == "int8" or self.fp32:
            return 32
        return 64 if self.act == "fp16" else 48

    def validate(self) -> None:
        if self.pe not in PE_KINDS:
            raise ConfigError(f"unknown PE '{self.pe}': choose one of {', '.join(PE_KINDS)}")
        check_precision(self.wbits, self.wformat, self.act, ConfigError)
        if self.pe == "int8" and (self.act, self.wbits, self.wformat) != ("int8", 8, "signed"):
            raise ConfigError(
                "the int8 PE is a plain INT8 x INT8 MAC: use --act int8 --wbits 8 --wformat signed,"
                " or --pe mixpe/dequant for other precisions"
            )
        if not 1 <= self.group <= MAX_GROUP:
            raise ConfigError(f"group size {self.group} out of range: choose 1..{MAX_GROUP}")
        if not 16 <= self.acc_bits <= 64:
            raise ConfigError(f"accumulator width {self.acc_bits} out of range: choose 16..64 bits")
        if self.accumulate not in ACCUMULATE_KINDS:
            raise ConfigError(f"unknown accumulation '{self.accumulate}': choose int or fp32")
        if self.fp32 and (self.pe == "int8" or self.act != "fp16"):
            raise ConfigError("FP32 accumulation needs FP16 activations and the mixpe or dequant PE: use --act fp16")
        if self.fp32 and self.acc_bits != 32:
            raise ConfigError(f"an FP32 accumulator is 32 bits, not {self.acc_bits}: drop --acc-bits")
        if self.group_dequant not in GROUP_DEQUANT:
            raise ConfigError(f"unknown group dequantizer '{self.group_dequant}': choose serial or parallel")
        if self.serial_bits not in SERIAL_BITS:
            raise ConfigError(f"serial bits {self.serial_bits} unsupported: choose 1, 2, 4, 8 or 16 bits per cycle")
        if self.dequant_cycles > self.group:
            raise ConfigError(
                f"group size {self.group} is shorter than the {self.dequant_cycles} cycles the serial group"
                f" multiplier needs at {self.serial_bits} bit(s) per cycle: use --group >= {self.dequant_cycles}"
                f" or a larger --serial-bits"
            )

    @property
    def signed_weights(self) -> bool:
        return self.wformat == "signed"

    @property
    def fp32(self) -> bool:
        """The result is accumulated in IEEE FP32 (out_y holds FP32 bits), not as an exact integer."""
        return self.accumulate == "fp32"

    @property
    def dequant_cycles(self) -> int:
        """Cycles MixPE's group multiplier is busy with one group (1 for the parallel and FP32 ones)."""
        if self.pe != "mixpe" or self.fp32 or self.group_dequant != "serial":
            return 1
        return SCALE_PORT_BITS // self.serial_bits

    @property
    def latency(self) -> int:
        """Cycles from an operand with `last` to out_valid; the one source of the PE's pipeline depth.

        int8: 1 (one MAC stage). dequant: 2 (dequantize, then multiply-accumulate); with FP32
        accumulation 3 (dequantize to FP16, exact FP16 x FP16 product, FP32 add). MixPE: 1 to register
        the finished group, then the parallel multiply-accumulate (1), or the serial multiply
        (dequant_cycles) followed by the accumulate (1); with FP32 accumulation 3 after the group
        register (convert to FP32, scale, FP32 add).
        """
        if self.pe == "int8":
            return 1
        if self.fp32:
            return 3 if self.pe == "dequant" else 4
        if self.pe == "dequant" or self.group_dequant == "parallel":
            return 2
        return self.dequant_cycles + 2

    @property
    def act_fixed_bits(self) -> int:
        return ACT_FIXED_BITS[self.act]

    @property
    def product_bits(self) -> int:
        """Width of one a*q (signed weights) or a*(q - z) (unsigned) product (bits)."""
        return self.act_fixed_bits + self.wbits + (0 if self.signed_weights else 1)

    @property
    def group_sum_bits(self) -> int:
        """Width of the in-group sum of products, exact for G terms (bits)."""
        return self.product_bits + clog2(self.group + 1)

    @property
    def scaled_group_bits(self) -> int:
        """Width of S * P, one group's dequantized contribution (bits)."""
        return self.group_sum_bits + SCALE_PORT_BITS

    def name(self) -> str:
        acc = "" if self.acc_bits == self.default_acc_bits() else f"_acc{self.acc_bits}"
        if self.pe == "int8":
            return f"int8_w8a8{acc}"
        fmt = "u" if self.wformat == "unsigned" else "s"
        if self.fp32:
            acc += "_fp32"
        elif self.pe == "mixpe" and self.group_dequant != "serial":
            acc += "_par"
        elif self.pe == "mixpe" and self.serial_bits != self.default_serial_bits():
            acc += f"_ser{self.serial_bits}"
        return f"{self.pe}_w{self.wbits}{fmt}_a{self.act}_g{self.group}{acc}"

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ArrayConfig:
    """An output-stationary systolic array of rows x cols identical PEs (hw/array.py)."""

    pe: PEConfig = field(default_factory=PEConfig)
    rows: int = 4
    cols: int = 4

    def __post_init__(self) -> None:
        for label, n in (("rows", self.rows), ("cols", self.cols)):
            if not 1 <= n <= MAX_ARRAY_DIM:
                raise ConfigError(f"array {label}={n} out of range: choose 1..{MAX_ARRAY_DIM}")

    @property
    def lanes(self) -> int:
        """Weights one column's 8-bit q port carries in the packed (decode) mode: 8 // wbits (1 at W8).

        In that mode row i uses lane i % lanes, so a column feeds `lanes` outputs at once (hw/array.py).
        """
        return max(1, Q_PORT_BITS // self.pe.wbits)

    def name(self) -> str:
        return f"array{self.rows}x{self.cols}_{self.pe.name()}"

    def as_dict(self) -> dict:
        return {"rows": self.rows, "cols": self.cols, "pe": self.pe.as_dict()}
