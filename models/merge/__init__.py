"""Model merging: task-vector methods (linear, task arithmetic, TIES, DARE) with optional Sens-Merging
coefficients, driven by mergekit-style YAML configs.

    cfg = load_config("merge.yml")                 # or parse_config({...})
    model, tokenizer, report = merge(cfg)          # report.coefficients: Sens-Merging's s, α, g, τ, σ
    save(model, tokenizer, report, cfg, "out/merged")
    python -m models.merge merge.yml -o out/merged [--eval]
"""

from models.merge.config import MergeConfig, ModelEntry, SensConfig, load_config, parse_config, with_sens
from models.merge.errors import MergeError
from models.merge.merge import MergeReport, compute_sens, load_models, merge, merge_loaded, report_for, save
from models.merge.methods import METHODS, MergeMethod, dare_drop, magnitude_trim, sign_consensus
from models.merge.sensitivity import SensCoefficients, coefficients, normalize_layers, sens_merging, transferability

__all__ = [
    "METHODS",
    "MergeConfig",
    "MergeError",
    "MergeMethod",
    "MergeReport",
    "ModelEntry",
    "SensCoefficients",
    "SensConfig",
    "coefficients",
    "compute_sens",
    "dare_drop",
    "load_config",
    "load_models",
    "magnitude_trim",
    "merge",
    "merge_loaded",
    "normalize_layers",
    "parse_config",
    "report_for",
    "save",
    "sens_merging",
    "sign_consensus",
    "transferability",
    "with_sens",
]
