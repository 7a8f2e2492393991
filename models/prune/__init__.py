"""Block pruning of Llama-style models: plain removal (ShortGPT) and FuseGPT's learnable fusion.

block_importance(model, windows, metric="macro")   # per block; "macro" (FuseGPT) or "cosine" (ShortGPT)
remove_blocks(model, [2, 3])                        # plain removal, in place
model, stats = fuse(model, windows, num_remove=1)   # FuseGPT: fuse the least important block into its group
model.save_pretrained(out)                          # an ordinary, shallower LlamaForCausalLM
"""

from models.prune.compare import compare
from models.prune.errors import PruneError
from models.prune.fusion import FusedLinear, fuse, fuse_block, group_of, select_blocks
from models.prune.importance import block_importance, cosine_influence, macro_influence
from models.prune.remove import remove_blocks

__all__ = [
    "FusedLinear",
    "PruneError",
    "block_importance",
    "compare",
    "cosine_influence",
    "fuse",
    "fuse_block",
    "group_of",
    "macro_influence",
    "remove_blocks",
    "select_blocks",
]
