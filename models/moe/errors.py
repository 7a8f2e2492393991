"""The MoE carver's one error type."""


class MoeError(ValueError):
    """Bad CMoE input (impossible expert layout, unsupported model); the message is one line."""
