"""The block pruner's one error type."""


class PruneError(ValueError):
    """Bad pruning input (unsupported model, impossible block count, bad data); the message is one line."""
