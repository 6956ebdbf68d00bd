"""The exception tree of freshrec.

    FreshrecError
    ├── InvalidRecord        a record (event, item, user) failed validation
    ├── UnknownItem          an item id the catalog has never seen
    ├── SourceUnavailable    a candidate source failed or is switched off
    ├── StoreUnavailable     a store (log, catalog, registry) cannot be reached
    │   └── CorruptSnapshot  a model snapshot is missing or fails its checksum
    └── NotSupported         a model was asked for an operation it does not offer

Every error carries a message written for the person who sent the input.
"""


class FreshrecError(Exception):
    """Base class of every error freshrec raises on purpose."""


class InvalidRecord(FreshrecError, ValueError):
    """A record failed validation; the message names the field and the problem."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message if field is None else f"{field}: {message}")
        self.field = field


class UnknownItem(FreshrecError, KeyError):
    """The item id is not in the catalog."""

    def __init__(self, item: str) -> None:
        super().__init__(item)
        self.item = item

    def __str__(self) -> str:
        return f"unknown item {self.item!r}"


class SourceUnavailable(FreshrecError):
    """A candidate source could not answer (failed, too slow, or tripped)."""


class StoreUnavailable(FreshrecError):
    """A store could not be reached or refused the operation."""


class CorruptSnapshot(StoreUnavailable):
    """A saved model snapshot is missing or its bytes do not match the recorded sha256."""


class NotSupported(FreshrecError, NotImplementedError):
    """The model does not offer this operation; the message names the model."""
