"""KV cache compression: KVTuner-style layer-wise mixed-precision KV quantization on transformers caches.

kv = KVConfig.preset("KIVI-2", num_layers)     # or KVConfig.load("tuned.json"), KVConfig(pairs=((8, 4), ...))
out = model(input_ids=ids, cache=KVQuantizedCache(kv, model.config))
results = evaluate(model, tokenizer, [kv], preset="tiny")   # ppl, KL vs KV16, top-1 agreement, recall
"""

from models.kv.config import BITS, PRESETS, KVConfig, resolve
from models.kv.errors import KVConfigError
from models.kv.evaluate import decode_logits, evaluate, recall_accuracy
from models.kv.quant_cache import KVQuantizedCache, MixedPrecisionLayer
from models.kv.quantizer import Quantized, dequantize, quantize

__all__ = [
    "BITS",
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
