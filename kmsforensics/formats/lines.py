"""JSON lines: one record per line, split without a Python loop over lines."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..errors import LogParseError
from ..issues import IssueLog
from .encoding import line_breaks
from .records import RECORDS_SCHEMA, Split
from .registry import BOM, Shape, Sniffed, register

_WHITESPACE = np.array([32, 9, 13, 11, 12], dtype=np.uint8)


def split_json_lines(data: bytes, name: str, issues: IssueLog, first_line: int = 1) -> Split:
    r"""Split JSON-lines content into records numbered by line (1-based).

    ``first_line`` is the number of the content's first line (a piece of a larger
    file, :mod:`.stream`); a byte-order mark is looked for only at line 1.

    Every line ending in use ends a line: LF, CRLF and a lone CR (JSON text cannot
    hold a raw CR, so this never splits a valid record). Blank lines are skipped
    (they are not records); a line's JSON is not checked here, but a line holding a
    raw NUL byte is rejected as a ``record`` issue. Invalid UTF-8 in a line is
    replaced and reported as a ``field`` issue.

    Examples
    --------
    >>> split = split_json_lines(b'{"a":1}\r\n\n{"a":2}\n', "x.jsonl", IssueLog())
    >>> split.records.column("source_record").to_pylist()
    [1, 3]
    >>> split_json_lines(b'{"a":1}\r{"a":2}\r', "mac.jsonl", IssueLog()).read
    2
    """
    start = len(BOM) if first_line == 1 and data.startswith(BOM) else 0
    buf = np.frombuffer(data, dtype=np.uint8)
    newlines = line_breaks(buf)
    starts = np.concatenate(([start], newlines + 1)).astype(np.int64)
    ends = np.concatenate((newlines, [len(data)])).astype(np.int64)
    keep = _non_blank(buf, starts, ends)
    read = int(keep.sum())
    _reject_nul_lines(data, buf, starts, ends, keep, name, issues, first_line)
    line_numbers = np.flatnonzero(keep) + first_line
    # Each value runs to the next line's start, so it ends with its "\n" (JSON
    # white space); a first value after a BOM starts past it.
    text = _line_array(data, starts, name)
    kept = int(keep.sum())
    if kept == len(keep):
        pass
    elif keep[:kept].all():  # only trailing blank lines (a final newline): no copy
        text = text.slice(0, kept)
    else:
        text = text.filter(pa.array(keep))
    try:
        text.validate(full=True)
    except pa.ArrowInvalid:
        text = _replace_invalid_utf8(data, starts[keep], ends[keep], line_numbers, name, issues)
    records = pa.Table.from_arrays(
        [pa.array(line_numbers, pa.int64()), pa.nulls(len(line_numbers), pa.int32()), text],
        schema=RECORDS_SCHEMA,
    )
    return Split("json-lines", "line", records, read, len(newlines))


def _reject_nul_lines(
    data: bytes,
    buf: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    keep: np.ndarray,
    name: str,
    issues: IssueLog,
    first_line: int = 1,
) -> None:
    """Reject (and report) the lines that hold a raw NUL byte; ``keep`` is updated."""
    if data.find(b"\0") < 0:  # the usual case, found at memchr speed
        return
    nuls = np.flatnonzero(buf == 0)
    if not len(nuls):
        return
    for line in np.unique(np.searchsorted(starts, nuls, side="right") - 1).tolist():
        if keep[line]:
            keep[line] = False
            issues.add(
                name,
                line + first_line,
                "record",
                None,
                "raw NUL byte in the record (JSON text cannot hold one); record not loaded",
                data[starts[line] : ends[line]],
            )


def _line_array(data: bytes, starts: np.ndarray, name: str) -> pa.ChunkedArray:
    """Zero-copy string arrays over ``data``, one value per line, chunked under 2 GiB."""
    bounds = np.append(starts, len(data))
    limit = 2**31 - 1
    chunks = []
    first = 0
    while first < len(starts):
        base = bounds[first]
        last = int(np.searchsorted(bounds, base + limit, side="right")) - 1
        if last <= first:
            raise LogParseError(
                name, first + 1, "a line longer than 2 GiB cannot be read; split the file"
            )
        last = min(last, len(starts))
        offsets = (bounds[first : last + 1] - base).astype(np.int32)
        buffer = pa.py_buffer(data)[int(base) : int(bounds[last])]
        chunks.append(pa.StringArray.from_buffers(last - first, pa.py_buffer(offsets), buffer))
        first = last
    return pa.chunked_array(chunks, pa.string())


def _non_blank(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    lengths = ends - starts
    keep = lengths > 0
    # Lines that start with white space may be blank: look at those few in Python.
    first = np.zeros(len(starts), dtype=np.uint8)
    first[keep] = buf[starts[keep]]
    suspects = np.flatnonzero(keep & np.isin(first, _WHITESPACE))
    raw = buf.tobytes() if len(suspects) else b""
    for i in suspects:
        if not raw[starts[i] : ends[i]].strip():
            keep[i] = False
    return keep


def _replace_invalid_utf8(
    data: bytes,
    starts: np.ndarray,
    ends: np.ndarray,
    line_numbers: np.ndarray,
    name: str,
    issues: IssueLog,
) -> pa.Array:
    texts: list[str] = []
    for begin, end, line in zip(starts.tolist(), ends.tolist(), line_numbers.tolist(), strict=True):
        chunk = data[begin:end]
        try:
            texts.append(chunk.decode("utf-8"))
        except UnicodeDecodeError:
            texts.append(chunk.decode("utf-8", "replace"))
            issues.add(name, line, "field", None, "invalid UTF-8 bytes replaced with U+FFFD", chunk)
    return pa.array(texts, pa.string())


def sniff_json_lines(head: bytes, column_map: dict[str, str]) -> Sniffed | None:
    """Recognise one JSON object per line: the content starts with ``{``.

    Examples
    --------
    >>> sniff_json_lines(b'{"a": 1}', {})
    Sniffed(shape='json-lines', reason='', delimiter=',')
    """
    return Sniffed("json-lines") if head[:1] == b"{" else None


register(
    Shape(
        "json-lines",
        30,
        sniff_json_lines,
        lambda data, name, issues, sniffed, column_map: split_json_lines(data, name, issues),
    )
)
