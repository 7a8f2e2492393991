"""Group-wise weight quantization (RTN, GPTQ) and INT8/FP16 activations in the MixPE number format; quantized
models saved and loaded as checkpoints that keep their integers (checkpoint.py)."""

from models.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "checkpoint": ["load_quantized", "save_quantized"],
        "config": ["QuantConfig", "QuantError"],
        "gptq": ["Hessian", "gptq_quantize"],
        "linear": ["Engine", "QuantLinear", "act_ports", "quantize_acts"],
        "model": [
            "capture_operands",
            "compare",
            "decoder_layers",
            "evaluate",
            "operand_op",
            "perplexity",
            "quantize_model",
            "recording",
            "set_engine",
            "to_workload",
        ],
        "weights": ["QuantizedWeight", "frac_bits_for", "rtn_quantize"],
    },
)
