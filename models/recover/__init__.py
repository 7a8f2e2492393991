"""Recovery of pruned models: PASER's recovery-data selection and LoRA recovery fine-tuning.

pool = build_pool("default")                                   # (instruction, response) samples from zoo data
scored = score(Scored(pool), ["paser"], original, pruned, tok)  # clusters, JSD degradation (and IFD for "ifd")
sel = run_selection("paser", scored, budget=0.1)                # 10% of the pool's tokens
model, stats = train_copy(pruned, tok, [pool[i] for i in sel.indices], {"epochs": 2})   # merged LoRA
"""

from models.recover.cluster import capability_clusters
from models.recover.concepts import ConceptGraph, concepts
from models.recover.errors import RecoverError
from models.recover.instructions import CAPABILITIES, Sample, build_pool
from models.recover.lora import LoRALinear, add_lora, merge_lora, recovery_finetune
from models.recover.pipeline import Scored, compare, load_model, quality, run_selection, score, train_copy
from models.recover.select import METHODS, Selection, allocate, select

__all__ = [
    "CAPABILITIES",
    "METHODS",
    "ConceptGraph",
    "LoRALinear",
    "RecoverError",
    "Sample",
    "Scored",
    "Selection",
    "add_lora",
    "allocate",
    "build_pool",
    "capability_clusters",
    "compare",
    "concepts",
    "load_model",
    "merge_lora",
    "quality",
    "recovery_finetune",
    "run_selection",
    "score",
    "select",
    "train_copy",
]
