"""The id rule: its regular expression and its checks say the same thing, for every character."""

from __future__ import annotations

import re
import sys
import unicodedata

import pytest

from freshrec.ids import ID_PATTERN, MAX_ID_LENGTH, id_problem

EVERY_CHARACTER = [chr(code) for code in range(sys.maxunicode + 1)
                   if not 0xD800 <= code <= 0xDFFF]  # lone surrogates cannot arrive in JSON


def test_inside_an_id_only_control_characters_are_refused() -> None:
    refused = [c for c in EVERY_CHARACTER if id_problem(f"a{c}b") is not None]
    assert refused == [c for c in EVERY_CHARACTER if unicodedata.category(c) == "Cc"]


def test_at_either_end_whitespace_is_refused_too() -> None:
    refused = {c for c in EVERY_CHARACTER if id_problem(f"{c}b") is not None}
    assert refused == {c for c in EVERY_CHARACTER
                       if unicodedata.category(c) == "Cc" or c.isspace()}
    assert refused == {c for c in EVERY_CHARACTER if id_problem(f"b{c}") is not None}


@pytest.mark.parametrize("text", ["u1", "a/b", "#1", "50% off", "x y", "café", "用户",
                                  "😀", ".a", "a..", "...", "a" * MAX_ID_LENGTH, "5"])
def test_ids_that_can_travel_in_a_path_are_accepted(text: str) -> None:
    assert id_problem(text) is None
    assert re.fullmatch(ID_PATTERN, text)


@pytest.mark.parametrize(("text", "reason"), [
    ("", "must not be empty"),
    ("a" * (MAX_ID_LENGTH + 1), f"is longer than {MAX_ID_LENGTH} characters"),
    ("line\nbreak", "holds a control character ('\\n')"),
    ("nul\x00", "holds a control character ('\\x00')"),
    ("next\x85line", "holds a control character"),
    (" lead", "starts or ends with whitespace"),
    ("trail\u3000", "starts or ends with whitespace"),
    (".", "is '.', which HTTP clients resolve as a path segment"),
    ("..", "is '..'"),
])
def test_ids_that_cannot_travel_are_refused_with_the_reason(text: str, reason: str) -> None:
    problem = id_problem(text)
    assert problem is not None and reason in problem
    if len(text) <= MAX_ID_LENGTH:  # the pattern leaves the length to maxLength
        assert not re.fullmatch(ID_PATTERN, text)
