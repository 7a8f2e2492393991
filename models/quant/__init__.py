"""Group-wise weight quantization (RTN, GPTQ) and INT8/FP16 activations in the MixPE number format."""

from models.quant.config import QuantConfig, QuantError
from models.quant.gptq import Hessian, gptq_quantize
from models.quant.linear import Engine, QuantLinear, act_ports, quantize_acts
from models.quant.model import (
    capture_operands,
    compare,
    decoder_layers,
    evaluate,
    operand_op,
    perplexity,
    quantize_model,
    recording,
    set_engine,
    to_workload,
)
from models.quant.weights import QuantizedWeight, frac_bits_for, rtn_quantize

__all__ = [
    "Engine",
    "Hessian",
    "QuantConfig",
    "QuantError",
    "QuantLinear",
    "QuantizedWeight",
    "act_ports",
    "capture_operands",
    "compare",
    "decoder_layers",
    "evaluate",
    "frac_bits_for",
    "gptq_quantize",
    "operand_op",
    "perplexity",
    "quantize_acts",
    "quantize_model",
    "recording",
    "rtn_quantize",
    "set_engine",
    "to_workload",
]
