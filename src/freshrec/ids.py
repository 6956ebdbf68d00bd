"""What an id may be: one rule for ingest, for the routes' path ids and for the schema.

An id is stored exactly as it was sent and must come back through a route such as
``/v1/users/{id}/recommendations`` (percent-encoded), so everything a URL path can
carry back is allowed: '/', '#', '?', '%', inner spaces, any non-ASCII text. Refused
is only what cannot make that trip, or not reliably:

- control characters (the router cannot match "\\n" in a path; others vanish in
  logs, terminals and CSV files);
- whitespace at either end (clients, proxies and spreadsheets trim it);
- exactly "." or ".." (HTTP clients resolve them as dot segments of the path);
- the empty string, and more than :data:`MAX_ID_LENGTH` characters.

:data:`ID_PATTERN` states the same rule for the OpenAPI schema. It is valid as a
Python and as an ECMA-262 regular expression; in Python use ``re.fullmatch``
(``$`` alone would let a trailing newline through).

>>> [id_problem(text) for text in ("u1", "a/b #1", "café ☕", "😀")]
[None, None, None, None]
>>> id_problem("line\\nbreak")
"holds a control character ('\\\\n'), which a URL path cannot carry back"
>>> id_problem(" padded")
'starts or ends with whitespace'
>>> id_problem("..")
"is '..', which HTTP clients resolve as a path segment"
"""

from __future__ import annotations

import re

MAX_ID_LENGTH = 256

# C0 and C1 control characters (Unicode category Cc).
_CONTROL = r"\x00-\x1f\x7f-\x9f"
# Whitespace that is not a control character: exactly what str.isspace() adds to _CONTROL
# (spelt out because ECMA-262 and Python disagree on what \s holds).
_SPACE = r" \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_EDGE = f"[^{_CONTROL}{_SPACE}]"
_INNER = f"[^{_CONTROL}]"
ID_PATTERN = rf"^(?!\.\.?$){_EDGE}(?:{_INNER}*{_EDGE})?$"
"""The id rule as a regular expression (length aside: see :data:`MAX_ID_LENGTH`)."""

_ID = re.compile(ID_PATTERN)
_CONTROL_CHARACTER = re.compile(f"[{_CONTROL}]")
_DOT_SEGMENTS = (".", "..")

ID_RULE = (f"1 to {MAX_ID_LENGTH} characters; no control characters, no whitespace at "
           "either end, not '.' or '..'. Percent-encode it in a path (every '/' as %2F).")
"""The rule in words, for the schema's descriptions."""


def id_problem(text: str) -> str | None:
    """Why ``text`` cannot be an id, or None when it can."""
    if _ID.fullmatch(text) and len(text) <= MAX_ID_LENGTH:
        return None
    if not text:
        return "must not be empty"
    if len(text) > MAX_ID_LENGTH:
        return f"is longer than {MAX_ID_LENGTH} characters"
    control = _CONTROL_CHARACTER.search(text)
    if control:
        return (f"holds a control character ({control.group()!r}), which a URL path "
                "cannot carry back")
    if text in _DOT_SEGMENTS:
        return f"is {text!r}, which HTTP clients resolve as a path segment"
    return "starts or ends with whitespace"
