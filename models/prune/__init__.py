"""Block pruning of zoo-style Llama models: plain removal (ShortGPT) and FuseGPT's learnable fusion."""

from models.prune.remove import remove_blocks

__all__ = ["remove_blocks"]
