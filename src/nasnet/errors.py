"""User-facing errors.

A `NasnetError` carries a one-line message that names what is wrong and what to do about it.
The command line prints it without a traceback and exits non-zero; library callers can catch it.
"""


def first_line(err: BaseException) -> str:
    """The first line of an exception's message, or its type name when it has none: what a one-line
    error quotes of an underlying failure."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


class NasnetError(ValueError):
    """A mistake in user input (a genotype, a config, a file): one line, no traceback at the CLI."""
