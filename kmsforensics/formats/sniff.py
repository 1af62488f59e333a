"""Recognise the shape of a file from its first bytes, never from its name."""

from __future__ import annotations

import csv
from dataclasses import dataclass

import orjson

from ..schema import AT_MARKER_KEYS, AT_SCALAR_FIELDS, KMS_FIELDS
from .encoding import first_line, foreign_bom, looks_binary

#: Shapes the readers understand, in the order they are tried.
SHAPES: tuple[str, ...] = ("json-array", "json-lines", "json-object", "csv")
BOM = b"\xef\xbb\xbf"
CSV_DELIMITERS = (",", "\t", ";", "|")
#: Header names that make a delimited first line a log CSV.
CSV_KNOWN_HEADERS: frozenset[str] = frozenset(
    KMS_FIELDS + AT_SCALAR_FIELDS + AT_MARKER_KEYS + ("event", "__topic__", "__time__")
)


@dataclass(frozen=True)
class Sniffed:
    """The result of sniffing: a shape, or ``None`` with the reason."""

    shape: str | None
    reason: str = ""
    delimiter: str = ","


def sniff(head: bytes, column_map: dict[str, str] | None = None) -> Sniffed:
    r"""Tell the shape of a file from its first (decompressed) bytes.

    Parameters
    ----------
    head : bytes
        The first bytes of the decompressed content (64 KiB is plenty).
    column_map : dict, optional
        CSV header renames supplied by the analyst; mapped names count as known.

    Examples
    --------
    >>> sniff(b'[{"eventId": "1"}]').shape
    'json-array'
    >>> sniff(b'{"api_name": "Decrypt"}\n{"api_name": "Encrypt"}\n').shape
    'json-lines'
    >>> sniff(b'{\n  "RequestId": "x",\n  "Events": []\n}').shape
    'json-object'
    >>> sniff(b"time;api_name;client_ip\n2023-07-04T01:52:55Z;Decrypt;10.0.0.1\n").delimiter
    ';'
    >>> sniff(b"# Incident notes\nnothing to see").reason
    'the first line is neither JSON nor a CSV header with known log field names'
    """
    encoding = foreign_bom(head)
    if encoding is not None:  # the loader decodes the whole file the same way
        head = head.decode(encoding, "replace").lstrip("\ufeff").encode("utf-8")
    text = head[len(BOM) :] if head.startswith(BOM) else head
    stripped = text.lstrip()
    if not stripped:
        return Sniffed(None, "empty file (no content, or only white space)")
    if looks_binary(stripped):
        return Sniffed(None, "binary content (not text)")
    first = stripped[:1]
    if first == b"[":
        return Sniffed("json-array")
    if first == b"{":
        return _sniff_braced(stripped)
    return _sniff_csv(stripped, column_map or {})


def _sniff_braced(text: bytes) -> Sniffed:
    line = first_line(text)
    if len(line) == len(text):
        # One line, or a first line longer than the head: records are one per line.
        return Sniffed("json-lines")
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        if line.strip() == b"{" or line.rstrip().endswith((b",", b"{", b"[")):
            return Sniffed("json-object")  # pretty-printed: one object over many lines
        return Sniffed("json-lines")  # a broken first record; the rest may be fine
    return Sniffed("json-lines")


def _sniff_csv(text: bytes, column_map: dict[str, str]) -> Sniffed:
    line = first_line(text).decode("utf-8", "replace")
    best: tuple[int, str] = (0, ",")
    for delimiter in CSV_DELIMITERS:
        names = next(csv.reader([line], delimiter=delimiter))
        known = sum(
            1
            for name in names
            if column_map.get(name.strip(), name.strip()) in CSV_KNOWN_HEADERS
            or name.strip().startswith("event.")
        )
        if known > best[0]:
            best = (known, delimiter)
    if best[0] >= 2 or (best[0] == 1 and column_map):
        return Sniffed("csv", delimiter=best[1])
    return Sniffed(
        None, "the first line is neither JSON nor a CSV header with known log field names"
    )
