"""User-facing errors.

A `NasnetError` carries a one-line message that names what is wrong and what to do about it.
The command line prints it without a traceback and exits non-zero; library callers can catch it.
"""


class NasnetError(ValueError):
    """A mistake in user input (a genotype, a config, a file): one line, no traceback at the CLI."""
