"""Readers: one per input shape, chosen by sniffing the content.

Every reader turns the content of one evidence file into *records*: an Arrow
table with the record's position in the file (``source_record``: 1-based line
number for line-oriented files and CSV, 0-based element index for JSON arrays
and ``Events[]``) and its JSON text. Readers never interpret fields; that is the
job of the record kinds (:mod:`kmsforensics.sources`), shared by every shape, so
that all of them give identical rows for identical events.

Each shape registers its sniffing and splitting in
:mod:`kmsforensics.formats.registry`.
"""

from .records import RECORDS_SCHEMA, Split, records_table
from .registry import Shape, Sniffed, get, register, shapes
from .sniff import SHAPES, sniff

__all__ = [
    "RECORDS_SCHEMA",
    "SHAPES",
    "Shape",
    "Sniffed",
    "Split",
    "get",
    "records_table",
    "register",
    "shapes",
    "sniff",
]
