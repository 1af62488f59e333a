"""Salvage records that are almost JSON, and explain the ones that are not.

Two repairs are made, each reported as a ``field`` issue so nothing changes
silently:

* masked values copied from vendor documentation, such as
  ``"stsTokenPlayerUid": 175498693826****``, are quoted;
* invalid UTF-8 bytes are replaced with U+FFFD, so that an attacker cannot hide
  an event from the analyst by putting one bad byte in a user agent.
"""

from __future__ import annotations

import json
import re

_MASKED_NUMBER = re.compile(r"(?<=[:\[,])(\s*)(-?[0-9]+\*+[0-9]*)(?=\s*[,}\]])")


def quote_masked_numbers(text: str) -> tuple[str, int]:
    """Quote unquoted masked numbers (``1754986938****``); return the text and a count.

    Examples
    --------
    >>> quote_masked_numbers('{"uid": 175498693826****, "n": 1}')
    ('{"uid": "175498693826****", "n": 1}', 1)
    """
    return _MASKED_NUMBER.subn(r'\1"\2"', text)


def json_error(text: str) -> str:
    """Describe why ``text`` is not valid JSON, with the position, as Python sees it.

    Examples
    --------
    >>> json_error('{"a": 1')
    "invalid JSON: Expecting ',' delimiter at character 7"
    """
    try:
        json.loads(text)
    except RecursionError:
        return "invalid JSON: nested too deeply to parse"
    except json.JSONDecodeError as exc:
        return f"invalid JSON: {exc.msg} at character {exc.pos}"
    except ValueError as exc:
        return f"invalid JSON: {exc}"
    return "not accepted by the JSON reader (for example, nested more than 1,000 levels)"


def salvage(raw: bytes | str) -> tuple[str | None, list[str], str]:
    """Try to make a broken record readable.

    Returns
    -------
    text : str or None
        The repaired JSON text, or ``None`` when it cannot be read.
    repairs : list of str
        What was changed (each becomes a ``field`` issue).
    reason : str
        Why the record cannot be read, when ``text`` is ``None``.

    Examples
    --------
    >>> salvage(b'{"a": 12****}')[:2]
    ('{"a": "12****"}', ['unquoted masked value(s) quoted: 1'])
    >>> salvage(b'{"a": ')[0] is None
    True
    """
    repairs: list[str] = []
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("utf-8", "replace")
            repairs.append("invalid UTF-8 bytes replaced with U+FFFD")
    else:
        text = raw
    if repairs and _valid(text):
        return text, repairs, ""
    fixed, count = quote_masked_numbers(text)
    if count and _valid(fixed):
        return fixed, [*repairs, f"unquoted masked value(s) quoted: {count}"], ""
    return None, [], json_error(text)


def _valid(text: str) -> bool:
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True
