"""JSON arrays and JSON objects: exact readers that keep each element's own text.

These readers use the standard library's ``raw_decode`` so that an element's
record is its exact text in the file (big integers and number spellings are kept
as written), and so that a damaged element names its index while the elements
around it still load. JSON arrays on disk are first read by the fast reader in
:mod:`kmsforensics.formats.fast`; this module is its exact fallback.
"""

from __future__ import annotations

import json
import re

import orjson
import pyarrow as pa

from ..issues import IssueLog
from .encoding import first_line
from .records import Split, records_table
from .registry import BOM, Shape, Sniffed, register
from .repair import repair_document

_DECODER = json.JSONDecoder()
_WS = re.compile(r"[ \t\n\r]*")
#: Where the next element of an array of objects probably starts after damage.
_RESYNC = re.compile(r"\}\s*,\s*(?=\{)")


def decode_text(data: bytes, name: str, issues: IssueLog) -> str:
    """Decode UTF-8 content without its BOM; invalid bytes are replaced and reported."""
    if data.startswith(BOM):
        data = data[len(BOM) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        issues.add(
            name,
            None,
            "field",
            None,
            f"invalid UTF-8 bytes replaced with U+FFFD (first at byte {exc.start})",
        )
        return data.decode("utf-8", "replace")


def split_json_array(data: bytes, name: str, issues: IssueLog) -> Split:
    """Split a JSON array into its elements, numbered by 0-based index.

    A damaged element is reported with its index; reading resumes at the next
    element that can be found, and a file that ends inside an element (truncated)
    reports that last element.

    Examples
    --------
    >>> split = split_json_array(b'[{"a":1}, {"a": }, {"a":3}]', "x.json", IssueLog())
    >>> split.records.column("source_record").to_pylist(), split.read
    ([0, 2], 3)
    """
    text = _repaired(decode_text(data, name, issues), name, issues)
    pos = _skip_ws(text, 0)
    if not text.startswith("[", pos):
        issues.add(name, None, "record", None, "expected a JSON array", text[pos : pos + 200])
        return Split("json-array", "index", records_table([], []), 1)
    pos = _skip_ws(text, pos + 1)
    indexes: list[int] = []
    texts: list[str] = []
    index = 0
    while pos < len(text) and text[pos] != "]":
        try:
            _, end = _DECODER.raw_decode(text, pos)
        except (json.JSONDecodeError, RecursionError) as exc:
            resync = _RESYNC.search(text, pos)
            reason = _why(exc, text, pos)
            if resync is None and not text.rstrip().endswith("]"):
                reason = f"truncated: the file ends inside this element ({reason})"
            issues.add(name, index, "record", None, reason, text[pos : pos + 200])
            index += 1
            if resync is None:
                break
            pos = resync.end()
            continue
        indexes.append(index)
        texts.append(text[pos:end])
        index += 1
        pos = _skip_ws(text, end)
        if text.startswith(",", pos):
            pos = _skip_ws(text, pos + 1)
        elif not text.startswith("]", pos) and pos < len(text):
            issues.add(
                name,
                index,
                "record",
                None,
                f"expected ',' or ']' after element {index - 1}",
                text[pos : pos + 200],
            )
            index += 1
            resync = _RESYNC.search(text, pos)
            if resync is None:
                break
            pos = resync.end()
    else:
        if pos >= len(text):
            issues.add(
                name,
                index,
                "record",
                None,
                "truncated: the file ends before the array is closed",
                text[-200:],
            )
            index += 1
    return Split("json-array", "index", records_table(indexes, texts), index)


def split_json_values(data: bytes, name: str, issues: IssueLog) -> Split:
    """Read a file of one JSON value, or of several concatenated pretty-printed ones.

    A LookupEvents response (an object with an ``Events`` list) gives one record
    per event, numbered by its index in ``Events``; any other object is one record.

    Examples
    --------
    >>> body = b'{"RequestId": "r", "Events": [{"eventId": "1"}, {"eventId": "2"}]}'
    >>> split_json_values(body, "page.json", IssueLog()).records.column("json").to_pylist()
    ['{"eventId":"1"}', '{"eventId":"2"}']
    """
    text = _repaired(decode_text(data, name, issues), name, issues)
    values: list[tuple[object, str]] = []
    pos = _skip_ws(text, 0)
    while pos < len(text):
        try:
            value, end = _DECODER.raw_decode(text, pos)
        except (json.JSONDecodeError, RecursionError) as exc:
            issues.add(
                name, len(values), "record", None, _why(exc, text, pos), text[pos : pos + 200]
            )
            return Split("json-object", "index", _values_table(values), len(values) + 1)
        values.append((value, text[pos:end]))
        pos = _skip_ws(text, end)
    if len(values) == 1 and isinstance(values[0][0], dict):
        events = values[0][0].get("Events")
        if isinstance(events, list):
            return Split(
                "json-object",
                "index",
                records_table(range(len(events)), [dump(e) for e in events]),
                len(events),
            )
    return Split("json-object", "index", _values_table(values), len(values))


def dump(value: object) -> str:
    """Serialise a parsed value back to compact JSON, keeping big integers exact."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _values_table(values: list[tuple[object, str]]) -> pa.Table:
    return records_table(range(len(values)), [raw for _, raw in values])


def _repaired(text: str, name: str, issues: IssueLog) -> str:
    try:
        json.loads(text)
        return text
    except (ValueError, RecursionError):
        pass
    fixed, repairs = repair_document(text)
    for repair in repairs:
        issues.add(name, None, "field", None, f"{repair} (copied from documentation?)")
    return fixed


def _skip_ws(text: str, pos: int) -> int:
    match = _WS.match(text, pos)
    return match.end() if match else pos


def _why(exc: Exception, text: str, pos: int) -> str:
    if isinstance(exc, RecursionError):
        return "invalid JSON: nested too deeply to parse"
    assert isinstance(exc, json.JSONDecodeError)
    if exc.pos >= len(text):
        return "truncated: the file ends inside this element"
    return f"invalid JSON: {exc.msg} at character {exc.pos - pos} of the element"


def sniff_json_array(head: bytes, column_map: dict[str, str]) -> Sniffed | None:
    """Recognise a JSON array (OSS delivery, SLS pull exports): content starting with ``[``."""
    return Sniffed("json-array") if head[:1] == b"[" else None


def sniff_json_object(head: bytes, column_map: dict[str, str]) -> Sniffed | None:
    r"""Recognise pretty-printed JSON values over many lines (one, or several in a row).

    Examples
    --------
    >>> sniff_json_object(b'{\n  "RequestId": "x",\n  "Events": []\n}', {}).shape
    'json-object'
    >>> sniff_json_object(b'{"a": 1}\n{"a": 2}\n', {}) is None
    True
    """
    if head[:1] != b"{":
        return None
    line = first_line(head)
    if len(line) == len(head):
        return None  # one line, or a first line longer than the head: JSON lines
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        if line.strip() == b"{" or line.rstrip().endswith((b",", b"{", b"[")):
            return Sniffed("json-object")  # pretty-printed: one object over many lines
    return None  # a whole record on the first line (or a broken one): JSON lines


register(
    Shape(
        "json-array",
        10,
        sniff_json_array,
        lambda data, name, issues, sniffed, column_map: split_json_array(data, name, issues),
        fast=True,
    )
)
register(
    Shape(
        "json-object",
        20,
        sniff_json_object,
        lambda data, name, issues, sniffed, column_map: split_json_values(data, name, issues),
    )
)
