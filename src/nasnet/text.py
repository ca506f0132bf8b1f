"""Counts in messages: "1 epoch", "2 epochs", "1,257 images" (no "1 epochs" anywhere). Imports nothing."""

from __future__ import annotations


def plural(n: int | float, word: str, many: str | None = None) -> str:
    """`n word` with the word in the plural unless n is 1 ("1 child", "3 children" with many="children");
    whole numbers get thousands separators."""
    count = f"{n:,}" if isinstance(n, int) else f"{n:g}"
    return f"{count} {word if n == 1 else (many or word + 's')}"
