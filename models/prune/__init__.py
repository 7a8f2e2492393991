"""Block pruning of Llama-style models: plain removal (ShortGPT) and FuseGPT's learnable fusion.

block_importance(model, windows, metric="macro")   # per block; "macro" (FuseGPT) or "cosine" (ShortGPT)
remove_blocks(model, [2, 3])                        # plain removal, in place
model, stats = fuse(model, windows, num_remove=1)   # FuseGPT: fuse the least important block into its group
model.save_pretrained(out)                          # an ordinary, shallower LlamaForCausalLM
"""

from models.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "compare": ["compare"],
        "errors": ["PruneError"],
        "fusion": ["FusedLinear", "fuse", "fuse_block", "group_of", "select_blocks"],
        "importance": ["block_importance", "cosine_influence", "macro_influence"],
        "remove": ["remove_blocks"],
    },
)
