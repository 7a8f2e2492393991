"""Recovery of pruned models: PASER's recovery-data selection and LoRA recovery fine-tuning.

pool = build_pool("default")                                   # (instruction, response) samples from zoo data
scored = score(Scored(pool), ["paser"], original, pruned, tok)  # clusters, JSD degradation (and IFD for "ifd")
sel = run_selection("paser", scored, budget=0.1)                # 10% of the pool's tokens
model, stats = train_copy(pruned, tok, [pool[i] for i in sel.indices], {"epochs": 2})   # merged LoRA
"""

from models.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "cluster": ["capability_clusters"],
        "concepts": ["ConceptGraph", "concepts"],
        "errors": ["RecoverError"],
        "instructions": ["CAPABILITIES", "Sample", "build_pool"],
        "lora": ["LoRALinear", "add_lora", "merge_lora", "recovery_finetune"],
        "pipeline": ["Scored", "compare", "load_model", "quality", "run_selection", "score", "train_copy"],
        "select": ["METHODS", "Selection", "allocate", "select"],
    },
)
