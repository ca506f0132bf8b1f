"""User-facing errors.

A `NasnetError` carries a one-line message that names what is wrong and what to do about it.
The command line prints it without a traceback and exits with status 2; library callers can catch it.
It is not a ValueError: code that catches ValueError (a malformed number, a JSON decode) never
swallows a user error by accident, and code that means to catch both names both.
"""


def first_line(err: BaseException) -> str:
    """The first line of an exception's message, or its type name when it has none: what a one-line
    error quotes of an underlying failure."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


class NasnetError(Exception):
    """A mistake in user input (a genotype, a config, a file): one line, no traceback at the CLI."""
