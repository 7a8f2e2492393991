"""The recovery tools' one error type."""


class RecoverError(ValueError):
    """Bad recovery input (malformed selection file, impossible budget, unusable model); the message is one line."""
