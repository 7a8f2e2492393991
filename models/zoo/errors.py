"""The zoo's one error type."""


class ZooError(ValueError):
    """Bad zoo input (unknown preset or task, missing or unsupported checkpoint); the message is one line."""
