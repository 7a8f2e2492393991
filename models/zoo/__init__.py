"""The model zoo: a small Llama trained here on local text and generated tasks, and three specialized variants.

paths = build("tiny")                 # {"base", "code", "math", "english"} -> checkpoint folders (cached)
model, tokenizer = load("math")       # or load("/path/to/any/llama/checkpoint")
texts = task_texts("code", "test")    # held-out texts; tasks: code, math, english, recall
drawn_windows(tokenizer, "test", 256, 64, draw=1)   # code and English windows drawn by a seed (benches)
token_windows(tokenizer, "code", "test", seq_len=128, limit=64)   # the same as token windows
evaluate(model, tokenizer)            # per task: ppl, top1 (+ answer_top1, exact_match)
"""

from models.lazy import lazy_exports

# Exports load on first use, so `python -m models.zoo --bad-flag` answers before torch is imported.
__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "api": ["calibration_windows", "drawn_windows", "evaluate", "task_texts", "token_windows"],
        "data": ["TASKS"],
        "errors": ["ZooError"],
        "evaluate": ["perplexity"],
        "presets": ["PRESETS"],
        "zoo": ["NAMES", "build", "build_result", "load"],
    },
)
