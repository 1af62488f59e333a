r"""Text encodings and line endings of evidence files, recognised from their bytes.

Logs are UTF-8, but a file saved by a Windows tool may be UTF-16 with a byte-order
mark, and a file written on an old Mac may end its lines with a lone CR. Neither
may hide records: UTF-16 and UTF-32 with a BOM are decoded, and every line ending
in use (LF, CRLF or a lone CR) ends a line.

Examples
--------
>>> text = '{"a": 1}\n'.encode("utf-16")
>>> foreign_bom(text)
'utf-16'
>>> to_utf8(text, "x.json", IssueLog())
b'{"a": 1}\n'
>>> looks_binary(b'{"a": "x\x00y"}\n{"a": 2}\n'), looks_binary(b"%PDF-1.7\n")
(False, True)
"""

from __future__ import annotations

import codecs

import numpy as np

from ..issues import IssueLog

#: Byte-order marks of the encodings decoded here (UTF-32 first: it starts like UTF-16).
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
#: Signatures of common binary files that are never logs.
_BINARY_MAGIC = (b"%PDF", b"\x7fELF", b"\x89PNG", b"\xff\xd8\xff", b"MZ", b"SQLite format 3")
#: Bytes of text: printable ASCII, white space, escape, and every byte >= 0x80 (UTF-8).
_TEXT_BYTES = bytes([7, 8, 9, 10, 11, 12, 13, 27, *range(32, 127), *range(128, 256)])
#: Bytes compared at once when looking for line ends.
SCAN_BYTES = 1 << 22
#: Share of non-text bytes in the first bytes above which a file is binary.
BINARY_SHARE = 0.10


def foreign_bom(data: bytes) -> str | None:
    """Name the UTF-16/UTF-32 encoding announced by the first bytes, if any."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding
    return None


def to_utf8(data: bytes, name: str, issues: IssueLog) -> bytes:
    """Return UTF-16/UTF-32 content (with a BOM) as UTF-8; anything else unchanged.

    A decoded file gets a ``note``; bytes that are not valid in the announced
    encoding are replaced with U+FFFD and reported as a ``field`` issue.
    """
    encoding = foreign_bom(data)
    if encoding is None:
        return data
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        issues.add(
            name,
            None,
            "field",
            None,
            f"invalid {encoding.upper()} bytes replaced with U+FFFD (first at byte {exc.start})",
        )
        text = data.decode(encoding, "replace")
    issues.add(name, None, "note", None, f"{encoding.upper()} text (with a BOM) read as UTF-8")
    return text.lstrip("\ufeff").encode("utf-8")


def looks_binary(head: bytes) -> bool:
    """Tell whether the first bytes of a file are binary rather than text.

    A file is binary when it starts with a known binary signature, or when more than
    :data:`BINARY_SHARE` of its first 4 KiB are control bytes (NUL and the like);
    one stray NUL in a record does not make a log binary.
    """
    if head.startswith(_BINARY_MAGIC):
        return True
    sample = head[:4096]
    if not sample:
        return False
    return len(sample.translate(None, _TEXT_BYTES)) > BINARY_SHARE * len(sample)


def line_breaks(buf: np.ndarray) -> np.ndarray:
    r"""Positions of the bytes that end lines: every LF, and every CR not before an LF.

    The content is scanned in slices of :data:`SCAN_BYTES` (a comparison over a whole
    large file would allocate a mask as large as the file, and run several times
    slower for it).

    Examples
    --------
    >>> line_breaks(np.frombuffer(b"a\rb\r\nc\nd", dtype=np.uint8)).tolist()
    [1, 4, 6]
    """
    lf: list[np.ndarray] = []
    cr: list[np.ndarray] = []
    for begin in range(0, len(buf), SCAN_BYTES):
        part = buf[begin : begin + SCAN_BYTES]
        lf.append(np.flatnonzero(part == 10) + begin)
        cr.append(np.flatnonzero(part == 13) + begin)
    breaks = np.concatenate(lf) if lf else np.zeros(0, dtype=np.int64)
    returns = np.concatenate(cr) if cr else breaks[:0]
    if len(returns):
        after = returns + 1
        inside = after < len(buf)
        lone = returns[~inside | (buf[np.minimum(after, len(buf) - 1)] != 10)]
        breaks = np.sort(np.concatenate((breaks, lone)))
    return breaks


def first_line(text: bytes) -> bytes:
    r"""Return the first line of ``text``, whatever its line ending.

    Examples
    --------
    >>> first_line(b"a,b\rc,d\r"), first_line(b"a,b\r\nc"), first_line(b"a")
    (b'a,b', b'a,b', b'a')
    """
    ends = [i for i in (text.find(b"\n"), text.find(b"\r")) if i >= 0]
    return text[: min(ends)] if ends else text
