"""KV cache compression: KVTuner-style layer-wise mixed-precision KV quantization on transformers caches.

kv = KVConfig.preset("KIVI-2", num_layers)     # or KVConfig.load("tuned.json"), KVConfig(pairs=((8, 4), ...))
out = model(input_ids=ids, cache=KVQuantizedCache(kv, model.config))
results = evaluate(model, tokenizer, [kv], preset="tiny")   # ppl, KL vs KV16, top-1 agreement, recall
result = tune(KLMeter(model, calibration_ids(tokenizer, "tiny"), prefill=32), trials=40)   # KVTuner search
kv = choose(result, max_bits=4.0)
"""

from models.kv.config import BITS, PRESETS, KVConfig, resolve
from models.kv.errors import KVConfigError
from models.kv.evaluate import decode_logits, evaluate, recall_accuracy
from models.kv.quant_cache import KVQuantizedCache, MixedPrecisionLayer
from models.kv.quantizer import Quantized, dequantize, quantize
from models.kv.tune import (
    CANDIDATES,
    KLMeter,
    TuneResult,
    calibration_ids,
    choose,
    cluster_layers,
    layer_sensitivity,
    pareto_front,
    pareto_pairs,
    search,
    tune,
)

__all__ = [
    "BITS",
    "CANDIDATES",
    "KLMeter",
    "TuneResult",
    "calibration_ids",
    "choose",
    "cluster_layers",
    "layer_sensitivity",
    "pareto_front",
    "pareto_pairs",
    "search",
    "tune",
    "PRESETS",
    "KVConfig",
    "KVConfigError",
    "KVQuantizedCache",
    "MixedPrecisionLayer",
    "Quantized",
    "decode_logits",
    "dequantize",
    "evaluate",
    "quantize",
    "recall_accuracy",
    "resolve",
]
