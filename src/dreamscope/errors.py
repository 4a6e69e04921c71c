"""The one exception type the CLI turns into a one-line message and exit code 2."""


class DreamscopeError(Exception):
    """A user-facing error: the message names the file/key/value at fault and what is accepted."""
