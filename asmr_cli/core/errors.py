"""The one error type for user-facing failures (bad file, bad option, bad input)."""


class AsmrError(Exception):
    """A failure the user can act on; the CLI prints it as one line and exits 1."""
