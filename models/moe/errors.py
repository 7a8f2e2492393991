"""The MoE carver's one error type, and the dense model types it carves (no heavy import, for CLI checks)."""

# Dense families whose MLPs are gate/up/down SwiGLU under model.layers[i].mlp (models.moe.modeling.FAMILIES).
CARVABLE = ("llama", "mistral", "qwen2")


class MoeError(ValueError):
    """Bad CMoE input (impossible expert layout, unsupported model); the message is one line."""
