"""scratchcheck: was this model trained from scratch? Answers from the weights themselves."""

from __future__ import annotations

__version__ = "0.1.0"
