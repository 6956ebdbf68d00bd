"""Names for the shapes that cross module boundaries."""

from typing import TypeAlias

UserId: TypeAlias = str
ItemId: TypeAlias = str
Score: TypeAlias = float
Timestamp: TypeAlias = float
"""Seconds since the Unix epoch, UTC."""
