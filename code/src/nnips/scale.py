"""Book scale or paper scale: the ``NNIPS_SCALE`` environment variable.

``book`` (the default) keeps every page to seconds on a laptop CPU; ``paper`` uses the papers'
parameters and is meant for a GPU. Pages write ``n = scale.pick(book=32, paper=4096)``.
"""

from __future__ import annotations

import os

__all__ = ["SCALES", "current", "pick"]

SCALES = ("book", "paper")


def current() -> str:
    """The scale named by ``NNIPS_SCALE`` (default ``book``)."""
    value = os.environ.get("NNIPS_SCALE", "book").strip().lower() or "book"
    if value not in SCALES:
        raise ValueError(f"NNIPS_SCALE must be one of {SCALES}, got {value!r}")
    return value


def pick(book, paper):
    """Return ``book`` or ``paper`` according to :func:`current`."""
    return paper if current() == "paper" else book
