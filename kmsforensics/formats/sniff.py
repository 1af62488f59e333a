"""Recognise the shape of a file from its first bytes, never from its name.

The shapes themselves live in their own modules and register a sniffing
function (:mod:`kmsforensics.formats.registry`); this module only strips what
every shape ignores (a BOM, white space, ``//`` comment lines copied from
documentation), rejects binary content, and asks the shapes in order.
"""

from __future__ import annotations

import re

from . import registry
from .encoding import foreign_bom, looks_binary
from .registry import BOM, Sniffed

__all__ = ["BOM", "SHAPES", "Sniffed", "sniff"]

_COMMENT_LINES = re.compile(rb"\A(?:\s*//[^\n]*(?:\n|\Z))+")


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
    >>> sniff(b'// copied from the docs\n{\n  "eventId": "x",\n}').shape
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
    if stripped.startswith(b"//"):
        stripped = _COMMENT_LINES.sub(b"", stripped).lstrip() or stripped
    for shape in registry.shapes():
        found = shape.sniff(stripped, column_map or {})
        if found is not None:
            return found
    return Sniffed(
        None, "the first line is neither JSON nor a CSV header with known log field names"
    )


def _shape_names() -> tuple[str, ...]:
    return tuple(s.name for s in registry.shapes())


# The shapes register themselves when imported (after the names above exist).
from . import csvfile, jsontext, lines  # noqa: E402,F401

#: Shapes the readers understand, in the order they are tried.
SHAPES: tuple[str, ...] = _shape_names()
