"""Salvage records that are almost JSON, and explain the ones that are not.

The repairs, each reported as a ``field`` issue so nothing changes silently:

* masked values copied from vendor documentation, such as
  ``"stsTokenPlayerUid": 175498693826****``, ``106 ********* 811`` or
  ``1187xxxxxxxx4544``, are quoted;
* ``//`` and ``/* */`` comments and trailing commas (JSON pasted from
  documentation) are removed;
* invalid UTF-8 bytes are replaced with U+FFFD, so that an attacker cannot hide
  an event from the analyst by putting one bad byte in a user agent.

The repairs never touch the inside of a JSON string.
"""

from __future__ import annotations

import json
import re

#: An unquoted masked number: digits, then ``*`` or ``x`` runs (spaces allowed
#: around them), then optional digits; it must stand where a value stands.
_MASKED_NUMBER = re.compile(
    r"(?<=[:\[,])(\s*)(-?[0-9]+(?: ?(?:\*+|[xX]+)(?: ?[0-9]+)?)+)(?=\s*[,}\]])"
)
#: JSON strings (kept as they are) and comments; then strings and trailing commas.
_COMMENTS = re.compile(
    r'(?P<string>"(?:[^"\\]|\\.)*")|(?P<line>//[^\n]*)|(?P<block>/\*.*?\*/)', re.DOTALL
)
_COMMAS = re.compile(r'(?P<string>"(?:[^"\\]|\\.)*")|(?P<comma>,(?=\s*[}\]]))')


def quote_masked_numbers(text: str) -> tuple[str, int]:
    """Quote unquoted masked numbers (``1754986938****``); return the text and a count.

    Examples
    --------
    >>> quote_masked_numbers('{"uid": 175498693826****, "n": 1}')
    ('{"uid": "175498693826****", "n": 1}', 1)
    >>> quote_masked_numbers('{"a": 106 ********* 811, "b": 1187xxxxxxxx4544}')[0]
    '{"a": "106 ********* 811", "b": "1187xxxxxxxx4544"}'
    """
    return _MASKED_NUMBER.subn(r'\1"\2"', text)


def strip_comments(text: str) -> tuple[str, int, int]:
    r"""Remove comments and trailing commas outside strings; return text and counts.

    Examples
    --------
    >>> strip_comments('{"url": "http://x", // the endpoint\n "n": [1, 2,],}')
    ('{"url": "http://x", \n "n": [1, 2]}', 1, 2)
    """
    counts = [0]

    def replace(match: re.Match[str]) -> str:
        if match.group("string") is not None:
            return match.group(0)
        counts[0] += 1
        return ""

    out = _COMMENTS.sub(replace, text)
    comments, counts[0] = counts[0], 0
    out = _COMMAS.sub(replace, out)
    return out, comments, counts[0]


def repair_document(text: str) -> tuple[str, list[str]]:
    r"""Apply the text repairs (comments, trailing commas, masked numbers) to ``text``.

    Returns the text (unchanged when nothing applies) and what was changed.

    Examples
    --------
    >>> fixed, repairs = repair_document('{"uid": 4****, // masked\n}')
    >>> fixed
    '{"uid": "4****" \n}'
    >>> repairs
    ['comments removed: 1', 'trailing commas removed: 1', 'unquoted masked value(s) quoted: 1']
    """
    repairs: list[str] = []
    fixed = text
    if "/" in fixed or "," in fixed:
        stripped, comments, commas = strip_comments(fixed)
        if comments:
            repairs.append(f"comments removed: {comments}")
        if commas:
            repairs.append(f"trailing commas removed: {commas}")
        fixed = stripped
    fixed, count = quote_masked_numbers(fixed)
    if count:
        repairs.append(f"unquoted masked value(s) quoted: {count}")
    return fixed, repairs


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
    >>> salvage('{"a": 1, /* docs */ "b": 2,}')[:2]
    ('{"a": 1,  "b": 2}', ['comments removed: 1', 'trailing commas removed: 1'])
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
    if repairs and is_json(text):
        return text, repairs, ""
    fixed, changes = repair_document(text)
    if changes and is_json(fixed):
        return fixed, [*repairs, *changes], ""
    return None, [], json_error(text)


def is_json(text: str | bytes) -> bool:
    """Tell whether the standard library reads ``text`` as JSON.

    Examples
    --------
    >>> is_json('{"a": 1}'), is_json('{"a": 1,}')
    (True, False)
    """
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True
