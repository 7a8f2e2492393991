"""Model merging: task-vector methods (linear, task arithmetic, TIES, DARE) with optional Sens-Merging
coefficients, driven by mergekit-style YAML configs.

    cfg = load_config("merge.yml")                 # or parse_config({...})
    model, tokenizer, report = merge(cfg)          # report.coefficients: Sens-Merging's s, α, g, τ, σ
    save(model, tokenizer, report, cfg, "out/merged")
    python -m models.merge merge.yml -o out/merged [--eval]
"""

from models.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "config": ["MergeConfig", "ModelEntry", "SensConfig", "load_config", "parse_config", "with_sens"],
        "errors": ["MergeError"],
        "merge": ["MergeReport", "compute_sens", "load_models", "merge", "merge_loaded", "report_for", "save"],
        "methods": ["METHODS", "MergeMethod", "dare_drop", "magnitude_trim", "sign_consensus"],
        "sensitivity": ["SensCoefficients", "coefficients", "normalize_layers", "sens_merging", "transferability"],
    },
)
