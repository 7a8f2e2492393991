"""The merge package's one error type."""


class MergeError(ValueError):
    """Bad merge input (malformed config, missing or mismatched model, impossible parameter); one line that names
    the offending entry and the fix."""
