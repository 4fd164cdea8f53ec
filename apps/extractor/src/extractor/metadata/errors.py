"""The one exception type the metadata library raises for bad file content."""

from __future__ import annotations


class ExtractionError(Exception):
    """A file could not be parsed as the format its name says.

    Attributes:
        reason: a human-readable sentence naming what was wrong and, where it
            applies, where in the file (byte offset, line, ZIP part, block).
            The extractor stores it in ``extraction_results.error``.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason
