"""KV cache compression on transformers caches: KVTuner-style layer-wise mixed-precision KV quantization and
AttentionPredictor-style critical-token selection (with StreamingLLM, H2O, SnapKV and Quest beside it).

kv = KVConfig.preset("KIVI-2", num_layers)     # or KVConfig.load("tuned.json"), KVConfig(pairs=((8, 4), ...))
out = model(input_ids=ids, cache=KVQuantizedCache(kv, model.config))
results = evaluate(model, tokenizer, [kv], preset="tiny")   # ppl, KL vs KV16, top-1 agreement, recall
result = tune(KLMeter(model, calibration_ids(tokenizer, "tiny"), prefill=32), trials=40)   # KVTuner search
kv = choose(result, max_bits=4.0)
logits = selection_logits(model, ids, Selector(make_policy("h2o"), Budget(ratio=16)), prefill=32)
w = decode_workload("zoo", ModelShape.from_hf_config(model.config), kv, prefill=512, decode=32,
                    kept=kept_table(512, 32, num_layers, ratio=16))   # for sim.replay
"""

from models.kv.config import BITS, PRESETS, KVConfig, resolve
from models.kv.errors import KVConfigError
from models.kv.evaluate import decode_logits, evaluate, recall_accuracy
from models.kv.predictor import AttentionCNN, PredictorConfig
from models.kv.quant_cache import KVQuantizedCache, MixedPrecisionLayer
from models.kv.quantizer import Quantized, dequantize, quantize
from models.kv.selection import POLICIES, Budget, Selector, kept_tokens, make_policy
from models.kv.selection import decode_logits as selection_logits
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
from models.kv.workload import decode_workload, kept_table

__all__ = [
    "POLICIES",
    "AttentionCNN",
    "Budget",
    "PredictorConfig",
    "Selector",
    "decode_workload",
    "kept_table",
    "kept_tokens",
    "make_policy",
    "selection_logits",
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
