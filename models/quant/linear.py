"""QuantLinear: an nn.Linear replacement computing exactly the integers the MixPE array computes.

Activations are quantized per token, then the layer forms

    Y_int[m, n] = sum_g S[g, n] * (sum_{k in g} a[m, k] q[k, n] - z[g, n] sum_{k in g} a[m, k])

wrapped to the accumulator width (48 bits for INT8 activations, 64 for FP16, as hw/config.py), and
the host rescales: y = Y_int * s_x[m] * 2**-F (INT8, s_x the token's scale) or Y_int * 2**-24 *
2**-F (FP16), plus the bias in float. The integer product is computed in torch int64, whose
arithmetic is modulo 2**64 exactly like the 64-bit accumulator, so it is exact for any size;
sum_g S (P - z A) equals a @ (S (q - z)) modulo 2**64, which is what is multiplied.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from hw.config import FP16_LSB_EXP, PEConfig
from models.quant.config import QuantError
from models.quant.weights import QuantizedWeight
from sim.gemm import GemmOperands
from sim.reference import wrap

# Computes Y_int (M x N, int64) from port-level operands, e.g. the cycle model:
# lambda ops, pe: sim.gemm.run_gemm(ArrayConfig(pe, 8, 8), ops)[0]
Engine = Callable[[GemmOperands, PEConfig], np.ndarray]


def quantize_acts(x: torch.Tensor, act: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Activations x (m, k) float -> (a int64 (m, k) in the PE domain, row scale float64 (m, 1)).

    INT8: a = clamp(round(x / s_x), -128, 127) with s_x = max|x_row| / 127 in float32 (an all-zero
    row gets s_x = 1, its a being 0 anyway); the row scale is s_x. FP16: a = fp16(x) in units of
    2**-24 (exact for every finite FP16 value); the row scale is 2**-24.
    """
    x = x.detach().float()
    if act == "int8":
        s = x.abs().amax(dim=1, keepdim=True) / 127
        s = torch.where(s > 0, s, torch.ones_like(s))
        a = torch.round(x / s).clamp(-128, 127).long()
        return a, s.double()
    h = x.half()
    if not torch.isfinite(h).all():
        raise QuantError("activation outside the FP16 range (|x| > 65504): use INT8 activations for this model")
    a = torch.ldexp(h.double(), torch.tensor(-FP16_LSB_EXP)).long()
    return a, torch.full((x.shape[0], 1), 2.0**FP16_LSB_EXP, dtype=torch.float64)


def act_ports(x: torch.Tensor, act: str) -> np.ndarray:
    """Activation port values (m, k) int64: INT8 two's complement byte, or FP16 bits."""
    if act == "int8":
        return quantize_acts(x, act)[0].numpy() & 0xFF
    return x.detach().float().half().view(torch.int16).long().numpy() & 0xFFFF


class QuantLinear(nn.Module):
    """A linear layer with integer group-wise weights and quantized activations (float32 in and out).

    Its integers stay on the CPU (the exact model of the array's arithmetic); forward takes and returns the
    activations on whatever device and dtype the rest of the model uses.

    qweight: the layer's integers (see QuantizedWeight). bias: (out,) float32 or None. act: "int8"
    or "fp16". engine: if set, forward computes Y_int through it from port-level operands
    (to_operands) instead of torch; `engine(operands, pe_config) -> (M, N) int64`.
    """

    def __init__(self, qweight: QuantizedWeight, bias: torch.Tensor | None, act: str, engine: Engine | None = None):
        super().__init__()
        self.in_features, self.out_features = qweight.shape
        self.frac_bits, self.group, self.wbits, self.wformat = (
            qweight.frac_bits,
            qweight.group,
            qweight.wbits,
            qweight.wformat,
        )
        self.act = act
        self.engine = engine
        self.register_buffer("q", qweight.q)
        self.register_buffer("scale", qweight.scale)
        self.register_buffer("zero", qweight.zero)
        # S * (q - z) per weight, cached: it is what every forward multiplies by.
        self.register_buffer("w_int", qweight.int_weight(), persistent=False)
        self.bias = None if bias is None else nn.Parameter(bias.detach().float().clone(), requires_grad=False)

    @property
    def qweight(self) -> QuantizedWeight:
        return QuantizedWeight(self.q, self.scale, self.zero, self.frac_bits, self.group, self.wbits, self.wformat)

    def pe_config(self) -> PEConfig:
        """The MixPE configuration that runs this layer."""
        return PEConfig("mixpe", self.wbits, self.wformat, self.act, self.group)

    def to_operands(self, x: torch.Tensor) -> GemmOperands:
        """Port-level operands for inputs x (m, in_features): what the array is fed (int64 arrays)."""
        return GemmOperands(
            act=act_ports(x, self.act),
            q=self.qweight.port_q(),
            scale=self.scale.long().numpy().copy(),
            zero=self.zero.long().numpy().copy(),
            group=self.group,
        )

    def accumulate(self, ops: GemmOperands) -> np.ndarray:
        """Y_int (M, N) int64 from operands: the engine's if one is set, else the exact torch product."""
        if self.engine is not None:
            return np.asarray(self.engine(ops, self.pe_config()), dtype=np.int64)
        from sim.pe_model import decode_acts

        a = torch.from_numpy(decode_acts(ops.act, self.act))
        return wrap((a @ self.w_int).numpy(), self.pe_config().acc_bits)

    def integer_output(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(Y_int (m, n) int64, row scale (m, 1) float64) for inputs x (m, in_features)."""
        a, row_scale = quantize_acts(x, self.act)
        if self.engine is not None:
            return torch.from_numpy(self.accumulate(self.to_operands(x))), row_scale
        y = torch.from_numpy(wrap((a @ self.w_int).numpy(), self.pe_config().acc_bits))
        return y, row_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        y_int, row_scale = self.integer_output(x.reshape(-1, self.in_features).cpu())
        y = (y_int.double() * row_scale * 2.0**-self.frac_bits).float()
        if self.bias is not None:
            y = y + self.bias.cpu()
        return y.reshape(*shape[:-1], self.out_features).to(device=x.device, dtype=x.dtype)

    def _apply(self, fn: Callable, recurse: bool = True) -> QuantLinear:
        # .to(device) / .cuda() keep the integers on the CPU (see the class docstring); .to(dtype) never
        # touches integer buffers anyway, and the float bias stays float32 as the host adds it.
        return self

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, w{self.wbits}"
            f"{self.wformat[0]}/g{self.group}/a{self.act}, F={self.frac_bits}"
        )
