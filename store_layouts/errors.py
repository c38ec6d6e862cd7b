"""The store layouts' domain exception."""

from __future__ import annotations


class LayoutError(ValueError):
    """A layout file is unreadable or breaks the layout format.

    The message names the offending element, e.g.
    ``shelf 'A3-left': node 'x9' is not in the graph``, so whoever edits the file can find it.
    """
