"""The KV package's one error type."""


class KVConfigError(ValueError):
    """Bad KV cache input (malformed or missing config file, unsupported bits, a config that does not fit the
    model); one line that names the offending entry and the fix."""
