"""Request parameters that several routes share, with the rules that check them.

The recommendations route and the console's explain route must read a path id and the
business filters in exactly the same way, or the console would explain another list
than the API answers; so both take them from here.
"""

from typing import Annotated

from fastapi import Path, Query

from freshrec.ids import id_problem
from freshrec.service import schemas
from freshrec.service.errors import ApiError
from freshrec.serving.results import Filters

MAX_EXCLUDE = 1000
# A path id, documented with the id rule; app code checks it (for a clear message).
PathId = Annotated[str, Path(description=schemas.ID_RULE, json_schema_extra=schemas.ID_SCHEMA)]


def checked_id(value: str) -> str:
    problem = id_problem(value)
    if problem:
        raise ApiError(422, f"the id in the path {problem}")
    return value


def exclude_list(raw: str | None) -> frozenset[str]:
    if not raw:
        return frozenset()
    ids = [part.strip() for part in raw.split(",") if part.strip()]
    if len(ids) > MAX_EXCLUDE:
        raise ApiError(422, f"exclude lists at most {MAX_EXCLUDE} items")
    return frozenset(ids)


def user_filters(
    exclude_seen: bool = True,
    category: str | None = None,
    exclude: Annotated[str | None, Query(description="Comma-separated item ids")] = None,
    available_only: bool = True,
) -> Filters:
    """The business filters of a user's recommendations, from the query string."""
    return Filters(exclude_seen=exclude_seen, category=category or None,
                   available_only=available_only, exclude=exclude_list(exclude))
