r"""Delimited exports (SLS CSV downloads) with a header row.

The delimiter is sniffed (``,`` ``\\t`` ``;`` ``|``); column names may be renamed
through an analyst-supplied ``column_map`` (for console downloads with their own
headers). Columns named ``event.<path>`` (SLS JSON-index names) are folded back
into the nested event; an ``event`` column holding the event as a JSON string is
kept as it is, like in SLS JSON exports.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json

from ..issues import IssueLog
from ..schema import AT_NESTED_FIELDS
from .jsontext import decode_text, dump
from .records import Split, records_table

_NESTED = frozenset(AT_NESTED_FIELDS) | {"userIdentity"}
csv.field_size_limit(2**31 - 1)


def split_csv(
    data: bytes,
    name: str,
    issues: IssueLog,
    delimiter: str = ",",
    column_map: dict[str, str] | None = None,
) -> Split:
    r"""Read CSV content into records numbered by the line each row starts on.

    A row with fewer values than the header keeps the missing ones empty, and a row
    with more keeps the extra ones under ``_extra_values``; both are reported as
    ``field`` issues.

    Examples
    --------
    >>> body = b"time,api_name,client_ip\r\n2023-07-04T01:52:55Z,Decrypt,10.0.0.1\r\n"
    >>> split = split_csv(body, "kms.csv", IssueLog())
    >>> split.records.column("json").to_pylist()
    ['{"time":"2023-07-04T01:52:55Z","api_name":"Decrypt","client_ip":"10.0.0.1"}']
    >>> split.records.column("source_record").to_pylist()
    [2]

    Every line ending in use ends a row outside quotes (LF, CRLF, a lone CR):

    >>> split_csv(body.replace(b"\r\n", b"\r"), "mac.csv", IssueLog()).read
    1
    """
    text = decode_text(data, name, issues)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    mapping = column_map or {}
    try:
        header = [mapping.get(h.strip(), h.strip()) for h in next(reader)]
    except StopIteration:
        return Split("csv", "line", records_table([], []), 0)
    except csv.Error as exc:
        issues.add(name, 1, "record", None, f"unreadable CSV header: {exc}")
        return Split("csv", "line", records_table([], []), 1)
    lines: list[int] = []
    texts: list[str] = []
    read = 0
    line = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # the reader starts afresh on the next line
            start, line = line, reader.line_num + 1
            read += 1
            issues.add(name, start, "record", None, f"unreadable CSV row: {exc}")
            continue
        start, line = line, reader.line_num + 1
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        read += 1
        if len(row) != len(header):
            issues.add(
                name,
                start,
                "field",
                None,
                f"row has {len(row)} values but the header has {len(header)} columns; "
                + (
                    "missing values left empty"
                    if len(row) < len(header)
                    else "extra values kept in _extra_values"
                ),
                delimiter.join(row),
            )
        record: dict[str, object] = dict(zip(header, row, strict=False))
        if len(row) > len(header):
            record["_extra_values"] = row[len(header) :]
        lines.append(start)
        texts.append(dump(_unflatten(record)))
    return Split("csv", "line", records_table(lines, texts), read)


def _unflatten(record: dict[str, object]) -> dict[str, object]:
    """Fold ``event.a.b`` columns into nested objects; parse nested JSON strings."""
    if not any(key.startswith("event.") for key in record):
        return record
    out: dict[str, object] = {}
    for key, value in record.items():
        if not key.startswith("event."):
            out[key] = value
            continue
        parts = key[len("event.") :].split(".")
        if parts[0] in _NESTED and isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        node = out
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                break
            node = child
        else:
            node[parts[-1]] = value
    return out
