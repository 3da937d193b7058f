"""Counts in the study's words: "1 seed", "4 seeds", "every epoch". The report, the printed
tables and the error messages say their counts through these, so none of them reads
"1 seeds" once a count comes from the user's options or data."""

from __future__ import annotations


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and the noun, singular for exactly one: "1 seed", "0 seeds", "1,797 samples".

    Args:
        n: the count; thousands are grouped with commas.
        noun: the singular ("seed", "training sample").
        plural: the plural where it is not the noun and an "s" ("classes").
    """
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def span(word: str, n: int, noun: str) -> str:
    """ "every 3 epochs", "last 3 epochs"; for one, the noun alone: "every epoch", "last
    epoch" (not "every 1 epoch")."""
    return f"{word} {noun}" if n == 1 else f"{word} {count(n, noun)}"
