"""KV cache compression on transformers caches: KVTuner-style layer-wise mixed-precision KV quantization and
AttentionPredictor-style critical-token selection (with StreamingLLM, H2O, SnapKV and Quest beside it).

kv = KVConfig.preset("KIVI-2", num_layers)     # or KVConfig.load("tuned.json"), KVConfig(pairs=((8, 4), ...))
out = model(input_ids=ids, cache=KVQuantizedCache(kv, model.config))
results = evaluate(model, tokenizer, [kv], preset="tiny")   # ppl, KL vs KV16, top-1 agreement, recall
result = tune(KLMeter(model, calibration_ids(tokenizer, "tiny"), prefill=32), trials=40)   # KVTuner search
kv = choose(result, max_bits=4.0)
logits = selection.decode_logits(model, ids, Selector(make_policy("h2o"), Budget(ratio=16)), prefill=32)
w = decode_workload("zoo", ModelShape.from_hf_config(model.config), kv, prefill=512, decode=32,
                    kept=kept_table(512, 32, num_layers, ratio=16))   # for sim.replay
"""

from models.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "config": ["BITS", "PRESETS", "KVConfig", "resolve"],
        "errors": ["KVConfigError"],
        "evaluate": ["decode_logits", "evaluate", "recall_accuracy"],
        "predictor": ["AttentionCNN", "PredictorConfig"],
        "quant_cache": ["KVQuantizedCache", "MixedPrecisionLayer"],
        "quantizer": ["Quantized", "dequantize", "quantize"],
        "selection": ["POLICIES", "Budget", "Selector", "kept_tokens", "make_policy"],
        "tune": [
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
        ],
        "workload": ["decode_workload", "kept_table"],
    },
)
