"""Quantization settings, validated once, with one-line errors."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from hw.config import MAX_GROUP, check_precision
from sim.workload import UNEVEN_POLICIES, fit_group

METHODS = ("rtn", "gptq")


class QuantError(ValueError):
    """An impossible quantization setting; the message is one line naming the fix."""


@dataclass(frozen=True)
class QuantConfig:
    """How to quantize every linear layer of a model.

    wbits: weight bits (2, 3, 4, 8). group: consecutive input features (k) sharing one scale and
    zero point; must divide every quantized layer's in_features. wformat: "unsigned" (asymmetric,
    zero point per group and column) or "signed" (symmetric two's complement, no zero point).
    act: "int8" (per-token symmetric) or "fp16" activations. method: "rtn" or "gptq".
    calib_samples: calibration sequences GPTQ uses (at most). damp: GPTQ dampening, as a fraction
    of the mean Hessian diagonal. act_order: GPTQ quantizes columns by decreasing Hessian diagonal
    (group scales are then fixed up front from the unmodified weights, so groups stay consecutive k).
    quantize_lm_head: also quantize the output projection (off: it stays FP32).
    uneven: what a layer whose in_features the group does not divide gets: "error" (QuantError) or
    "divisor" (the largest divisor of in_features not above group, e.g. 86 for 688 at group 128).
    """

    wbits: int = 4
    group: int = 128
    wformat: str = "unsigned"
    act: str = "int8"
    method: str = "rtn"
    calib_samples: int = 32
    damp: float = 0.01
    act_order: bool = False
    quantize_lm_head: bool = False
    uneven: str = "error"

    def __post_init__(self) -> None:
        check_precision(self.wbits, self.wformat, self.act, QuantError)
        if not isinstance(self.group, int) or not 1 <= self.group <= MAX_GROUP:
            raise QuantError(f"group size {self.group} out of range: choose 1..{MAX_GROUP}")
        if self.method not in METHODS:
            raise QuantError(f"unknown method '{self.method}': choose rtn or gptq")
        if not isinstance(self.calib_samples, int) or self.calib_samples < 1:
            raise QuantError(f"calib_samples={self.calib_samples}: need at least 1 calibration sequence")
        if self.uneven not in UNEVEN_POLICIES:
            raise QuantError(f"unknown uneven policy '{self.uneven}': choose error or divisor")
        if not 0 < self.damp < 1:
            raise QuantError(f"damp={self.damp} out of range: choose a fraction in (0, 1), e.g. 0.01")

    def group_for(self, name: str, in_features: int) -> int:
        """The group size layer `name` gets; QuantError if it cannot be quantized with these settings."""
        if in_features % self.group and self.uneven == "divisor":
            return fit_group(self.group, in_features)
        if in_features % self.group:
            raise QuantError(
                f"group size {self.group} does not divide in_features={in_features} of '{name}':"
                " choose a divisor (or group = in_features), or uneven='divisor'"
            )
        return self.group

    def name(self) -> str:
        """Short label, e.g. w4u_g128_aint8_gptq."""
        return f"w{self.wbits}{self.wformat[0]}_g{self.group}_a{self.act}_{self.method}"

    def as_dict(self) -> dict:
        return asdict(self)
